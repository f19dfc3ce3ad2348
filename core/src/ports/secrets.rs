//! Named secrets (the admin key, the snapshot encryption key, …).

use async_trait::async_trait;
use secrecy::SecretString;

use crate::error::Result;

#[async_trait]
pub trait Secrets: Send + Sync {
    /// The secret's current value, if set.
    async fn get(&self, name: &str) -> Result<Option<SecretString>>;
    /// Creates or replaces the secret.
    async fn put(&self, name: &str, value: SecretString) -> Result<()>;
}

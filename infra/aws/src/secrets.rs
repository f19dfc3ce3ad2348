//! [`Secrets`] on Secrets Manager: secret `name` is `<secret_prefix>/<name>`
//! ([`resources::secret_name`]), its value the secret string.
//!
//! Reads go through an in-process cache (five minutes for a value, ten seconds for an absent
//! secret, so one created by `openwa bootstrap` is seen soon), and a `put` updates it, so hot
//! paths (the admin key on every admin request) cost no call. Another process's rotation is
//! seen within the TTL.
//!
//! Values never reach an error or a log: errors carry the operation and the service's error
//! code only (not its message), and spans record the name alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use openwa_core::error::{Error, Result};
use openwa_core::ports::Secrets;
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::context::AwsContext;
use crate::error::error_code;
use crate::resources;

/// How long a read value is trusted.
pub const VALUE_TTL: Duration = Duration::from_secs(300);
/// How long "no such secret" is trusted.
pub const ABSENT_TTL: Duration = Duration::from_secs(10);

pub struct SecretsManagerSecrets {
    ctx: Arc<AwsContext>,
    ttl: Duration,
    /// Name -> (read at, value or absent).
    cache: Mutex<HashMap<String, (Instant, Option<SecretString>)>>,
}

impl SecretsManagerSecrets {
    pub fn new(ctx: Arc<AwsContext>) -> Self {
        Self::with_ttl(ctx, VALUE_TTL)
    }

    /// With a value TTL other than [`VALUE_TTL`] (zero turns the cache off).
    pub fn with_ttl(ctx: Arc<AwsContext>, ttl: Duration) -> Self {
        Self {
            ctx,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str) -> Option<Option<SecretString>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (at, value) = cache.get(name)?;
        let ttl = if value.is_some() {
            self.ttl
        } else {
            ABSENT_TTL.min(self.ttl)
        };
        (at.elapsed() < ttl).then(|| value.clone())
    }

    fn remember(&self, name: &str, value: Option<SecretString>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(name.to_owned(), (Instant::now(), value));
    }

    async fn fetch(&self, id: &str) -> Result<Option<SecretString>> {
        match self
            .ctx
            .secrets
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .secret_string()
                .map(|s| SecretString::from(s.to_owned()))),
            Err(e) if error_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(secret_error("GetSecretValue", e)),
        }
    }

    async fn put_value(&self, id: &str, value: &SecretString) -> Result<()> {
        self.ctx
            .secrets
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose_secret())
            .send()
            .await
            .map_err(|e| secret_error("PutSecretValue", e))?;
        Ok(())
    }
}

/// Names are 1–128 of `[A-Za-z0-9._/-]`, as for the embedded backend.
fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "a secret name is 1 to 128 of A-Z a-z 0-9 . _ / -",
        ))
    }
}

/// An SDK error without anything from the request or the service's message (either could
/// echo the value).
fn secret_error<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Error::unavailable(format!("{op}: the AWS endpoint did not answer"))
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("unknown");
            if matches!(code, "ThrottlingException" | "InternalServiceError") {
                Error::unavailable(format!("{op}: {code}"))
            } else {
                Error::unexpected(format!("{op}: {code}"))
            }
        }
        _ => Error::unexpected(format!("{op}: the request could not be made")),
    }
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    #[tracing::instrument(skip_all, fields(name = %name))]
    async fn get(&self, name: &str) -> Result<Option<SecretString>> {
        validate_name(name)?;
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        let value = self
            .fetch(&resources::secret_name(&self.ctx.settings, name))
            .await?;
        self.remember(name, value.clone());
        Ok(value)
    }

    /// Creates the secret, or puts a new version if it exists.
    #[tracing::instrument(skip_all, fields(name = %name))]
    async fn put(&self, name: &str, value: SecretString) -> Result<()> {
        validate_name(name)?;
        let id = resources::secret_name(&self.ctx.settings, name);
        let created = self
            .ctx
            .secrets
            .create_secret()
            .name(&id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("ResourceExistsException") => {
                self.put_value(&id, &value).await?;
            }
            Err(e) => return Err(secret_error("CreateSecret", e)),
        }
        self.remember(name, Some(value));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_checked() {
        assert!(validate_name("admin-key").is_ok());
        assert!(validate_name("a/b.c_d").is_ok());
        for bad in ["", "sp ace", "x*", &"n".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}

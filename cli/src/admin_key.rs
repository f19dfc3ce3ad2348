//! The first admin key. On the first start the gateway generates one, prints it
//! once and saves it to `<data dir>/admin.key` (mode 0600). `OPENWA_ADMIN_KEY` supplies a key
//! instead; it is registered if the store does not know it yet.

use std::path::{Path, PathBuf};

use anyhow::Context;
use openwa_core::apikey::{ApiKeySecret, Role};
use openwa_core::ports::Backend;
use openwa_core::services::{ApiKeyService, NewApiKey};
use secrecy::SecretString;

/// What happened to the admin key at start.
#[derive(Debug)]
pub enum AdminKey {
    /// Generated now; the only time the secret is printed.
    Created { secret: String, path: PathBuf },
    /// The key in `OPENWA_ADMIN_KEY`.
    FromEnvironment,
    /// Made on an earlier start.
    Existing,
    /// AWS backend: the key lives in this Secrets Manager secret.
    InSecretsManager { secret: String },
}

pub const ADMIN_KEY_FILE: &str = "admin.key";
/// Secret holding the id of the generated admin key (not the key itself).
const ADMIN_KEY_MARKER: &str = "bootstrap-admin-key-id";

fn admin_key_spec(name: &str) -> NewApiKey {
    NewApiKey {
        name: name.to_owned(),
        role: Role::Admin,
        allowed_sessions: None,
        allowed_cidrs: Vec::new(),
        rate_limit_per_minute: None,
        expires_at: None,
    }
}

pub async fn ensure_admin_key(
    keys: &ApiKeyService,
    backend: &Backend,
    data_dir: &Path,
    explicit: Option<&str>,
) -> anyhow::Result<AdminKey> {
    if let Some(raw) = explicit {
        let secret = ApiKeySecret::parse(raw.trim()).map_err(|_| {
            anyhow::anyhow!(
                "OPENWA_ADMIN_KEY is not an openwa key; make one with `openwa keys generate`"
            )
        })?;
        match backend.keys.find_by_hash(&secret.hash()).await? {
            Some(key) if key.revoked_at.is_some() => {
                anyhow::bail!("the key in OPENWA_ADMIN_KEY ({}) has been revoked", key.id)
            }
            Some(_) => {}
            None => {
                keys.create_with_secret(None, admin_key_spec("admin (OPENWA_ADMIN_KEY)"), secret)
                    .await?;
            }
        }
        return Ok(AdminKey::FromEnvironment);
    }

    // The marker secret records that the first admin key was made, so keys created earlier with
    // `openwa keys create` do not stop the gateway from making its own.
    if backend.secrets.get(ADMIN_KEY_MARKER).await?.is_some() {
        return Ok(AdminKey::Existing);
    }
    let (key, secret) = keys.create(None, admin_key_spec("admin")).await?;
    let path = data_dir.join(ADMIN_KEY_FILE);
    write_private(&path, secret.expose()).with_context(|| format!("writing {}", path.display()))?;
    backend
        .secrets
        .put(ADMIN_KEY_MARKER, SecretString::from(key.id.to_string()))
        .await?;
    Ok(AdminKey::Created {
        secret: secret.expose().to_owned(),
        path,
    })
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

//! [`Secrets`] for the embedded backend: a JSON file (`{"name": "value"}`, mode 0600) and an
//! environment overlay, [`EnvSecrets`], that lets `OPENWA_SECRET_<NAME>` override any backend.
//!
//! The file is read on every `get` (secrets are read rarely, and another process such as an
//! admin command may have written it) and replaced atomically on `put`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use openwa_core::error::{Error, Result};
use openwa_core::ports::Secrets;
use secrecy::{ExposeSecret, SecretString};

use super::db::{blocking, io_error};

/// Names are 1–128 characters of `[A-Za-z0-9._/-]`, the intersection of what Secrets Manager
/// and a readable env var mapping allow.
pub fn validate_name(name: &str) -> Result<()> {
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

pub struct FileSecrets {
    path: PathBuf,
    /// Serialises writers in this process so two puts cannot lose each other's update.
    write_lock: Arc<Mutex<()>>,
}

impl FileSecrets {
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            write_lock: Arc::new(Mutex::new(())),
        }
    }
}

fn read_all(path: &Path) -> Result<BTreeMap<String, String>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(BTreeMap::new()),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| {
            Error::unexpected(format!(
                "{} is not a JSON object of strings",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(io_error("secrets file", e)),
    }
}

fn write_all(path: &Path, secrets: &BTreeMap<String, String>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(secrets).map_err(|e| Error::unexpected(e.to_string()))?;
    let tmp = path.with_extension(format!("json.~tmp{}", ulid::Ulid::new()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| io_error("secrets file", e))
}

#[async_trait]
impl Secrets for FileSecrets {
    async fn get(&self, name: &str) -> Result<Option<SecretString>> {
        validate_name(name)?;
        let (path, name) = (self.path.clone(), name.to_owned());
        blocking(move || Ok(read_all(&path)?.remove(&name).map(SecretString::from))).await
    }

    #[tracing::instrument(skip_all, fields(name = %name))]
    async fn put(&self, name: &str, value: SecretString) -> Result<()> {
        validate_name(name)?;
        let (path, name, lock) = (self.path.clone(), name.to_owned(), self.write_lock.clone());
        blocking(move || {
            let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            let mut all = read_all(&path)?;
            all.insert(name, value.expose_secret().to_owned());
            write_all(&path, &all)
        })
        .await
    }
}

/// Looks up an environment variable; swappable so tests need not touch the process env.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// An overlay: `OPENWA_SECRET_<NAME>` (upper-cased, every non-alphanumeric as `_`) wins over
/// the inner store on `get`; `put` always writes to the inner store.
pub struct EnvSecrets<S> {
    inner: S,
    lookup: EnvLookup,
}

impl<S: Secrets> EnvSecrets<S> {
    /// Overlays the process environment.
    pub fn new(inner: S) -> Self {
        Self::with_lookup(inner, Arc::new(|var| std::env::var(var).ok()))
    }

    pub fn with_lookup(inner: S, lookup: EnvLookup) -> Self {
        Self { inner, lookup }
    }

    /// The variable that overrides `name`: `admin-key` -> `OPENWA_SECRET_ADMIN_KEY`.
    pub fn var_name(name: &str) -> String {
        let mapped: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("OPENWA_SECRET_{mapped}")
    }
}

#[async_trait]
impl<S: Secrets> Secrets for EnvSecrets<S> {
    async fn get(&self, name: &str) -> Result<Option<SecretString>> {
        validate_name(name)?;
        if let Some(value) = (self.lookup)(&Self::var_name(name)) {
            return Ok(Some(SecretString::from(value)));
        }
        self.inner.get(name).await
    }

    async fn put(&self, name: &str, value: SecretString) -> Result<()> {
        self.inner.put(name, value).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_upper_case_with_underscores() {
        assert_eq!(
            EnvSecrets::<FileSecrets>::var_name("admin-key"),
            "OPENWA_SECRET_ADMIN_KEY"
        );
        assert_eq!(
            EnvSecrets::<FileSecrets>::var_name("snap/key.v1"),
            "OPENWA_SECRET_SNAP_KEY_V1"
        );
    }

    #[tokio::test]
    async fn the_environment_overrides_the_file_but_puts_go_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        let lookup: EnvLookup =
            Arc::new(|var| (var == "OPENWA_SECRET_ADMIN_KEY").then(|| "from-env".to_owned()));
        let secrets = EnvSecrets::with_lookup(FileSecrets::new(&path), lookup);

        secrets
            .put("admin-key", SecretString::from("from-file"))
            .await
            .unwrap();
        secrets
            .put("other", SecretString::from("plain"))
            .await
            .unwrap();

        let admin = secrets.get("admin-key").await.unwrap().unwrap();
        assert_eq!(admin.expose_secret(), "from-env");
        assert_eq!(
            secrets.get("other").await.unwrap().unwrap().expose_secret(),
            "plain"
        );
        let file = FileSecrets::new(&path);
        assert_eq!(
            file.get("admin-key")
                .await
                .unwrap()
                .unwrap()
                .expose_secret(),
            "from-file"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_secrets_file_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.json");
        FileSecrets::new(&path)
            .put("k", SecretString::from("v"))
            .await
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

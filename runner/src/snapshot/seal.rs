//! Sealing snapshots: the AES-256-GCM key, the blob header with its kind, encryption bound to
//! the session (and the kind), and opening with a clear error for the wrong kind.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use openwa_core::id::SessionId;
use secrecy::{ExposeSecret, SecretString};

use super::KEY_SECRET_NAME;
use crate::error::{Result, RunnerError};

const MAGIC: &[u8; 6] = b"OWSNAP";
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + 1 + NONCE_LEN;

/// What a snapshot holds; which isolation mode can restore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// tar.gz of the profile's auth directories (process mode).
    ProfileArchive,
    /// gzip of a context-mode [`AuthDump`].
    ContextDump,
}

impl SnapshotKind {
    fn version(self) -> u8 {
        match self {
            Self::ProfileArchive => 1,
            Self::ContextDump => 2,
        }
    }

    fn from_version(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::ProfileArchive),
            2 => Some(Self::ContextDump),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::ProfileArchive => "a profile archive (taken by a process-mode runner)",
            Self::ContextDump => "a context dump (taken by a context-mode runner)",
        }
    }

    /// The associated data: the session id, plus the kind for every kind but the original.
    fn aad(self, session: &SessionId) -> Vec<u8> {
        let mut aad = session.as_str().as_bytes().to_vec();
        if self == Self::ContextDump {
            aad.extend_from_slice(b"\0context-dump");
        }
        aad
    }
}

/// A 256-bit snapshot key. Never logged.
#[derive(Clone)]
pub struct SnapshotKey([u8; 32]);

impl SnapshotKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn random() -> Self {
        Self(rand::random())
    }

    pub(super) fn parse(secret: &SecretString) -> Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(secret.expose_secret().trim())
            .map_err(|_| {
                RunnerError::Snapshot(format!("secret {KEY_SECRET_NAME} is not base64"))
            })?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            RunnerError::Snapshot(format!("secret {KEY_SECRET_NAME} is not 32 bytes"))
        })?;
        Ok(Self(bytes))
    }

    pub(super) fn encode(&self) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl std::fmt::Debug for SnapshotKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SnapshotKey(..)")
    }
}

/// Encrypts `plain` for `session` as a snapshot of `kind`: header + ciphertext.
pub fn seal(
    key: &SnapshotKey,
    session: &SessionId,
    kind: SnapshotKind,
    plain: &[u8],
) -> Result<Vec<u8>> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let cipher =
        Aes256Gcm::new_from_slice(&key.0).map_err(|e| RunnerError::Snapshot(e.to_string()))?;
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &kind.aad(session),
            },
        )
        .map_err(|_| RunnerError::Snapshot("encryption failed".into()))?;
    let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
    out.extend_from_slice(MAGIC);
    out.push(kind.version());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts a blob made by [`seal`], with its kind; fails on a wrong key, another session, or
/// any tampering (the kind included).
pub fn open(
    key: &SnapshotKey,
    session: &SessionId,
    blob: &[u8],
) -> Result<(SnapshotKind, Vec<u8>)> {
    if blob.len() < HEADER_LEN || &blob[..MAGIC.len()] != MAGIC {
        return Err(RunnerError::Snapshot("not a snapshot".into()));
    }
    let kind = SnapshotKind::from_version(blob[MAGIC.len()]).ok_or_else(|| {
        RunnerError::Snapshot(format!(
            "unsupported snapshot version {}",
            blob[MAGIC.len()]
        ))
    })?;
    let nonce = &blob[MAGIC.len() + 1..HEADER_LEN];
    let cipher =
        Aes256Gcm::new_from_slice(&key.0).map_err(|e| RunnerError::Snapshot(e.to_string()))?;
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &blob[HEADER_LEN..],
                aad: &kind.aad(session),
            },
        )
        .map(|plain| (kind, plain))
        .map_err(|_| {
            RunnerError::Snapshot("decryption failed (wrong key or tampered snapshot)".into())
        })
}

/// Opens a blob that must be of kind `want`; the other kind is a clear error.
pub(super) fn open_kind(
    key: &SnapshotKey,
    session: &SessionId,
    blob: &[u8],
    want: SnapshotKind,
) -> Result<Vec<u8>> {
    let (kind, plain) = open(key, session, blob)?;
    if kind != want {
        return Err(RunnerError::Snapshot(format!(
            "the snapshot is {}, this runner restores only {}; the session must be linked again \
             (or run it on a runner in the other isolation mode)",
            kind.describe(),
            want.describe()
        )));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> SessionId {
        SessionId::parse("s1").unwrap()
    }

    #[test]
    fn a_wrong_key_or_another_session_cannot_open_a_snapshot() {
        const P: SnapshotKind = SnapshotKind::ProfileArchive;
        let blob = seal(&SnapshotKey::random(), &sid(), P, b"state").unwrap();
        assert!(open(&SnapshotKey::random(), &sid(), &blob).is_err());
        let key = SnapshotKey::from_bytes([7; 32]);
        let blob = seal(&key, &sid(), P, b"state").unwrap();
        assert!(open(&key, &SessionId::parse("s2").unwrap(), &blob).is_err());
        assert_eq!(open(&key, &sid(), &blob).unwrap(), (P, b"state".to_vec()));
    }

    #[test]
    fn a_snapshot_says_its_kind_and_the_other_mode_refuses_it_by_name() {
        let key = SnapshotKey::random();
        let dump = seal(&key, &sid(), SnapshotKind::ContextDump, b"{}").unwrap();
        assert_eq!(
            open(&key, &sid(), &dump).unwrap(),
            (SnapshotKind::ContextDump, b"{}".to_vec())
        );
        let err = open_kind(&key, &sid(), &dump, SnapshotKind::ProfileArchive)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("context dump") && err.contains("profile archive"),
            "{err}"
        );
        let archive = seal(&key, &sid(), SnapshotKind::ProfileArchive, b"tar").unwrap();
        assert!(open_kind(&key, &sid(), &archive, SnapshotKind::ContextDump).is_err());
        // The kind is authenticated: relabelling a blob as the other kind breaks it.
        for (blob, other) in [(&dump, 1u8), (&archive, 2u8)] {
            let mut relabelled = blob.clone();
            relabelled[MAGIC.len()] = other;
            assert!(open(&key, &sid(), &relabelled).is_err());
        }
    }

    #[test]
    fn tampered_snapshots_are_refused() {
        let key = SnapshotKey::random();
        let blob = seal(&key, &sid(), SnapshotKind::ProfileArchive, b"state").unwrap();
        for i in [MAGIC.len() + 1, HEADER_LEN, blob.len() - 1] {
            let mut bad = blob.clone();
            bad[i] ^= 1;
            assert!(open(&key, &sid(), &bad).is_err(), "byte {i}");
        }
        assert!(open(&key, &sid(), &blob[..HEADER_LEN]).is_err());
        let mut other_version = blob.clone();
        other_version[MAGIC.len()] = 9;
        assert!(open(&key, &sid(), &other_version).is_err());
        // Two snapshots of the same state use different nonces.
        assert_ne!(
            seal(&key, &sid(), SnapshotKind::ProfileArchive, b"state").unwrap(),
            blob
        );
    }
}

//! The payloads: the profile archive of process mode (tar.gz of the auth directories, unpacked
//! only inside them) and the gzip of a context dump.

use std::io::{Read as _, Write as _};
use std::path::{Component, Path, PathBuf};

use crate::error::{Result, RunnerError};

/// The profile directories that hold the login, relative to the profile root.
pub const AUTH_DIRS: [&str; 2] = ["Default/IndexedDB", "Default/Local Storage"];

/// Archives the auth directories of `profile` (missing ones are skipped) into a tar.gz.
pub fn archive(profile: &Path) -> Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    for dir in AUTH_DIRS {
        let path = profile.join(dir);
        if path.is_dir() {
            tar.append_dir_all(dir, &path)?;
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

/// Replaces the auth directories of `profile` with the archive's content. Entries outside the
/// auth directories are refused.
pub fn unpack(profile: &Path, archive: &[u8]) -> Result<()> {
    clear(profile)?;
    std::fs::create_dir_all(profile)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path: PathBuf = entry.path()?.into_owned();
        let inside = path.components().all(|c| matches!(c, Component::Normal(_)))
            && AUTH_DIRS.iter().any(|d| path.starts_with(d));
        if !inside {
            return Err(RunnerError::Snapshot(format!(
                "archive entry {} is outside the auth directories",
                path.display()
            )));
        }
        entry.unpack_in(profile)?;
    }
    Ok(())
}

/// Removes the auth directories of `profile` (logout, or before a restore).
pub fn clear(profile: &Path) -> Result<()> {
    for dir in AUTH_DIRS {
        match std::fs::remove_dir_all(profile.join(dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

pub(super) fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes)?;
    Ok(gz.finish()?)
}

pub(super) fn gunzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| RunnerError::Snapshot(format!("context dump is not gzip: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::seal::{SnapshotKey, SnapshotKind, open_kind, seal};
    use openwa_core::id::SessionId;

    fn sid() -> SessionId {
        SessionId::parse("s1").unwrap()
    }

    #[test]
    fn a_sealed_archive_round_trips_into_a_fresh_profile() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(
            src.path()
                .join("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb"),
        )
        .unwrap();
        std::fs::write(
            src.path()
                .join("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log"),
            b"login",
        )
        .unwrap();
        std::fs::create_dir_all(src.path().join("Default/Local Storage/leveldb")).unwrap();
        std::fs::write(
            src.path().join("Default/Local Storage/leveldb/CURRENT"),
            b"MANIFEST-1",
        )
        .unwrap();
        std::fs::create_dir_all(src.path().join("Default/Cache")).unwrap();
        std::fs::write(
            src.path().join("Default/Cache/big"),
            b"not part of the login",
        )
        .unwrap();

        let key = SnapshotKey::random();
        let blob = seal(
            &key,
            &sid(),
            SnapshotKind::ProfileArchive,
            &archive(src.path()).unwrap(),
        )
        .unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dst.path().join("Default/IndexedDB")).unwrap();
        std::fs::write(dst.path().join("Default/IndexedDB/stale"), b"old").unwrap();
        let plain = open_kind(&key, &sid(), &blob, SnapshotKind::ProfileArchive).unwrap();
        unpack(dst.path(), &plain).unwrap();

        let restored = std::fs::read(
            dst.path()
                .join("Default/IndexedDB/https_web.whatsapp.com_0.indexeddb.leveldb/000003.log"),
        );
        assert_eq!(restored.unwrap(), b"login");
        assert_eq!(
            std::fs::read(dst.path().join("Default/Local Storage/leveldb/CURRENT")).unwrap(),
            b"MANIFEST-1"
        );
        assert!(!dst.path().join("Default/IndexedDB/stale").exists());
        assert!(!dst.path().join("Default/Cache").exists());
    }

    #[test]
    fn a_context_dump_round_trips_through_gzip() {
        let dump = br#"{"indexedDB":[],"localStorage":{"k":"v"}}"#.repeat(50);
        let packed = gzip(&dump).unwrap();
        assert!(packed.len() < dump.len());
        assert_eq!(gunzip(&packed).unwrap(), dump);
        assert!(gunzip(b"not gzip").is_err());
    }
}

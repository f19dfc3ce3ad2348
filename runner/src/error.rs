//! The runner's error type.

use openwa_core::Error as CoreError;

use crate::engine::EngineError;

pub type Result<T, E = RunnerError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// A port (store, queue, blobs, secrets) failed.
    #[error(transparent)]
    Port(#[from] CoreError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An auth snapshot could not be made, read or decrypted.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// Local I/O (profile directories, the health listener).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

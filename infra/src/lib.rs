//! openwa-infra: the adapters behind the ports of `openwa-core`.
//!
//! Driver and SDK errors are translated into [`openwa_core::Error`] inside each adapter; no
//! rusqlite, io or SDK type crosses a port.
//!
//! Layout:
//! - [`embedded`]: SQLite stores and job queue, filesystem blobs, file/env secrets and an
//!   in-memory rate limiter; [`embedded::open`] builds a whole [`Backend`](openwa_core::ports::Backend)
//! - `conformance` (feature `conformance`): the port contract checks every adapter family
//!   runs, and `conformance_tests!` to turn them into `#[tokio::test]`s
//! - [`shutdown`]: the SIGTERM/ctrl-c future the binaries wait on

pub mod embedded;
pub mod shutdown;

#[cfg(feature = "conformance")]
pub mod conformance;

//! The shutdown signal every binary waits for (`openwa`, `openwa-runner`,
//! `openwa-webhook-worker`). It lives here because each of them already depends on this crate.
//!
//! The handlers are installed when [`signal`] is called, not at the first poll of the returned
//! future: a SIGTERM that arrives while a binary is still starting up would otherwise hit the
//! default action and kill the process instead of shutting it down cleanly.

use std::future::Future;

/// Resolves on SIGTERM or SIGINT (ctrl-c). Call it early, before slow start-up work.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = term => {},
                () = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received");
    }
}

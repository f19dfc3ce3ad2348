//! Typed configuration of one simulator instance.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a [`crate::Simulator`] needs to start.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// How often the QR `ref` rotates while a page is unpaired (real WhatsApp Web: ~20 s).
    pub qr_interval: Duration,
    /// How many refs are issued before the page settles in `UNPAIRED_IDLE`.
    pub qr_refs_before_idle: u32,
    /// The version string reported as `window.Debug.VERSION`.
    pub version: String,
    /// Delay between a scan and the page reaching `CONNECTED` (the `PAIRING` phase).
    pub pairing_delay: Duration,
    /// How long a dropped page waits before reconnecting.
    pub reconnect_delay: Duration,
    /// Accounts created at start: (phone digits, push name).
    pub accounts: Vec<(String, String)>,
    /// Where the network (accounts, devices and their tokens, contacts, groups, message
    /// history) is kept across restarts. `None` (the default): in memory only, nothing is
    /// written. See [`crate::network::persist`].
    pub state_file: Option<PathBuf>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            qr_interval: Duration::from_secs(20),
            qr_refs_before_idle: 6,
            version: "2.3000.1017054665".to_owned(),
            pairing_delay: Duration::from_millis(300),
            reconnect_delay: Duration::from_millis(500),
            accounts: Vec::new(),
            state_file: None,
        }
    }
}

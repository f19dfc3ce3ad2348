//! openwa-simulator: a WhatsApp Web simulator and simulated phone network.
//!
//! It serves a page that reproduces WhatsApp Web's in-page module surface **by module name**
//! (`window.require('WAWebSocketModel')`, ...), so a bridge written against the real app runs
//! unchanged against it, plus a phone network (accounts, linked devices, groups, messages,
//! acks) driven through a control API, in memory or kept in a state file across restarts. It is the test bed of the gateway's Chromium
//! engine and the product's sandbox mode.
//!
//! Layout:
//! - [`config`]: the typed [`SimulatorConfig`].
//! - [`server`]: the router and [`Simulator`] (start / base_url / shutdown).
//! - [`network`]: the simulated network (state, pairing, messaging, groups, views).
//! - [`protocol`]: the page <-> network WebSocket frames; [`ws`]: the endpoint.
//! - [`control`]: the `/control` HTTP API ("the phone").
//! - [`assets`]: the app page and `/phone` page; the JavaScript is in `assets/*.js`.
//! - [`media`], [`qr`], [`error`], [`util`]: media blobs, QR matrices, errors, helpers.

pub mod assets;
pub mod config;
pub mod control;
pub mod error;
pub mod media;
pub mod network;
pub mod protocol;
pub mod qr;
pub mod server;
pub mod util;
pub mod ws;

pub use config::SimulatorConfig;
pub use error::{ApiError, SimError};
pub use network::Network;
pub use server::{AppState, Simulator, app};

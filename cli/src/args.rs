//! Command-line arguments. Doc comments are the `--help` text; every flag has an env variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "openwa",
    version,
    about = "Self-hostable WhatsApp HTTP API gateway"
)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `openwa_api=debug,info`.
    #[arg(
        long,
        env = "OPENWA_LOG",
        default_value = "info,chromiumoxide=error",
        global = true
    )]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole gateway in this process: on embedded backends (SQLite + files) by default,
    /// or on the AWS adapters with `--backend aws`.
    Up(UpConfig),
    /// Create every table, queue and bucket the AWS backend needs (idempotent), and the admin
    /// key in Secrets Manager. The endpoint comes from the AWS SDK's own configuration
    /// (`AWS_ENDPOINT_URL` for LocalStack or moto), names from `OPENWA_TABLE`, `OPENWA_BUCKET`,
    /// `OPENWA_QUEUE_PREFIX`, `OPENWA_SECRET_PREFIX`.
    Bootstrap,
    /// Manage API keys in a data dir (works whether or not the gateway is running).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect sessions in a data dir.
    #[command(subcommand)]
    Sessions(SessionsCommand),
}

/// Where the embedded backends keep their files.
#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Data directory (SQLite database, media, secrets, admin.key).
    #[arg(
        long = "data-dir",
        env = "OPENWA_DATA_DIR",
        default_value = "./.openwa"
    )]
    pub path: PathBuf,
}

/// Which adapters back the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// SQLite + files in the data dir.
    Embedded,
    /// DynamoDB, SQS, S3 and Secrets Manager (endpoint and credentials from the AWS SDK's
    /// configuration; resource names from `OPENWA_TABLE`, `OPENWA_BUCKET`, …).
    Aws,
}

#[derive(Debug, Clone, Args)]
pub struct UpConfig {
    #[command(flatten)]
    pub data_dir: DataDir,

    /// Where the gateway keeps its state.
    #[arg(long, env = "OPENWA_BACKEND", value_enum, default_value = "embedded")]
    pub backend: BackendKind,

    /// With `--backend aws`: create missing tables, queues and the bucket first (as
    /// `openwa bootstrap` does). Handy against LocalStack or moto.
    #[arg(long, env = "OPENWA_BOOTSTRAP")]
    pub bootstrap: bool,

    /// Address the HTTP API listens on.
    #[arg(long, env = "OPENWA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Use this admin key instead of generating one (an `owa_…` key, e.g. from
    /// `openwa keys generate`). It is registered on start if the store does not know it.
    #[arg(long, env = "OPENWA_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,

    /// Requests per minute per API key, unless the key sets its own limit.
    #[arg(long, env = "OPENWA_RATE_LIMIT_PER_MINUTE", default_value_t = 6000)]
    pub rate_limit_per_minute: u32,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "OPENWA_BODY_LIMIT_BYTES", default_value_t = 24 * 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Trust `X-Forwarded-For` for the client address (only behind a proxy you control).
    #[arg(long, env = "OPENWA_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,

    /// Sessions the in-process runner hosts at once; 0 runs no runner (API only).
    #[arg(long, env = "OPENWA_RUNNER_CAPACITY", default_value_t = 10)]
    pub runner_capacity: usize,

    /// The Chromium binary the runner starts [default: /usr/lib/chromium/chromium-headless-shell
    /// when installed, else the full /usr/lib/chromium/chromium].
    #[arg(long, env = "OPENWA_CHROMIUM")]
    pub chromium: Option<PathBuf>,

    /// How the runner isolates sessions: `process` (one Chromium per session) or `context`
    /// (one shared Chromium, a browser context per session: less memory, one crash restarts
    /// every session). See runner/README.md, "Isolation mode".
    #[arg(long, env = "OPENWA_RUNNER_ISOLATION", default_value = "process")]
    pub isolation: openwa_runner::IsolationMode,

    /// WhatsApp Web URL the runner opens (ignored with --sandbox, which uses the simulator).
    #[arg(
        long,
        env = "OPENWA_WA_URL",
        default_value = "https://web.whatsapp.com/"
    )]
    pub wa_url: String,

    /// Take a session back automatically when WhatsApp Web reports it opened elsewhere.
    #[arg(long, env = "OPENWA_TAKEOVER_ON_CONFLICT")]
    pub takeover_on_conflict: bool,

    /// Webhook targets allowed even though private or loopback (comma-separated CIDRs, IPs or
    /// host names), for local development. Cloud metadata addresses are never allowed.
    #[arg(long, env = "OPENWA_WEBHOOK_ALLOWLIST", default_value = "")]
    pub webhook_allowlist: String,

    /// Sandbox mode: start the built-in WhatsApp Web simulator and connect sessions to it.
    #[arg(long, env = "OPENWA_SANDBOX")]
    pub sandbox: bool,

    /// Address of the sandbox simulator (port 0 picks a free one).
    #[arg(long, env = "OPENWA_SANDBOX_LISTEN", default_value = "127.0.0.1:0")]
    pub sandbox_listen: SocketAddr,

    /// How often the sandbox rotates a QR code, in milliseconds (WhatsApp: about 20 s).
    #[arg(long, env = "OPENWA_SANDBOX_QR_INTERVAL_MS", default_value_t = 20_000)]
    pub sandbox_qr_interval_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; prints the secret once.
    Create {
        #[command(flatten)]
        data_dir: DataDir,
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// admin, operator or viewer.
        #[arg(long, default_value = "operator")]
        role: String,
        /// Limit the key to these sessions (comma-separated).
        #[arg(long, value_delimiter = ',')]
        sessions: Vec<String>,
        /// Allow the key only from these networks (comma-separated CIDRs).
        #[arg(long, value_delimiter = ',')]
        cidrs: Vec<String>,
        /// Expire the key after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Requests per minute for this key.
        #[arg(long)]
        rate_limit_per_minute: Option<u32>,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        data_dir: DataDir,
    },
    /// Revoke a key by id.
    Revoke {
        #[command(flatten)]
        data_dir: DataDir,
        /// The key id (`key_…`).
        id: String,
    },
    /// Print a fresh random key without storing it (for `OPENWA_ADMIN_KEY`).
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List sessions with their status.
    List {
        #[command(flatten)]
        data_dir: DataDir,
    },
}

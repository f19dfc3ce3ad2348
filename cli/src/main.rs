//! The `openwa` binary.
//!
//! Layout:
//! - `args`: the command line (clap derive; every flag also reads an `OPENWA_*` variable)
//! - `up`: `openwa up`, the all-in-one gateway on embedded backends (API, runner, fan-out,
//!   webhook delivery; with `--sandbox` the simulator too)
//! - `sandbox`: `/v1/sandbox/…`, the simulator's control API forwarded for operator keys
//! - `admin_key`: creates the first admin key (or adopts `OPENWA_ADMIN_KEY`)
//! - `bootstrap`: `openwa bootstrap`, the AWS resources and admin key
//! - `admin`: `openwa keys …` and `openwa sessions …`, working on the data dir directly

mod admin;
mod admin_key;
mod args;
mod bootstrap;
mod sandbox;
mod up;

use clap::Parser;

use crate::args::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log);
    match cli.command {
        Command::Up(config) => up::run(config, openwa_infra::shutdown::signal()).await,
        Command::Bootstrap => bootstrap::run().await,
        Command::Keys(cmd) => admin::keys(cmd).await,
        Command::Sessions(cmd) => admin::sessions(cmd).await,
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

//! `openwa bootstrap`: creates the AWS backend's table, queues and bucket where missing, and the
//! admin key in Secrets Manager, on whatever endpoint the AWS SDK is configured for. Used by the
//! LocalStack init hook, by `openwa up --backend aws --bootstrap` and after `terraform apply`
//! (which creates the same resources; bootstrap then only adds the admin key).

use anyhow::Context;
use openwa_aws::admin_key::AdminKeyState;

pub async fn run() -> anyhow::Result<()> {
    let (backend, ctx) = openwa_aws::open_from_env()
        .await
        .context("configuring the AWS backend")?;
    let report = openwa_aws::bootstrap(&ctx)
        .await
        .context("creating the AWS resources")?;
    for line in &report.created {
        println!("created  {line}");
    }
    for line in &report.existing {
        println!("exists   {line}");
    }
    let secret = openwa_aws::resources::secret_name(
        &ctx.settings,
        openwa_aws::resources::secrets::ADMIN_KEY,
    );
    let state = openwa_aws::admin_key::ensure_admin_key(&backend)
        .await
        .context("ensuring the admin key")?;
    let what = match state {
        AdminKeyState::Created => "created",
        AdminKeyState::Registered => "registered",
        AdminKeyState::Existing => "exists  ",
    };
    println!("{what} admin key in secret {secret}");
    Ok(())
}

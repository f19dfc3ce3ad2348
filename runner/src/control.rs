//! Session commands from the API (pairing code, logout, re-read the session now), in two parts
//! like the send jobs:
//! [`handle_command`] runs one [`SessionCommand`] against the engine; [`control_loop`] owns the
//! session's control queue. Unlike send jobs, commands run in any session state: a pairing
//! code is asked for exactly while the session is not logged in.

use std::sync::Arc;
use std::time::Duration;

use openwa_core::event::EventType;
use openwa_core::ports::QueueName;
use openwa_core::session::{PairingCode, RuntimeUpdate, SessionCommand, SessionStatus};
use serde_json::json;
use tokio::sync::watch;

use crate::engine::{EngineError, EngineSession};
use crate::session::SessionCtx;

/// How long a pairing code is valid (WhatsApp asks for a new one about every 3 minutes).
const PAIRING_CODE_TTL: chrono::Duration = chrono::Duration::minutes(3);

/// Receives and runs the session's commands until `stop` turns true or the lease is lost.
pub(crate) async fn control_loop(
    ctx: Arc<SessionCtx>,
    engine: Arc<dyn EngineSession>,
    mut stop: watch::Receiver<bool>,
) {
    let queue_name = QueueName::Control(ctx.id.clone());
    let queue = ctx.host.backend.queue.clone();
    if let Err(error) = queue.ensure(&queue_name).await {
        tracing::warn!(%error, "control queue not ensured");
    }
    loop {
        if *stop.borrow() || !ctx.holds_lease() {
            break;
        }
        let received = tokio::select! {
            r = stop.changed() => if r.is_err() { break } else { continue },
            // SQS's longest long poll: commands are rare, and each receive is billed.
            r = queue.receive(&queue_name, 1, Duration::from_secs(60), Duration::from_secs(20)) => r,
        };
        let jobs = match received {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(%error, "control queue receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for job in jobs {
            match serde_json::from_slice::<SessionCommand>(&job.body) {
                Ok(command) => {
                    if let Err(error) = handle_command(&ctx, engine.as_ref(), &command).await {
                        tracing::warn!(%error, ?command, "session command failed");
                        ctx.publisher
                            .publish(EventType::SessionStatus, json!({ "command_failed": error.code(), "error": error.to_string() }))
                            .await;
                    }
                    if let Err(error) = queue.ack(&queue_name, &job.receipt).await {
                        tracing::warn!(%error, "control job not acked");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "unreadable control job");
                    let _ = queue
                        .dead_letter(&queue_name, &job.receipt, "unreadable command")
                        .await;
                }
            }
        }
    }
}

/// Runs one command. Commands are not retried: a pairing code or a logout that fails is
/// reported and the user asks again.
pub(crate) async fn handle_command(
    ctx: &SessionCtx,
    engine: &dyn EngineSession,
    command: &SessionCommand,
) -> Result<(), EngineError> {
    match command {
        SessionCommand::RequestPairingCode { phone } => {
            let code = engine.request_pairing_code(phone).await?;
            let pairing = PairingCode {
                code: code.clone(),
                phone: phone.clone(),
                expires_at: chrono::Utc::now() + PAIRING_CODE_TTL,
            };
            ctx.set_pairing_phone(Some(phone.clone()));
            let update = RuntimeUpdate {
                status: Some(SessionStatus::Pairing),
                pairing_code: Some(Some(pairing.clone())),
                ..Default::default()
            };
            // A fenced write means the lease is gone; the supervisor notices and stops.
            let _ = ctx.write_runtime(&update).await;
            ctx.publisher
                .publish(
                    EventType::SessionPairingCode,
                    json!({ "code": code, "phone": phone, "expires_at": pairing.expires_at }),
                )
                .await;
            Ok(())
        }
        SessionCommand::Logout => engine.logout().await,
        SessionCommand::Recheck => {
            ctx.recheck.notify_one();
            Ok(())
        }
    }
}

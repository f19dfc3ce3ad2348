//! Send jobs, in two parts (STYLE 10): [`handle_send`] takes one typed [`SendJob`] and decides
//! what happens to it; [`send_loop`] owns the queue: receiving while the session is connected,
//! decoding, per-job spans, running jobs of different chats concurrently, panic containment,
//! and applying each job's [`Disposition`] (ack, retry later, dead-letter).
//!
//! Exactly-once in effect: the engine derives the WhatsApp message key from the gateway id
//! ([`wa_key_for`]) and checks for it before sending, so a job redelivered after a crash
//! between "sent" and "acked" records the existing message instead of sending it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openwa_core::Error as CoreError;
use openwa_core::event::EventType;
use openwa_core::message::{Failure, Message, MessageStatus, SendJob, StatusUpdate};
use openwa_core::ports::{QueueName, ReceivedJob};
use openwa_core::services::messages::media_key;
use openwa_core::session::SessionStatus;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::engine::{EngineError, EngineSession, MediaPayload, OutgoingMessage, wa_key_for};
use crate::pacing::Reservation;
use crate::session::SessionCtx;

/// Longest wait of one receive on the send queue (SQS allows 20 s). The loop also wakes for a
/// stop or a status change, and re-checks the lease after each wait.
const SEND_POLL_WAIT: Duration = Duration::from_secs(10);

/// What to do with a job after [`handle_send`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Done (sent, failed for good, or nothing left to do): delete it.
    Ack,
    /// Make it visible again after this long.
    RetryAfter(Duration),
    /// Leave it alone: the lease is lost, the next holder gets it after the visibility timeout.
    Abandon,
    /// Unreadable: park it in the dead-letter list.
    DeadLetter(String),
}

/// Receives and runs the session's send jobs until `stop` turns true, then waits for the jobs
/// in flight (the caller bounds that wait with the drain grace period).
pub(crate) async fn send_loop(
    ctx: Arc<SessionCtx>,
    engine: Arc<dyn EngineSession>,
    mut stop: watch::Receiver<bool>,
) {
    let config = &ctx.host.config;
    let queue_name = QueueName::Send(ctx.id.clone());
    let queue = ctx.host.backend.queue.clone();
    if let Err(error) = queue.ensure(&queue_name).await {
        tracing::warn!(%error, "send queue not ensured");
    }
    let mut status = ctx.status.subscribe();
    let mut in_flight = JoinSet::new();
    let mut next_reconcile = Instant::now();
    loop {
        if *stop.borrow() || !ctx.holds_lease() {
            break;
        }
        if Instant::now() >= next_reconcile {
            fail_dead_letters(&ctx).await;
            next_reconcile = Instant::now() + DEAD_LETTER_CHECK;
        }
        while let Some(done) = in_flight.try_join_next() {
            report_panic(done);
        }
        if *status.borrow() != SessionStatus::Connected {
            tokio::select! {
                r = stop.changed() => if r.is_err() { break },
                _ = status.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        // SQS receives at most 10 jobs at a time.
        let room = config
            .send_concurrency
            .saturating_sub(in_flight.len())
            .min(10);
        if room == 0 {
            tokio::select! {
                r = stop.changed() => if r.is_err() { break },
                Some(done) = in_flight.join_next() => report_panic(done),
            }
            continue;
        }
        // A long poll: it returns as soon as a job arrives, so waiting longer costs no latency
        // and saves receive calls (SQS bills each). A stop or a status change cancels it.
        let received = tokio::select! {
            r = stop.changed() => { if r.is_err() { break } continue }
            _ = status.changed() => continue,
            r = queue.receive(&queue_name, room as u32, config.job_visibility, SEND_POLL_WAIT) => r,
        };
        match received {
            Ok(jobs) => {
                for job in jobs {
                    in_flight.spawn(run_job(ctx.clone(), engine.clone(), job));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "receiving send jobs failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        report_panic(done);
    }
}

fn report_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done
        && error.is_panic()
    {
        // The job was not acked; it comes back after its visibility timeout.
        tracing::error!(%error, "a send job panicked; it will be redelivered");
    }
}

/// Decodes one job, runs [`handle_send`] in its span and applies the disposition.
async fn run_job(ctx: Arc<SessionCtx>, engine: Arc<dyn EngineSession>, job: ReceivedJob) {
    let queue_name = QueueName::Send(ctx.id.clone());
    let queue = &ctx.host.backend.queue;
    let started = Instant::now();
    let disposition = match serde_json::from_slice::<SendJob>(&job.body) {
        Ok(send) if send.session_id == ctx.id => {
            let span = tracing::info_span!("send_job", message_id = %send.message_id, chat_id = %send.chat_id, receive_count = job.receive_count);
            handle_send(&ctx, engine.as_ref(), &send, &job)
                .instrument(span)
                .await
        }
        Ok(send) => Disposition::DeadLetter(format!(
            "job for session {} on this session's queue",
            send.session_id
        )),
        Err(error) => Disposition::DeadLetter(format!("undecodable send job: {error}")),
    };
    let applied = match &disposition {
        Disposition::Ack => queue.ack(&queue_name, &job.receipt).await,
        Disposition::RetryAfter(delay) => {
            queue.retry_later(&queue_name, &job.receipt, *delay).await
        }
        Disposition::Abandon => Ok(()),
        Disposition::DeadLetter(reason) => {
            tracing::error!(job_id = %job.id, %reason, "send job dead-lettered");
            queue.dead_letter(&queue_name, &job.receipt, reason).await
        }
    };
    if let Err(error) = applied {
        tracing::warn!(%error, job_id = %job.id, ?disposition, "job disposition not applied");
    }
    if matches!(disposition, Disposition::DeadLetter(_)) {
        ctx.host.metrics.record_send(false, started.elapsed());
    }
}

/// One send: pacing, `sending`, media, the engine call, `sent`/`failed`, the event.
pub(crate) async fn handle_send(
    ctx: &SessionCtx,
    engine: &dyn EngineSession,
    job: &SendJob,
    received: &ReceivedJob,
) -> Disposition {
    let backend = &ctx.host.backend;
    let config = &ctx.host.config;
    let started = Instant::now();
    let message = match backend.messages.get(&ctx.id, &job.message_id).await {
        Ok(m) => m,
        Err(CoreError::NotFound { .. }) => {
            tracing::warn!("send job for an unknown message; dropping it");
            return Disposition::Ack;
        }
        Err(error) => {
            tracing::warn!(%error, "message not loaded");
            return Disposition::RetryAfter(retry_delay(received.receive_count));
        }
    };
    if !matches!(
        message.status,
        MessageStatus::Queued | MessageStatus::Sending
    ) {
        // Sent (or failed) already; an earlier attempt died before acking.
        return Disposition::Ack;
    }

    match ctx.pacer.reserve(
        &message.chat_id,
        Instant::now(),
        backend.clock.now(),
        rand::random(),
    ) {
        Reservation::Wait(wait) if !wait.is_zero() => {
            if wait + Duration::from_secs(5) > config.job_visibility / 2 {
                let queue_name = QueueName::Send(ctx.id.clone());
                let _ = backend
                    .queue
                    .extend(&queue_name, &received.receipt, wait + config.job_visibility)
                    .await;
            }
            tracing::debug!(wait_ms = wait.as_millis() as u64, "pacing");
            tokio::time::sleep(wait).await;
        }
        Reservation::Wait(_) => {}
        Reservation::CapReached(left) => {
            tracing::info!(retry_in_s = left.as_secs(), "daily send cap reached");
            return Disposition::RetryAfter(left.min(Duration::from_secs(900)));
        }
    }
    if !ctx.holds_lease() {
        return Disposition::Abandon;
    }
    if *ctx.status.borrow() != SessionStatus::Connected {
        return Disposition::RetryAfter(Duration::from_secs(2));
    }

    let now = backend.clock.now();
    let sending = StatusUpdate {
        status: MessageStatus::Sending,
        wa_id: None,
        failure: None,
        at: now,
    };
    if message.status == MessageStatus::Queued
        && let Err(error) = backend
            .messages
            .update_status(&ctx.id, &message.id, &sending)
            .await
    {
        tracing::warn!(%error, "status sending not stored");
        return Disposition::RetryAfter(retry_delay(received.receive_count));
    }

    let media = match message.content.media() {
        None => None,
        Some(media) => match backend.blobs.get(&media_key(&media.media_id)).await {
            Ok((bytes, _)) => Some(MediaPayload {
                mimetype: media.mimetype.clone(),
                filename: media.filename.clone(),
                bytes,
            }),
            Err(CoreError::NotFound { .. }) => {
                return fail(
                    ctx,
                    &message,
                    started,
                    "media_unavailable",
                    "the media is no longer stored",
                )
                .await;
            }
            Err(error) => {
                tracing::warn!(%error, "media not loaded");
                return Disposition::RetryAfter(retry_delay(received.receive_count));
            }
        },
    };
    let wa_key = wa_key_for(&message.id);
    ctx.remember_send(wa_key.clone(), message.id.clone());
    let outgoing = OutgoingMessage {
        message_id: message.id.clone(),
        wa_key,
        chat: message.chat_id.clone(),
        content: message.content.clone(),
        media,
        reply_to: message.reply_to.clone(),
        mentions: message.mentions.clone(),
    };
    let sent = match tokio::time::timeout(
        config.job_visibility.mul_f32(0.8),
        engine.send(&outgoing),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(EngineError::Timeout(
            "send took longer than the job's visibility".into(),
        )),
    };
    match sent {
        Ok(receipt) => {
            let update = StatusUpdate {
                status: MessageStatus::Sent,
                wa_id: Some(receipt.wa_id.clone()),
                failure: None,
                at: backend.clock.now(),
            };
            match backend
                .messages
                .update_status(&ctx.id, &message.id, &update)
                .await
            {
                Ok(stored) => {
                    tracing::info!(wa_id = %receipt.wa_id, already_sent = receipt.already_sent, "message sent");
                    let mut data = serde_json::to_value(&stored).unwrap_or_default();
                    data["already_sent"] = serde_json::json!(receipt.already_sent);
                    ctx.publisher.publish(EventType::MessageSent, data).await;
                    ctx.host.metrics.record_send(true, started.elapsed());
                    Disposition::Ack
                }
                Err(error) => {
                    // The redelivery finds the message in the chat and records it then.
                    tracing::warn!(%error, "sent, but the status was not stored; retrying");
                    Disposition::RetryAfter(retry_delay(received.receive_count))
                }
            }
        }
        Err(error) if error.is_transient() && received.receive_count < config.max_send_attempts => {
            tracing::warn!(%error, code = error.code(), "send failed; retrying");
            Disposition::RetryAfter(retry_delay(received.receive_count))
        }
        Err(error) => fail(ctx, &message, started, error.code(), &error.to_string()).await,
    }
}

/// Marks the message failed, publishes `message.failed` and acks the job.
async fn fail(
    ctx: &SessionCtx,
    message: &Message,
    started: Instant,
    code: &str,
    reason: &str,
) -> Disposition {
    let backend = &ctx.host.backend;
    tracing::warn!(code, %reason, "send failed");
    let failure = Failure {
        code: code.to_owned(),
        message: reason.to_owned(),
    };
    let update = StatusUpdate {
        status: MessageStatus::Failed,
        wa_id: None,
        failure: Some(failure.clone()),
        at: backend.clock.now(),
    };
    match backend
        .messages
        .update_status(&ctx.id, &message.id, &update)
        .await
    {
        Ok(stored) => {
            let data = serde_json::json!({ "message_id": stored.id, "chat_id": stored.chat_id, "status": stored.status, "failure": failure });
            ctx.publisher.publish(EventType::MessageFailed, data).await;
            ctx.host.metrics.record_send(false, started.elapsed());
            Disposition::Ack
        }
        Err(error) => {
            tracing::warn!(%error, "status failed not stored; retrying");
            Disposition::RetryAfter(Duration::from_secs(5))
        }
    }
}

/// How often the dead-letter list is checked for messages still waiting to be sent.
const DEAD_LETTER_CHECK: Duration = Duration::from_secs(60);

/// Jobs the queue gave up on (too many receives, e.g. a crash loop) leave their message
/// `queued`/`sending`; mark those failed so the client learns the outcome. Jobs we failed
/// ourselves are skipped because their message is final already.
async fn fail_dead_letters(ctx: &SessionCtx) {
    let backend = &ctx.host.backend;
    let dead = match backend
        .queue
        .dead_letters(&QueueName::Send(ctx.id.clone()), 100)
        .await
    {
        Ok(dead) => dead,
        Err(error) => {
            tracing::debug!(%error, "dead letters not listed");
            return;
        }
    };
    for job in dead {
        let Ok(send) = serde_json::from_slice::<SendJob>(&job.body) else {
            continue;
        };
        let Ok(message) = backend.messages.get(&ctx.id, &send.message_id).await else {
            continue;
        };
        if matches!(
            message.status,
            MessageStatus::Queued | MessageStatus::Sending
        ) && ctx.holds_lease()
        {
            let reason = format!("the send job was dead-lettered: {}", job.reason);
            fail(ctx, &message, Instant::now(), "send_dead_lettered", &reason).await;
        }
    }
}

/// 1 s, 2 s, 4 s, … up to a minute, by receive count.
fn retry_delay(receive_count: u32) -> Duration {
    Duration::from_secs(1u64 << receive_count.saturating_sub(1).min(6)).min(Duration::from_secs(60))
}

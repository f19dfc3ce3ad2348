//! The supervisor's state machine: restore, start, drive (renew, events, snapshots), restart
//! with backoff, hold idle after a logout, and the final writes.
//!
//! Restore and snapshot follow the engine's isolation mode: in process mode the snapshot is
//! unpacked into the profile directory once, before the first start (the profile then carries
//! the login across restarts), and taken from the directory after the engine stopped; in
//! context mode the latest dump is loaded at every start (a restarted context starts empty)
//! and taken from the live page, before the engine stops.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use openwa_core::id::SessionId;
use openwa_core::session::{RuntimeUpdate, Session, SessionStatus};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::{Exit, SessionCtx, events};
use crate::engine::{AuthDump, EngineEvent, EngineSession, IsolationMode, SessionSpec};
use crate::host::Host;
use crate::{control, send};

/// How long after a login the first snapshot is taken (see `drive`).
const LOGIN_SNAPSHOT_DELAY: Duration = Duration::from_secs(3);

/// Supervises one claimed session until it stops, is lost or the runner drains.
pub(crate) async fn supervise(
    host: Arc<Host>,
    claimed: Session,
    claimed_at: Instant,
    drain: watch::Receiver<bool>,
) -> SessionId {
    let id = claimed.id.clone();
    let span = tracing::info_span!("session", session_id = %id, epoch = claimed.lease.epoch);
    let ctx = Arc::new(SessionCtx::new(host, claimed, claimed_at));
    async move {
        tracing::info!("session claimed");
        let exit = run(&ctx, drain).await;
        finish(&ctx, exit).await;
    }
    .instrument(span)
    .await;
    id
}

async fn run(ctx: &Arc<SessionCtx>, mut drain: watch::Receiver<bool>) -> Exit {
    if ctx.host.engine.isolation() == IsolationMode::Process {
        match ctx.host.snapshots.restore(&ctx.id, &ctx.profile_dir).await {
            Ok(restored) => {
                ctx.logged_in.store(restored, Ordering::SeqCst);
                tracing::info!(restored, "auth state prepared");
            }
            Err(error) => {
                tracing::warn!(%error, "auth snapshot not restored; starting without it")
            }
        }
    }
    let config = &ctx.host.config;
    let mut backoff = config.restart_backoff_min;
    let mut attempt = 0u32;
    loop {
        ctx.reached_ready.store(false, Ordering::SeqCst);
        let exit = match start_renewing(ctx).await {
            Ok((engine, events)) => drive(ctx, engine, events, &mut drain).await,
            Err(exit) => exit,
        };
        match exit {
            Exit::Ended(reason) => {
                // A run that made it to connected starts the backoff over.
                if ctx.reached_ready.load(Ordering::SeqCst) {
                    backoff = config.restart_backoff_min;
                }
                attempt += 1;
                tracing::warn!(%reason, attempt, backoff_ms = backoff.as_millis() as u64, "engine ended; restarting");
                let extra = json!({ "error": reason, "restart_attempt": attempt, "restart_in_ms": backoff.as_millis() as u64 });
                let failed = *ctx.status.borrow() == SessionStatus::Failed;
                let update = RuntimeUpdate {
                    status: (!failed).then_some(SessionStatus::Disconnected),
                    last_error: Some(Some(reason.clone())),
                    ..Default::default()
                };
                if let Err(exit) = ctx.set_status(update, extra).await {
                    return exit;
                }
                if let Some(exit) = hold(ctx, Some(backoff), &mut drain).await {
                    return exit;
                }
                backoff = (backoff * 2).min(config.restart_backoff_max);
            }
            Exit::LoggedOut => {
                // Stay claimed but idle: restarting would only show a new QR nobody asked for.
                // The user stops and starts the session (or another runner takes it over after
                // this one goes away) to link again.
                return hold(ctx, None, &mut drain)
                    .await
                    .unwrap_or(Exit::StopRequested);
            }
            other => return other,
        }
    }
}

async fn start(
    ctx: &SessionCtx,
) -> Result<(Arc<dyn EngineSession>, mpsc::Receiver<EngineEvent>), Exit> {
    std::fs::create_dir_all(&ctx.profile_dir)
        .map_err(|e| Exit::Ended(format!("profile dir: {e}")))?;
    let update = RuntimeUpdate {
        status: Some(SessionStatus::Starting),
        qr: Some(None),
        pairing_code: Some(None),
        ..Default::default()
    };
    ctx.set_status(update, json!({})).await?;
    let auth_dump = match ctx.host.engine.isolation() {
        IsolationMode::Process => None,
        IsolationMode::Context => load_dump(ctx).await,
    };
    let config = ctx.config();
    let spec = SessionSpec {
        session_id: ctx.id.clone(),
        profile_dir: ctx.profile_dir.clone(),
        auth_dump,
        proxy: config.proxy,
        wa_url: ctx.host.config.wa_url.clone(),
        takeover_on_conflict: ctx.host.config.takeover_on_conflict,
    };
    match ctx.host.engine.start(spec).await {
        Ok((engine, events)) => {
            let engine: Arc<dyn EngineSession> = Arc::from(engine);
            ctx.host.metrics.set_engine_pids(&ctx.id, engine.pids());
            Ok((engine, events))
        }
        Err(error) => {
            let update = RuntimeUpdate {
                status: Some(SessionStatus::Failed),
                last_error: Some(Some(error.to_string())),
                ..Default::default()
            };
            ctx.set_status(update, json!({ "error_code": error.code() }))
                .await?;
            Err(Exit::Ended(format!("engine did not start: {error}")))
        }
    }
}

/// Context mode: the latest dump to restore into the new context, if any (a failure to load it
/// starts the session unlinked, with the reason logged).
async fn load_dump(ctx: &SessionCtx) -> Option<AuthDump> {
    match ctx.host.snapshots.load_dump(&ctx.id).await {
        Ok(dump) => {
            ctx.logged_in.store(dump.is_some(), Ordering::SeqCst);
            tracing::info!(restored = dump.is_some(), "auth state prepared");
            dump
        }
        Err(error) => {
            ctx.logged_in.store(false, Ordering::SeqCst);
            tracing::warn!(%error, "auth snapshot not restored; starting without it");
            None
        }
    }
}

/// [`start`], renewing the lease meanwhile: a browser that takes longer than the lease to come
/// up (a loaded machine, many sessions starting at once) must not lose the session mid-start.
async fn start_renewing(
    ctx: &SessionCtx,
) -> Result<(Arc<dyn EngineSession>, mpsc::Receiver<EngineEvent>), Exit> {
    let every = ctx.host.config.renew_every();
    let mut renew = tokio::time::interval_at(Instant::now() + every, every);
    let starting = start(ctx);
    tokio::pin!(starting);
    loop {
        tokio::select! {
            started = &mut starting => return started,
            _ = renew.tick() => ctx.renew().await?,
        }
    }
}

/// Runs one engine until its stream ends, the lease is lost, the user stops it or we drain.
async fn drive(
    ctx: &Arc<SessionCtx>,
    engine: Arc<dyn EngineSession>,
    mut events: mpsc::Receiver<EngineEvent>,
    drain: &mut watch::Receiver<bool>,
) -> Exit {
    let config = &ctx.host.config;
    let (stop_sends, stop_rx) = watch::channel(false);
    let _control = AbortOnDrop(tokio::spawn(
        control::control_loop(ctx.clone(), engine.clone(), stop_rx.clone()).in_current_span(),
    ));
    let mut sender = AbortOnDrop(tokio::spawn(
        send::send_loop(ctx.clone(), engine.clone(), stop_rx).in_current_span(),
    ));
    let mut renew =
        tokio::time::interval_at(Instant::now() + config.renew_every(), config.renew_every());
    let mut snapshots = tokio::time::interval_at(
        Instant::now() + config.snapshot_interval,
        config.snapshot_interval,
    );
    let mut last_reason = String::from("engine stream ended");
    // The first snapshot after a login waits a little: Chromium writes Local Storage to disk
    // lazily (under a second after the write, measured), and a copy taken before that holds
    // half a login.
    let mut login_snapshot_at: Option<Instant> = None;

    let exit = loop {
        tokio::select! {
            biased;
            _ = drained(drain) => break Exit::Drain,
            _ = tokio::time::sleep_until(ctx.deadline()) => {
                ctx.fence();
                break Exit::Lost;
            }
            _ = renew.tick() => {
                if let Err(exit) = ctx.renew().await {
                    break exit;
                }
                // Browsers start helper processes as they go; keep the metrics' view current.
                ctx.host.metrics.set_engine_pids(&ctx.id, engine.pids());
            }
            // The API stopped the session: act now rather than at the next renewal.
            () = ctx.recheck.notified() => {
                if let Err(exit) = ctx.renew().await {
                    break exit;
                }
            }
            event = events.recv() => match event {
                None => break Exit::Ended(last_reason),
                Some(event) => {
                    if let Some(reason) = events::end_reason(&event) {
                        last_reason = reason;
                    }
                    match events::handle(ctx, engine.as_ref(), event).await {
                        Ok(events::Flow::Continue) => {}
                        Ok(events::Flow::LoggedIn) => {
                            ctx.logged_in.store(true, Ordering::SeqCst);
                            ctx.reached_ready.store(true, Ordering::SeqCst);
                            login_snapshot_at = Some(Instant::now() + LOGIN_SNAPSHOT_DELAY);
                        }
                        Err(exit) => break exit,
                    }
                }
            },
            _ = sleep_until_opt(login_snapshot_at) => {
                login_snapshot_at = None;
                ctx.snapshot(engine.as_ref()).await;
            }
            _ = snapshots.tick() => {
                if *ctx.status.borrow() == SessionStatus::Connected {
                    ctx.snapshot(engine.as_ref()).await;
                }
            }
        }
    };

    match exit {
        Exit::StopRequested | Exit::Drain => {
            // Stop taking jobs, let in-flight sends finish within the grace period.
            let _ = stop_sends.send(true);
            if tokio::time::timeout(config.drain_grace, &mut sender.0)
                .await
                .is_err()
            {
                tracing::warn!("in-flight sends did not finish within the grace period");
            }
            // Process mode snapshots the profile once Chromium flushed it; context mode the
            // live page, before its context is disposed.
            if ctx.host.engine.isolation() == IsolationMode::Context {
                ctx.snapshot(engine.as_ref()).await;
            }
            stop_engine(ctx, engine.as_ref()).await;
            if ctx.host.engine.isolation() == IsolationMode::Process {
                ctx.snapshot(engine.as_ref()).await;
            }
        }
        Exit::LoggedOut => {
            sender.0.abort();
            stop_engine(ctx, engine.as_ref()).await;
            if let Err(error) = ctx.host.snapshots.delete(&ctx.id, &ctx.profile_dir).await {
                tracing::warn!(%error, "auth snapshot not deleted after logout");
            }
            ctx.logged_in.store(false, Ordering::SeqCst);
        }
        Exit::Lost | Exit::Ended(_) => {
            sender.0.abort();
            stop_engine(ctx, engine.as_ref()).await;
        }
    }
    ctx.host.metrics.set_engine_pids(&ctx.id, Vec::new());
    exit
}

async fn stop_engine(ctx: &SessionCtx, engine: &dyn EngineSession) {
    match tokio::time::timeout(Duration::from_secs(15), engine.stop()).await {
        Ok(Ok(())) => tracing::info!(session_id = %ctx.id, "engine stopped"),
        Ok(Err(error)) => tracing::warn!(%error, "engine did not stop cleanly"),
        Err(_) => tracing::warn!("engine stop timed out"),
    }
}

/// Keeps the lease without an engine for `how_long` (forever with `None`). `None` when the
/// time is up; otherwise why the session must end.
async fn hold(
    ctx: &SessionCtx,
    how_long: Option<Duration>,
    drain: &mut watch::Receiver<bool>,
) -> Option<Exit> {
    let config = &ctx.host.config;
    let wake = how_long.map(|d| Instant::now() + d);
    let mut renew =
        tokio::time::interval_at(Instant::now() + config.renew_every(), config.renew_every());
    loop {
        tokio::select! {
            biased;
            _ = drained(drain) => return Some(Exit::Drain),
            _ = tokio::time::sleep_until(ctx.deadline()) => {
                ctx.fence();
                return Some(Exit::Lost);
            }
            _ = renew.tick() => {
                if let Err(exit) = ctx.renew().await {
                    return Some(exit);
                }
            }
            _ = sleep_until_opt(wake) => return None,
        }
    }
}

/// Completes once the runner drains. A vanished signal means the runner itself was dropped
/// (aborted): that is no drain, and the task is about to be cancelled anyway.
async fn drained(drain: &mut watch::Receiver<bool>) {
    if drain.wait_for(|d| *d).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Final writes: a stopped session says so and every kept lease is released.
async fn finish(ctx: &SessionCtx, exit: Exit) {
    let host = &ctx.host;
    match exit {
        Exit::Lost => {
            host.metrics.forget_session(&ctx.id);
            return;
        }
        Exit::StopRequested => {
            let update = RuntimeUpdate {
                status: Some(SessionStatus::Stopped),
                qr: Some(None),
                pairing_code: Some(None),
                ..Default::default()
            };
            if ctx.set_status(update, json!({})).await.is_err() {
                host.metrics.forget_session(&ctx.id);
                return;
            }
        }
        _ => {}
    }
    match host
        .backend
        .sessions
        .release(&ctx.id, &host.config.runner_id, ctx.epoch)
        .await
    {
        Ok(()) => tracing::info!(exit = ?exit, "lease released"),
        Err(error) => tracing::warn!(%error, "lease not released; it will expire"),
    }
    host.metrics.forget_session(&ctx.id);
}

/// Aborts the task when dropped, so an aborted supervisor takes its send loop with it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

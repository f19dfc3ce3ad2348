//! The Chromium engine's session lifecycle against the in-process WhatsApp Web simulator, with
//! real headless Chromium (`CHROMIUM_BIN`, else the runner's default binary: the headless shell
//! when installed): QR login across the self-reload, restart from the profile (and, in context
//! mode, from a login dump), logout, surface changes, a killed browser.

mod chromium_support;

use std::time::Duration;

use chromium_support::*;
use openwa_runner::engine::{EngineError, EngineEvent, IsolationMode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_new_session_shows_rotating_qrs_and_becomes_ready_after_a_scan() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.start("qr-login").await;

    let EngineEvent::Qr { payload: first, .. } =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(
        first.split(',').count(),
        5,
        "QR payload is ref,noise,identity,adv,platform: {first}"
    );
    let EngineEvent::Qr {
        payload: second, ..
    } = next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await
    else {
        unreachable!()
    };
    assert_ne!(
        first.split(',').next(),
        second.split(',').next(),
        "the ref rotates"
    );
    assert_eq!(
        first.split(',').skip(1).collect::<Vec<_>>(),
        second.split(',').skip(1).collect::<Vec<_>>(),
        "the keys stay"
    );

    world
        .control(
            "POST",
            &format!("/accounts/{GATEWAY_PHONE}/scan"),
            json!({"qr": second}),
        )
        .await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Authenticated)).await;
    let EngineEvent::Ready { me } =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Ready { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(me.jid.as_str(), format!("{GATEWAY_PHONE}@c.us"));

    // WhatsApp Web reloads itself after the login; the bridge must come back in the new
    // document and work there.
    world.wait_connections(2).await;
    let receipt = session
        .send(&text_to_friend("after the reload"))
        .await
        .expect("send after the self-reload");
    assert!(!receipt.already_sent);
    assert!(!session.pids().is_empty());
    session.stop().await.unwrap();
    let last = until_end(&mut events, Duration::from_secs(15)).await;
    assert!(
        matches!(last.last(), Some(EngineEvent::Disconnected { .. })),
        "{last:?}"
    );
    assert!(profile_has_login(&world.profile("qr-login")));
}

#[tokio::test]
async fn a_stopped_session_comes_back_from_its_profile_without_a_qr() {
    comes_back_without_a_qr(IsolationMode::Process).await;
}

#[tokio::test]
async fn a_stopped_context_session_comes_back_from_its_dump_without_a_qr() {
    comes_back_without_a_qr(IsolationMode::Context).await;
}

/// Login, stop (keeping the login the mode's way), start again: ready without a QR.
async fn comes_back_without_a_qr(mode: IsolationMode) {
    let _serial = SERIAL.lock().await;
    let world = World::new_in(mode).await;
    let (session, events) = world.logged_in("restart").await;
    world.wait_connections(2).await;
    let dump = world.stop_keeping_login(session, events).await;

    let (session, mut events) = world.start_with("restart", dump).await;
    let first = next_matching(&mut events, |e| {
        matches!(e, EngineEvent::Qr { .. } | EngineEvent::Ready { .. })
    })
    .await;
    assert!(
        matches!(first, EngineEvent::Ready { .. }),
        "{mode}: expected Ready without a QR, got {first:?}"
    );
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_logout_from_the_phone_ends_the_session_with_logged_out() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (_session, mut events) = world.logged_in("phone-logout").await;
    world.wait_connections(2).await;
    let account = world
        .control("GET", &format!("/accounts/{GATEWAY_PHONE}"), Value::Null)
        .await;
    let device = account["devices"][0]["id"]
        .as_u64()
        .expect("one linked device");

    world
        .control(
            "DELETE",
            &format!("/accounts/{GATEWAY_PHONE}/devices/{device}"),
            Value::Null,
        )
        .await;
    let rest = until_end(&mut events, Duration::from_secs(20)).await;
    assert!(
        matches!(rest.last(), Some(EngineEvent::LoggedOut)),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_renamed_module_fails_the_session_naming_the_module() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    world
        .control(
            "POST",
            "/faults",
            json!({"rename_module": "WAWebCollections"}),
        )
        .await;
    let (_session, mut events) = world.start("surface").await;

    let rest = until_end(&mut events, Duration::from_secs(30)).await;
    match rest.last() {
        Some(EngineEvent::Failed {
            error: EngineError::SurfaceChanged {
                module, version, ..
            },
        }) => {
            assert_eq!(module, "WAWebCollections");
            assert!(!version.is_empty());
        }
        other => panic!("expected Failed(SurfaceChanged), got {other:?} after {rest:?}"),
    }
}

#[tokio::test]
async fn killing_chromium_ends_the_event_stream_quickly() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.start("killed").await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;
    let pids = session.pids();
    assert!(!pids.is_empty());
    let root = browser_pid(&pids);
    std::process::Command::new("kill")
        .args(["-9", &root.to_string()])
        .status()
        .unwrap();

    let rest = until_end(&mut events, Duration::from_secs(5)).await;
    assert!(
        matches!(
            rest.last(),
            Some(EngineEvent::Failed {
                error: EngineError::Browser(_)
            })
        ),
        "{rest:?}"
    );
    assert!(session.pids().is_empty());
}

#[tokio::test]
async fn a_pairing_code_links_the_session_without_a_qr_scan() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.start("pairing").await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;

    let phone = openwa_core::jid::ChatId::parse(GATEWAY_PHONE).unwrap();
    let code = session
        .request_pairing_code(&phone)
        .await
        .expect("pairing code");
    assert_eq!(code.len(), 8, "{code}");
    let EngineEvent::PairingCode { code: announced } = next_matching(&mut events, |e| {
        matches!(e, EngineEvent::PairingCode { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(announced, code);
    world
        .control(
            "POST",
            &format!("/accounts/{GATEWAY_PHONE}/pairing-code"),
            json!({"code": code}),
        )
        .await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Ready { .. })).await;
    session.stop().await.unwrap();
}

#[tokio::test]
async fn logging_out_through_the_engine_ends_with_logged_out_and_forgets_the_login() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let (session, mut events) = world.logged_in("engine-logout").await;
    world.wait_connections(2).await;

    session.logout().await.expect("logout");
    let rest = until_end(&mut events, Duration::from_secs(20)).await;
    assert!(
        matches!(rest.last(), Some(EngineEvent::LoggedOut)),
        "{rest:?}"
    );
    let account = world
        .control("GET", &format!("/accounts/{GATEWAY_PHONE}"), Value::Null)
        .await;
    assert_eq!(account["devices"].as_array().unwrap().len(), 0, "{account}");

    let (session, mut events) = world.start("engine-logout").await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_conflict_is_taken_over_when_configured() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let mut spec = world.spec("conflict");
    spec.takeover_on_conflict = true;
    let (session, mut events) = world.start_spec(spec).await;
    let EngineEvent::Qr { payload, .. } =
        next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await
    else {
        unreachable!()
    };
    world
        .control(
            "POST",
            &format!("/accounts/{GATEWAY_PHONE}/scan"),
            json!({"qr": payload}),
        )
        .await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Ready { .. })).await;
    world.wait_connections(2).await;
    let account = world
        .control("GET", &format!("/accounts/{GATEWAY_PHONE}"), Value::Null)
        .await;
    let device = account["devices"][0]["id"].as_u64().unwrap();

    world
        .control(
            "POST",
            &format!("/accounts/{GATEWAY_PHONE}/devices/{device}/conflict"),
            Value::Null,
        )
        .await;
    next_matching(
        &mut events,
        |e| matches!(e, EngineEvent::State { state } if state == "CONFLICT"),
    )
    .await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Ready { .. })).await;
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_chromium_left_on_the_profile_is_reaped_before_the_session_starts() {
    let _serial = SERIAL.lock().await;
    let world = World::new().await;
    let profile = world.profile("orphan");
    std::fs::create_dir_all(&profile).unwrap();
    // What a SIGKILLed runner leaves behind: a Chromium still holding the profile.
    let mut orphan = {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(chromium())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    };
    for _ in 0..100 {
        if profile.join("DevToolsActivePort").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (session, mut events) = world.start("orphan").await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;
    let mut reaped = None;
    for _ in 0..50 {
        reaped = orphan.try_wait().unwrap();
        if reaped.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if reaped.is_none() {
        let _ = orphan.kill();
        let _ = orphan.wait();
    }
    let status = reaped.expect("the leftover Chromium was killed at start");
    assert!(!status.success());
    session.stop().await.unwrap();
}

#[tokio::test]
async fn a_hung_page_fails_the_session() {
    let _serial = SERIAL.lock().await;
    let mut world = World::new().await;
    let mut config = world.engine.config().clone();
    config.health_interval = Duration::from_millis(500);
    world.engine = openwa_runner::engine::chromium::ChromiumEngine::new(config);
    let (session, mut events) = world.start("hung").await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;

    let renderers: Vec<u32> = session
        .pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("--type=renderer"))
        })
        .collect();
    assert!(!renderers.is_empty());
    for pid in &renderers {
        std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap();
    }
    let rest = until_end(&mut events, Duration::from_secs(15)).await;
    assert!(
        matches!(rest.last(), Some(EngineEvent::Failed { error: EngineError::Browser(m) }) if m.contains("unresponsive")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_page_stuck_in_a_reload_loop_fails_after_the_boot_timeout() {
    let _serial = SERIAL.lock().await;
    let mut world = World::new().await;
    let mut config = world.engine.config().clone();
    config.boot_timeout = Duration::from_secs(4);
    world.engine = openwa_runner::engine::chromium::ChromiumEngine::new(config);
    world
        .control("POST", "/faults", json!({"reload_loop": true}))
        .await;
    let (_session, mut events) = world.start("reload-loop").await;

    let rest = until_end(&mut events, Duration::from_secs(15)).await;
    assert!(
        matches!(rest.last(), Some(EngineEvent::Failed { error: EngineError::Timeout(m) }) if m.contains("did not settle")),
        "{rest:?}"
    );
}

/// Child half of `a_killed_runner_takes_its_chromium_down`: a "runner" process that starts a
/// session, writes its browser pid to a file and waits to be SIGKILLed.
#[tokio::test]
#[ignore = "helper process of a_killed_runner_takes_its_chromium_down"]
async fn orphan_helper_runner() {
    let Some(out) = std::env::var_os("OPENWA_ORPHAN_PID_FILE") else {
        return;
    };
    let world = World::new().await;
    let (session, mut events) = world.start("orphan-helper").await;
    next_matching(&mut events, |e| matches!(e, EngineEvent::Qr { .. })).await;
    std::fs::write(out, browser_pid(&session.pids()).to_string()).unwrap();
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test]
async fn a_killed_runner_takes_its_chromium_down() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("browser.pid");
    let mut runner = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "orphan_helper_runner",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("OPENWA_ORPHAN_PID_FILE", &pid_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut browser = None;
    for _ in 0..300 {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
        {
            browser = Some(pid);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let browser = browser.expect("the helper runner started a session");

    runner.kill().unwrap(); // SIGKILL: no destructor runs
    runner.wait().unwrap();
    let gone = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    for _ in 0..80 {
        if gone(browser) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-9", "--", &format!("-{browser}")])
        .status();
    panic!("Chromium {browser} outlived its SIGKILLed runner by 8 s");
}

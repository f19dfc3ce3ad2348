//! The state file: a page paired on one simulator reconnects without a scan on the next one
//! started with the same file; accounts, contacts, groups and history survive; a corrupt file
//! fails the start naming the file; without a state file nothing is written.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use openwa_simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};

const ALICE: &str = "4915200000001";
const BOB: &str = "4915200000002";

fn config(state_file: &Path) -> SimulatorConfig {
    SimulatorConfig {
        qr_interval: Duration::from_millis(1000),
        pairing_delay: Duration::from_millis(150),
        reconnect_delay: Duration::from_millis(300),
        state_file: Some(state_file.to_path_buf()),
        ..SimulatorConfig::default()
    }
}

/// What the control API answers about the persistent network.
async fn snapshot(base: &str) -> Value {
    json!({
        "accounts": get(base, "/control/accounts").await,
        "alice": get(base, &format!("/control/accounts/{ALICE}")).await,
        "groups": get(base, "/control/groups").await,
        "alice_msgs": get(base, &format!("/control/accounts/{ALICE}/messages")).await,
        "bob_msgs": get(base, &format!("/control/accounts/{BOB}/messages")).await,
    })
}

#[cfg(unix)]
fn assert_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{} mode {mode:o}", path.display());
}

#[cfg(not(unix))]
fn assert_private(_: &Path) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paired_page_reconnects_without_a_scan_after_a_simulator_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").join("sim.json");
    let profile = dir.path().join("profile");

    let sim = Simulator::start(config(&state)).await.unwrap();
    let base = sim.base_url();
    account(&base, ALICE, "Alice").await;
    account(&base, BOB, "Bob").await;
    post(
        &base,
        &format!("/control/accounts/{ALICE}/contacts"),
        json!({"phone": BOB, "name": "Bobby"}),
    )
    .await;
    let chrome = Chrome::launch(&profile).await;
    let page = chrome.open(&base).await;
    let device = scan_and_connect(&base, &page, ALICE).await;
    post(
        &base,
        &format!("/control/accounts/{BOB}/messages"),
        json!({"to": ALICE, "body": "before restart"}),
    )
    .await;
    wait_for(&page, "return require('WAWebCollections').Msg.getModelsArray().some(m => m.body === 'before restart');", Duration::from_secs(15)).await;
    let client_id = get(&base, "/control/pages").await["pages"][0]["client_id"].clone();
    chrome.close().await;

    // The device is offline now: a message to it waits as a pending delivery.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while get(&base, &format!("/control/accounts/{ALICE}")).await["devices"][0]["connected_page"]
        != Value::Null
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never disconnected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    post(
        &base,
        &format!("/control/accounts/{BOB}/messages"),
        json!({"to": ALICE, "body": "while away"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // acks settle
    let addr = sim.addr();
    sim.shutdown().await;
    assert_private(&state);
    let file: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(file["version"], json!(1));
    assert!(!file.to_string().contains("connected_page"));

    // A new simulator on the same state file. The login lives in per-origin storage, so the
    // origin must stay: with port 0 the simulator takes the port the file recorded.
    let sim = Simulator::start(config(&state)).await.unwrap();
    assert_eq!(sim.addr(), addr);
    let base = sim.base_url();
    let chrome = Chrome::launch(&profile).await;
    let page = chrome.open(&base).await;
    let state_now = wait_state(&page, &["CONNECTED", "UNPAIRED"], Duration::from_secs(20)).await;
    assert_eq!(state_now, "CONNECTED");
    let me = js(
        &page,
        "return require('WAWebUserPrefsMeUser').getMaybeMePnUser()._serialized;",
    )
    .await;
    assert_eq!(me, json!(format!("{ALICE}@c.us")));
    // History came with the sync, the pending message as a new one.
    wait_for(&page, "const a = require('WAWebCollections').Msg.getModelsArray(); \
                     return a.some(m => m.body === 'before restart') && a.some(m => m.body === 'while away' && m.isNewMsg);", Duration::from_secs(15)).await;
    // The same device of the same account, no new pairing.
    let acc = get(&base, &format!("/control/accounts/{ALICE}")).await;
    let devices = acc["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 1, "{acc}");
    assert_eq!(devices[0]["id"], json!(device));
    assert_eq!(devices[0]["client_id"], client_id);
    let log = get(&base, &format!("/control/connections?phone={ALICE}")).await;
    let events: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["connected"], "{log}");
    assert_eq!(log["events"][0]["device"], json!(device));

    // The next scan links a new device number (counters survive too).
    chrome.close().await;
    let fresh = Chrome::launch(&dir.path().join("other")).await;
    let page = fresh.open(&base).await;
    let second = scan_and_connect(&base, &page, ALICE).await;
    assert_eq!(second, device + 1);
    fresh.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_contacts_groups_and_history_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sim.json");
    let sim = Simulator::start(config(&state)).await.unwrap();
    let base = sim.base_url();
    account(&base, ALICE, "Alice").await;
    account(&base, BOB, "Bob").await;
    post(
        &base,
        &format!("/control/accounts/{ALICE}/contacts"),
        json!({"phone": BOB, "name": "Bobby"}),
    )
    .await;
    let group = post(
        &base,
        &format!("/control/accounts/{BOB}/groups"),
        json!({"subject": "Team", "participants": [ALICE]}),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    post(
        &base,
        &format!("/control/accounts/{BOB}/groups/{gid}/subject"),
        json!({"subject": "Team 2"}),
    )
    .await;
    let sent = post(
        &base,
        &format!("/control/accounts/{BOB}/messages"),
        json!({"to": ALICE, "body": "hi"}),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{ALICE}/messages"),
        json!({"to": gid, "body": "group hi"}),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{BOB}/messages"),
        json!({"to": ALICE, "body": "oops"}),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{ALICE}/react"),
        json!({"id": sent["id"], "text": "👍"}),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{BOB}/edit"),
        json!({"id": sent["id"], "body": "hi!"}),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{ALICE}/read"),
        json!({"chat": format!("{BOB}@c.us")}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // acks settle
    let before = snapshot(&base).await;
    // Saved in the background, before any shutdown.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let file = std::fs::read_to_string(&state).unwrap();
    assert!(file.contains("Team 2") && file.contains("hi!"), "{file}");
    assert_private(&state);
    sim.shutdown().await;

    let sim = Simulator::start(config(&state)).await.unwrap();
    let base = sim.base_url();
    let after = snapshot(&base).await;
    assert_eq!(before, after);
    assert_eq!(after["alice"]["contacts"][BOB], json!("Bobby"));
    assert_eq!(after["groups"]["groups"][0]["subject"], json!("Team 2"));
    // The LID still resolves to the same account.
    let lid = after["alice"]["lid"].as_str().unwrap().to_owned();
    post(
        &base,
        &format!("/control/accounts/{BOB}/messages"),
        json!({"to": lid, "body": "via lid"}),
    )
    .await;
    let msgs = get(&base, &format!("/control/accounts/{ALICE}/messages")).await;
    assert!(msgs.to_string().contains("via lid"), "{msgs}");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_corrupt_or_unknown_version_state_file_fails_the_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("broken-state.json");
    for (content, needle) in [
        ("{\"version\":1,\"accounts\":[{\"phone\":", "corrupt"),
        ("{\"version\":7,\"accounts\":[]}", "unsupported version 7"),
        ("[]", "version"),
    ] {
        std::fs::write(&state, content).unwrap();
        let err = Simulator::start(config(&state))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(&state.display().to_string()), "{err}");
        assert!(err.contains(needle), "{err}");
        // The file is left as it was for inspection.
        assert_eq!(std::fs::read_to_string(&state).unwrap(), content);
    }
}

/// The binary, without and with `--state-file`, in a scratch directory that is also its
/// working directory, HOME and TMPDIR.
async fn run_binary(dir: &Path, extra: &[&str]) {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_openwa-simulator"))
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("simulator binary runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // Logs go to stdout too: skip to the banner.
    let base = loop {
        let line = tokio::time::timeout(CDP_TIMEOUT, lines.next_line())
            .await
            .expect("listening line")
            .unwrap()
            .expect("the simulator exited early");
        if let Some(url) = line.strip_prefix("openwa-simulator listening on ") {
            break url.to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    account(&base, ALICE, "Alice").await;
    account(&base, BOB, "Bob").await;
    post(
        &base,
        &format!("/control/accounts/{BOB}/messages"),
        json!({"to": ALICE, "body": "hi"}),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{BOB}/groups"),
        json!({"subject": "Team", "participants": [ALICE]}),
    )
    .await;
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(CDP_TIMEOUT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn without_a_state_file_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    run_binary(dir.path(), &[]).await;
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // The flag, for contrast: SIGTERM flushes the network into the file.
    run_binary(dir.path(), &["--state-file", "net/state.json"]).await;
    let state = dir.path().join("net/state.json");
    assert_private(&state);
    let file: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(file["version"], json!(1));
    assert_eq!(file["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(file["groups"].as_array().unwrap().len(), 1);
    let names: Vec<_> = std::fs::read_dir(state.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.json"], "no temp file left behind");
}

//! Login: scan -> PAIRING -> CONNECTED with the self-reload; the login survives a browser
//! restart and a copy of just `Default/IndexedDB` + `Default/Local Storage`; logout from the
//! phone, conflict + takeover and dropped connections produce the documented state sequences.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::json;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_connects_and_the_login_survives_restarts_and_profile_copies() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915100000001", "Alice").await;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("a");

    // Scan: PAIRING -> CONNECTED -> hasSynced, then one self-reload.
    let chrome = Chrome::launch(&profile).await;
    let page = chrome.open("about:blank").await;
    // Count document loads of this tab.
    tokio::time::timeout(
        CDP_TIMEOUT,
        page.evaluate_on_new_document(
            "sessionStorage.setItem('loads', Number(sessionStorage.getItem('loads') || 0) + 1);",
        ),
    )
    .await
    .expect("timeout")
    .expect("add script");
    tokio::time::timeout(CDP_TIMEOUT, page.goto(base.as_str()))
        .await
        .expect("timeout")
        .expect("goto");
    wait_state(&page, &["UNPAIRED"], Duration::from_secs(20)).await;
    js(&page, "window.__seq = []; const S = require('WAWebSocketModel').Socket; \
               S.on('change:state', (m, s) => window.__seq.push(s)); S.on('change:hasSynced', (m, v) => window.__seq.push('synced:' + v)); return true;").await;
    let qr = js(
        &page,
        "return document.getElementById('qr').dataset.payload;",
    )
    .await;
    post(
        &base,
        "/control/accounts/4915100000001/scan",
        json!({"qr": qr}),
    )
    .await;
    let seq = wait_for(
        &page,
        "return window.__seq && window.__seq.includes('synced:true') ? window.__seq : null;",
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(seq, json!(["PAIRING", "CONNECTED", "synced:true"]));
    wait_for(&page, "return performance.getEntriesByType('navigation')[0].type === 'reload' && require('WAWebSocketModel').Socket.hasSynced;", Duration::from_secs(20)).await;
    let me = js(
        &page,
        "return require('WAWebUserPrefsMeUser').getMaybeMePnUser()._serialized;",
    )
    .await;
    assert_eq!(me, json!("4915100000001@c.us"));
    // It reloads exactly once: the first load plus one self-reload.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        js(&page, "return sessionStorage.getItem('loads');").await,
        json!("2")
    );
    assert_eq!(
        js(&page, "return require('WAWebSocketModel').Socket.state;").await,
        json!("CONNECTED")
    );
    chrome.close().await;

    // Restart with the same profile: logged in, no scan.
    let chrome = Chrome::launch(&profile).await;
    let page = chrome.open(&base).await;
    let state = wait_state(&page, &["CONNECTED", "UNPAIRED"], Duration::from_secs(20)).await;
    assert_eq!(state, "CONNECTED");
    wait_for(
        &page,
        "return require('WAWebSocketModel').Socket.hasSynced;",
        Duration::from_secs(15),
    )
    .await;
    chrome.close().await;

    // A fresh profile with only IndexedDB + Local Storage copied: still logged in.
    let fresh = dir.path().join("b");
    for part in ["IndexedDB", "Local Storage"] {
        copy_dir(
            &profile.join("Default").join(part),
            &fresh.join("Default").join(part),
        );
    }
    let chrome = Chrome::launch(&fresh).await;
    let page = chrome.open(&base).await;
    let state = wait_state(&page, &["CONNECTED", "UNPAIRED"], Duration::from_secs(20)).await;
    assert_eq!(state, "CONNECTED");

    // Never two pages of the account connected at once.
    let log = get(&base, "/control/connections?phone=4915100000001").await;
    let mut open = 0i32;
    for e in log["events"].as_array().unwrap() {
        match e["event"].as_str().unwrap() {
            "connected" => open += 1,
            "disconnected" => open -= 1,
            _ => {}
        }
        assert!(open <= 1, "two connected pages at once: {log}");
    }
    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_from_the_phone_reloads_with_post_logout_and_unpairs() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915100000002", "Bob").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    let device = scan_and_connect(&base, &page, "4915100000002").await;
    js(&page, "window.__logout = 0; require('WAWebCmd').Cmd.on('logout', () => { sessionStorage.setItem('sawLogout', '1'); }); return true;").await;

    let (status, _) = http(
        &base,
        "DELETE",
        &format!("/control/accounts/4915100000002/devices/{device}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    wait_for(&page, "return location.search.includes('post_logout=1') && window.Debug && window.Debug.VERSION && require('WAWebSocketModel').Socket.state === 'UNPAIRED';", Duration::from_secs(20)).await;
    assert_eq!(
        js(&page, "return sessionStorage.getItem('sawLogout');").await,
        json!("1")
    );
    assert_eq!(
        js(&page, "return localStorage.getItem('last-wid-md');").await,
        json!(null)
    );

    // Scanning again logs back in, and the self-reload drops the post_logout marker.
    let qr = wait_for(
        &page,
        "return document.getElementById('qr').dataset.payload || null;",
        Duration::from_secs(15),
    )
    .await;
    post(
        &base,
        "/control/accounts/4915100000002/scan",
        json!({"qr": qr}),
    )
    .await;
    wait_for(&page, "return location.search === '' && window.Debug && window.Debug.VERSION && require('WAWebSocketModel').Socket.hasSynced;", Duration::from_secs(20)).await;
    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_holds_until_takeover_and_a_drop_reconnects() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, "4915100000003", "Carol").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    let device = scan_and_connect(&base, &page, "4915100000003").await;
    record_states(&page).await;

    post(
        &base,
        &format!("/control/accounts/4915100000003/devices/{device}/conflict"),
        json!({}),
    )
    .await;
    wait_state(&page, &["CONFLICT"], Duration::from_secs(15)).await;
    js(
        &page,
        "await require('WAWebSocketModel').Socket.takeover(); return true;",
    )
    .await;
    wait_state(&page, &["CONNECTED"], Duration::from_secs(15)).await;
    assert_eq!(
        js(&page, "return window.__states;").await,
        json!(["CONFLICT", "CONNECTED"])
    );

    // A held drop keeps the page in TIMEOUT until the connection is restored.
    js(&page, "window.__states = []; return true;").await;
    post(
        &base,
        &format!("/control/accounts/4915100000003/devices/{device}/drop"),
        json!({"hold": true}),
    )
    .await;
    wait_state(&page, &["TIMEOUT"], Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        js(&page, "return require('WAWebSocketModel').Socket.state;").await,
        json!("TIMEOUT")
    );
    post(
        &base,
        &format!("/control/accounts/4915100000003/devices/{device}/restore"),
        json!({}),
    )
    .await;
    wait_state(&page, &["CONNECTED"], Duration::from_secs(15)).await;
    let states = js(&page, "return window.__states;").await;
    assert_eq!(states.as_array().unwrap().first(), Some(&json!("TIMEOUT")));
    assert_eq!(states.as_array().unwrap().last(), Some(&json!("CONNECTED")));
    assert!(!states.as_array().unwrap().contains(&json!("UNPAIRED")));

    // A plain drop reconnects by itself.
    js(&page, "window.__states = []; return true;").await;
    post(
        &base,
        &format!("/control/accounts/4915100000003/devices/{device}/drop"),
        json!({}),
    )
    .await;
    wait_for(
        &page,
        "return window.__states.join() === 'TIMEOUT,CONNECTED';",
        Duration::from_secs(15),
    )
    .await;

    chrome.close().await;
    sim.shutdown().await;
}

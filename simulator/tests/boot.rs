//! The page boots and exposes WhatsApp Web's module surface; the QR ref rotates, idles and
//! refreshes; faults rename modules.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const APPENDIX: &str = include_str!("data/appendix-modules.txt");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_appendix_module_resolves_and_unknown_names_throw() {
    let sim = start_sim(1000, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&sim.base_url()).await;
    wait_for(
        &page,
        "return window.Debug && window.Debug.VERSION;",
        Duration::from_secs(20),
    )
    .await;

    let names: Vec<&str> = APPENDIX.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(names.len(), 132);
    let missing = js(
        &page,
        &format!(
            "const names = {}; const bad = []; \
             for (const n of names) {{ try {{ const m = require(n); if (!m) bad.push(n); }} catch (e) {{ bad.push(n + ': ' + e.message); }} }} \
             return bad;",
            json!(names)
        ),
    )
    .await;
    assert_eq!(missing, json!([]), "modules that did not resolve");

    let unknown = js(
        &page,
        "try { require('WAWebNoSuchModule'); return 'resolved'; } catch (e) { return e.message; }",
    )
    .await;
    assert!(
        unknown.as_str().unwrap().contains("WAWebNoSuchModule"),
        "{unknown}"
    );

    let members = js(
        &page,
        "const S = require('WAWebSocketModel').Socket, C = require('WAWebConnModel').Conn, Cmd = require('WAWebCmd').Cmd; \
         const col = require('WAWebCollections'); const K = require('WAWebMsgKey'); \
         const w = require('WAWebWidFactory').createWid('4915112345678@c.us'); \
         const g = require('WAWebWidFactory').createWid('120363000000000001@g.us'); \
         const key = new K({from: w, to: g, id: K.newId(), participant: undefined, selfDir: 'out'}); \
         return { \
           version: window.Debug.VERSION, state: typeof S.state, hasSynced: S.hasSynced, \
           socketFns: ['logout','takeover','reconnect','on','off','once','get','set','serialize'].every(f => typeof S[f] === 'function'), \
           connRefType: typeof C.ref, connSerialize: typeof C.serialize, refreshQR: typeof Cmd.refreshQR, \
           collections: ['Msg','Chat','Contact','GroupMetadata','Label'].every(n => typeof col[n].get === 'function' && typeof col[n].getModelsArray === 'function'), \
           wid: [w.user, w.server, w._serialized, w.isUser(), w.isGroup(), w.isLid(), g.isGroup(), String(w)], \
           keyId: key.id, key: key._serialized, keyStr: key.toString(), \
           me: typeof require('WAWebUserPrefsMeUser').getMaybeMePnUser, \
           send: typeof require('WAWebSendMsgChatAction').addAndSendMsgToChat, \
           find: typeof require('WAWebFindChatAction').findOrCreateLatestChat, \
           stubError: (() => { try { require('WAWebNewsletterDeleteAction').deleteNewsletter(); return 'no error'; } catch (e) { return e.message; } })() \
         };",
    )
    .await;
    assert_eq!(members["version"], json!("2.3000.1017054665"));
    assert_eq!(members["state"], json!("string"));
    assert_eq!(members["socketFns"], json!(true));
    assert_eq!(members["connSerialize"], json!("function"));
    assert_eq!(members["refreshQR"], json!("function"));
    assert_eq!(members["collections"], json!(true));
    assert_eq!(
        members["wid"],
        json!([
            "4915112345678",
            "c.us",
            "4915112345678@c.us",
            true,
            false,
            false,
            true,
            "4915112345678@c.us"
        ])
    );
    let key_id = members["keyId"].as_str().unwrap();
    assert!(
        key_id.len() >= 16
            && key_id
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
    );
    assert_eq!(
        members["key"],
        json!(format!("true_120363000000000001@g.us_{key_id}"))
    );
    assert_eq!(members["keyStr"], members["key"]);
    assert_eq!(members["send"], json!("function"));
    assert_eq!(members["find"], json!("function"));
    let stub = members["stubError"].as_str().unwrap();
    assert!(
        stub.contains("WAWebNewsletterDeleteAction") && stub.contains("deleteNewsletter"),
        "{stub}"
    );

    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_qr_ref_rotates_goes_idle_and_refresh_restarts_it() {
    let sim = start_sim(400, 3).await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    // Record from the first script on, so no ref can slip by before the recorder exists.
    let page = chrome.open("about:blank").await;
    tokio::time::timeout(
        CDP_TIMEOUT,
        page.evaluate_on_new_document(
            "document.addEventListener('DOMContentLoaded', () => { window.__refs = []; window.__states = []; \
             require('WAWebConnModel').Conn.on('change:ref', (m, r) => window.__refs.push(r)); \
             require('WAWebSocketModel').Socket.on('change:state', (m, s) => window.__states.push(s)); });",
        ),
    )
    .await
    .expect("timeout")
    .expect("add script");
    tokio::time::timeout(CDP_TIMEOUT, page.goto(sim.base_url()))
        .await
        .expect("timeout")
        .expect("goto");
    wait_state(&page, &["UNPAIRED_IDLE"], Duration::from_secs(15)).await;
    let refs = js(&page, "return window.__refs;").await;
    let refs = refs.as_array().unwrap();
    assert_eq!(refs.len(), 3, "three refs before idle: {refs:?}");
    let unique: std::collections::HashSet<_> = refs.iter().collect();
    assert_eq!(unique.len(), 3);

    let payload = js(
        &page,
        "return document.getElementById('qr').dataset.payload;",
    )
    .await;
    let parts: Vec<&str> = payload.as_str().unwrap().split(',').collect();
    assert_eq!(parts.len(), 5, "{payload}");
    assert!(parts[0].starts_with("2@"));
    for key in &parts[1..4] {
        assert_eq!(key.len(), 44, "32-byte base64 key: {key}");
    }
    assert!(payload.as_str().unwrap().len() >= 150);

    // The payload built the way clients build it matches the one shown.
    let built = js(
        &page,
        "const R = { ...require('WAWebCompanionRegClientUtils'), ...require('WAWebAdvSignatureApi'), ...require('WAWebUserPrefsInfoStore'), ...require('WAWebSignalStoreApi') }; \
         const B = require('WABase64'); \
         const reg = await R.waSignalStore.getRegistrationInfo(); const noise = await R.waNoiseInfo.get(); \
         return [require('WAWebConnModel').Conn.ref, B.encodeB64(noise.staticKeyPair.pubKey), B.encodeB64(reg.identityKeyPair.pubKey), await R.getADVSecretKey(), R.DEVICE_PLATFORM].join(',');",
    )
    .await;
    assert_eq!(built, payload);

    js(
        &page,
        "await require('WAWebCmd').Cmd.refreshQR(); return true;",
    )
    .await;
    wait_state(&page, &["UNPAIRED"], Duration::from_secs(15)).await;
    let states = js(&page, "return window.__states;").await;
    assert_eq!(states, json!(["UNPAIRED", "UNPAIRED_IDLE", "UNPAIRED"]));
    wait_for(
        &page,
        "return window.__refs.length >= 4;",
        Duration::from_secs(15),
    )
    .await;

    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_module_fault_makes_the_old_name_throw() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    post(
        &base,
        "/control/faults",
        json!({"rename_module": "WAWebSendMsgChatAction"}),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    wait_for(
        &page,
        "return window.Debug && window.Debug.VERSION;",
        Duration::from_secs(20),
    )
    .await;
    let r = js(
        &page,
        "let old; try { require('WAWebSendMsgChatAction'); old = 'resolved'; } catch (e) { old = e.message; } \
         return { old, renamed: typeof require('WAWebSendMsgChatAction_v2').addAndSendMsgToChat };",
    )
    .await;
    assert!(
        r["old"]
            .as_str()
            .unwrap()
            .contains("WAWebSendMsgChatAction"),
        "{r}"
    );
    assert_eq!(r["renamed"], json!("function"));

    // Clearing the fault restores the name live.
    let (status, _) = http(&base, "DELETE", "/control/faults", None).await;
    assert_eq!(status, 200);
    wait_for(&page, "try { return typeof require('WAWebSendMsgChatAction').addAndSendMsgToChat === 'function'; } catch (e) { return false; }", Duration::from_secs(15)).await;

    let (status, body) = http(
        &base,
        "POST",
        "/control/faults",
        Some(json!({"rename_module": 5})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], json!("invalid_request"));

    chrome.close().await;
    sim.shutdown().await;
}

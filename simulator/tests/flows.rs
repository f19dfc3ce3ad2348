//! Pairing codes, groups driven from the page, played acks, fault injection and the phone page.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const X: &str = "4915300000001";
const Y: &str = "4915300000002";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pairing_code_links_the_page_without_a_scan() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, X, "Xavier").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    wait_state(&page, &["UNPAIRED"], Duration::from_secs(20)).await;
    let code = js(&page, &format!(
        "const api = require('WAWebAltDeviceLinkingApi'); api.setPairingType('ALT_DEVICE_LINKING'); \
         await api.initializeAltDeviceLinking(); return await api.startAltLinkingFlow('+{X}', true);")).await;
    let code = code.as_str().unwrap().to_owned();
    assert_eq!(code.len(), 8);
    let pages = get(&base, "/control/pages").await;
    assert_eq!(pages["pages"][0]["pairing_code"]["code"], json!(code));
    let (status, _) = http(
        &base,
        "POST",
        &format!("/control/accounts/{X}/pairing-code"),
        Some(json!({"code": "WRONG123"})),
    )
    .await;
    assert_eq!(status, 404);
    post(
        &base,
        &format!("/control/accounts/{X}/pairing-code"),
        json!({"code": code}),
    )
    .await;
    wait_for(&page, "return performance.getEntriesByType('navigation')[0].type === 'reload' && require('WAWebSocketModel').Socket.hasSynced;", Duration::from_secs(20)).await;
    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_made_in_the_page_reach_the_network_with_notifications_and_played_acks_arrive() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, X, "Xavier").await;
    account(&base, Y, "Yara").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    scan_and_connect(&base, &page, X).await;
    js(&page, "window.__gp2 = []; require('WAWebCollections').Msg.on('add', m => { if (m.type === 'gp2') window.__gp2.push(m.subtype); }); return true;").await;

    let gid = js(&page, &format!(
        "const W = require('WAWebWidFactory'); const r = await require('WAWebGroupCreateJob').createGroup({{title: 'Crew'}}, [W.createWid('{Y}@c.us')]); return r.wid._serialized;")).await;
    let gid = gid.as_str().unwrap().to_owned();
    assert!(gid.ends_with("@g.us"));
    let groups = get(&base, "/control/groups").await;
    assert_eq!(groups["groups"][0]["subject"], json!("Crew"));
    js(&page, &format!("await require('WAWebModifyParticipantsGroupAction').promoteParticipants('{gid}', ['{Y}@c.us']); return true;")).await;
    let common = js(&page, &format!(
        "const W = require('WAWebWidFactory'); \
         await require('WAWebSaveContactAction').saveContactAction(W.createWid('{Y}@c.us'), undefined, 'Yara', 'Y'); \
         const groups = await require('WAWebFindCommonGroupsContactAction').findCommonGroups(W.createWid('{Y}@c.us')); \
         await new Promise(r => setTimeout(r, 200)); \
         return {{ groups: groups.map(c => c.id._serialized), name: require('WAWebCollections').Contact.get('{Y}@c.us').name }};")).await;
    assert_eq!(common, json!({"groups": [gid.clone()], "name": "Yara Y"}));
    post(
        &base,
        &format!("/control/accounts/{Y}/groups/{gid}/leave"),
        json!({}),
    )
    .await;
    let subtypes = wait_for(
        &page,
        "return window.__gp2.length >= 3 ? window.__gp2 : null;",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(subtypes, json!(["create", "promote", "leave"]));
    let members = js(&page, &format!("return require('WAWebCollections').GroupMetadata.get('{gid}').participants.getModelsArray().map(p => p.id.user);")).await;
    assert_eq!(members, json!([X]));

    // A voice note played by the recipient reaches ack 4.
    let inner = js(&page, &format!(
        "const {{ chat }} = await require('WAWebFindChatAction').findOrCreateLatestChat(require('WAWebWidFactory').createWid('{Y}@c.us')); \
         const K = require('WAWebMsgKey'); const id = K.newId(); \
         const [a, r] = require('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, {{id: new K({{from: require('WAWebUserPrefsMeUser').getMeUser(), to: chat.id, id, selfDir: 'out'}}), type: 'ptt', mimetype: 'audio/ogg; codecs=opus', directPath: '/media/x'}}); \
         await a; await r; return id;")).await;
    post(
        &base,
        &format!("/control/accounts/{Y}/played"),
        json!({"id": inner}),
    )
    .await;
    wait_for(&page, &format!("return require('WAWebCollections').Msg.getModelsArray().find(m => m.id.id === '{}').ack === 4;", inner.as_str().unwrap()), Duration::from_secs(15)).await;

    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_reload_mid_send_lose_acks_and_deprecate_the_version() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, X, "Xavier").await;
    account(&base, Y, "Yara").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    scan_and_connect(&base, &page, X).await;
    let send = format!(
        "const {{ chat }} = await require('WAWebFindChatAction').findOrCreateLatestChat(require('WAWebWidFactory').createWid('{Y}@c.us')); \
         const K = require('WAWebMsgKey'); const id = K.newId(); window.__lastId = id; \
         const [a, r] = require('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, {{id: new K({{from: require('WAWebUserPrefsMeUser').getMeUser(), to: chat.id, id, selfDir: 'out'}}), type: 'chat', body: 'x'}}); \
         await a; await r; await new Promise(res => setTimeout(res, 2000)); return id;"
    );

    // Lost acks: the message stays at ack 1.
    post(&base, "/control/faults", json!({"lose_acks": true})).await;
    wait_for(
        &page,
        "return window.__SIM__.faults.lose_acks === true;",
        Duration::from_secs(15),
    )
    .await;
    let id = js(&page, &send).await;
    let ack = js(&page, &format!("return require('WAWebCollections').Msg.getModelsArray().find(m => m.id.id === '{}').ack;", id.as_str().unwrap())).await;
    assert_eq!(ack, json!(1));

    // Reload in the middle of an evaluation: the evaluation fails, the page comes back connected.
    post(
        &base,
        "/control/faults",
        json!({"lose_acks": false, "reload_on_send": true}),
    )
    .await;
    wait_for(
        &page,
        "return window.__SIM__.faults.reload_on_send === true;",
        Duration::from_secs(15),
    )
    .await;
    let r = eval(&page, &send).await;
    assert!(
        r.is_err(),
        "the evaluation must not survive the reload: {r:?}"
    );
    let (status, _) = http(&base, "DELETE", "/control/faults", None).await;
    assert_eq!(status, 200);
    wait_state(&page, &["CONNECTED"], Duration::from_secs(20)).await;

    // Deprecated version.
    post(
        &base,
        "/control/faults",
        json!({"deprecated_version": true}),
    )
    .await;
    wait_state(&page, &["DEPRECATED_VERSION"], Duration::from_secs(15)).await;

    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_page_scans_a_gateway_page_and_chats() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, X, "Xavier").await;
    account(&base, Y, "Yara").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let app = chrome.open(&base).await;
    wait_state(&app, &["UNPAIRED"], Duration::from_secs(20)).await;
    let phone = chrome.open(&format!("{base}/phone")).await;
    wait_for(&phone, &format!("const s = document.getElementById('account'); if (!s.options.length) return false; s.value = '{X}'; s.dispatchEvent(new Event('change')); return true;"), Duration::from_secs(15)).await;
    wait_for(&phone, "const b = [...document.querySelectorAll('#pages button')].find(b => b.textContent === 'Scan QR'); if (!b) return false; b.click(); return true;", Duration::from_secs(15)).await;
    wait_for(&app, "return performance.getEntriesByType('navigation')[0].type === 'reload' && require('WAWebSocketModel').Socket.hasSynced;", Duration::from_secs(45)).await;

    // Chat as Yara from the phone page.
    js(&phone, &format!("const s = document.getElementById('account'); s.value = '{Y}'; s.dispatchEvent(new Event('change')); \
        document.getElementById('to').value = '{X}'; document.getElementById('body').value = 'from the phone page'; \
        document.getElementById('send').click(); return true;")).await;
    wait_for(&app, "return require('WAWebCollections').Msg.getModelsArray().some(m => m.body === 'from the phone page' && m.isNewMsg);", Duration::from_secs(15)).await;
    chrome.close().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_loop_fault_keeps_reloading_until_cleared() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    post(&base, "/control/faults", json!({"reload_loop": true})).await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    wait_for(
        &page,
        "return performance.getEntriesByType('navigation')[0].type === 'reload';",
        Duration::from_secs(15),
    )
    .await;
    let (status, _) = http(&base, "DELETE", "/control/faults", None).await;
    assert_eq!(status, 200);
    wait_state(&page, &["UNPAIRED"], Duration::from_secs(20)).await;
    chrome.close().await;
    sim.shutdown().await;
}

//! Messages between two linked pages and from the phone: ids, the ack ladder, inbound messages
//! as `Msg` `add` events, media, groups with authors, edits, revokes and reactions.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const X: &str = "4915200000001";
const Y: &str = "4915200000002";
const Z: &str = "4915200000003";

/// Record Msg collection events on a page into `window.__log`.
async fn record_msgs(page: &chromiumoxide::Page) {
    js(page, "window.__log = []; const M = require('WAWebCollections').Msg; \
              M.on('add', (m) => window.__log.push({ev: 'add', id: m.id._serialized, body: m.body, type: m.type, isNewMsg: m.isNewMsg, from: m.from && m.from._serialized, author: m.author && m.author._serialized})); \
              M.on('change:ack', (m, a) => window.__log.push({ev: 'ack', id: m.id._serialized, ack: a})); \
              M.on('change:body', (m, b) => window.__log.push({ev: 'body', id: m.id._serialized, body: b})); \
              M.on('change:type', (m, t) => window.__log.push({ev: 'type', id: m.id._serialized, type: t})); \
              return true;").await;
}

fn events(log: &Value, ev: &str) -> Vec<Value> {
    log.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ev"] == ev)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_flow_between_pages_with_acks_and_from_the_phone() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, X, "Xavier").await;
    account(&base, Y, "Yara").await;
    account(&base, Z, "Zoe").await;
    let dir = tempfile::tempdir().unwrap();
    let (pa_dir, pb_dir) = (dir.path().join("a"), dir.path().join("b"));
    let (ca, cb) = tokio::join!(Chrome::launch(&pa_dir), Chrome::launch(&pb_dir));
    let (pa, pb) = tokio::join!(ca.open(&base), cb.open(&base));
    let (_, _) = tokio::join!(
        scan_and_connect(&base, &pa, X),
        scan_and_connect(&base, &pb, Y)
    );
    record_msgs(&pa).await;
    record_msgs(&pb).await;

    // A sends to Y through the real module path.
    let sent = js(&pa, &format!(
        "const me = require('WAWebUserPrefsMeUser').getMaybeMePnUser(); const K = require('WAWebMsgKey'); \
         const to = require('WAWebWidFactory').createWid('{Y}@c.us'); \
         const {{ chat }} = await require('WAWebFindChatAction').findOrCreateLatestChat(to); \
         const key = new K({{from: me, to: chat.id, id: K.newId(), participant: undefined, selfDir: 'out'}}); \
         const [added, result] = require('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, {{id: key, type: 'chat', body: 'hello Y', from: me, to: chat.id}}); \
         const m = await added; const ack0 = m.ack; const r = await result; \
         return {{id: m.id._serialized, inner: key.id, ack0, result: r.messageSendResult}};")).await;
    assert_eq!(sent["ack0"], json!(0));
    assert_eq!(sent["result"], json!("OK"));
    let inner = sent["inner"].as_str().unwrap().to_owned();
    assert_eq!(sent["id"], json!(format!("true_{Y}@c.us_{inner}")));

    // B receives it as a new message with the mirrored id.
    let got = wait_for(
        &pb,
        "return window.__log.find(e => e.ev === 'add' && e.body === 'hello Y') || null;",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(got["id"], json!(format!("false_{X}@c.us_{inner}")));
    assert_eq!(got["isNewMsg"], json!(true));
    assert_eq!(got["from"], json!(format!("{X}@c.us")));

    // B reads the chat: A sees acks 1, 2, 3 in order.
    wait_for(
        &pa,
        "return window.__log.some(e => e.ev === 'ack' && e.ack === 2);",
        Duration::from_secs(15),
    )
    .await;
    js(&pb, &format!("const c = require('WAWebCollections').Chat.get('{X}@c.us'); await require('WAWebUpdateUnreadChatAction').sendSeen({{chat: c}}); return true;")).await;
    wait_for(
        &pa,
        "return window.__log.some(e => e.ev === 'ack' && e.ack === 3);",
        Duration::from_secs(15),
    )
    .await;
    let acks: Vec<Value> = events(&js(&pa, "return window.__log;").await, "ack")
        .iter()
        .map(|e| e["ack"].clone())
        .collect();
    assert_eq!(acks, vec![json!(1), json!(2), json!(3)]);

    // The phone of Z sends to X: an `add` with isNewMsg in page A; the control API lists it.
    let inbound = post(
        &base,
        &format!("/control/accounts/{Z}/messages"),
        json!({"to": format!("{X}@c.us"), "body": "hi from Z"}),
    )
    .await;
    let zid = inbound["id"].as_str().unwrap().to_owned();
    let got = wait_for(
        &pa,
        "return window.__log.find(e => e.ev === 'add' && e.body === 'hi from Z') || null;",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(got["id"], json!(format!("false_{Z}@c.us_{zid}")));
    assert_eq!(got["isNewMsg"], json!(true));
    let listed = get(&base, &format!("/control/accounts/{Y}/messages")).await;
    assert!(
        listed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"]["_serialized"] == json!(format!("false_{X}@c.us_{inner}")))
    );

    // Edit and revoke from the sender reach the recipient's models.
    post(
        &base,
        &format!("/control/accounts/{Z}/edit"),
        json!({"id": zid, "body": "hi (edited)"}),
    )
    .await;
    wait_for(
        &pa,
        "return window.__log.some(e => e.ev === 'body' && e.body === 'hi (edited)');",
        Duration::from_secs(15),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{Z}/revoke"),
        json!({"id": zid}),
    )
    .await;
    wait_for(
        &pa,
        "return window.__log.some(e => e.ev === 'type' && e.type === 'revoked');",
        Duration::from_secs(15),
    )
    .await;

    // A reaction from the phone lands in the Reactions collection.
    post(
        &base,
        &format!("/control/accounts/{Y}/react"),
        json!({"id": inner, "text": "👍"}),
    )
    .await;
    wait_for(&pa, "return require('WAWebCollections').Reactions.getModelsArray().some(r => r.reactionText === '👍');", Duration::from_secs(15)).await;

    // Groups: the author travels with the message.
    let group = post(
        &base,
        &format!("/control/accounts/{Z}/groups"),
        json!({"subject": "Team", "participants": [X, Y]}),
    )
    .await;
    let gid = group["id"].as_str().unwrap().to_owned();
    wait_for(
        &pa,
        &format!("return !!require('WAWebCollections').GroupMetadata.get('{gid}');"),
        Duration::from_secs(15),
    )
    .await;
    post(
        &base,
        &format!("/control/accounts/{Z}/messages"),
        json!({"to": gid, "body": "group hello"}),
    )
    .await;
    let got = wait_for(
        &pb,
        "return window.__log.find(e => e.ev === 'add' && e.body === 'group hello') || null;",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(got["author"], json!(format!("{Z}@c.us")));
    assert!(got["id"].as_str().unwrap().ends_with(&format!("_{Z}@c.us")));

    // Media: A sends an image through the media modules, B downloads the same bytes.
    let media = js(&pa, &format!(
        "const bytes = new Uint8Array([137,80,78,71,13,10,26,10,1,2,3,4]); const file = new File([bytes], 'p.png', {{type: 'image/png'}}); \
         const opaque = await require('WAWebMediaOpaqueData').createFromData(file, file.type); \
         const md = await require('WAWebPrepRawMedia').prepRawMedia(opaque, {{}}).waitForPrep(); \
         const obj = require('WAWebMediaStorage').getOrCreateMediaObject(md.filehash); \
         const mediaType = require('WAWebMmsMediaTypes').msgToMediaType({{type: md.type, isGif: md.isGif}}); \
         const up = await require('WAWebMediaMmsV4Upload').uploadMedia({{mimetype: md.mimetype, mediaObject: obj, mediaType}}); \
         const e = up.mediaEntry; md.set({{directPath: e.directPath, mediaKey: e.mediaKey, filehash: obj.filehash, encFilehash: e.encFilehash, size: obj.size, deprecatedMms3Url: e.deprecatedMms3Url}}); \
         const {{ chat }} = await require('WAWebFindChatAction').findOrCreateLatestChat(require('WAWebWidFactory').createWid('{Y}@c.us')); \
         const K = require('WAWebMsgKey'); \
         const [added, res] = require('WAWebSendMsgChatAction').addAndSendMsgToChat(chat, {{...md.serialize(), id: new K({{from: require('WAWebUserPrefsMeUser').getMeUser(), to: chat.id, id: K.newId(), selfDir: 'out'}}), caption: 'a pic'}}); \
         await added; return (await res).messageSendResult + ':' + md.type;")).await;
    assert_eq!(media, json!("OK:image"));
    let bytes = wait_for(&pb, "const m = require('WAWebCollections').Msg.getModelsArray().find(m => m.type === 'image' && m.caption === 'a pic'); if (!m) return null; \
        const buf = await require('WAWebDownloadManager').downloadManager.downloadAndMaybeDecrypt({directPath: m.directPath, type: m.type}); return Array.from(new Uint8Array(buf));", Duration::from_secs(15)).await;
    assert_eq!(bytes, json!([137, 80, 78, 71, 13, 10, 26, 10, 1, 2, 3, 4]));

    tokio::join!(ca.close(), cb.close());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_sends_every_content_type_and_bad_input_gets_the_error_envelope() {
    let sim = start_sim(1000, 6).await;
    let base = sim.base_url();
    account(&base, X, "Xavier").await;
    account(&base, Y, "Yara").await;
    let dir = tempfile::tempdir().unwrap();
    let chrome = Chrome::launch(dir.path()).await;
    let page = chrome.open(&base).await;
    scan_and_connect(&base, &page, X).await;
    record_msgs(&page).await;

    let to = format!("{X}@c.us");
    let png = "iVBORw0KGgoBAgME";
    let first = post(
        &base,
        &format!("/control/accounts/{Y}/messages"),
        json!({"to": to, "body": "first"}),
    )
    .await;
    let cases = vec![
        json!({"to": to, "type": "image", "caption": "img", "media": {"data": png, "mimetype": "image/png"}}),
        json!({"to": to, "type": "video", "media": {"data": png, "mimetype": "video/mp4"}}),
        json!({"to": to, "type": "audio", "media": {"data": png, "mimetype": "audio/mpeg"}}),
        json!({"to": to, "type": "ptt", "media": {"data": png, "mimetype": "audio/ogg; codecs=opus"}}),
        json!({"to": to, "type": "document", "media": {"data": png, "mimetype": "application/pdf", "filename": "a.pdf"}}),
        json!({"to": to, "type": "sticker", "media": {"data": png, "mimetype": "image/webp"}}),
        json!({"to": to, "type": "location", "lat": 52.52, "lng": 13.4, "loc": "Berlin"}),
        json!({"to": to, "type": "vcard", "body": "BEGIN:VCARD\nVERSION:3.0\nFN:Z\nEND:VCARD"}),
        json!({"to": to, "type": "multi_vcard", "vcardList": [{"vcard": "BEGIN:VCARD\nEND:VCARD"}]}),
        json!({"to": to, "body": "reply", "quoted_id": first["id"]}),
        json!({"to": to, "body": "@x hi", "mentions": [X]}),
        json!({"to": to, "type": "poll_creation", "pollName": "Lunch?", "poll_options": ["yes", "no"]}),
    ];
    for c in &cases {
        post(&base, &format!("/control/accounts/{Y}/messages"), c.clone()).await;
    }
    let types = wait_for(&page, "const l = window.__log.filter(e => e.ev === 'add' && e.isNewMsg); return l.length >= 13 ? l.map(e => e.type) : null;", Duration::from_secs(15)).await;
    assert_eq!(
        types,
        json!([
            "chat",
            "image",
            "video",
            "audio",
            "ptt",
            "document",
            "sticker",
            "location",
            "vcard",
            "multi_vcard",
            "chat",
            "chat",
            "poll_creation"
        ])
    );
    let details = js(&page, "const M = require('WAWebCollections').Msg.getModelsArray(); const f = (p) => M.find(p); \
        return { quoted: f(m => m.body === 'reply').quotedMsg.body, quotedId: f(m => m.body === 'reply').quotedStanzaID, quotedRemote: f(m => m.body === 'reply').quotedRemoteJid, \
                 mention: f(m => m.body === '@x hi').mentionedJidList[0]._serialized, loc: [f(m => m.type === 'location').lat, f(m => m.type === 'location').loc], \
                 poll: f(m => m.type === 'poll_creation').pollOptions.map(o => o.name), doc: f(m => m.type === 'document').filename, \
                 mime: f(m => m.type === 'ptt').mimetype };").await;
    assert_eq!(details["quoted"], json!("first"));
    assert_eq!(details["quotedId"], first["id"]);
    assert_eq!(details["quotedRemote"], json!(format!("{Y}@c.us")));
    assert_eq!(details["mention"], json!(to));
    assert_eq!(details["loc"], json!([52.52, "Berlin"]));
    assert_eq!(details["poll"], json!(["yes", "no"]));
    assert_eq!(details["doc"], json!("a.pdf"));

    let (status, body) = http(
        &base,
        "POST",
        &format!("/control/accounts/{Y}/messages"),
        Some(json!({"to": to, "type": "hologram"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], json!("invalid_request"));
    let (status, body) = http(
        &base,
        "POST",
        "/control/accounts/999999/messages",
        Some(json!({"to": to, "body": "x"})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], json!("not_found"));
    let (status, _) = http(&base, "POST", "/control/accounts", Some(json!({"nope": 1}))).await;
    assert_eq!(status, 400);

    chrome.close().await;
    sim.shutdown().await;
}

//! The context-mode login dump (`assets/storage.js`) in real Chromium: IndexedDB and Local
//! Storage written in one browser context come back, value types included, in another one
//! (restored before the page's own scripts could run), and a non-extractable CryptoKey fails
//! the dump naming its database and store.

mod chromium_support;

use std::time::Duration;

use chromium_support::{SERIAL, chromium};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use openwa_runner::engine::chromium::launch::{self, LaunchSpec};
use openwa_runner::engine::chromium::storage::{self, StorageError};
use openwa_simulator::{Simulator, SimulatorConfig};
use serde_json::{Value, json};

/// Fills the origin's storage with every value type the encoding claims to keep.
const WRITE: &str = r#"(async () => {
  const open = indexedDB.open('typed', 3);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore('out');
    const s = db.createObjectStore('in', { keyPath: 'id', autoIncrement: true });
    s.createIndex('by_name', 'name', { unique: true });
    s.createIndex('by_tag', 'tags', { multiEntry: true });
  };
  const db = await new Promise((ok, err) => { open.onsuccess = () => ok(open.result); open.onerror = () => err(open.error); });
  const tx = db.transaction(['out', 'in'], 'readwrite');
  const bytes = new Uint8Array([0, 1, 2, 250, 255]);
  tx.objectStore('out').put({
    ab: bytes.buffer,
    view: new Uint8Array(bytes.buffer, 1, 3),
    f64: new Float64Array([1.5, -2.25]),
    dv: new DataView(new Uint8Array([9, 8, 7]).buffer),
    date: new Date(1700000000123),
    blob: new Blob(['hello blob'], { type: 'text/plain' }),
    map: new Map([[1, 'one'], ['k', new Uint8Array([5])]]),
    set: new Set(['a', 'b']),
    nested: { list: [1, 'two', [3, { deep: null, gone: undefined }]], nan: NaN, inf: -Infinity, negz: -0, big: 12345678901234567890n },
  }, 'record');
  tx.objectStore('out').put('plain string', new Date(5));
  tx.objectStore('out').put(42, [1, 'a']);
  tx.objectStore('in').put({ name: 'first', tags: ['x', 'y'] });
  tx.objectStore('in').put({ name: 'second', tags: ['y'] });
  await new Promise((ok, err) => { tx.oncomplete = ok; tx.onerror = () => err(tx.error); });
  db.close();
  localStorage.setItem('last-wid-md', '15550100001:1@c.us');
  localStorage.setItem('other', 'two');
  return true;
})()"#;

/// Reads everything back in the restored context and reports what it found.
const READ: &str = r#"(async () => {
  const db = await new Promise((ok, err) => { const r = indexedDB.open('typed'); r.onsuccess = () => ok(r.result); r.onerror = () => err(r.error); });
  const tx = db.transaction(['out', 'in'], 'readwrite');
  const get = (req) => new Promise((ok, err) => { req.onsuccess = () => ok(req.result); req.onerror = () => err(req.error); });
  const out = tx.objectStore('out');
  const inl = tx.objectStore('in');
  const meta = {
    indexes: Array.from(inl.indexNames).sort(),
    unique: inl.index('by_name').unique,
    multi: inl.index('by_tag').multiEntry,
  };
  const rec = await get(out.get('record'));
  const byDate = await get(out.get(new Date(5)));
  const byArray = await get(out.get([1, 'a']));
  const second = await get(inl.index('by_name').get('second'));
  const tagged = await get(inl.index('by_tag').getAll('y'));
  const next = await get(inl.add({ name: 'third', tags: [] }));
  const hex = (b) => Array.from(new Uint8Array(b)).join(',');
  const result = {
    version: db.version,
    title: document.title,
    ab: rec.ab instanceof ArrayBuffer ? hex(rec.ab) : 'not an ArrayBuffer',
    view: rec.view instanceof Uint8Array ? hex(rec.view) : 'not a Uint8Array',
    f64: rec.f64 instanceof Float64Array ? Array.from(rec.f64) : 'not a Float64Array',
    dv: rec.dv instanceof DataView ? hex(rec.dv.buffer) : 'not a DataView',
    date: rec.date instanceof Date ? rec.date.getTime() : 'not a Date',
    blob: rec.blob instanceof Blob ? [rec.blob.type, await rec.blob.text()] : 'not a Blob',
    map: rec.map instanceof Map ? [rec.map.get(1), rec.map.get('k') instanceof Uint8Array] : 'not a Map',
    set: rec.set instanceof Set ? Array.from(rec.set) : 'not a Set',
    list: rec.nested.list[2][0],
    deep_null: rec.nested.list[2][1].deep,
    undefined_kept: 'gone' in rec.nested.list[2][1] && rec.nested.list[2][1].gone === undefined,
    nan: Number.isNaN(rec.nested.nan),
    inf: rec.nested.inf === -Infinity,
    negz: Object.is(rec.nested.negz, -0),
    big: typeof rec.nested.big === 'bigint' ? rec.nested.big.toString() : 'not a bigint',
    by_date: byDate,
    by_array: byArray,
    second_id: second && second.id,
    tagged: tagged.map((r) => r.name).sort(),
    next_id: next,
    ...meta,
    local: [localStorage.getItem('last-wid-md'), localStorage.getItem('other')],
    local_all: JSON.stringify(Object.entries(localStorage).sort()),
  };
  db.close();
  return result;
})()"#;

async fn eval(page: &Page, expr: &str) -> Value {
    let params = chromiumoxide::cdp::js_protocol::runtime::EvaluateParams::builder()
        .expression(expr)
        .await_promise(true)
        .return_by_value(true)
        .build()
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), page.execute(params))
        .await
        .expect("evaluation answers")
        .expect("evaluation runs");
    assert!(
        resp.result.exception_details.is_none(),
        "script threw: {:?}",
        resp.result.exception_details
    );
    resp.result.result.value.clone().unwrap_or(Value::Null)
}

async fn page_in_new_context(browser: &Browser) -> Page {
    let context = browser
        .create_browser_context(CreateBrowserContextParams::default())
        .await
        .unwrap();
    let target = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context)
        .build()
        .unwrap();
    browser.new_page(target).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dump_restores_every_value_type_into_a_fresh_context_before_the_page_loads() {
    let _serial = SERIAL.lock().await;
    let sim = Simulator::start(SimulatorConfig::default())
        .await
        .expect("simulator");
    let url = format!("{}/", sim.base_url());
    let profile = tempfile::tempdir().unwrap();
    let proc = launch::launch(&LaunchSpec {
        binary: chromium(),
        headless: openwa_runner::engine::chromium::ChromiumConfig::for_binary(chromium()).headless,
        profile_dir: profile.path().to_owned(),
        proxy: None,
        extra_args: Vec::new(),
        timeout: Duration::from_secs(20),
    })
    .await
    .expect("Chromium starts");
    let pid = proc.pid;
    let (browser, mut handler) = Browser::connect(proc.ws_url.clone()).await.unwrap();
    tokio::spawn(async move { while handler.next().await.is_some() {} });

    // Arrange: a context on the WhatsApp Web origin with typed values in its storage (on a
    // page of the origin that runs no app script, so nothing else writes meanwhile).
    let quiet = format!("{url}openwa-storage-test");
    let source = page_in_new_context(&browser).await;
    source.goto(quiet.as_str()).await.unwrap();
    assert_eq!(eval(&source, WRITE).await, json!(true));

    let local_all = eval(
        &source,
        "JSON.stringify(Object.entries(localStorage).sort())",
    )
    .await;

    // Act: dump it, restore it into another context.
    let dump = storage::dump(&source).await.expect("dump");
    let target = page_in_new_context(&browser).await;
    storage::restore_before_load(&target, &url, &dump)
        .await
        .expect("restore");

    // Assert: the empty page of the origin holds everything, typed as before.
    let got = eval(&target, READ).await;
    let want = json!({
        "version": 3,
        "title": "openwa restore",
        "ab": "0,1,2,250,255",
        "view": "1,2,250",
        "f64": [1.5, -2.25],
        "dv": "9,8,7",
        "date": 1_700_000_000_123_i64,
        "blob": ["text/plain", "hello blob"],
        "map": ["one", true],
        "set": ["a", "b"],
        "list": 3,
        "deep_null": null,
        "undefined_kept": true,
        "nan": true,
        "inf": true,
        "negz": true,
        "big": "12345678901234567890",
        "by_date": "plain string",
        "by_array": 42,
        "second_id": 2,
        "tagged": ["first", "second"],
        "next_id": 3,
        "indexes": ["by_name", "by_tag"],
        "unique": true,
        "multi": true,
        "local": ["15550100001:1@c.us", "two"],
        "local_all": local_all,
    });
    assert_eq!(got, want);

    // A context that got no dump has none of it: contexts do not share storage.
    let other = page_in_new_context(&browser).await;
    other.goto(quiet.as_str()).await.unwrap();
    let empty = eval(
        &other,
        "(async () => [localStorage.length, (await indexedDB.databases()).length])()",
    )
    .await;
    assert_eq!(empty, json!([0, 0]));

    // A non-extractable key cannot be dumped; the error names where it is.
    eval(
        &source,
        r#"(async () => {
          const key = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt']);
          const open = indexedDB.open('keys', 1);
          open.onupgradeneeded = () => open.result.createObjectStore('signal');
          const db = await new Promise((ok) => { open.onsuccess = () => ok(open.result); });
          const tx = db.transaction('signal', 'readwrite');
          tx.objectStore('signal').put({ key }, 'identity');
          await new Promise((ok) => { tx.oncomplete = ok; });
          db.close();
        })()"#,
    )
    .await;
    let err = storage::dump(&source)
        .await
        .expect_err("a non-extractable key");
    let StorageError::NotExportable(message) = &err else {
        panic!("expected NotExportable, got {err:?}");
    };
    assert!(
        message.contains(r#"database "keys", object store "signal""#)
            && message.contains("non-extractable CryptoKey"),
        "{message}"
    );

    launch::kill_group(pid);
}

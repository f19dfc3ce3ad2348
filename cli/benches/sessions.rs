//! Session bench for `openwa up --sandbox`: the real binary, the in-process simulator and one
//! headless Chromium per session (or, with `BENCH_ISOLATION=context`, one shared Chromium with a
//! browser context per session). Prints figures; asserts nothing about speed (the targets from
//! the issue are printed next to the figures).
//!
//! Run: `cargo bench -p openwa-cli --bench sessions`. Chromium comes from `CHROMIUM_BIN` or
//! `/usr/lib/chromium/chromium`. Env (defaults in brackets):
//!
//! - `BENCH_SESSIONS` [1,5,10,20]: memory rounds. Every round starts a fresh gateway on a fresh
//!   data dir, links N sandbox sessions, lets them settle and sums the PSS of the `openwa`
//!   process tree.
//! - `BENCH_THROUGHPUT_SESSIONS` [10]: the round (added if missing) that also measures the
//!   multi-session send rate and the start-from-snapshot times. The 1-session send figures come
//!   from the N = 1 round (added if missing).
//! - `BENCH_MESSAGES` [300]: messages of the 1-session burst; `BENCH_MESSAGES_PER_SESSION` [100]
//!   for the multi-session burst; `BENCH_CHATS` [1,8]: chats (customers) of the 1-session burst;
//!   `BENCH_LATENCY_MESSAGES` [50]: one-at-a-time sends for the unloaded latency;
//!   `BENCH_SEND_CONCURRENCY` [16]: concurrent API clients of a burst.
//! - `BENCH_SETTLE_SECS` [5], `BENCH_GATEWAY_RESTART` [1]: also restart the whole gateway.
//! - `BENCH_ISOLATION` [process]: the runner's isolation mode (`openwa up --isolation`). The
//!   memory figure is the whole `openwa` process tree either way, so a shared browser is
//!   counted once.
//! - `BENCH_LINK_BATCH` [5]: sessions are created and linked this many at a time (the runner
//!   loses the leases of sessions whose Chromium takes longer than ~17 s to start, which many
//!   browsers starting at once on 2 cores do; see docs/performance-sessions.md).
//!
//! "Received" is when the bench first sees the message in the customer's simulated phone
//! (`GET /v1/sandbox/accounts/{customer}/messages`, polled every 20 ms during a burst and every
//! 5 ms for one-at-a-time sends), so latencies carry up to one poll interval of error.
//! Every wait is bounded: a step that does not finish in time fails the bench with a message.

#[path = "../tests/support.rs"]
mod support;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use reqwest::StatusCode;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Configuration

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    let parsed: Option<Vec<usize>> = std::env::var(name).ok().map(|v| {
        v.split(',')
            .filter_map(|s| s.trim().parse().ok())
            .filter(|&n| n > 0)
            .collect()
    });
    match parsed {
        Some(list) if !list.is_empty() => list,
        _ => default.to_vec(),
    }
}

struct Config {
    chromium: String,
    /// `process` or `context` (`openwa up --isolation`).
    isolation: String,
    rounds: Vec<usize>,
    memory_rounds: BTreeSet<usize>,
    multi: usize,
    messages: usize,
    per_session: usize,
    chats: Vec<usize>,
    latency_messages: usize,
    concurrency: usize,
    settle: Duration,
    gateway_restart: bool,
    link_batch: usize,
}

impl Config {
    fn from_env() -> Config {
        let memory: BTreeSet<usize> = env_list("BENCH_SESSIONS", &[1, 5, 10, 20])
            .into_iter()
            .collect();
        let multi = env_u64("BENCH_THROUGHPUT_SESSIONS", 10).max(1) as usize;
        let mut rounds = memory.clone();
        rounds.insert(1);
        rounds.insert(multi);
        Config {
            chromium: std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| {
                openwa_runner::engine::chromium::default_binary()
                    .display()
                    .to_string()
            }),
            isolation: std::env::var("BENCH_ISOLATION").unwrap_or_else(|_| "process".into()),
            rounds: rounds.into_iter().collect(),
            memory_rounds: memory,
            multi,
            messages: env_u64("BENCH_MESSAGES", 300).max(1) as usize,
            per_session: env_u64("BENCH_MESSAGES_PER_SESSION", 100).max(1) as usize,
            chats: env_list("BENCH_CHATS", &[1, 8]),
            latency_messages: env_u64("BENCH_LATENCY_MESSAGES", 50) as usize,
            concurrency: env_u64("BENCH_SEND_CONCURRENCY", 16).max(1) as usize,
            settle: Duration::from_secs(env_u64("BENCH_SETTLE_SECS", 5)),
            gateway_restart: env_u64("BENCH_GATEWAY_RESTART", 1) != 0,
            link_batch: env_u64("BENCH_LINK_BATCH", 5).max(1) as usize,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The API

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = res.status();
        let json = res.json().await.unwrap_or(Value::Null);
        Ok((status, json))
    }

    async fn get(&self, path: &str) -> Result<(StatusCode, Value)> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> Result<(StatusCode, Value)> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn post_ok(&self, path: &str, body: &Value) -> Result<Value> {
        let (status, json) = self.post(path, body).await?;
        ensure!(status.is_success(), "POST {path}: {status} {json}");
        Ok(json)
    }

    /// Status and lease epoch of every session, by id.
    async fn statuses(&self) -> Result<HashMap<String, (String, u64)>> {
        let mut out = HashMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/sessions?limit=100&cursor={c}"),
                None => "/v1/sessions?limit=100".to_owned(),
            };
            let (status, page) = self.get(&path).await?;
            ensure!(status.is_success(), "GET {path}: {status} {page}");
            for s in page["items"].as_array().into_iter().flatten() {
                out.insert(
                    s["id"].as_str().unwrap_or_default().to_owned(),
                    (
                        s["status"].as_str().unwrap_or_default().to_owned(),
                        s["lease"]["epoch"].as_u64().unwrap_or(0),
                    ),
                );
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return Ok(out),
            }
        }
    }

    async fn status_of(&self, id: &str) -> Result<String> {
        let (status, s) = self.get(&format!("/v1/sessions/{id}")).await?;
        ensure!(status.is_success(), "GET /v1/sessions/{id}: {status} {s}");
        Ok(s["status"].as_str().unwrap_or_default().to_owned())
    }

    /// Bodies of the messages on a simulated phone (all chats).
    async fn phone_bodies(&self, phone: &str) -> Result<Vec<String>> {
        let path = format!("/v1/sandbox/accounts/{phone}/messages");
        let (status, json) = self.get(&path).await?;
        ensure!(status.is_success(), "GET {path}: {status} {json}");
        Ok(json["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect())
    }
}

/// Polls `probe` every `every` until it answers `Ok(Ok(value))`; `Ok(Err(state))` means "not
/// yet" (the last state goes into the timeout message), `Err` fails at once.
async fn wait_for<T, F, Fut>(
    what: &str,
    within: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<T, String>>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await? {
            Ok(value) => return Ok(value),
            Err(state) => {
                if Instant::now() >= deadline {
                    bail!("timed out after {within:?} waiting for {what}; last state: {state}");
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Process tree and memory

#[derive(Clone)]
struct Proc {
    pid: u32,
    ppid: u32,
    start: u64,
    comm: String,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the comm: [0] state, [1] ppid, …, [19] starttime (field 22 of proc(5)).
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
        comm,
    })
}

fn all_procs() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_proc)
        .collect()
}

/// `root` and all its descendants, by ppid links.
fn tree(root: u32) -> Vec<Proc> {
    let procs = all_procs();
    let mut children: HashMap<u32, Vec<&Proc>> = HashMap::new();
    for p in &procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out: Vec<Proc> = procs.iter().filter(|p| p.pid == root).cloned().collect();
    let mut i = 0;
    while i < out.len() {
        let pid = out[i].pid;
        if let Some(kids) = children.get(&pid) {
            out.extend(kids.iter().map(|p| (*p).clone()));
        }
        i += 1;
    }
    out
}

/// (PSS, USS = private clean + private dirty) of one process, in kB.
fn pss_uss_kb(pid: u32) -> Option<(u64, u64)> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> Option<u64> {
        rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((
        field("Pss:")?,
        field("Private_Clean:").unwrap_or(0) + field("Private_Dirty:").unwrap_or(0),
    ))
}

struct Mem {
    total_kb: u64,
    uss_kb: u64,
    gateway_kb: u64,
    processes: usize,
    chromium_processes: usize,
}

impl Mem {
    fn mb(kb: u64) -> f64 {
        kb as f64 / 1024.0
    }
}

fn measure(root: u32) -> Mem {
    let procs = tree(root);
    let mut mem = Mem {
        total_kb: 0,
        uss_kb: 0,
        gateway_kb: 0,
        processes: 0,
        chromium_processes: 0,
    };
    for p in &procs {
        let Some((kb, uss)) = pss_uss_kb(p.pid) else {
            continue;
        };
        mem.total_kb += kb;
        mem.uss_kb += uss;
        mem.processes += 1;
        if p.pid == root {
            mem.gateway_kb = kb;
        } else if p.comm.contains("chrom") {
            mem.chromium_processes += 1;
        }
    }
    mem
}

/// Three measurements 1 s apart; the one with the median total.
async fn measure_median(root: u32) -> Mem {
    let mut samples = Vec::new();
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        samples.push(measure(root));
    }
    samples.sort_by_key(|m| m.total_kb);
    samples.swap_remove(1)
}

fn still_alive(p: &Proc) -> bool {
    read_proc(p.pid).is_some_and(|now| now.start == p.start)
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

// ---------------------------------------------------------------------------------------------
// The gateway

/// A running `openwa up --sandbox`; dropping it stops it (SIGTERM, then SIGKILL for anything of
/// its process tree still alive after 30 s), so a failed bench leaves no Chromium behind.
struct Gw {
    inner: Option<support::Gateway>,
    api: Api,
    pid: u32,
}

impl Gw {
    fn start(dir: &Path, capacity: usize, chromium: &str, isolation: &str) -> Result<Gw> {
        let capacity = capacity.to_string();
        let log = std::env::var("TEST_LOG").unwrap_or_else(|_| "warn,chromiumoxide=error".into());
        let gw = support::Gateway::start_with_args(
            dir,
            &[
                "--sandbox",
                "--runner-capacity",
                &capacity,
                "--sandbox-qr-interval-ms",
                "20000",
                "--isolation",
                isolation,
            ],
            &[
                ("OPENWA_CHROMIUM", chromium),
                ("OPENWA_RATE_LIMIT_PER_MINUTE", "100000000"),
                // chromiumoxide warns about every CDP event it does not know.
                ("OPENWA_LOG", &log),
            ],
        );
        let key = std::fs::read_to_string(dir.join("admin.key"))
            .context("admin.key")?
            .trim()
            .to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Gw {
            pid: gw.child.id(),
            api: Api {
                http,
                base: gw.base_url.clone(),
                key,
            },
            inner: Some(gw),
        })
    }

    /// SIGTERM and wait for exit; returns how long the graceful stop took and how many
    /// processes of its tree were still alive afterwards (killed).
    fn stop(mut self) -> (Duration, usize) {
        self.shutdown()
    }

    fn shutdown(&mut self) -> (Duration, usize) {
        let Some(mut gw) = self.inner.take() else {
            return (Duration::ZERO, 0);
        };
        let procs = tree(self.pid);
        let started = Instant::now();
        signal(self.pid, "-TERM");
        let deadline = started + Duration::from_secs(30);
        let mut exited = false;
        while Instant::now() < deadline {
            if matches!(gw.child.try_wait(), Ok(Some(_))) {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = started.elapsed();
        if !exited {
            eprintln!(
                "openwa (pid {}) did not stop within 30 s of SIGTERM; killing it",
                self.pid
            );
            let _ = gw.child.kill();
            let _ = gw.child.wait();
        }
        // Give Chromium a moment to follow its parent, then sweep.
        let sweep_deadline = Instant::now() + Duration::from_secs(3);
        let mut left: Vec<&Proc> = procs.iter().filter(|p| p.pid != self.pid).collect();
        while Instant::now() < sweep_deadline {
            left.retain(|p| still_alive(p));
            if left.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        left.retain(|p| still_alive(p));
        for p in &left {
            signal(p.pid, "-KILL");
        }
        (took, left.len())
    }
}

impl Drop for Gw {
    fn drop(&mut self) {
        self.shutdown();
    }
}

// ---------------------------------------------------------------------------------------------
// Figures

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct MemRow {
    n: usize,
    base: Mem,
    linked: Mem,
    link: Duration,
}

struct SendRow {
    case: String,
    messages: usize,
    rate: f64,
    accept_rate: f64,
    p50: f64,
    p99: f64,
    target: &'static str,
}

struct StartRow {
    case: String,
    samples: Vec<f64>,
    target: &'static str,
}

#[derive(Default)]
struct Report {
    memory: Vec<MemRow>,
    sends: Vec<SendRow>,
    latency: Option<(usize, Vec<f64>, Vec<f64>)>,
    starts: Vec<StartRow>,
    notes: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Steps

/// Phone number `1555` + two-digit tag + five-digit index (11 digits, like the README's).
fn phone(tag: usize, i: usize) -> String {
    format!("1555{tag:02}{i:05}")
}

fn session_id(i: usize) -> String {
    format!("s{i:03}")
}

async fn create_account(api: &Api, phone: &str, name: &str) -> Result<()> {
    api.post_ok(
        "/v1/sandbox/accounts",
        &json!({"phone": phone, "pushname": name}),
    )
    .await
    .map(drop)
}

/// Creates `n` accounts and sessions (started in batches of `batch`; each batch is linked
/// before the next starts), scans each session's QR with its account, waits until all are
/// `connected`. A session seen in `qr` again 15 s after its scan is scanned again (counted in
/// the second value). Returns (session id, phone) pairs.
async fn link(api: &Api, n: usize, batch: usize) -> Result<(Vec<(String, String)>, usize)> {
    let linked: Vec<(String, String)> = (0..n).map(|i| (session_id(i), phone(10, i))).collect();
    let mut scans = 0;
    for chunk in linked.chunks(batch.max(1)) {
        for (id, ph) in chunk {
            create_account(api, ph, &format!("Line {id}")).await?;
            let (status, body) = api
                .post("/v1/sessions", &json!({"id": id, "start": true}))
                .await?;
            ensure!(
                status == StatusCode::CREATED,
                "create session {id}: {status} {body}"
            );
        }
        let within = Duration::from_secs(60 + 10 * chunk.len() as u64);
        let deadline = Instant::now() + within;
        let mut scanned: HashMap<&str, Instant> = HashMap::new();
        loop {
            let all = api.statuses().await?;
            let status = |id: &str| all.get(id).map_or("absent", |(s, _)| s.as_str());
            let behind: Vec<&(String, String)> = chunk
                .iter()
                .filter(|(id, _)| status(id) != "connected")
                .collect();
            if behind.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let states: Vec<String> = behind
                    .iter()
                    .map(|(id, _)| format!("{id}={}", status(id)))
                    .collect();
                bail!(
                    "timed out after {within:?} linking sessions; not connected: {} ({scans} scans so far)",
                    states.join(" ")
                );
            }
            for (id, ph) in behind {
                let due = scanned
                    .get(id.as_str())
                    .is_none_or(|t| t.elapsed() > Duration::from_secs(15));
                if status(id) != "qr" || !due {
                    continue;
                }
                let (code, qr) = api.get(&format!("/v1/sessions/{id}/qr")).await?;
                let Some(payload) = qr["payload"].as_str().filter(|_| code == StatusCode::OK)
                else {
                    continue;
                };
                let (code, body) = api
                    .post(
                        &format!("/v1/sandbox/accounts/{ph}/scan"),
                        &json!({"qr": payload}),
                    )
                    .await?;
                if code.is_success() {
                    scanned.insert(id.as_str(), Instant::now());
                    scans += 1;
                } else {
                    eprintln!("scan for {id} refused (will retry): {code} {body}");
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok((linked, scans))
}

struct Burst {
    sent: usize,
    rate: f64,
    accept_rate: f64,
    latencies: Vec<f64>,
    duplicates: usize,
}

/// Sends `per_session` texts from every session in `senders`, spread over `chats` fresh
/// customers, from `concurrency` API clients at once; follows them to the customers' phones.
async fn burst(
    api: &Api,
    senders: &[(String, String)],
    chats: usize,
    per_session: usize,
    concurrency: usize,
    tag: usize,
) -> Result<Burst> {
    let customers: Vec<String> = (0..chats).map(|c| phone(tag, c)).collect();
    for c in &customers {
        create_account(api, c, "Customer").await?;
    }
    // Interleaved: k-th message of every session before the (k+1)-th of any.
    let work: Arc<Vec<(String, String, String)>> = Arc::new(
        (0..per_session)
            .flat_map(|k| {
                senders
                    .iter()
                    .enumerate()
                    .map(move |(s, (id, _))| (s, k, id))
            })
            .map(|(s, k, id)| {
                (
                    id.clone(),
                    customers[(k + s) % chats].clone(),
                    format!("bench {tag} {s} {k}"),
                )
            })
            .collect(),
    );
    let total = work.len();
    let within = Duration::from_secs(60 + total as u64 / 2);

    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let poller = {
        let (api, seen, customers) = (api.clone(), seen.clone(), customers.clone());
        let prefix = format!("bench {tag} ");
        tokio::spawn(async move {
            let deadline = Instant::now() + within;
            let mut duplicates = 0;
            loop {
                let mut count: HashMap<String, usize> = HashMap::new();
                for c in &customers {
                    for body in api.phone_bodies(c).await? {
                        if body.starts_with(&prefix) {
                            *count.entry(body).or_default() += 1;
                        }
                    }
                }
                let now = Instant::now();
                duplicates = duplicates.max(count.values().map(|&c| c - 1).sum::<usize>());
                let len = {
                    let mut seen = seen.lock().expect("seen");
                    for body in count.into_keys() {
                        seen.entry(body).or_insert(now);
                    }
                    seen.len()
                };
                if len >= total {
                    return Ok(duplicates);
                }
                if now >= deadline {
                    bail!(
                        "timed out after {within:?}: {len} of {total} messages reached the customers"
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let next = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..concurrency.min(total) {
        let (api, work, next) = (api.clone(), work.clone(), next.clone());
        clients.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((id, to, body)) = work.get(i) else {
                    return Ok::<_, anyhow::Error>(accepted);
                };
                let req = json!({"to": to, "type": "text", "text": {"body": body}});
                let (status, answer) = api
                    .post(&format!("/v1/sessions/{id}/messages"), &req)
                    .await?;
                ensure!(
                    status == StatusCode::ACCEPTED,
                    "send {body}: {status} {answer}"
                );
                accepted.push((body.clone(), Instant::now()));
            }
        }));
    }
    let mut accepted: HashMap<String, Instant> = HashMap::new();
    for c in clients {
        accepted.extend(c.await.context("send client")??);
    }
    let duplicates = match poller.await.context("poller")? {
        Ok(d) => d,
        Err(error) => {
            let diagnosis = diagnose(api, senders, &work, &seen).await;
            return Err(error.context(diagnosis));
        }
    };
    let seen = seen.lock().expect("seen").clone();
    let first_accept = accepted.values().min().copied().context("no sends")?;
    let last_accept = accepted.values().max().copied().context("no sends")?;
    let last_seen = seen.values().max().copied().context("nothing seen")?;
    let latencies = accepted
        .iter()
        .filter_map(|(body, t)| Some(ms(seen.get(body)?.saturating_duration_since(*t))))
        .collect();
    Ok(Burst {
        sent: total,
        rate: total as f64 / (last_seen - first_accept).as_secs_f64(),
        accept_rate: total as f64 / (last_accept - first_accept).as_secs_f64().max(1e-6),
        latencies: sorted(latencies),
        duplicates,
    })
}

/// What a burst that timed out left behind: per session with missing messages, its status and
/// its outbound messages by status.
async fn diagnose(
    api: &Api,
    senders: &[(String, String)],
    work: &[(String, String, String)],
    seen: &Mutex<HashMap<String, Instant>>,
) -> String {
    let seen = seen.lock().expect("seen").clone();
    let statuses = api.statuses().await.unwrap_or_default();
    let mut out = Vec::new();
    for (id, _) in senders {
        let missing = work
            .iter()
            .filter(|(s, _, body)| s == id && !seen.contains_key(body))
            .count();
        if missing == 0 {
            continue;
        }
        let mut by_status: HashMap<String, usize> = HashMap::new();
        if let Ok((_, page)) = api
            .get(&format!(
                "/v1/sessions/{id}/messages?direction=outbound&limit=100"
            ))
            .await
        {
            for m in page["items"].as_array().into_iter().flatten() {
                *by_status
                    .entry(m["status"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
        }
        let (status, epoch) = statuses.get(id).cloned().unwrap_or_default();
        out.push(format!(
            "{id} ({status}, epoch {epoch}): {missing} missing; its last 100 outbound messages by status {by_status:?}"
        ));
    }
    format!(
        "sessions with messages that did not arrive: {}",
        out.join("; ")
    )
}

/// One text at a time: request -> 202 and 202 -> on the customer's phone (ms each).
async fn one_at_a_time(
    api: &Api,
    session: &str,
    count: usize,
    tag: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let customer = phone(tag, 0);
    create_account(api, &customer, "Customer").await?;
    let (mut accept, mut receive) = (Vec::new(), Vec::new());
    for k in 0..count {
        let body = format!("latency {tag} {k}");
        let t0 = Instant::now();
        let (status, answer) = api
            .post(
                &format!("/v1/sessions/{session}/messages"),
                &json!({"to": customer, "type": "text", "text": {"body": body}}),
            )
            .await?;
        ensure!(
            status == StatusCode::ACCEPTED,
            "send {body}: {status} {answer}"
        );
        let t1 = Instant::now();
        wait_for(
            &format!("{body:?} on the customer's phone"),
            Duration::from_secs(15),
            Duration::from_millis(5),
            || async {
                let bodies = api.phone_bodies(&customer).await?;
                Ok(if bodies.contains(&body) {
                    Ok(())
                } else {
                    Err(format!("{} messages there", bodies.len()))
                })
            },
        )
        .await?;
        accept.push(ms(t1 - t0));
        receive.push(ms(t1.elapsed()));
    }
    Ok((sorted(accept), sorted(receive)))
}

/// Stops every session at once (each: stop request -> `stopped`), then starts them one at a
/// time (each: start request -> `connected`); both in seconds.
async fn restart_each(api: &Api, ids: &[String]) -> Result<(Vec<f64>, Vec<f64>)> {
    let within = Duration::from_secs(60);
    let stopping = ids.iter().map(|id| async move {
        let t0 = Instant::now();
        api.post_ok(&format!("/v1/sessions/{id}/stop"), &json!({}))
            .await?;
        wait_for(
            &format!("session {id} to stop"),
            within,
            Duration::from_millis(50),
            || async {
                let s = api.status_of(id).await?;
                Ok(if s == "stopped" { Ok(()) } else { Err(s) })
            },
        )
        .await?;
        Ok::<_, anyhow::Error>(t0.elapsed().as_secs_f64())
    });
    let mut stops = Vec::new();
    for r in futures::future::join_all(stopping).await {
        stops.push(r?);
    }
    let mut starts = Vec::new();
    for id in ids {
        let t1 = Instant::now();
        api.post_ok(&format!("/v1/sessions/{id}/start"), &json!({}))
            .await?;
        wait_for(
            &format!("session {id} to connect again from its snapshot"),
            within,
            Duration::from_millis(50),
            || async {
                let s = api.status_of(id).await?;
                Ok(match s.as_str() {
                    "connected" => Ok(()),
                    "qr" | "logged_out" | "failed" => {
                        return Err(anyhow::anyhow!(
                            "session {id} came back as {s}: the snapshot did not restore the login"
                        ));
                    }
                    _ => Err(s),
                })
            },
        )
        .await?;
        starts.push(t1.elapsed().as_secs_f64());
    }
    Ok((sorted(stops), sorted(starts)))
}

fn print_latency(what: &str, v: &[f64]) {
    println!(
        "    {what:<28} p50 {:>8.1} ms  p90 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        pct(v, 0.5),
        pct(v, 0.9),
        pct(v, 0.99),
        pct(v, 1.0)
    );
}

fn print_mem(what: &str, m: &Mem) {
    println!(
        "    {what:<28} PSS {:>8.1} MB (openwa process {:>6.1} MB), USS {:>8.1} MB, {} processes, {} Chromium",
        Mem::mb(m.total_kb),
        Mem::mb(m.gateway_kb),
        Mem::mb(m.uss_kb),
        m.processes,
        m.chromium_processes
    );
}

/// One round: a fresh gateway and data dir, `n` linked sessions, and the phases that belong to
/// this `n`.
async fn round(cfg: &Config, n: usize, report: &mut Report) -> Result<()> {
    println!("\n== {n} session(s): fresh gateway and data dir");
    let dir = tempfile::tempdir().context("tempdir")?;
    let gw = Gw::start(dir.path(), n, &cfg.chromium, &cfg.isolation)?;
    let api = gw.api.clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let base = measure(gw.pid);
    print_mem("idle, no sessions", &base);

    let t = Instant::now();
    let (linked, scans) = link(&api, n, cfg.link_batch).await?;
    let link_time = t.elapsed();
    println!(
        "    linked {n} session(s) in {:.1} s (create -> all connected; started in batches of {}; {scans} QR scans)",
        link_time.as_secs_f64(),
        cfg.link_batch
    );
    if scans > n {
        report.notes.push(format!(
            "{n} sessions: {} session(s) needed a second QR scan while linking",
            scans - n
        ));
    }
    tokio::time::sleep(cfg.settle).await;
    let mem = measure_median(gw.pid).await;
    print_mem(&format!("{n} connected, settled"), &mem);
    println!(
        "    per session: {:.1} MB (total / N), {:.1} MB marginal ((total - idle) / N)",
        Mem::mb(mem.total_kb) / n as f64,
        Mem::mb(mem.total_kb.saturating_sub(base.total_kb)) / n as f64
    );
    if cfg.memory_rounds.contains(&n) {
        report.memory.push(MemRow {
            n,
            base,
            linked: mem,
            link: link_time,
        });
    }
    let ids: Vec<String> = linked.iter().map(|(id, _)| id.clone()).collect();

    if n == 1 {
        for (i, &chats) in cfg.chats.iter().enumerate() {
            let b = burst(&api, &linked, chats, cfg.messages, cfg.concurrency, 20 + i).await?;
            let case = format!("1 session, {chats} chat(s), burst of {}", b.sent);
            println!(
                "    {case}: {:.1} sends/s (first accept -> last received), API accepted {:.0}/s, duplicates {}",
                b.rate, b.accept_rate, b.duplicates
            );
            print_latency("accept -> received (queued)", &b.latencies);
            if b.duplicates > 0 {
                report
                    .notes
                    .push(format!("{case}: {} duplicate deliveries", b.duplicates));
            }
            report.sends.push(SendRow {
                case,
                messages: b.sent,
                rate: b.rate,
                accept_rate: b.accept_rate,
                p50: pct(&b.latencies, 0.5),
                p99: pct(&b.latencies, 0.99),
                target: if chats == 1 { ">= 50/s" } else { "" },
            });
        }
        if cfg.latency_messages > 0 {
            let (accept, receive) = one_at_a_time(&api, &ids[0], cfg.latency_messages, 30).await?;
            println!("    1 session, one message at a time ({}):", accept.len());
            print_latency("request -> 202", &accept);
            print_latency("202 -> received", &receive);
            report.latency = Some((accept.len(), accept, receive));
        }
    }

    if n == cfg.multi {
        if n > 1 {
            let b = burst(&api, &linked, 1, cfg.per_session, cfg.concurrency, 40).await?;
            let case = format!("{n} sessions, 1 chat each, burst of {}", b.sent);
            println!(
                "    {case}: {:.1} sends/s aggregate, API accepted {:.0}/s, duplicates {}",
                b.rate, b.accept_rate, b.duplicates
            );
            print_latency("accept -> received (queued)", &b.latencies);
            if b.duplicates > 0 {
                report
                    .notes
                    .push(format!("{case}: {} duplicate deliveries", b.duplicates));
            }
            report.sends.push(SendRow {
                case,
                messages: b.sent,
                rate: b.rate,
                accept_rate: b.accept_rate,
                p50: pct(&b.latencies, 0.5),
                p99: pct(&b.latencies, 0.99),
                target: if n >= 10 { ">= 200/s" } else { "" },
            });
        }

        let (stops, starts) = restart_each(&api, &ids).await?;
        println!("    stop all {n} session(s) at once, then start them one at a time:");
        print_latency(
            "stop -> stopped",
            &stops.iter().map(|s| s * 1000.0).collect::<Vec<_>>(),
        );
        print_latency(
            "start -> connected",
            &starts.iter().map(|s| s * 1000.0).collect::<Vec<_>>(),
        );
        report.starts.push(StartRow {
            case: format!("stop -> stopped, {n} stopped at once"),
            samples: stops,
            target: "",
        });
        report.starts.push(StartRow {
            case: format!("start -> connected from snapshot, one session at a time ({n} samples)"),
            samples: starts,
            target: "p50 <= 3 s",
        });

        if cfg.gateway_restart {
            let before = api.statuses().await?;
            let (took, leftovers) = gw.stop();
            println!(
                "    gateway SIGTERM -> exit {:.2} s, {leftovers} process(es) of its tree left behind",
                took.as_secs_f64()
            );
            if leftovers > 0 {
                report.notes.push(format!(
                    "{leftovers} process(es) outlived the gateway's graceful stop (killed by the bench)"
                ));
            }
            let t0 = Instant::now();
            let gw = Gw::start(dir.path(), n, &cfg.chromium, &cfg.isolation)?;
            let listening = t0.elapsed();
            let api = gw.api.clone();
            let mut connected_at: HashMap<String, f64> = HashMap::new();
            let mut restarting: BTreeSet<String> = BTreeSet::new();
            let deadline = t0 + Duration::from_secs(120);
            let mut first = true;
            loop {
                let all = api.statuses().await?;
                let now = t0.elapsed().as_secs_f64();
                if first {
                    let mut at_start: Vec<String> = all
                        .iter()
                        .map(|(id, (s, e))| format!("{id}={s}/epoch {e}"))
                        .collect();
                    at_start.sort();
                    println!("    right after the restart: {}", at_start.join(" "));
                    first = false;
                }
                // Back = `connected` under a new claim (higher epoch), after having been seen
                // in another status under it: the stored `connected` outlives the gateway stop
                // and even the new claim, until the new holder writes `starting`.
                for id in &ids {
                    let old = before.get(id).map_or(0, |(_, e)| *e);
                    let Some((s, epoch)) = all.get(id) else {
                        continue;
                    };
                    if *epoch <= old {
                        continue;
                    }
                    if s != "connected" {
                        restarting.insert(id.clone());
                    } else if restarting.contains(id) {
                        connected_at.entry(id.clone()).or_insert(now);
                    }
                }
                if connected_at.len() == ids.len() {
                    break;
                }
                ensure!(
                    Instant::now() < deadline,
                    "timed out after 120 s waiting for every session to connect after the gateway restart; {} of {} connected: {all:?}",
                    connected_at.len(),
                    ids.len()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let times = sorted(connected_at.into_values().collect());
            println!(
                "    gateway restart: listening after {:.2} s; sessions connected p50 {:.2} s, all {:.2} s",
                listening.as_secs_f64(),
                pct(&times, 0.5),
                pct(&times, 1.0)
            );
            report.starts.push(StartRow {
                case: format!("gateway restart (same data dir) -> each of {n} connected"),
                samples: times,
                target: "",
            });
            let (_, leftovers) = gw.stop();
            if leftovers > 0 {
                report.notes.push(format!(
                    "{leftovers} process(es) outlived the gateway's graceful stop (killed by the bench)"
                ));
            }
            return Ok(());
        }
    }
    let (_, leftovers) = gw.stop();
    if leftovers > 0 {
        report.notes.push(format!(
            "{leftovers} process(es) outlived the gateway's graceful stop (killed by the bench)"
        ));
    }
    Ok(())
}

fn summary(cfg: &Config, report: &Report, elapsed: Duration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### Sessions bench (`cargo bench -p openwa-cli --bench sessions`, {} cores, {:.0} s)\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        s,
        "| connected sessions | PSS total | PSS / session | (total - idle) / N | per added session vs previous row | USS total | idle gateway | processes | link all |"
    );
    let _ = writeln!(
        s,
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut previous: Option<&MemRow> = None;
    for r in &report.memory {
        let total = Mem::mb(r.linked.total_kb);
        let step = previous.map_or(String::new(), |p| {
            format!(
                "{:.0} MB",
                (total - Mem::mb(p.linked.total_kb)) / (r.n - p.n) as f64
            )
        });
        previous = Some(r);
        let _ = writeln!(
            s,
            "| {} | {:.0} MB | {:.0} MB | {:.0} MB | {step} | {:.0} MB | {:.0} MB | {} | {:.1} s |",
            r.n,
            total,
            total / r.n as f64,
            Mem::mb(r.linked.total_kb.saturating_sub(r.base.total_kb)) / r.n as f64,
            Mem::mb(r.linked.uss_kb),
            Mem::mb(r.base.total_kb),
            r.linked.processes,
            r.link.as_secs_f64()
        );
    }
    let _ = writeln!(
        s,
        "\n| sends (pacing off, {} API clients) | messages | sends/s | API accepts/s | accept -> received p50 | p99 | target |",
        cfg.concurrency
    );
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: | --- |");
    for r in &report.sends {
        let _ = writeln!(
            s,
            "| {} | {} | {:.1} | {:.0} | {:.0} ms | {:.0} ms | {} |",
            r.case, r.messages, r.rate, r.accept_rate, r.p50, r.p99, r.target
        );
    }
    if let Some((n, accept, receive)) = &report.latency {
        let _ = writeln!(
            s,
            "| 1 session, one at a time: request -> 202 | {n} | | | {:.1} ms | {:.1} ms | |",
            pct(accept, 0.5),
            pct(accept, 0.99)
        );
        let _ = writeln!(
            s,
            "| 1 session, one at a time: 202 -> received | {n} | | | {:.1} ms | {:.1} ms | p50 <= 50 ms |",
            pct(receive, 0.5),
            pct(receive, 0.99)
        );
    }
    let _ = writeln!(s, "\n| session stop / start | p50 | p90 | max | target |");
    let _ = writeln!(s, "| --- | ---: | ---: | ---: | --- |");
    for r in &report.starts {
        let _ = writeln!(
            s,
            "| {} | {:.2} s | {:.2} s | {:.2} s | {} |",
            r.case,
            pct(&r.samples, 0.5),
            pct(&r.samples, 0.9),
            pct(&r.samples, 1.0),
            r.target
        );
    }
    for note in &report.notes {
        let _ = writeln!(s, "\nNote: {note}");
    }
    s
}

async fn run(cfg: &Config) -> Result<()> {
    ensure!(
        Path::new(&cfg.chromium).exists(),
        "Chromium not found at {} (set CHROMIUM_BIN; scripts/test.sh installs it)",
        cfg.chromium
    );
    println!(
        "openwa sessions bench: {} isolation, {}, rounds {:?} (memory {:?}), multi-session round {}, release build, {} cores",
        cfg.isolation,
        cfg.chromium,
        cfg.rounds,
        cfg.memory_rounds,
        cfg.multi,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let started = Instant::now();
    let mut report = Report::default();
    for &n in &cfg.rounds {
        round(cfg, n, &mut report)
            .await
            .with_context(|| format!("round with {n} session(s)"))?;
    }
    println!("\n{}", summary(cfg, &report, started.elapsed()));
    Ok(())
}

fn main() {
    let cfg = Config::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(error) = runtime.block_on(run(&cfg)) {
        eprintln!("sessions bench failed: {error:#}");
        drop(runtime);
        std::process::exit(1);
    }
}

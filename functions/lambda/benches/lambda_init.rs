//! Cold start of the `openwa-api` Lambda binary: its stripped size, and the time from spawn to
//! ready (first `GET /runtime/invocation/next`) and to the first response, against a minimal
//! Lambda Runtime API emulator written here. Figures are printed, never asserted
//! (targets: ≤ 30 ms init, ≤ 15 MB binary).
//!
//! ```text
//! AWS_ENDPOINT_URL=http://127.0.0.1:60717 cargo bench -p openwa-lambda --bench lambda_init
//! ```
//!
//! - The binary is built with `cargo build --profile $OPENWA_BENCH_PROFILE` (default `lambda`,
//!   the root manifest's size-tuned profile) unless `OPENWA_API_BIN` names a built one.
//! - Each run serves two events: `GET /health` (no AWS call: the init figure) and, when
//!   `AWS_ENDPOINT_URL` is set (moto server, see `scripts/moto.sh`), `GET /v1/sessions` with an
//!   authorizer context on a freshly bootstrapped stack (the first DynamoDB round trips: rate
//!   limiter + query). `OPENWA_BENCH_RUNS` (default 10) runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const RUNTIME: &str = "/2018-06-01/runtime";

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let profile = std::env::var("OPENWA_BENCH_PROFILE").unwrap_or_else(|_| "lambda".into());
    let bin = std::env::var_os("OPENWA_API_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| build(manifest, &profile));
    let runs: usize = std::env::var("OPENWA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);

    report_size(&bin);

    let aws = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty());
    let stack = aws.as_ref().map(|_| bootstrap());
    if aws.is_none() {
        println!("AWS_ENDPOINT_URL unset: only GET /health is timed (no DynamoDB invocation)");
    }
    let mut events = vec![("GET /health", fixture(manifest, "apigw-v2-health.json"))];
    if stack.is_some() {
        events.push(("GET /v1/sessions (DynamoDB)", list_sessions_event(manifest)));
    }

    let mut samples: Vec<Run> = Vec::new();
    for _ in 0..runs {
        samples.push(run_once(&bin, &events, aws.as_deref(), stack.as_ref()));
    }

    println!("\n{} runs of {}:", runs, bin.display());
    print_stat(
        "spawn -> first /next (init)",
        samples.iter().map(|r| r.ready).collect(),
    );
    for (i, (name, _)) in events.iter().enumerate() {
        print_stat(
            &format!("spawn -> response {} [{name}]", i + 1),
            samples.iter().map(|r| r.responses[i]).collect(),
        );
        let invoke: Vec<Duration> = samples.iter().map(|r| r.invocations[i]).collect();
        print_stat(&format!("  invocation {} alone", i + 1), invoke);
    }
    let rss: Vec<u64> = samples.iter().filter_map(|r| r.peak_rss_kib).collect();
    if let Some(max) = rss.iter().max() {
        println!(
            "  peak RSS after the invocations: {:.1} MiB",
            *max as f64 / 1024.0
        );
    }
    println!("targets: init <= 30 ms, binary <= 15 MB");
}

/// Builds the binary and returns its path.
fn build(manifest: &Path, profile: &str) -> PathBuf {
    eprintln!("building openwa-api with --profile {profile} …");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--profile",
            profile,
            "-p",
            "openwa-lambda",
            "--bin",
            "openwa-api",
        ])
        .current_dir(manifest)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building openwa-api failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"));
    let dir = if profile == "dev" { "debug" } else { profile };
    target.join(dir).join("openwa-api")
}

/// Size as built, after `strip`, and the sections (`size`).
fn report_size(bin: &Path) {
    let built = std::fs::metadata(bin).expect("binary exists").len();
    let stripped_path =
        std::env::temp_dir().join(format!("openwa-api-stripped-{}", std::process::id()));
    std::fs::copy(bin, &stripped_path).expect("copy");
    let stripped = Command::new("strip")
        .arg(&stripped_path)
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| std::fs::metadata(&stripped_path).expect("stripped").len());
    println!("binary {}", bin.display());
    println!("  as built: {:.2} MB ({built} bytes)", built as f64 / 1e6);
    match stripped {
        Some(n) => println!("  stripped: {:.2} MB ({n} bytes)", n as f64 / 1e6),
        None => println!("  stripped: (strip not available)"),
    }
    if let Ok(out) = Command::new("size").arg(&stripped_path).output() {
        print!(
            "  size(1):\n{}",
            indent(&String::from_utf8_lossy(&out.stdout))
        );
    }
    let _ = std::fs::remove_file(stripped_path);
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn fixture(manifest: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(manifest.join("tests/data").join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

/// `GET /v1/sessions` as the authorizer would pass it on.
fn list_sessions_event(manifest: &Path) -> Value {
    let mut event = fixture(manifest, "apigw-v2-list-sessions-without-authorizer.json");
    event["requestContext"]["authorizer"] =
        fixture(manifest, "apigw-v2-create-session.json")["requestContext"]["authorizer"].clone();
    event
}

/// A fresh stack on the endpoint; the child gets its names.
fn bootstrap() -> openwa_aws::AwsSettings {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async { openwa_aws::testing::fresh_stack("bench").await.settings })
}

struct Run {
    ready: Duration,
    /// Spawn to each `/response`.
    responses: Vec<Duration>,
    /// Each event's `/next` answer to its `/response`.
    invocations: Vec<Duration>,
    peak_rss_kib: Option<u64>,
}

/// What the emulator saw, with the time it saw it.
enum Seen {
    Next(Instant),
    Response(Instant, String, String),
    Error(String, String),
}

/// One cold start: spawn, serve the events, kill.
fn run_once(
    bin: &Path,
    events: &[(&str, Value)],
    endpoint: Option<&str>,
    stack: Option<&openwa_aws::AwsSettings>,
) -> Run {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    let bodies: Vec<String> = events.iter().map(|(_, e)| e.to_string()).collect();
    std::thread::spawn(move || emulate(listener, bodies, tx));

    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "openwa-api")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/openwa-api")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/26/[$LATEST]bench")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", url);
    }
    if let Some(s) = stack {
        cmd.env("OPENWA_TABLE", &s.table)
            .env("OPENWA_BUCKET", &s.bucket)
            .env("OPENWA_QUEUE_PREFIX", &s.queue_prefix)
            .env("OPENWA_SECRET_PREFIX", &s.secret_prefix);
    }

    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn openwa-api");
    let mut ready = None;
    let mut nexts = Vec::new();
    let mut responses = Vec::new();
    while responses.len() < events.len() {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Seen::Next(at)) => {
                ready.get_or_insert(at - start);
                nexts.push(at);
            }
            Ok(Seen::Response(at, id, body)) => {
                let i = responses.len();
                let status = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v["statusCode"].as_u64());
                if status != Some(200) {
                    eprintln!("event {} ({id}) answered {status:?}: {body}", i + 1);
                }
                responses.push(at);
            }
            Ok(Seen::Error(path, body)) => {
                let _ = child.kill();
                panic!("the function reported an error at {path}: {body}");
            }
            Err(_) => {
                let _ = child.kill();
                panic!("no answer from openwa-api within 30 s");
            }
        }
    }
    let peak_rss_kib = peak_rss(child.id());
    let _ = child.kill();
    let _ = child.wait();
    Run {
        ready: ready.expect("a /next"),
        responses: responses.iter().map(|at| *at - start).collect(),
        invocations: responses
            .iter()
            .zip(&nexts)
            .map(|(resp, next)| *resp - *next)
            .collect(),
        peak_rss_kib,
    }
}

fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The Runtime API: hands out `events` one per `/next`, records `/response` and `/error`
/// posts, and leaves a `/next` beyond the last event unanswered (the function then waits, as
/// in a frozen sandbox).
fn emulate(listener: TcpListener, events: Vec<String>, tx: mpsc::Sender<Seen>) {
    let events = std::sync::Arc::new(std::sync::Mutex::new(events.into_iter().enumerate()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let (events, tx) = (events.clone(), tx.clone());
        std::thread::spawn(move || {
            let _ = serve(stream, &events, &tx);
        });
    }
}

type Events = std::sync::Mutex<std::iter::Enumerate<std::vec::IntoIter<String>>>;

fn serve(stream: TcpStream, events: &Events, tx: &mpsc::Sender<Seen>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let arrived = Instant::now();
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body = String::from_utf8_lossy(&body).into_owned();

        if method == "GET" && path == format!("{RUNTIME}/invocation/next") {
            let next = events.lock().expect("events").next();
            let Some((i, event)) = next else {
                // Park: the function waits here until it is killed.
                let _ = reader.read(&mut [0u8; 1]);
                return Ok(());
            };
            let _ = tx.send(Seen::Next(arrived));
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                 lambda-runtime-aws-request-id: req-{i}\r\n\
                 lambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:openwa-api\r\n\
                 lambda-runtime-trace-id: Root=1-6745a1f2-3c5d7e9f1a2b3c4d5e6f7a8b;Parent=0123456789abcdef;Sampled=0\r\n\
                 content-length: {}\r\n\r\n",
                event.len()
            );
            writer.write_all(head.as_bytes())?;
            writer.write_all(event.as_bytes())?;
        } else if method == "POST" && path.ends_with("/response") {
            let id = path.rsplit('/').nth(1).unwrap_or("").to_owned();
            let _ = tx.send(Seen::Response(arrived, id, body));
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")?;
        } else {
            let _ = tx.send(Seen::Error(path, body));
            writer.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}")?;
        }
        writer.flush()?;
    }
}

fn print_stat(name: &str, mut values: Vec<Duration>) {
    values.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (min, max) = (values[0], values[values.len() - 1]);
    let median = values[values.len() / 2];
    println!(
        "  {name}: median {:.1} ms (min {:.1}, max {:.1})",
        ms(median),
        ms(min),
        ms(max)
    );
}

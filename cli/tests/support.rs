//! Spawns the real `openwa` binary for tests and benches.

#![allow(dead_code)] // each test binary uses a different part of this helper

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_openwa");

/// A running `openwa up` and what it printed at start.
pub struct Gateway {
    pub child: Child,
    pub base_url: String,
    pub banner: Vec<String>,
    pub data_dir: PathBuf,
}

impl Gateway {
    /// Starts `openwa up` (API only: no runner) on a free loopback port with `data_dir` and
    /// extra env.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Gateway {
        Self::start_with_args(data_dir, &["--runner-capacity", "0"], env)
    }

    /// Starts `openwa up` with extra arguments.
    pub fn start_with_args(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        Self::spawn(data_dir, args, env, Stdio::inherit())
    }

    /// Starts `openwa up` (API only) with its log (stderr) written to `log`.
    pub fn start_logging_to(data_dir: &Path, log: std::fs::File, env: &[(&str, &str)]) -> Gateway {
        Self::spawn(data_dir, &["--runner-capacity", "0"], env, Stdio::from(log))
    }

    fn spawn(data_dir: &Path, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Gateway {
        let mut cmd = Command::new(BIN);
        cmd.arg("up")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args)
            .env(
                "OPENWA_LOG",
                std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("OPENWA_ADMIN_KEY")
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn openwa");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let base_url = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("openwa printed its address within 60 s");
            banner.push(line.clone());
            if let Some(rest) = line.strip_prefix("openwa is listening on ") {
                break rest.trim().to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Gateway {
            child,
            base_url,
            banner,
            data_dir: data_dir.to_owned(),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "openwa did not stop within 40 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs an admin subcommand and returns its stdout (panics on failure).
pub fn openwa(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("OPENWA_LOG", "warn")
        .output()
        .expect("run openwa");
    assert!(
        out.status.success(),
        "openwa {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The public API of a running gateway, as one key sees it.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status();
        let json = res.json().await.unwrap_or(Value::Null);
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Polls `path` until `check` accepts the answer.
    pub async fn wait_for(
        &self,
        what: &str,
        path: &str,
        within: Duration,
        check: impl Fn(StatusCode, &Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, json) = self.get(path).await;
            if check(status, &json) {
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last answer {status}: {json}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

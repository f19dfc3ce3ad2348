//! Starting and ending the Chromium process of one session.
//!
//! Chromium is spawned by us (not by chromiumoxide) so that:
//! - it runs in **its own process group**: stopping or killing the session reaches every
//!   renderer and helper, and a leftover tree can be reaped as a whole;
//! - a Chromium orphaned by a SIGKILLed runner dies within seconds (a watchdog shell in its
//!   group kills the group once the runner is gone), and a leftover one is found again
//!   (`SingletonLock`, or a `/proc` scan for its `--user-data-dir`) and killed before the
//!   profile is reused;
//! - the DevTools address is read from the profile's `DevToolsActivePort` file instead of
//!   parsing stderr.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::ChromiumError;

/// How often the orphan watchdog checks that the runner is still alive.
const WATCHDOG_POLL_S: u32 = 2;

/// Flags every session's Chromium gets (besides the profile, proxy and debugging port).
const BASE_FLAGS: &[&str] = &[
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
];

/// How to launch one Chromium.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    pub binary: PathBuf,
    /// `Some("new")` adds `--headless=new`; `None` for `chromium-headless-shell`, which is
    /// headless by construction.
    pub headless: Option<String>,
    pub profile_dir: PathBuf,
    pub proxy: Option<String>,
    pub extra_args: Vec<String>,
    pub timeout: Duration,
}

/// A running Chromium: the child process and the DevTools WebSocket address.
#[derive(Debug)]
pub struct ChromiumProcess {
    pub child: Child,
    pub pid: u32,
    pub ws_url: String,
    /// The last lines Chromium wrote to stderr (for error reports).
    pub stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

/// Launches Chromium on `spec.profile_dir`, after reaping a leftover Chromium on that profile.
pub async fn launch(spec: &LaunchSpec) -> Result<ChromiumProcess, ChromiumError> {
    if !spec.binary.exists() {
        return Err(ChromiumError::Launch(format!(
            "Chromium binary not found at {}",
            spec.binary.display()
        )));
    }
    std::fs::create_dir_all(&spec.profile_dir).map_err(|e| {
        ChromiumError::Launch(format!(
            "cannot create profile dir {}: {e}",
            spec.profile_dir.display()
        ))
    })?;
    reap_stale(&spec.profile_dir).await;
    let port_file = spec.profile_dir.join("DevToolsActivePort");
    let _ = std::fs::remove_file(&port_file);

    let mut cmd = Command::new(&spec.binary);
    if let Some(mode) = &spec.headless {
        cmd.arg(format!("--headless={mode}"));
    }
    cmd.args(BASE_FLAGS)
        .arg(format!("--user-data-dir={}", spec.profile_dir.display()))
        .arg("--remote-debugging-port=0");
    if let Some(proxy) = &spec.proxy {
        cmd.arg(format!("--proxy-server={proxy}"));
    }
    cmd.args(&spec.extra_args)
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| {
        ChromiumError::Launch(format!("cannot start {}: {e}", spec.binary.display()))
    })?;
    let pid = child
        .id()
        .ok_or_else(|| ChromiumError::Launch("Chromium exited at once".into()))?;
    spawn_watchdog(pid);
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    if let Some(stderr) = child.stderr.take() {
        // Always drain stderr: a full pipe would block Chromium.
        let tail = stderr_tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == 20 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
    }

    let deadline = tokio::time::Instant::now() + spec.timeout;
    let ws_url = loop {
        if let Some(url) = read_port_file(&port_file) {
            break url;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let tail = tail_text(&stderr_tail);
            return Err(ChromiumError::Launch(format!(
                "Chromium exited with {status} before DevTools was up: {tail}"
            )));
        }
        if tokio::time::Instant::now() > deadline {
            kill_group(pid);
            let tail = tail_text(&stderr_tail);
            return Err(ChromiumError::Launch(format!(
                "DevTools did not come up within {:?}: {tail}",
                spec.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    Ok(ChromiumProcess {
        child,
        pid,
        ws_url,
        stderr_tail,
    })
}

/// Starts a tiny shell in Chromium's process group that kills the group once this process
/// is gone: if the runner is SIGKILLed, its browsers follow within [`WATCHDOG_POLL_S`] seconds
/// instead of running on as orphans. (A parent-death signal would need `unsafe` `pre_exec`.)
/// Stopping the session kills the group, the watchdog included.
fn spawn_watchdog(chromium_pid: u32) {
    let me = std::process::id();
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep {WATCHDOG_POLL_S}; done; kill -9 -{chromium_pid}"
    );
    let Ok(pgid) = i32::try_from(chromium_pid) else {
        return;
    };
    let spawned = Command::new("/bin/sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(pgid)
        .spawn();
    match spawned {
        // Reap it when it ends (with the group), so it leaves no zombie.
        Ok(mut watchdog) => drop(tokio::spawn(async move { watchdog.wait().await })),
        Err(error) => {
            tracing::warn!(%error, "no orphan watchdog for Chromium; a killed runner may leave it running")
        }
    }
}

/// The last stderr lines, joined.
pub fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let t = tail.lock().unwrap_or_else(|p| p.into_inner());
    t.iter().cloned().collect::<Vec<_>>().join(" | ")
}

/// `DevToolsActivePort` holds the port, then the browser target path.
fn read_port_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let port: u16 = lines.next()?.trim().parse().ok()?;
    let target = lines.next()?.trim();
    target
        .starts_with("/devtools/browser/")
        .then(|| format!("ws://127.0.0.1:{port}{target}"))
}

/// SIGKILLs the process group led by `pid` (our Chromium leads its own group).
pub fn kill_group(pid: u32) {
    if let Some(pid) = to_pid(pid) {
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

fn to_pid(pid: u32) -> Option<Pid> {
    Pid::from_raw(i32::try_from(pid).ok()?)
}

/// Kills a Chromium left running on `profile` (e.g. after the runner was SIGKILLed) and
/// removes its singleton files, so the new browser can take the profile. Two ways to find it:
/// the profile's `SingletonLock` (`<host>-<pid>`, full Chromium), and a scan of `/proc` for a
/// browser process started on that profile (`chromium-headless-shell` takes no lock, yet two
/// browsers on one profile corrupt its IndexedDB).
pub async fn reap_stale(profile: &Path) {
    let from_lock = std::fs::read_link(profile.join("SingletonLock"))
        .ok()
        .and_then(|t| {
            t.to_string_lossy()
                .rsplit_once('-')
                .and_then(|(_, pid)| pid.parse::<u32>().ok())
        });
    let mut stale: BTreeSet<u32> = from_lock.into_iter().collect();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        stale.extend(dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()));
    }
    stale.retain(|pid| *pid != std::process::id() && is_browser_on(*pid, profile));
    for &pid in &stale {
        tracing::warn!(pid, profile = %profile.display(), "killing a leftover Chromium that still holds the profile");
        if let Some(p) = to_pid(pid) {
            // Our Chromium leads its own group; kill the group, and the process in any case.
            if process_group_of(pid) == Some(pid) {
                let _ = kill_process_group(p, Signal::KILL);
            }
            let _ = kill_process(p, Signal::KILL);
        }
    }
    for _ in 0..100 {
        if stale
            .iter()
            .all(|pid| !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(*pid))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for name in ["SingletonLock", "SingletonSocket", "SingletonCookie"] {
        let _ = std::fs::remove_file(profile.join(name));
    }
}

/// Whether `pid` is a Chromium browser process (not a renderer or helper) started on
/// `profile`, checked on its command line, so a recycled pid of an unrelated process is never
/// killed.
fn is_browser_on(pid: u32, profile: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let want = format!("--user-data-dir={}", profile.display());
    let mut args = cmdline.split(|b| *b == 0);
    let on_profile = args.clone().any(|arg| arg == want.as_bytes());
    on_profile && !args.any(|arg| arg.starts_with(b"--type="))
}

/// `(ppid, pgid, state)` from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(u32, u32, char)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((ppid, pgid, state))
}

fn process_group_of(pid: u32) -> Option<u32> {
    stat(pid).map(|(_, pgid, _)| pgid)
}

fn is_zombie(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, _, s)| s == 'Z')
}

/// `root` and every live process descending from it or in its process group.
pub fn process_tree(root: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![root];
    };
    let procs: Vec<(u32, u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            stat(pid)
                .filter(|(_, _, s)| *s != 'Z')
                .map(|(ppid, pgid, _)| (pid, ppid, pgid))
        })
        .collect();
    let mut tree = BTreeSet::from([root]);
    loop {
        let before = tree.len();
        for (pid, ppid, pgid) in &procs {
            if tree.contains(ppid) || *pgid == root {
                tree.insert(*pid);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    tree.retain(|pid| *pid == root || procs.iter().any(|(p, _, _)| p == pid));
    tree.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devtools_port_file_gives_the_browser_websocket() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("DevToolsActivePort");
        std::fs::write(&f, "40123\n/devtools/browser/abc-def\n").unwrap();
        assert_eq!(
            read_port_file(&f).as_deref(),
            Some("ws://127.0.0.1:40123/devtools/browser/abc-def")
        );
        std::fs::write(&f, "401").unwrap();
        assert_eq!(read_port_file(&f), None);
    }

    #[test]
    fn the_process_tree_of_this_process_contains_itself() {
        let me = std::process::id();
        assert!(process_tree(me).contains(&me));
        assert!(stat(me).is_some());
    }
}

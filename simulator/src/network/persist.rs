//! Optional persistence of the network to a state file ([`crate::SimulatorConfig::state_file`]).
//!
//! The file is JSON, versioned (`{"version":1, ...}`) and private (mode 0600). It holds the
//! persistent records only: accounts (LIDs, push names, contacts, the next device number),
//! linked devices (secret token, client id, pending deliveries), groups and message history —
//! never live page state (pages, `connected_page`, held-down drops), the connection log or
//! faults. Each chat keeps its last [`MAX_MESSAGES_PER_CHAT`] messages in the file.
//!
//! Mutations call [`State::touch`]; a background [`Persister`] wakes on it, waits
//! [`DEBOUNCE`] so bursts coalesce, encodes the records under the lock (CPU only) and writes them
//! outside it (temp file + `fsync` + rename, so a crash leaves the old or the new file, never a
//! torn one). [`Persister::finish`] makes the final flush on shutdown.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Network;
use super::state::{Account, Device, Group, State, StoredMsg};
use crate::error::SimError;

/// The format version this simulator reads and writes.
pub const VERSION: u32 = 1;
/// Messages kept per chat in the file (the newest ones); older ones are not saved.
pub const MAX_MESSAGES_PER_CHAT: usize = 1000;
/// How long the writer waits after a change before saving, so bursts cost one write.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Serialize, Deserialize)]
struct StateFile<'a> {
    version: u32,
    saved_at_ms: u64,
    /// The port the simulator last listened on: reused when the configured port is 0, so the
    /// page's origin (and the login in its per-origin storage) stays the same.
    #[serde(default)]
    port: Option<u16>,
    accounts: Vec<AccountRec<'a>>,
    groups: Vec<Cow<'a, Group>>,
    /// Oldest first.
    messages: Vec<Cow<'a, StoredMsg>>,
}

#[derive(Serialize, Deserialize)]
struct AccountRec<'a> {
    phone: Cow<'a, str>,
    pushname: Cow<'a, str>,
    lid: Cow<'a, str>,
    contacts: Cow<'a, BTreeMap<String, String>>,
    next_device: u32,
    devices: Vec<DeviceRec<'a>>,
}

#[derive(Serialize, Deserialize)]
struct DeviceRec<'a> {
    id: u32,
    token: Cow<'a, str>,
    client_id: Cow<'a, str>,
    /// Inner ids of messages waiting for this device's next connect.
    pending: Cow<'a, [String]>,
}

const NOT_OURS: &str = "not a simulator state file (no \"version\" field)";

#[derive(Deserialize)]
struct Header {
    version: Option<u32>,
}

fn file_error(path: &Path, reason: impl std::fmt::Display) -> SimError {
    SimError::StateFile {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Encode the persistent records of `st` (run under the lock: CPU only, no I/O).
pub(crate) fn encode(st: &State, port: u16) -> Result<Vec<u8>, serde_json::Error> {
    let accounts = st
        .accounts
        .values()
        .map(|a| AccountRec {
            phone: Cow::Borrowed(&a.phone),
            pushname: Cow::Borrowed(&a.pushname),
            lid: Cow::Borrowed(&a.lid),
            contacts: Cow::Borrowed(&a.contacts),
            next_device: a.next_device,
            devices: a
                .devices
                .values()
                .map(|d| DeviceRec {
                    id: d.id,
                    token: Cow::Borrowed(&d.token),
                    client_id: Cow::Borrowed(&d.client_id),
                    pending: Cow::Borrowed(&d.pending),
                })
                .collect(),
        })
        .collect();
    // Keep the newest MAX_MESSAGES_PER_CHAT of each chat.
    let mut left: HashMap<&str, usize> = HashMap::new();
    for m in &st.messages {
        *left.entry(m.chat.as_str()).or_default() += 1;
    }
    let messages = st
        .messages
        .iter()
        .filter(|m| {
            let n = left.get_mut(m.chat.as_str()).expect("counted above");
            *n -= 1;
            *n < MAX_MESSAGES_PER_CHAT
        })
        .map(Cow::Borrowed)
        .collect();
    serde_json::to_vec(&StateFile {
        version: VERSION,
        saved_at_ms: crate::util::now_ms() as u64,
        port: Some(port),
        accounts,
        groups: st.groups.values().map(Cow::Borrowed).collect(),
        messages,
    })
}

/// A loaded state file.
#[derive(Debug)]
pub struct Loaded {
    /// The network, with no pages and every device offline.
    pub state: State,
    /// The port the simulator last listened on, if recorded.
    pub port: Option<u16>,
}

/// Decode a state file's bytes.
fn decode(bytes: &[u8]) -> Result<Loaded, String> {
    let header: Header = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => NOT_OURS.to_owned(),
        _ => format!("corrupt: not valid JSON ({e})"),
    })?;
    match header.version {
        Some(VERSION) => {}
        Some(v) => {
            return Err(format!(
                "unsupported version {v} (this simulator reads version {VERSION})"
            ));
        }
        None => return Err(NOT_OURS.to_owned()),
    }
    let file: StateFile<'static> =
        serde_json::from_slice(bytes).map_err(|e| format!("corrupt: {e}"))?;
    let mut st = State::default();
    for m in file.messages {
        let m = m.into_owned();
        if !st.msg_index.contains_key(&m.id) {
            st.msg_index.insert(m.id.clone(), st.messages.len());
            st.messages.push(m);
        }
    }
    for a in file.accounts {
        let mut devices = BTreeMap::new();
        for d in a.devices {
            let mut pending = d.pending.into_owned();
            pending.retain(|id| st.msg_index.contains_key(id));
            devices.insert(
                d.id,
                Device {
                    id: d.id,
                    token: d.token.into_owned(),
                    client_id: d.client_id.into_owned(),
                    connected_page: None,
                    held_offline: false,
                    pending,
                },
            );
        }
        // Device numbers never repeat, even if the counter was edited by hand.
        let next_device = devices
            .keys()
            .map(|id| id + 1)
            .fold(a.next_device.max(1), u32::max);
        let acc = Account {
            phone: a.phone.into_owned(),
            pushname: a.pushname.into_owned(),
            lid: a.lid.into_owned(),
            contacts: a.contacts.into_owned(),
            devices,
            next_device,
        };
        st.lids.insert(acc.lid.clone(), acc.phone.clone());
        st.accounts.insert(acc.phone.clone(), acc);
    }
    for g in file.groups {
        let g = g.into_owned();
        st.groups.insert(g.id.clone(), g);
    }
    Ok(Loaded {
        state: st,
        port: file.port,
    })
}

/// Load the network from `path`: `Ok(None)` if the file does not exist, an error naming the
/// file if it cannot be read, is corrupt or has an unknown version.
pub fn load(path: &Path) -> Result<Option<Loaded>, SimError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, e)),
    };
    decode(&bytes)
        .map(Some)
        .map_err(|reason| file_error(path, reason))
}

/// Write `bytes` to `path` atomically: a private temp file next to it, `fsync`, rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&tmp)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Save now if anything changed since the last save. The lock is held only while encoding.
async fn flush(net: &Network, path: &Path, port: u16) -> Result<(), SimError> {
    let bytes = {
        let mut st = net.lock();
        if !st.dirty {
            return Ok(());
        }
        st.dirty = false;
        encode(&st, port).map_err(|e| file_error(path, e))?
    };
    let target = path.to_path_buf();
    let written = tokio::task::spawn_blocking(move || write_atomic(&target, &bytes)).await;
    let result = match written {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => file_error(path, format!("cannot write: {e}")),
        Err(e) => file_error(path, format!("writer failed: {e}")),
    };
    // Retry with the next change or the final flush.
    net.lock().dirty = true;
    Err(result)
}

/// The background writer of one state file.
#[derive(Debug)]
pub struct Persister {
    path: PathBuf,
    stop: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Persister {
    /// Save once now (so an unwritable path fails the start) and keep saving after changes.
    /// `port` is the bound port, recorded for the next start.
    pub async fn start(net: &Arc<Network>, path: &Path, port: u16) -> Result<Self, SimError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| file_error(path, format!("cannot create its directory: {e}")))?;
        }
        let wake = {
            let mut st = net.lock();
            st.dirty = true;
            Arc::clone(&st.wake)
        };
        flush(net, path, port).await?;
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            Arc::clone(net),
            path.to_path_buf(),
            port,
            wake,
            Arc::clone(&stop),
        ));
        Ok(Self {
            path: path.to_path_buf(),
            stop,
            task,
        })
    }

    /// The file this writer keeps.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop the writer after a final flush of pending changes.
    pub async fn finish(self) {
        self.stop.notify_one();
        if tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .is_err()
        {
            tracing::error!(path = %self.path.display(), "state file writer did not finish");
        }
    }
}

async fn run(net: Arc<Network>, path: PathBuf, port: u16, wake: Arc<Notify>, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = stop.notified() => break,
        }
        tokio::select! {
            () = tokio::time::sleep(DEBOUNCE) => {}
            () = stop.notified() => break,
        }
        if let Err(error) = flush(&net, &path, port).await {
            tracing::warn!(%error, "saving the simulator state failed; retrying on the next change");
        }
    }
    if let Err(error) = flush(&net, &path, port).await {
        tracing::error!(%error, "final save of the simulator state failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert!(
            decode(br#"{"version":2}"#)
                .unwrap_err()
                .contains("version 2")
        );
        assert!(decode(b"{}").unwrap_err().contains("version"));
        assert!(decode(b"nope").unwrap_err().contains("JSON"));
        assert!(
            decode(br#"{"version":1,"accounts":3}"#)
                .unwrap_err()
                .contains("corrupt")
        );
    }

    #[test]
    fn history_is_capped_per_chat_and_pending_ids_follow() {
        let mut st = State::default();
        for i in 0..(MAX_MESSAGES_PER_CHAT + 5) {
            let m = StoredMsg {
                id: format!("A{i}"),
                from: "1".into(),
                chat: "2@c.us".into(),
                kind: "chat".into(),
                t: 0,
                ack: 1,
                props: Default::default(),
                read_by: Default::default(),
            };
            st.msg_index.insert(m.id.clone(), st.messages.len());
            st.messages.push(m);
        }
        let mut other = st.messages[0].clone();
        other.id = "B".into();
        other.chat = "3@c.us".into();
        st.messages.push(other);
        let back = decode(&encode(&st, 8090).unwrap()).unwrap();
        assert_eq!(back.port, Some(8090));
        let back = back.state;
        assert_eq!(back.messages.len(), MAX_MESSAGES_PER_CHAT + 1);
        assert_eq!(back.messages[0].id, "A5");
        assert_eq!(back.msg_index["B"], MAX_MESSAGES_PER_CHAT);
    }
}

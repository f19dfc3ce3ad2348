//! The network's in-memory records: accounts, linked devices, pages, groups, messages and the
//! connection log. Pure data; the behaviour lives in the sibling modules.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use crate::protocol::ServerMsg;

/// A server-assigned id of one live page connection (one page load).
pub type PageId = u64;

/// A simulated WhatsApp account: a phone with a number.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    /// Digits only, e.g. `4915112345678`.
    pub phone: String,
    /// The name shown to others.
    pub pushname: String,
    /// Digits of the account's linked id (`<lid>@lid`).
    pub lid: String,
    /// Phone numbers saved as contacts (name per number).
    pub contacts: BTreeMap<String, String>,
    /// Linked devices, by device number (the phone itself is device 0 and not listed).
    pub devices: BTreeMap<u32, Device>,
    /// Next device number to hand out.
    #[serde(skip)]
    pub next_device: u32,
}

impl Account {
    /// The account's user id in chat form.
    pub fn jid(&self) -> String {
        format!("{}@c.us", self.phone)
    }
}

/// A linked device (a paired gateway page's login record, as known by the network).
#[derive(Debug, Clone, Serialize)]
pub struct Device {
    /// Device number within the account (1..).
    pub id: u32,
    /// Secret the page presents to come back without a scan.
    #[serde(skip)]
    pub token: String,
    /// The browser profile's client id that paired this device.
    pub client_id: String,
    /// The page currently connected as this device, if any.
    pub connected_page: Option<PageId>,
    /// While set, reconnect attempts are refused (a dropped connection that is held down).
    pub held_offline: bool,
    /// Inner ids of messages that arrived while no page was connected as this device; they are
    /// delivered as new messages (`isNewMsg: true`) right after the next connect.
    #[serde(skip)]
    pub pending: Vec<String>,
}

/// Where a page is in its life, as the network sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PagePhase {
    /// Connected, hello not yet received.
    Opening,
    /// Showing QR refs.
    Unpaired { refs_issued: u32 },
    /// Out of refs until `refreshQR`.
    UnpairedIdle,
    /// Scanned; waiting to become connected.
    Pairing { phone: String },
    /// Logged in and connected as `phone`'s device `device`.
    Connected { phone: String, device: u32 },
    /// Logged in but another page holds the device.
    Conflict { phone: String, device: u32 },
}

/// One live page connection.
#[derive(Debug)]
pub struct Page {
    /// Server-assigned id.
    pub id: PageId,
    /// The browser profile's stable id (kept in Local Storage).
    pub client_id: String,
    /// Public keys the page put into its QR payload.
    pub keys: [String; 3],
    /// The current QR ref, while unpaired.
    pub qr_ref: Option<String>,
    /// The page's phase.
    pub phase: PagePhase,
    /// Bumped whenever a new QR round starts, so stale rotation tasks stop.
    pub qr_round: u64,
    /// An outstanding pairing code (8 chars) and the phone it was requested for.
    pub pairing_code: Option<(String, String)>,
    /// Channel to the page's WebSocket writer.
    pub tx: UnboundedSender<ServerMsg>,
}

impl Page {
    /// The QR payload: `ref,noiseKeyB64,identityKeyB64,advSecretB64,platform`.
    pub fn qr_payload(&self) -> Option<String> {
        let r = self.qr_ref.as_ref()?;
        Some(format!(
            "{r},{},{},{},{}",
            self.keys[0], self.keys[1], self.keys[2], PLATFORM
        ))
    }
}

/// The platform field of QR payloads this simulator produces.
pub const PLATFORM: &str = "1";

/// A group chat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Group {
    /// `<digits>@g.us`.
    pub id: String,
    /// Group subject.
    pub subject: String,
    /// Creator's phone.
    pub owner: String,
    /// Participant phones -> is admin.
    pub participants: BTreeMap<String, bool>,
    /// Creation time (unix seconds).
    pub creation: i64,
}

/// One message as stored by the network (sender-neutral; views are made per account).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMsg {
    /// Inner id (upper-case hex).
    pub id: String,
    /// Sender phone.
    pub from: String,
    /// Chat: the recipient's user jid for 1:1, the group jid for groups.
    pub chat: String,
    /// WhatsApp message type (`chat`, `image`, ...).
    pub kind: String,
    /// Unix seconds.
    pub t: i64,
    /// Highest ack reached.
    pub ack: i8,
    /// Type-specific attributes in WhatsApp Web's names (`body`, `caption`, `lat`, ...).
    pub props: serde_json::Map<String, Value>,
    /// Recipient phones that have read the message.
    pub read_by: BTreeSet<String>,
}

/// A connection log entry.
#[derive(Debug, Clone, Serialize)]
pub struct ConnEvent {
    /// Monotonic sequence number.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u128,
    /// `connected`, `disconnected`, `conflict`, `paired`, `logged_out`.
    pub event: String,
    pub page_id: PageId,
    pub client_id: String,
    pub phone: String,
    pub device: u32,
}

/// Fault injection switches (set through `/control/faults`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Module names made unresolvable, mapped to the name they are reachable under now
    /// (empty string: removed).
    pub renamed_modules: BTreeMap<String, String>,
    /// Extra delay before acks 2+ are sent.
    pub ack_delay_ms: u64,
    /// Acks 2+ are never sent.
    pub lose_acks: bool,
    /// The page reloads itself right after it receives a message send call.
    pub reload_on_send: bool,
    /// Pages reload themselves shortly after every boot.
    pub reload_loop: bool,
    /// Pages are told their version is deprecated.
    pub deprecated_version: bool,
}

/// The whole mutable state behind the network's lock.
#[derive(Debug, Default)]
pub struct State {
    pub accounts: BTreeMap<String, Account>,
    /// lid digits -> phone.
    pub lids: HashMap<String, String>,
    pub pages: BTreeMap<PageId, Page>,
    pub groups: BTreeMap<String, Group>,
    pub messages: Vec<StoredMsg>,
    /// Inner id -> index in `messages`.
    pub msg_index: HashMap<String, usize>,
    pub conn_log: Vec<ConnEvent>,
    pub faults: Faults,
    pub next_page: PageId,
    /// Set by [`State::touch`] when persistent records changed since the last save.
    pub dirty: bool,
    /// Wakes the state-file writer (see [`super::persist`]); unused without a state file.
    pub wake: Arc<Notify>,
}

impl State {
    /// Mark the persistent records (accounts, devices, groups, messages) as changed, so the
    /// state-file writer saves them soon. Live page state never needs this.
    pub fn touch(&mut self) {
        self.dirty = true;
        self.wake.notify_one();
    }

    /// Append a connection log entry.
    pub fn log(&mut self, event: &str, page: &Page, phone: &str, device: u32) {
        let seq = self.conn_log.len() as u64 + 1;
        self.conn_log.push(ConnEvent {
            seq,
            at_ms: crate::util::now_ms(),
            event: event.to_owned(),
            page_id: page.id,
            client_id: page.client_id.clone(),
            phone: phone.to_owned(),
            device,
        });
    }

    /// Send a message to every connected page of `phone` (optionally skipping one page).
    pub fn broadcast(&self, phone: &str, skip: Option<PageId>, msg: &ServerMsg) {
        let Some(acc) = self.accounts.get(phone) else {
            return;
        };
        for dev in acc.devices.values() {
            if let Some(pid) = dev.connected_page
                && Some(pid) != skip
                && let Some(p) = self.pages.get(&pid)
            {
                let _ = p.tx.send(msg.clone());
            }
        }
    }

    /// Deliver a new message view to every device of `phone`: connected pages get it now,
    /// offline devices queue it for their next connect.
    pub fn deliver(&mut self, phone: &str, skip: Option<PageId>, id: &str, view: &Value) {
        let State {
            accounts, pages, ..
        } = self;
        let Some(acc) = accounts.get_mut(phone) else {
            return;
        };
        for dev in acc.devices.values_mut() {
            match dev.connected_page {
                Some(pid) if Some(pid) == skip => {}
                Some(pid) => {
                    if let Some(p) = pages.get(&pid) {
                        let _ = p.tx.send(ServerMsg::Msg { msg: view.clone() });
                    }
                }
                None => dev.pending.push(id.to_owned()),
            }
        }
        self.touch();
    }

    /// Resolve a user jid (`<phone>@c.us`, `<phone>@s.whatsapp.net` or `<lid>@lid`) to a phone.
    pub fn phone_of(&self, jid: &str) -> Option<String> {
        let (user, server) = jid.split_once('@')?;
        let user = user.split(':').next().unwrap_or(user);
        match server {
            "c.us" | "s.whatsapp.net" => self.accounts.contains_key(user).then(|| user.to_owned()),
            "lid" => self.lids.get(user).cloned(),
            _ => None,
        }
    }
}

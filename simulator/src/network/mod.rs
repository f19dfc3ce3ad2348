//! The simulated phone network: accounts, their linked devices (gateway pages), groups and
//! message history, all in memory behind one lock (optionally mirrored to a state file).
//!
//! Layout:
//! - [`state`]: the records (pure data).
//! - [`pairing`]: page lifecycle — hello, QR rounds, scans, pairing codes, connecting.
//! - [`devices`]: conflicts and takeover, logout, dropped and restored connections.
//! - [`messaging`]: sending, delivery to every device (queued while offline), the ack ladder.
//! - [`changes`]: edits, revokes, reactions and poll votes.
//! - [`groups`]: group creation and membership.
//! - [`views`]: how a stored message and a chat look to one account.
//! - [`persist`]: the optional state file (load at start, debounced atomic saves).

pub mod changes;
pub mod devices;
pub mod groups;
pub mod messaging;
pub mod pairing;
pub mod persist;
pub mod state;
pub mod views;

use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::SimulatorConfig;
use crate::error::ApiError;
use crate::protocol::{Call, ServerMsg};
use crate::util;
use state::{Account, Faults, Page, PageId, PagePhase, State};

/// The network shared by the WebSocket handlers and the control API.
#[derive(Debug)]
pub struct Network {
    config: SimulatorConfig,
    state: Mutex<State>,
}

impl Network {
    /// An empty network.
    pub fn new(config: SimulatorConfig) -> Arc<Self> {
        Self::with_state(config, State::default())
    }

    /// A network starting from `state` (e.g. loaded by [`persist::load`]).
    pub fn with_state(config: SimulatorConfig, state: State) -> Arc<Self> {
        Arc::new(Self {
            config,
            state: Mutex::new(state),
        })
    }

    /// The configuration this network runs with.
    pub fn config(&self) -> &SimulatorConfig {
        &self.config
    }

    /// Lock the state. Never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Register a freshly opened page socket.
    pub fn open_page(&self, tx: UnboundedSender<ServerMsg>) -> PageId {
        let mut st = self.lock();
        st.next_page += 1;
        let id = st.next_page;
        let faults = serde_json::to_value(&st.faults).unwrap_or(Value::Null);
        let _ = tx.send(ServerMsg::Faults { faults });
        st.pages.insert(
            id,
            Page {
                id,
                client_id: String::new(),
                keys: Default::default(),
                qr_ref: None,
                phase: PagePhase::Opening,
                qr_round: 0,
                pairing_code: None,
                tx,
            },
        );
        id
    }

    /// Forget a page whose socket closed.
    pub fn close_page(&self, page_id: PageId) {
        let mut st = self.lock();
        let Some(page) = st.pages.remove(&page_id) else {
            return;
        };
        if let PagePhase::Connected { phone, device } = &page.phase {
            if let Some(dev) = st
                .accounts
                .get_mut(phone)
                .and_then(|a| a.devices.get_mut(device))
                && dev.connected_page == Some(page_id)
            {
                dev.connected_page = None;
            }
            let (phone, device) = (phone.clone(), *device);
            st.log("disconnected", &page, &phone, device);
        }
    }

    /// Handle one RPC call from a page.
    pub fn call(self: &Arc<Self>, page_id: PageId, call: Call) -> Result<Value, String> {
        match call {
            Call::PairingCode { phone } => self.request_pairing_code(page_id, &phone),
            Call::Logout => self.logout_page(page_id),
            Call::Takeover => self.takeover(page_id),
            other => {
                let me = self.page_account(page_id).ok_or("not logged in")?;
                self.account_call(&me, Some(page_id), other)
            }
        }
    }

    /// Calls made as an account (from a page or from the control API).
    pub fn account_call(
        self: &Arc<Self>,
        me: &str,
        origin: Option<PageId>,
        call: Call,
    ) -> Result<Value, String> {
        match call {
            Call::Send { msg } => self.send(me, origin, msg).map_err(|e| e.to_string()),
            Call::React { msg_id, text } => self.react(me, &msg_id, &text),
            Call::Edit { msg_id, body } => self.edit(me, &msg_id, &body),
            Call::Revoke { msg_id } => self.revoke(me, &msg_id),
            Call::Seen { chat } => self.mark_read(me, &chat),
            Call::Played { msg_id } => self.mark_played(me, &msg_id),
            Call::PollVote { msg_id, selected } => self.poll_vote(me, &msg_id, selected),
            Call::GroupCreate {
                subject,
                participants,
            } => self
                .create_group(me, &subject, &participants)
                .map_err(|e| e.to_string()),
            Call::GroupParticipants {
                group,
                action,
                participants,
            } => self
                .group_participants(me, &group, &action, &participants)
                .map_err(|e| e.to_string()),
            Call::GroupSubject { group, subject } => self
                .group_subject(me, &group, &subject)
                .map_err(|e| e.to_string()),
            Call::GroupLeave { group } => self.leave_group(me, &group).map_err(|e| e.to_string()),
            Call::Exists { jid } => {
                let st = self.lock();
                Ok(match st.phone_of(&jid) {
                    Some(p) => {
                        json!({"exists": true, "jid": format!("{p}@c.us"), "lid": format!("{}@lid", st.accounts[&p].lid)})
                    }
                    None => json!({"exists": false}),
                })
            }
            Call::SaveContact { phone, name } => self
                .add_contact(me, &phone, &name)
                .map_err(|e| e.to_string()),
            Call::DeleteContact { phone } => {
                self.remove_contact(me, &phone).map_err(|e| e.to_string())
            }
            Call::PairingCode { .. } | Call::Logout | Call::Takeover => {
                Err("not an account call".to_owned())
            }
        }
    }

    /// The phone of the account a page is connected as.
    pub fn page_account(&self, page_id: PageId) -> Option<String> {
        match &self.lock().pages.get(&page_id)?.phase {
            PagePhase::Connected { phone, .. } => Some(phone.clone()),
            _ => None,
        }
    }

    /// Create an account.
    pub fn create_account(&self, phone: &str, pushname: &str) -> Result<Value, ApiError> {
        if phone.len() < 5 || phone.len() > 15 || !phone.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid("phone must be 5-15 digits"));
        }
        let mut st = self.lock();
        if st.accounts.contains_key(phone) {
            return Err(ApiError::Conflict(format!("account {phone} exists")));
        }
        let lid = util::digits(15);
        st.lids.insert(lid.clone(), phone.to_owned());
        let acc = Account {
            phone: phone.to_owned(),
            pushname: pushname.to_owned(),
            lid,
            contacts: Default::default(),
            devices: Default::default(),
            next_device: 1,
        };
        let v = views::account_json(&acc);
        st.accounts.insert(phone.to_owned(), acc);
        st.touch();
        Ok(v)
    }

    /// Save `contact` (a phone) with `name` in `owner`'s address book.
    pub fn add_contact(&self, owner: &str, contact: &str, name: &str) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let other = st
            .accounts
            .get(contact)
            .ok_or_else(|| ApiError::not_found(format!("account {contact}")))?;
        let cj = views::contact_json(other, Some(name));
        let acc = st
            .accounts
            .get_mut(owner)
            .ok_or_else(|| ApiError::not_found(format!("account {owner}")))?;
        acc.contacts.insert(contact.to_owned(), name.to_owned());
        st.touch();
        st.broadcast(
            owner,
            None,
            &ServerMsg::Contact {
                contact: cj.clone(),
            },
        );
        Ok(cj)
    }

    /// Remove `contact` from `owner`'s address book (the contact model stays, unnamed).
    pub fn remove_contact(&self, owner: &str, contact: &str) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let acc = st
            .accounts
            .get_mut(owner)
            .ok_or_else(|| ApiError::not_found(format!("account {owner}")))?;
        if acc.contacts.remove(contact).is_none() {
            return Err(ApiError::not_found(format!("contact {contact}")));
        }
        st.touch();
        let cj = st
            .accounts
            .get(contact)
            .map(|a| views::contact_json(a, None))
            .unwrap_or(Value::Null);
        st.broadcast(
            owner,
            None,
            &ServerMsg::Contact {
                contact: cj.clone(),
            },
        );
        Ok(cj)
    }

    /// All accounts.
    pub fn accounts(&self) -> Vec<Value> {
        self.lock()
            .accounts
            .values()
            .map(views::account_json)
            .collect()
    }

    /// One account.
    pub fn account(&self, phone: &str) -> Result<Value, ApiError> {
        self.lock()
            .accounts
            .get(phone)
            .map(views::account_json)
            .ok_or_else(|| ApiError::not_found(format!("account {phone}")))
    }

    /// All live pages with their phase and current QR payload.
    pub fn pages(&self) -> Vec<Value> {
        let st = self.lock();
        st.pages.values().map(views::page_json).collect()
    }

    /// The connection log, optionally for one phone only.
    pub fn connection_log(&self, phone: Option<&str>) -> Vec<Value> {
        let st = self.lock();
        st.conn_log
            .iter()
            .filter(|e| phone.is_none_or(|p| e.phone == p))
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect()
    }

    /// Current fault switches.
    pub fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    /// Replace the fault switches and push them to every page.
    pub fn set_faults(&self, faults: Faults) {
        let mut st = self.lock();
        st.faults = faults;
        let v = serde_json::to_value(&st.faults).unwrap_or(Value::Null);
        for p in st.pages.values() {
            let _ = p.tx.send(ServerMsg::Faults { faults: v.clone() });
            if st.faults.deprecated_version {
                let _ = p.tx.send(ServerMsg::State {
                    state: "DEPRECATED_VERSION".into(),
                });
            }
        }
    }

    /// Cut every page's connection (server shutdown).
    pub fn drop_all_pages(&self) {
        for p in self.lock().pages.values() {
            let _ = p.tx.send(ServerMsg::Drop);
        }
    }

    /// Tell one page (or all pages, with `None`) to reload.
    pub fn reload_pages(&self, page: Option<PageId>) -> Result<usize, ApiError> {
        let st = self.lock();
        let targets: Vec<&Page> = match page {
            Some(id) => vec![
                st.pages
                    .get(&id)
                    .ok_or_else(|| ApiError::not_found(format!("page {id}")))?,
            ],
            None => st.pages.values().collect(),
        };
        for p in &targets {
            let _ = p.tx.send(ServerMsg::Reload);
        }
        Ok(targets.len())
    }
}

//! Page lifecycle on the network side: hello, QR rounds, scans and pairing codes, and
//! connecting a logged-in page (ready frame, initial sync, queued offline messages).

use std::sync::Arc;

use serde_json::{Value, json};

use super::Network;
use super::state::{Device, PageId, PagePhase, State};
use super::views;
use crate::error::ApiError;
use crate::protocol::{LoginRecord, ServerMsg};
use crate::util;

impl Network {
    /// A page introduced itself: restore its login or start showing QR refs.
    pub fn hello(
        self: &Arc<Self>,
        page_id: PageId,
        client_id: String,
        keys: [String; 3],
        login: Option<LoginRecord>,
    ) {
        let mut st = self.lock();
        let deprecated = st.faults.deprecated_version;
        let Some(page) = st.pages.get_mut(&page_id) else {
            return;
        };
        page.client_id = client_id.clone();
        page.keys = keys;
        if deprecated {
            let _ = page.tx.send(ServerMsg::State {
                state: "DEPRECATED_VERSION".into(),
            });
            return;
        }
        let Some(login) = login else {
            drop(st);
            self.start_qr_round(page_id);
            return;
        };
        let tx = page.tx.clone();
        let valid = st
            .accounts
            .get(&login.phone)
            .and_then(|a| a.devices.get(&login.device))
            .is_some_and(|d| d.token == login.token);
        if !valid {
            let _ = tx.send(ServerMsg::LoggedOut);
            return;
        }
        let dev = &st.accounts[&login.phone].devices[&login.device];
        if dev.held_offline {
            let _ = tx.send(ServerMsg::Drop);
            return;
        }
        match dev.connected_page {
            Some(other) if other != page_id => {
                let same_profile = st
                    .pages
                    .get(&other)
                    .is_some_and(|p| p.client_id == client_id);
                if same_profile {
                    // The same browser profile came back (a reload racing its old socket's
                    // close, or a restored snapshot): the newer page wins.
                    super::devices::kick_in(&mut st, &login.phone, login.device);
                    connect_in(&mut st, page_id, &login.phone, login.device);
                } else {
                    let mut page = st.pages.remove(&page_id).expect("page exists");
                    page.phase = PagePhase::Conflict {
                        phone: login.phone.clone(),
                        device: login.device,
                    };
                    let _ = tx.send(ServerMsg::Conflict);
                    st.log("conflict", &page, &login.phone, login.device);
                    st.pages.insert(page_id, page);
                }
            }
            _ => connect_in(&mut st, page_id, &login.phone, login.device),
        }
    }

    /// Start (or restart, on `refreshQR`) a round of QR refs for a page.
    pub fn start_qr_round(self: &Arc<Self>, page_id: PageId) {
        let round = {
            let mut st = self.lock();
            let Some(p) = st.pages.get_mut(&page_id) else {
                return;
            };
            if !matches!(
                p.phase,
                PagePhase::Opening | PagePhase::Unpaired { .. } | PagePhase::UnpairedIdle
            ) {
                return;
            }
            p.qr_round += 1;
            p.phase = PagePhase::Unpaired { refs_issued: 0 };
            p.qr_round
        };
        let net = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if !net.issue_ref(page_id, round) {
                    break;
                }
                tokio::time::sleep(net.config.qr_interval).await;
            }
        });
    }

    /// Issue the next ref of a round; false when the round is over.
    fn issue_ref(&self, page_id: PageId, round: u64) -> bool {
        let limit = self.config.qr_refs_before_idle;
        let mut st = self.lock();
        let Some(p) = st.pages.get_mut(&page_id) else {
            return false;
        };
        let PagePhase::Unpaired { refs_issued } = p.phase else {
            return false;
        };
        if p.qr_round != round {
            return false;
        }
        if refs_issued >= limit {
            p.phase = PagePhase::UnpairedIdle;
            p.qr_ref = None;
            let _ = p.tx.send(ServerMsg::QrIdle);
            return false;
        }
        let r = format!("2@{}", util::random_b64(48));
        p.qr_ref = Some(r.clone());
        p.phase = PagePhase::Unpaired {
            refs_issued: refs_issued + 1,
        };
        let payload = p.qr_payload().unwrap_or_default();
        let modules = crate::qr::matrix(&payload);
        let _ = p.tx.send(ServerMsg::Qr {
            r#ref: r,
            payload,
            modules,
        });
        true
    }

    /// The phone of `phone` scans a QR payload (or its ref) shown by some page.
    pub fn scan(self: &Arc<Self>, phone: &str, qr: &str) -> Result<Value, ApiError> {
        let r = qr.split(',').next().unwrap_or_default();
        let page_id = {
            let st = self.lock();
            if !st.accounts.contains_key(phone) {
                return Err(ApiError::not_found(format!("account {phone}")));
            }
            st.pages
                .values()
                .find(|p| views::shows_qr(p) && p.qr_ref.as_deref() == Some(r))
                .map(|p| p.id)
                .ok_or_else(|| ApiError::not_found("a page showing this QR (expired?)"))?
        };
        self.begin_pairing(page_id, phone);
        Ok(json!({"page_id": page_id, "status": "pairing"}))
    }

    /// The phone of `phone` confirms a pairing code a page requested.
    pub fn confirm_pairing_code(
        self: &Arc<Self>,
        phone: &str,
        code: &str,
    ) -> Result<Value, ApiError> {
        let code = code.replace('-', "").to_ascii_uppercase();
        let page_id = {
            let st = self.lock();
            st.pages
                .values()
                .find(|p| {
                    p.pairing_code
                        .as_ref()
                        .is_some_and(|(c, ph)| *c == code && ph == phone)
                })
                .map(|p| p.id)
                .ok_or_else(|| {
                    ApiError::not_found("a page with this pairing code for this phone")
                })?
        };
        self.begin_pairing(page_id, phone);
        Ok(json!({"page_id": page_id, "status": "pairing"}))
    }

    /// `WAWebAltDeviceLinkingApi.startAltLinkingFlow(phone)`.
    pub fn request_pairing_code(&self, page_id: PageId, phone: &str) -> Result<Value, String> {
        let phone: String = phone.chars().filter(char::is_ascii_digit).collect();
        let mut st = self.lock();
        if !st.accounts.contains_key(&phone) {
            return Err(format!("no account with number {phone}"));
        }
        let p = st.pages.get_mut(&page_id).ok_or("page gone")?;
        if !matches!(
            p.phase,
            PagePhase::Unpaired { .. } | PagePhase::UnpairedIdle
        ) {
            return Err("not unpaired".into());
        }
        let code = util::pairing_code();
        p.pairing_code = Some((code.clone(), phone));
        Ok(json!(code))
    }

    fn begin_pairing(self: &Arc<Self>, page_id: PageId, phone: &str) {
        {
            let mut st = self.lock();
            let Some(p) = st.pages.get_mut(&page_id) else {
                return;
            };
            p.phase = PagePhase::Pairing {
                phone: phone.to_owned(),
            };
            p.qr_ref = None;
            let _ = p.tx.send(ServerMsg::Pairing);
        }
        let net = Arc::clone(self);
        let phone = phone.to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(net.config.pairing_delay).await;
            net.finish_pairing(page_id, &phone);
        });
    }

    fn finish_pairing(&self, page_id: PageId, phone: &str) {
        {
            let mut st = self.lock();
            let Some(client_id) = st.pages.get(&page_id).map(|p| p.client_id.clone()) else {
                return;
            };
            let Some(acc) = st.accounts.get_mut(phone) else {
                return;
            };
            let id = acc.next_device;
            acc.next_device += 1;
            let token = util::random_b64(24);
            acc.devices.insert(
                id,
                Device {
                    id,
                    token: token.clone(),
                    client_id,
                    connected_page: None,
                    held_offline: false,
                    pending: Vec::new(),
                },
            );
            st.touch();
            let page = st.pages.remove(&page_id).expect("checked above");
            let _ = page.tx.send(ServerMsg::Paired {
                login: LoginRecord {
                    phone: phone.to_owned(),
                    device: id,
                    token,
                },
            });
            st.log("paired", &page, phone, id);
            st.pages.insert(page_id, page);
            connect_in(&mut st, page_id, phone, id);
        };
    }
}

/// Mark `page_id` connected as `phone`'s `device` and send it the ready frame. Runs with the
/// lock held, so a device is never connected to two pages: a page still holding the device is
/// moved to `CONFLICT` first.
pub(crate) fn connect_in(st: &mut State, page_id: PageId, phone: &str, device: u32) {
    let holder = st
        .accounts
        .get(phone)
        .and_then(|a| a.devices.get(&device))
        .and_then(|d| d.connected_page);
    if holder.is_some_and(|p| p != page_id) {
        super::devices::kick_in(st, phone, device);
    }
    let Some(acc) = st.accounts.get_mut(phone) else {
        return;
    };
    let Some(dev) = acc.devices.get_mut(&device) else {
        return;
    };
    dev.connected_page = Some(page_id);
    let pending = std::mem::take(&mut dev.pending);
    let me = views::me_json(acc, device);
    if !pending.is_empty() {
        st.touch();
    }
    let held: std::collections::HashSet<&str> = pending.iter().map(String::as_str).collect();
    let sync = views::sync_for(st, phone, &held);
    // Messages that arrived while this device was offline come as new messages.
    let offline: Vec<serde_json::Value> = pending
        .iter()
        .filter_map(|id| st.msg_index.get(id).map(|&i| &st.messages[i]))
        .map(|m| {
            let mut v = views::msg_view(st, m, phone);
            v["isNewMsg"] = json!(true);
            v
        })
        .collect();
    let Some(mut page) = st.pages.remove(&page_id) else {
        return;
    };
    page.phase = PagePhase::Connected {
        phone: phone.to_owned(),
        device,
    };
    page.qr_ref = None;
    page.pairing_code = None;
    let _ = page.tx.send(ServerMsg::Ready { me, sync });
    for msg in offline {
        let _ = page.tx.send(ServerMsg::Msg { msg });
    }
    st.log("connected", &page, phone, device);
    st.pages.insert(page_id, page);
}

//! Linked devices seen from the phone and from their pages: conflicts and takeover, logout,
//! dropped and restored connections.

use serde_json::{Value, json};

use super::Network;
use super::pairing::connect_in;
use super::state::{PageId, PagePhase, State};
use crate::error::ApiError;
use crate::protocol::ServerMsg;

impl Network {
    /// Move the page currently holding a device into `CONFLICT` (the device opened elsewhere).
    pub(crate) fn kick_to_conflict(&self, phone: &str, device: u32) -> Option<PageId> {
        kick_in(&mut self.lock(), phone, device)
    }

    /// `Socket.takeover()`: the page in `CONFLICT` takes its device back.
    pub fn takeover(&self, page_id: PageId) -> Result<Value, String> {
        let (phone, device) = match self.lock().pages.get(&page_id).map(|p| p.phase.clone()) {
            Some(PagePhase::Conflict { phone, device }) => (phone, device),
            Some(PagePhase::Connected { .. }) => return Ok(json!({"already": true})),
            _ => return Err("not in conflict".into()),
        };
        let mut st = self.lock();
        kick_in(&mut st, &phone, device);
        connect_in(&mut st, page_id, &phone, device);
        Ok(json!({"ok": true}))
    }

    /// `Socket.logout()` from a page: unlink its device.
    pub fn logout_page(&self, page_id: PageId) -> Result<Value, String> {
        let (phone, device) = match self.lock().pages.get(&page_id).map(|p| p.phase.clone()) {
            Some(
                PagePhase::Connected { phone, device } | PagePhase::Conflict { phone, device },
            ) => (phone, device),
            _ => return Err("not logged in".into()),
        };
        self.remove_device(&phone, device)
            .map_err(|e| e.to_string())
    }

    /// Unlink a device (logout from the phone); its page is told and reloads logged out.
    pub fn remove_device(&self, phone: &str, device: u32) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let acc = st
            .accounts
            .get_mut(phone)
            .ok_or_else(|| ApiError::not_found(format!("account {phone}")))?;
        let dev = acc
            .devices
            .remove(&device)
            .ok_or_else(|| ApiError::not_found(format!("device {device}")))?;
        st.touch();
        let affected: Vec<PageId> = st
            .pages
            .values()
            .filter(|p| {
                matches!(&p.phase, PagePhase::Connected { phone: ph, device: d } | PagePhase::Conflict { phone: ph, device: d } if ph == phone && *d == device)
            })
            .map(|p| p.id)
            .collect();
        for pid in &affected {
            if let Some(mut page) = st.pages.remove(pid) {
                let _ = page.tx.send(ServerMsg::LoggedOut);
                if dev.connected_page == Some(*pid) {
                    st.log("disconnected", &page, phone, device);
                }
                st.log("logged_out", &page, phone, device);
                page.phase = PagePhase::Opening;
                st.pages.insert(*pid, page);
            }
        }
        Ok(json!({"removed": device, "pages": affected}))
    }

    /// "Open the account elsewhere": the device's page goes to `CONFLICT`.
    pub fn open_elsewhere(&self, phone: &str, device: u32) -> Result<Value, ApiError> {
        match self.kick_to_conflict(phone, device) {
            Some(pid) => Ok(json!({"page_id": pid, "state": "CONFLICT"})),
            None => Err(ApiError::not_found("a connected page for this device")),
        }
    }

    /// Drop a device's connection; with `hold`, refuse reconnects until [`Self::restore`].
    pub fn drop_connection(&self, phone: &str, device: u32, hold: bool) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let dev = st
            .accounts
            .get_mut(phone)
            .and_then(|a| a.devices.get_mut(&device))
            .ok_or_else(|| ApiError::not_found(format!("device {phone}/{device}")))?;
        dev.held_offline = hold;
        let pid = dev.connected_page;
        if let Some(p) = pid.and_then(|pid| st.pages.get(&pid)) {
            let _ = p.tx.send(ServerMsg::Drop);
        }
        Ok(json!({"page_id": pid, "held": hold}))
    }

    /// Let a held-down device reconnect again.
    pub fn restore(&self, phone: &str, device: u32) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let dev = st
            .accounts
            .get_mut(phone)
            .and_then(|a| a.devices.get_mut(&device))
            .ok_or_else(|| ApiError::not_found(format!("device {phone}/{device}")))?;
        dev.held_offline = false;
        Ok(json!({"held": false}))
    }
}

/// [`Network::kick_to_conflict`] with the lock held.
pub(crate) fn kick_in(st: &mut State, phone: &str, device: u32) -> Option<PageId> {
    let dev = st.accounts.get_mut(phone)?.devices.get_mut(&device)?;
    let pid = dev.connected_page.take()?;
    let mut page = st.pages.remove(&pid)?;
    page.phase = PagePhase::Conflict {
        phone: phone.to_owned(),
        device,
    };
    let _ = page.tx.send(ServerMsg::Conflict);
    st.log("disconnected", &page, phone, device);
    st.log("conflict", &page, phone, device);
    st.pages.insert(pid, page);
    Some(pid)
}

//! Messages on the network: sending, delivery to every device of the recipients, the ack
//! ladder (1 server, 2 device, 3 read, 4 played), edits, revokes, reactions and poll votes.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::Network;
use super::state::{PageId, State, StoredMsg};
use super::views::{self, is_group};
use crate::error::ApiError;
use crate::protocol::ServerMsg;
use crate::util;

/// Message types the network accepts.
pub const MSG_TYPES: &[&str] = &[
    "chat",
    "image",
    "video",
    "audio",
    "ptt",
    "document",
    "sticker",
    "location",
    "vcard",
    "multi_vcard",
    "poll_creation",
];

/// Attributes the network sets itself; a sender's values for them are ignored.
const RESERVED: &[&str] = &[
    "id",
    "from",
    "to",
    "type",
    "t",
    "ack",
    "author",
    "isNewMsg",
    "self",
    "notifyName",
];

/// Accept a message id in inner form (`3EB0...`) or serialized form (`true_x@c.us_3EB0...`).
pub fn inner_id(id: &str) -> &str {
    let mut parts = id.split('_');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("true" | "false"), Some(_), Some(inner)) => inner,
        _ => id,
    }
}

/// The phones that take part in a stored message's chat.
pub(super) fn parties(st: &State, m: &StoredMsg) -> Vec<String> {
    if is_group(&m.chat) {
        st.groups
            .get(&m.chat)
            .map(|g| g.participants.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        let to = m.chat.trim_end_matches("@c.us").to_owned();
        if to == m.from {
            vec![to]
        } else {
            vec![m.from.clone(), to]
        }
    }
}

impl Network {
    /// Send a message as `me`. `msg` uses WhatsApp Web's attribute names.
    pub fn send(
        self: &Arc<Self>,
        me: &str,
        origin: Option<PageId>,
        msg: Value,
    ) -> Result<Value, ApiError> {
        let obj = msg
            .as_object()
            .ok_or_else(|| ApiError::invalid("msg must be an object"))?;
        let id = match obj.get("id") {
            Some(Value::String(s)) => inner_id(s).to_owned(),
            Some(Value::Object(o)) => o
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            _ => String::new(),
        };
        let id = if id.is_empty() { util::hex_id(10) } else { id };
        let to = obj
            .get("to")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid("msg.to is required"))?;
        let kind = obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("chat")
            .to_owned();
        if !MSG_TYPES.contains(&kind.as_str()) {
            return Err(ApiError::invalid(format!(
                "unsupported message type {kind}"
            )));
        }
        let mut st = self.lock();
        if !st.accounts.contains_key(me) {
            return Err(ApiError::not_found(format!("account {me}")));
        }
        let chat = if is_group(to) {
            let g = st
                .groups
                .get(to)
                .ok_or_else(|| ApiError::not_found(format!("group {to}")))?;
            if !g.participants.contains_key(me) {
                return Err(ApiError::Conflict(format!(
                    "{me} is not a participant of {to}"
                )));
            }
            to.to_owned()
        } else {
            let phone = st
                .phone_of(to)
                .ok_or_else(|| ApiError::not_found(format!("recipient {to}")))?;
            format!("{phone}@c.us")
        };
        if let Some(&i) = st.msg_index.get(&id) {
            let m = &st.messages[i];
            return Ok(
                json!({"id": m.id, "serialized": views::serialized_id(m, me), "t": m.t, "ack": m.ack, "duplicate": true}),
            );
        }
        let mut props: Map<String, Value> = obj
            .iter()
            .filter(|(k, _)| !RESERVED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        attach_quote(&st, &mut props);
        let m = StoredMsg {
            id: id.clone(),
            from: me.to_owned(),
            chat,
            kind,
            t: util::now_s(),
            ack: 1,
            props,
            read_by: Default::default(),
        };
        let idx = st.messages.len();
        st.msg_index.insert(id.clone(), idx);
        st.messages.push(m);
        st.touch();
        let m = &st.messages[idx];
        let deliveries: Vec<(String, Value)> = parties(&st, m)
            .into_iter()
            .map(|party| {
                let mut view = views::msg_view(&st, m, &party);
                view["isNewMsg"] = json!(true);
                (party, view)
            })
            .collect();
        for (party, view) in deliveries {
            let skip = if party == me { origin } else { None };
            st.deliver(&party, skip, &id, &view);
        }
        let m = &st.messages[idx];
        let reply =
            json!({"id": m.id, "serialized": views::serialized_id(m, me), "t": m.t, "ack": 1});
        let faults = st.faults.clone();
        drop(st);
        if !faults.lose_acks {
            let net = Arc::clone(self);
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 + faults.ack_delay_ms)).await;
                net.raise_ack(&id, 2);
            });
        }
        Ok(reply)
    }

    /// Raise a message's ack and tell the sender's devices.
    pub(crate) fn raise_ack(&self, id: &str, ack: i8) {
        let mut st = self.lock();
        let Some(&i) = st.msg_index.get(id) else {
            return;
        };
        if st.messages[i].ack >= ack || st.messages[i].kind == "revoked" {
            return;
        }
        st.messages[i].ack = ack;
        st.touch();
        let from = st.messages[i].from.clone();
        st.broadcast(
            &from,
            None,
            &ServerMsg::Ack {
                id: id.to_owned(),
                ack,
            },
        );
    }

    /// Schedule an ack raise honouring the ack faults.
    fn schedule_ack(self: &Arc<Self>, id: String, ack: i8) {
        let faults = self.faults();
        if faults.lose_acks {
            return;
        }
        if faults.ack_delay_ms == 0 {
            self.raise_ack(&id, ack);
            return;
        }
        let net = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(faults.ack_delay_ms)).await;
            net.raise_ack(&id, ack);
        });
    }

    /// `me` reads chat `chat` (as `me` names it): incoming messages get ack 3.
    pub fn mark_read(self: &Arc<Self>, me: &str, chat: &str) -> Result<Value, String> {
        let chat = {
            let st = self.lock();
            if is_group(chat) {
                chat.to_owned()
            } else {
                st.phone_of(chat)
                    .map(|p| format!("{p}@c.us"))
                    .ok_or("unknown chat")?
            }
        };
        let mut raise = Vec::new();
        let mut read_any = false;
        {
            let mut st = self.lock();
            let groups = st.groups.clone();
            for m in st.messages.iter_mut() {
                if m.from == me || m.read_by.contains(me) {
                    continue;
                }
                let mine = if is_group(&m.chat) {
                    m.chat == chat
                        && groups
                            .get(&chat)
                            .is_some_and(|g| g.participants.contains_key(me))
                } else {
                    m.chat == format!("{me}@c.us") && format!("{}@c.us", m.from) == chat
                };
                if !mine {
                    continue;
                }
                m.read_by.insert(me.to_owned());
                let all_read = match groups.get(&m.chat) {
                    Some(g) => g
                        .participants
                        .keys()
                        .filter(|p| **p != m.from)
                        .all(|p| m.read_by.contains(p)),
                    None => true,
                };
                if all_read {
                    raise.push(m.id.clone());
                }
                read_any = true;
            }
            if read_any {
                st.touch();
            }
        }
        let n = raise.len();
        for id in raise {
            self.schedule_ack(id, 3);
        }
        Ok(json!({"read": n}))
    }

    /// `me` played a voice note / video: ack 4.
    pub fn mark_played(self: &Arc<Self>, me: &str, msg_id: &str) -> Result<Value, String> {
        let id = inner_id(msg_id).to_owned();
        {
            let st = self.lock();
            let m = st
                .msg_index
                .get(&id)
                .map(|&i| &st.messages[i])
                .ok_or("unknown message")?;
            if m.from == me || !views::is_party(&st, m, me) {
                return Err("not a received message".into());
            }
        }
        self.schedule_ack(id, 4);
        Ok(json!({"played": true}))
    }

    /// Messages `phone` has in its chats (as `phone` sees them), optionally one chat only.
    pub fn messages_of(&self, phone: &str, chat: Option<&str>) -> Result<Vec<Value>, ApiError> {
        let st = self.lock();
        if !st.accounts.contains_key(phone) {
            return Err(ApiError::not_found(format!("account {phone}")));
        }
        Ok(st
            .messages
            .iter()
            .filter(|m| views::is_party(&st, m, phone))
            .filter(|m| chat.is_none_or(|c| views::chat_for(m, phone) == c))
            .map(|m| views::msg_view(&st, m, phone))
            .collect())
    }
}

/// Resolve `quotedStanzaID` into the quoted message's context (`quotedMsg`, `quotedParticipant`).
fn attach_quote(st: &State, props: &mut Map<String, Value>) {
    let Some(qid) = props
        .get("quotedStanzaID")
        .and_then(Value::as_str)
        .map(|s| inner_id(s).to_owned())
    else {
        return;
    };
    props.insert("quotedStanzaID".into(), json!(qid));
    if let Some(&i) = st.msg_index.get(&qid) {
        let q = &st.messages[i];
        props.insert(
            "quotedParticipant".into(),
            json!(format!("{}@c.us", q.from)),
        );
        let mut qm =
            json!({"type": q.kind, "body": q.props.get("body").cloned().unwrap_or(json!(""))});
        if let Some(c) = q.props.get("caption") {
            qm["caption"] = c.clone();
        }
        props.insert("quotedMsg".into(), qm);
    }
}

#[cfg(test)]
mod tests {
    use super::inner_id;

    #[test]
    fn serialized_ids_reduce_to_their_inner_id() {
        assert_eq!(inner_id("true_123@c.us_ABCDEF"), "ABCDEF");
        assert_eq!(inner_id("false_1-2@g.us_ABC_99@c.us"), "ABC");
        assert_eq!(inner_id("ABCDEF"), "ABCDEF");
    }
}

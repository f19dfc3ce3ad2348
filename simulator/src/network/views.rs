//! How records look from the outside: a stored message as seen by one account (WhatsApp Web's
//! attribute names), contacts, chats, pages and accounts as JSON.

use serde_json::{Map, Value, json};

use super::state::{Account, Group, Page, PagePhase, State, StoredMsg};

/// Whether a chat id names a group.
pub fn is_group(chat: &str) -> bool {
    chat.ends_with("@g.us")
}

/// An account as the control API shows it.
pub fn account_json(acc: &Account) -> Value {
    json!({
        "phone": acc.phone,
        "jid": acc.jid(),
        "lid": format!("{}@lid", acc.lid),
        "pushname": acc.pushname,
        "contacts": acc.contacts,
        "devices": acc.devices.values().collect::<Vec<_>>(),
    })
}

/// A contact model's attributes.
pub fn contact_json(acc: &Account, saved_name: Option<&str>) -> Value {
    json!({
        "id": acc.jid(),
        "lid": format!("{}@lid", acc.lid),
        "number": acc.phone,
        "pushname": acc.pushname,
        "name": saved_name,
        "isMyContact": saved_name.is_some(),
        "isUser": true,
        "isGroup": false,
        "isBusiness": false,
    })
}

/// A page as the control API shows it.
pub fn page_json(p: &Page) -> Value {
    json!({
        "page_id": p.id,
        "client_id": p.client_id,
        "phase": p.phase,
        "qr": p.qr_payload(),
        "ref": p.qr_ref,
        "pairing_code": p.pairing_code.as_ref().map(|(c, phone)| json!({"code": c, "phone": phone})),
    })
}

/// Group metadata attributes.
pub fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id,
        "subject": g.subject,
        "owner": format!("{}@c.us", g.owner),
        "creation": g.creation,
        "participants": g.participants.iter().map(|(p, admin)| json!({
            "id": format!("{p}@c.us"), "isAdmin": *admin, "isSuperAdmin": *p == g.owner,
        })).collect::<Vec<_>>(),
    })
}

/// Is `viewer` a party of `m` (sender, recipient or group member)?
pub fn is_party(st: &State, m: &StoredMsg, viewer: &str) -> bool {
    if m.from == viewer {
        return true;
    }
    if is_group(&m.chat) {
        st.groups
            .get(&m.chat)
            .is_some_and(|g| g.participants.contains_key(viewer))
    } else {
        m.chat == format!("{viewer}@c.us")
    }
}

/// The chat id under which `viewer` files `m`.
pub fn chat_for(m: &StoredMsg, viewer: &str) -> String {
    if is_group(&m.chat) || m.from == viewer {
        m.chat.clone()
    } else {
        format!("{}@c.us", m.from)
    }
}

/// The serialized message key of `m` as `viewer` sees it.
pub fn serialized_id(m: &StoredMsg, viewer: &str) -> String {
    let from_me = m.from == viewer;
    let remote = chat_for(m, viewer);
    if is_group(&m.chat) && !from_me {
        format!("{from_me}_{remote}_{}_{}@c.us", m.id, m.from)
    } else {
        format!("{from_me}_{remote}_{}", m.id)
    }
}

/// `m` as a Msg model's attributes for `viewer`.
pub fn msg_view(st: &State, m: &StoredMsg, viewer: &str) -> Value {
    let from_me = m.from == viewer;
    let remote = chat_for(m, viewer);
    let group = is_group(&m.chat);
    let participant = (group && !from_me).then(|| format!("{}@c.us", m.from));
    let sender_jid = format!("{}@c.us", m.from);
    let viewer_jid = format!("{viewer}@c.us");
    let mut o = Map::new();
    for (k, v) in &m.props {
        o.insert(k.clone(), v.clone());
    }
    o.insert(
        "id".into(),
        json!({
            "fromMe": from_me,
            "remote": remote,
            "id": m.id,
            "participant": participant,
            "_serialized": serialized_id(m, viewer),
        }),
    );
    o.insert("type".into(), json!(m.kind));
    o.insert("t".into(), json!(m.t));
    o.insert("ack".into(), json!(m.ack));
    let (from, to) = match (group, from_me) {
        (true, true) => (viewer_jid.clone(), m.chat.clone()),
        (true, false) => (m.chat.clone(), viewer_jid.clone()),
        (false, true) => (viewer_jid.clone(), m.chat.clone()),
        (false, false) => (sender_jid.clone(), viewer_jid.clone()),
    };
    o.insert("from".into(), json!(from));
    o.insert("to".into(), json!(to));
    if group {
        o.insert("author".into(), json!(sender_jid));
    }
    if let Some(acc) = st.accounts.get(&m.from) {
        o.insert("notifyName".into(), json!(acc.pushname));
    }
    if o.contains_key("quotedStanzaID") {
        // A reply quotes a message of the same chat, named as this viewer names the chat.
        o.insert("quotedRemoteJid".into(), json!(remote));
    }
    o.insert("self".into(), json!(if from_me { "out" } else { "in" }));
    Value::Object(o)
}

/// The chats `viewer` has, with unread counts, newest first.
pub fn chats_for(st: &State, viewer: &str) -> Vec<Value> {
    let mut chats: std::collections::BTreeMap<String, (i64, u32)> = Default::default();
    for g in st.groups.values() {
        if g.participants.contains_key(viewer) {
            chats.entry(g.id.clone()).or_insert((g.creation, 0));
        }
    }
    for m in &st.messages {
        if !is_party(st, m, viewer) {
            continue;
        }
        let e = chats.entry(chat_for(m, viewer)).or_insert((0, 0));
        e.0 = e.0.max(m.t);
        if m.from != viewer && !m.read_by.contains(viewer) {
            e.1 += 1;
        }
    }
    let mut v: Vec<(String, i64, u32)> = chats.into_iter().map(|(k, (t, u))| (k, t, u)).collect();
    v.sort_by_key(|c| std::cmp::Reverse(c.1));
    v.into_iter()
        .map(|(id, t, unread)| {
            let name = if is_group(&id) {
                st.groups.get(&id).map(|g| g.subject.clone())
            } else {
                st.phone_of(&id)
                    .and_then(|p| st.accounts.get(viewer)?.contacts.get(&p).cloned())
            };
            json!({"id": id, "t": t, "unreadCount": unread, "isGroup": is_group(&id), "name": name})
        })
        .collect()
}

/// The initial sync a connecting page receives: contacts, chats, groups and recent messages
/// (except `held` ones, which follow as new messages).
pub fn sync_for(st: &State, viewer: &str, held: &std::collections::HashSet<&str>) -> Value {
    let Some(me) = st.accounts.get(viewer) else {
        return Value::Null;
    };
    let mut contacts = vec![contact_json(me, None)];
    for (phone, name) in &me.contacts {
        if let Some(a) = st.accounts.get(phone) {
            contacts.push(contact_json(a, Some(name)));
        }
    }
    let groups: Vec<Value> = st
        .groups
        .values()
        .filter(|g| g.participants.contains_key(viewer))
        .map(group_json)
        .collect();
    let msgs: Vec<Value> = st
        .messages
        .iter()
        .filter(|m| is_party(st, m, viewer) && !held.contains(m.id.as_str()))
        .rev()
        .take(500)
        .map(|m| msg_view(st, m, viewer))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    json!({"contacts": contacts, "chats": chats_for(st, viewer), "groups": groups, "messages": msgs})
}

/// The `me` block of a ready frame.
pub fn me_json(acc: &Account, device: u32) -> Value {
    json!({
        "phone": acc.phone,
        "wid": acc.jid(),
        "lid": format!("{}@lid", acc.lid),
        "pushname": acc.pushname,
        "device": device,
        "platform": "android",
    })
}

/// Is a page's phase one that shows a QR?
pub fn shows_qr(p: &Page) -> bool {
    matches!(p.phase, PagePhase::Unpaired { .. })
}

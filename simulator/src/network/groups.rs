//! Groups: creation, participants (add/remove/promote/demote), subject changes and leaving.
//! Every change is pushed to the pages of every affected member as a `group` frame.

use serde_json::{Value, json};

use super::Network;
use super::state::{Group, State};
use super::views;
use crate::error::ApiError;
use crate::protocol::ServerMsg;
use crate::util;

/// Tell every participant (plus `extra` phones, e.g. the removed ones) about a group change.
fn announce(st: &State, g: &Group, event: &str, extra: &[String], detail: Value) {
    let mut group = views::group_json(g);
    group["change"] = detail;
    let msg = ServerMsg::Group {
        event: event.to_owned(),
        group,
    };
    for p in g.participants.keys().chain(extra.iter()) {
        st.broadcast(p, None, &msg);
    }
}

impl Network {
    fn phones(st: &State, jids: &[String]) -> Result<Vec<String>, ApiError> {
        jids.iter()
            .map(|j| {
                let j = if j.contains('@') {
                    j.clone()
                } else {
                    format!("{j}@c.us")
                };
                st.phone_of(&j)
                    .ok_or_else(|| ApiError::not_found(format!("account {j}")))
            })
            .collect()
    }

    /// Create a group owned by `me`.
    pub fn create_group(
        &self,
        me: &str,
        subject: &str,
        participants: &[String],
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        if !st.accounts.contains_key(me) {
            return Err(ApiError::not_found(format!("account {me}")));
        }
        if subject.trim().is_empty() {
            return Err(ApiError::invalid("subject must not be empty"));
        }
        let members = Self::phones(&st, participants)?;
        let id = format!("120363{}@g.us", util::digits(12));
        let mut g = Group {
            id: id.clone(),
            subject: subject.to_owned(),
            owner: me.to_owned(),
            participants: Default::default(),
            creation: util::now_s(),
        };
        g.participants.insert(me.to_owned(), true);
        for m in members {
            g.participants.entry(m).or_insert(false);
        }
        announce(&st, &g, "create", &[], json!({"by": format!("{me}@c.us")}));
        let v = views::group_json(&g);
        st.groups.insert(id, g);
        st.touch();
        Ok(v)
    }

    /// `action` is `add`, `remove`, `promote` or `demote`; `me` must be an admin.
    pub fn group_participants(
        &self,
        me: &str,
        group: &str,
        action: &str,
        participants: &[String],
    ) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let phones = Self::phones(&st, participants)?;
        let g = st
            .groups
            .get_mut(group)
            .ok_or_else(|| ApiError::not_found(format!("group {group}")))?;
        if g.participants.get(me) != Some(&true) {
            return Err(ApiError::Conflict(format!(
                "{me} is not an admin of {group}"
            )));
        }
        let mut removed = Vec::new();
        for p in &phones {
            match action {
                "add" => {
                    g.participants.entry(p.clone()).or_insert(false);
                }
                "remove" => {
                    if g.participants.remove(p).is_some() {
                        removed.push(p.clone());
                    }
                }
                "promote" | "demote" => {
                    let admin = g
                        .participants
                        .get_mut(p)
                        .ok_or_else(|| ApiError::not_found(format!("participant {p}")))?;
                    *admin = action == "promote";
                }
                other => return Err(ApiError::invalid(format!("unknown action {other}"))),
            }
        }
        let g = g.clone();
        st.touch();
        let jids: Vec<String> = phones.iter().map(|p| format!("{p}@c.us")).collect();
        announce(
            &st,
            &g,
            action,
            &removed,
            json!({"by": format!("{me}@c.us"), "participants": jids}),
        );
        Ok(views::group_json(&g))
    }

    /// Change a group's subject.
    pub fn group_subject(&self, me: &str, group: &str, subject: &str) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let g = st
            .groups
            .get_mut(group)
            .ok_or_else(|| ApiError::not_found(format!("group {group}")))?;
        if !g.participants.contains_key(me) {
            return Err(ApiError::Conflict(format!("{me} is not in {group}")));
        }
        g.subject = subject.to_owned();
        let g = g.clone();
        st.touch();
        announce(
            &st,
            &g,
            "subject",
            &[],
            json!({"by": format!("{me}@c.us"), "subject": subject}),
        );
        Ok(views::group_json(&g))
    }

    /// `me` leaves a group.
    pub fn leave_group(&self, me: &str, group: &str) -> Result<Value, ApiError> {
        let mut st = self.lock();
        let g = st
            .groups
            .get_mut(group)
            .ok_or_else(|| ApiError::not_found(format!("group {group}")))?;
        if g.participants.remove(me).is_none() {
            return Err(ApiError::Conflict(format!("{me} is not in {group}")));
        }
        if !g.participants.values().any(|a| *a)
            && let Some(first) = g.participants.keys().next().cloned()
        {
            g.participants.insert(first, true);
        }
        let g = g.clone();
        st.touch();
        announce(
            &st,
            &g,
            "leave",
            &[me.to_owned()],
            json!({"by": format!("{me}@c.us"), "participants": [format!("{me}@c.us")]}),
        );
        Ok(views::group_json(&g))
    }

    /// All groups, or one.
    pub fn groups(&self) -> Vec<Value> {
        self.lock().groups.values().map(views::group_json).collect()
    }
}

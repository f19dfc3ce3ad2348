//! Changes to existing messages: edits, revokes, reactions and poll votes. Each change is
//! sent to every party's connected pages as an `update` or `reaction` frame.

use serde_json::{Value, json};

use super::Network;
use super::messaging::{inner_id, parties};
use super::state::StoredMsg;
use super::views;
use crate::protocol::ServerMsg;
use crate::util;

impl Network {
    /// Apply `f` to an own message and send `changes` to every party.
    fn update_own(
        &self,
        me: &str,
        msg_id: &str,
        f: impl FnOnce(&mut StoredMsg) -> Result<Value, String>,
    ) -> Result<Value, String> {
        let id = inner_id(msg_id).to_owned();
        let mut st = self.lock();
        let &i = st.msg_index.get(&id).ok_or("unknown message")?;
        if st.messages[i].from != me {
            return Err("only the sender can change a message".into());
        }
        let changes = f(&mut st.messages[i])?;
        st.touch();
        for party in parties(&st, &st.messages[i]) {
            st.broadcast(
                &party,
                None,
                &ServerMsg::Update {
                    id: id.clone(),
                    changes: changes.clone(),
                },
            );
        }
        Ok(json!({"id": id, "changes": changes}))
    }

    /// Edit an own message's text (body, or caption for media).
    pub fn edit(&self, me: &str, msg_id: &str, body: &str) -> Result<Value, String> {
        self.update_own(me, msg_id, |m| {
            let field = if m.kind == "chat" { "body" } else { "caption" };
            if m.kind == "revoked" {
                return Err("message was revoked".into());
            }
            m.props.insert(field.into(), json!(body));
            let ts = util::now_ms() as u64;
            m.props
                .insert("latestEditSenderTimestampMs".into(), json!(ts));
            Ok(json!({field: body, "latestEditSenderTimestampMs": ts}))
        })
    }

    /// Revoke an own message for everyone.
    pub fn revoke(&self, me: &str, msg_id: &str) -> Result<Value, String> {
        self.update_own(me, msg_id, |m| {
            m.kind = "revoked".into();
            m.props.insert("body".into(), json!(""));
            m.props.remove("caption");
            Ok(json!({"type": "revoked", "body": ""}))
        })
    }

    /// React to a message (empty text removes the reaction).
    pub fn react(&self, me: &str, msg_id: &str, text: &str) -> Result<Value, String> {
        let id = inner_id(msg_id).to_owned();
        let mut st = self.lock();
        let &i = st.msg_index.get(&id).ok_or("unknown message")?;
        if !views::is_party(&st, &st.messages[i], me) {
            return Err("not a party of this message".into());
        }
        let reactions = st.messages[i]
            .props
            .entry("reactions")
            .or_insert_with(|| json!({}));
        reactions[format!("{me}@c.us")] = json!(text);
        st.touch();
        let reaction_id = util::hex_id(10);
        let t = util::now_s();
        let m = &st.messages[i];
        for party in parties(&st, m) {
            let reaction = json!({
                "id": reaction_id,
                "msgId": id,
                "parentMsgKey": views::serialized_id(m, &party),
                "reactionText": text,
                "senderUserJid": format!("{me}@c.us"),
                "timestamp": t,
            });
            st.broadcast(&party, None, &ServerMsg::Reaction { reaction });
        }
        Ok(json!({"id": reaction_id}))
    }

    /// Vote in a poll: `selected` are option names.
    pub fn poll_vote(
        &self,
        me: &str,
        msg_id: &str,
        selected: Vec<String>,
    ) -> Result<Value, String> {
        let id = inner_id(msg_id).to_owned();
        let mut st = self.lock();
        let &i = st.msg_index.get(&id).ok_or("unknown message")?;
        if st.messages[i].kind != "poll_creation" || !views::is_party(&st, &st.messages[i], me) {
            return Err("not a poll in one of your chats".into());
        }
        let votes = st.messages[i]
            .props
            .entry("pollVotes")
            .or_insert_with(|| json!({}));
        votes[format!("{me}@c.us")] = json!(selected);
        let changes = json!({"pollVotes": votes.clone(), "lastVoter": format!("{me}@c.us")});
        st.touch();
        for party in parties(&st, &st.messages[i]) {
            st.broadcast(
                &party,
                None,
                &ServerMsg::Update {
                    id: id.clone(),
                    changes: changes.clone(),
                },
            );
        }
        Ok(changes)
    }
}

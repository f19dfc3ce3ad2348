//! Control API: the phone sends messages of every type into any chat, reads what its account
//! received, drives acks (read/played), edits, revokes, reacts, votes, and manages groups.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{ApiResult, Body};
use crate::error::ApiError;
use crate::protocol::Call;
use crate::server::AppState;

/// Media given inline as base64.
#[derive(Deserialize)]
pub struct InlineMedia {
    data: String,
    mimetype: String,
    filename: Option<String>,
}

/// An inbound message: WhatsApp Web attribute names plus a few conveniences.
#[derive(Deserialize)]
pub struct Outgoing {
    /// Chat id: `<phone>@c.us`, `<lid>@lid` or `<id>@g.us` (bare digits mean `@c.us`).
    to: String,
    #[serde(rename = "type", default = "chat")]
    kind: String,
    /// Inline media for image/video/audio/ptt/document/sticker.
    media: Option<InlineMedia>,
    /// Id (inner or serialized) of the message being replied to.
    quoted_id: Option<String>,
    /// Phones or jids mentioned.
    #[serde(default)]
    mentions: Vec<String>,
    /// Poll options as plain names.
    #[serde(default)]
    poll_options: Vec<String>,
    /// Any other Msg attributes (`body`, `caption`, `lat`, `lng`, `loc`, `pollName`, ...).
    #[serde(flatten)]
    props: Map<String, Value>,
}

fn chat() -> String {
    "chat".into()
}

pub async fn send(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(o): Body<Outgoing>,
) -> ApiResult {
    let mut msg = o.props;
    let to = if o.to.contains('@') {
        o.to
    } else {
        format!("{}@c.us", o.to)
    };
    msg.insert("to".into(), json!(to));
    msg.insert("type".into(), json!(o.kind));
    if let Some(m) = o.media {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(m.data.as_bytes())
            .map_err(|e| ApiError::invalid(format!("media.data is not base64: {e}")))?;
        let Value::Object(attrs) = app.media.put(&m.mimetype, Bytes::from(bytes)) else {
            return Err(ApiError::invalid("media"));
        };
        msg.extend(attrs);
        if let Some(f) = m.filename {
            msg.insert("filename".into(), json!(f));
        }
    }
    if let Some(q) = o.quoted_id {
        msg.insert("quotedStanzaID".into(), json!(q));
    }
    if !o.mentions.is_empty() {
        let jids: Vec<String> = o
            .mentions
            .iter()
            .map(|m| {
                if m.contains('@') {
                    m.clone()
                } else {
                    format!("{m}@c.us")
                }
            })
            .collect();
        msg.insert("mentionedJidList".into(), json!(jids));
    }
    if !o.poll_options.is_empty() {
        let opts: Vec<Value> = o
            .poll_options
            .iter()
            .enumerate()
            .map(|(i, n)| json!({"name": n, "localId": i}))
            .collect();
        msg.insert("pollOptions".into(), json!(opts));
        msg.entry("pollSelectableOptionsCount").or_insert(json!(1));
    }
    Ok(Json(app.net.send(&phone, None, Value::Object(msg))?))
}

#[derive(Deserialize)]
pub struct ListQuery {
    chat: Option<String>,
}

pub async fn list(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Query(q): Query<ListQuery>,
) -> ApiResult {
    Ok(Json(
        json!({"messages": app.net.messages_of(&phone, q.chat.as_deref())?}),
    ))
}

fn call(app: &AppState, phone: &str, c: Call) -> ApiResult {
    app.net.account(phone)?;
    app.net
        .account_call(phone, None, c)
        .map(Json)
        .map_err(ApiError::Invalid)
}

#[derive(Deserialize)]
pub struct ChatReq {
    chat: String,
}

pub async fn read(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(r): Body<ChatReq>,
) -> ApiResult {
    call(&app, &phone, Call::Seen { chat: r.chat })
}

#[derive(Deserialize)]
pub struct IdReq {
    id: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    selected: Vec<String>,
}

pub async fn played(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(r): Body<IdReq>,
) -> ApiResult {
    call(&app, &phone, Call::Played { msg_id: r.id })
}

pub async fn react(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(r): Body<IdReq>,
) -> ApiResult {
    call(
        &app,
        &phone,
        Call::React {
            msg_id: r.id,
            text: r.text,
        },
    )
}

pub async fn poll_vote(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(r): Body<IdReq>,
) -> ApiResult {
    call(
        &app,
        &phone,
        Call::PollVote {
            msg_id: r.id,
            selected: r.selected,
        },
    )
}

pub async fn revoke(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(r): Body<IdReq>,
) -> ApiResult {
    call(&app, &phone, Call::Revoke { msg_id: r.id })
}

pub async fn edit(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(r): Body<IdReq>,
) -> ApiResult {
    call(
        &app,
        &phone,
        Call::Edit {
            msg_id: r.id,
            body: r.body,
        },
    )
}

#[derive(Deserialize)]
pub struct NewGroup {
    subject: String,
    #[serde(default)]
    participants: Vec<String>,
}

pub async fn create_group(
    State(app): State<AppState>,
    Path(phone): Path<String>,
    Body(g): Body<NewGroup>,
) -> ApiResult {
    Ok(Json(app.net.create_group(
        &phone,
        &g.subject,
        &g.participants,
    )?))
}

#[derive(Deserialize)]
pub struct Participants {
    action: String,
    participants: Vec<String>,
}

pub async fn participants(
    State(app): State<AppState>,
    Path((phone, group)): Path<(String, String)>,
    Body(p): Body<Participants>,
) -> ApiResult {
    Ok(Json(app.net.group_participants(
        &phone,
        &group,
        &p.action,
        &p.participants,
    )?))
}

#[derive(Deserialize)]
pub struct Subject {
    subject: String,
}

pub async fn subject(
    State(app): State<AppState>,
    Path((phone, group)): Path<(String, String)>,
    Body(s): Body<Subject>,
) -> ApiResult {
    Ok(Json(app.net.group_subject(&phone, &group, &s.subject)?))
}

pub async fn leave(
    State(app): State<AppState>,
    Path((phone, group)): Path<(String, String)>,
) -> ApiResult {
    Ok(Json(app.net.leave_group(&phone, &group)?))
}

pub async fn list_groups(State(app): State<AppState>) -> ApiResult {
    Ok(Json(json!({"groups": app.net.groups()})))
}

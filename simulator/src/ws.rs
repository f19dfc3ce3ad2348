//! The WebSocket endpoint pages connect to (`/ws`): one reader loop and one writer task per page.
//! Frames are described in [`crate::protocol`].

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;

use crate::network::Network;
use crate::protocol::{ClientMsg, ServerMsg};
use crate::server::AppState;

/// Upgrade a page's request to the protocol socket.
pub async fn upgrade(ws: WebSocketUpgrade, State(app): State<AppState>) -> Response {
    ws.on_upgrade(move |socket| run_page(app.net, socket))
}

async fn run_page(net: Arc<Network>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerMsg>();
    let page_id = net.open_page(tx.clone());
    let mut writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if matches!(msg, ServerMsg::Drop) {
                // Abrupt drop: end without a close frame, like a lost connection.
                return;
            }
            let Ok(text) = serde_json::to_string(&msg) else {
                continue;
            };
            if sink.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            _ = &mut writer => break,
            frame = stream.next() => {
                let Some(Ok(frame)) = frame else { break };
                let Message::Text(text) = frame else {
                    if matches!(frame, Message::Close(_)) { break; }
                    continue;
                };
                match serde_json::from_str::<ClientMsg>(&text) {
                    Ok(msg) => handle(&net, page_id, &tx, msg),
                    Err(e) => tracing::debug!(page_id, error = %e, "ignoring malformed frame"),
                }
            }
        }
    }
    writer.abort();
    net.close_page(page_id);
}

fn handle(net: &Arc<Network>, page_id: u64, tx: &mpsc::UnboundedSender<ServerMsg>, msg: ClientMsg) {
    match msg {
        ClientMsg::Hello {
            client_id,
            keys,
            login,
        } => net.hello(page_id, client_id, keys, login),
        ClientMsg::RefreshQr => net.start_qr_round(page_id),
        ClientMsg::Call { req, call } => {
            let reply = match net.call(page_id, call) {
                Ok(result) => ServerMsg::Reply {
                    req,
                    result: Some(result),
                    error: None,
                },
                Err(error) => ServerMsg::Reply {
                    req,
                    result: None,
                    error: Some(error),
                },
            };
            let _ = tx.send(reply);
        }
    }
}

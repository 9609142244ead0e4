//! `GET /api/v1/stream`: the WebSocket of live events for the authenticated caller.
//!
//! Frames are JSON: `{"id", "type", "occurred_at", "data"}` per event. A fresh connection starts
//! with `{"type": "stream.ready", "last_id"}`. Reconnect with `?after=<last id seen>` (or a
//! `Last-Event-ID` header) to get what was missed: those events come first, then `stream.ready`
//! (caught up; live events follow); when that is no longer kept (or more than
//! `stream_resume_max` events), a `{"type": "stream.reset"}` frame tells the client to reload
//! its state. Browsers authenticate with the subprotocols `["switchboard.v1", "bearer.<key>"]`.

use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use http::HeaderMap;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

use super::{StreamEvent, oldest_id, replay, visible};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::extract::Query;
use crate::state::AppState;

/// Where to resume.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Resume {
    /// The last event id the client saw.
    pub after: Option<i64>,
}

#[utoipa::path(get, path = "/stream", tag = "stream", params(Resume),
    description = "WebSocket (upgrade) of live events for the caller: offers, assignments, new messages, delivery status, presence. \
                   Agents get their own; supervisors their queues'. Frames: `{\"id\",\"type\",\"occurred_at\",\"data\"}`.",
    responses((status = 101, description = "switching to the WebSocket protocol"), (status = 401, body = crate::error::ErrorBody)))]
pub async fn stream(
    caller: Caller,
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(resume): Query<Resume>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = upgrade.map_err(|e| crate::error::ApiError::invalid(format!("this endpoint is a WebSocket: {e}")))?;
    let admitted = s.hub.admit(caller.key_id, MAX_STREAMS_PER_KEY).ok_or_else(|| {
        crate::error::ApiError::new(
            switchboard_service_kit::ErrorCode::ResourceExhausted,
            format!("this key already has {MAX_STREAMS_PER_KEY} open streams"),
        )
    })?;
    // Clients send nothing but control frames: anything large is refused.
    let upgrade = upgrade.max_message_size(MAX_CLIENT_MESSAGE).max_frame_size(MAX_CLIENT_MESSAGE);
    let after = resume.after.or_else(|| {
        headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    });
    Ok(upgrade.protocols(["switchboard.v1"]).on_upgrade(move |socket| async move {
        let _admitted = admitted;
        // An agent's streams decide their presence.
        let connection = match caller.agent_id {
            Some(agent) => Some((agent, s.connections.opened(agent).await)),
            None => None,
        };
        if let Err(error) = serve(socket, s.clone(), caller, after).await {
            tracing::debug!(%error, "stream closed");
        }
        if let Some((agent, connection)) = connection {
            if s.shutdown.is_cancelled() {
                s.connections.forget(connection);
            } else {
                s.connections.closed(agent, connection).await;
            }
        }
    }))
}

/// Open streams one key may have on one replica.
pub const MAX_STREAMS_PER_KEY: usize = 16;

/// Largest message (and frame) a client may send.
const MAX_CLIENT_MESSAGE: usize = 16 * 1024;

/// How often an open stream checks that its key is still valid and unchanged.
const RECHECK: Duration = Duration::from_secs(2);

fn frame(event: &StreamEvent) -> Message {
    Message::Text(serde_json::to_string(event).unwrap_or_default().into())
}

fn control(kind: &str, last_id: i64) -> Message {
    Message::Text(serde_json::json!({ "type": kind, "last_id": last_id }).to_string().into())
}

/// Sends what `caller` missed after `after`; returns the last id covered, or a reset.
async fn catch_up(socket: &mut WebSocket, s: &AppState, caller: &Caller, after: i64) -> anyhow::Result<i64> {
    let limit = s.settings.stream_resume_max;
    let oldest = oldest_id(&s.pool).await?;
    let rows = replay(&s.pool, caller, after, limit).await?;
    if (oldest > 0 && after + 1 < oldest) || rows.len() as i64 >= limit {
        // Events were dropped by retention, or too many to replay: start afresh.
        let last = s.hub.last_id().max(rows.last().map_or(after, |r| r.id));
        socket.send(control("stream.reset", last)).await?;
        return Ok(last);
    }
    let mut last = after;
    for row in rows {
        last = row.id;
        socket.send(frame(&row)).await?;
    }
    Ok(last)
}

async fn serve(mut socket: WebSocket, s: AppState, caller: Caller, after: Option<i64>) -> anyhow::Result<()> {
    // Subscribe before reading the backlog so nothing falls between the two.
    let mut live = s.hub.subscribe();
    let mut last = match after {
        Some(after) => catch_up(&mut socket, &s, &caller, after).await?,
        None => s.hub.last_id(),
    };
    socket.send(control("stream.ready", last)).await?;
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    ping.tick().await;
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.tick().await;
    loop {
        tokio::select! {
            event = live.recv() => match event {
                Ok(event) => {
                    if event.id > last {
                        last = event.id;
                        if visible(&caller, &event) {
                            socket.send(frame(&event)).await?;
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => last = catch_up(&mut socket, &s, &caller, last).await?,
                Err(RecvError::Closed) => return Ok(()),
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => socket.send(Message::Ping(Vec::new().into())).await?,
            _ = recheck.tick() => {
                // A revoked key, or a changed role or scope, ends the stream within RECHECK; the
                // client reconnects with what it may see now.
                let now = match caller.via {
                    crate::auth::Via::Key => s.keys.current(caller.key_id).await,
                    crate::auth::Via::Session { .. } => s.users.current(caller.key_id).await,
                };
                let reason = match now {
                    Ok(Some(now)) if now == caller => None,
                    Ok(Some(_)) => Some("access changed; reconnect"),
                    Ok(None) if caller.via == crate::auth::Via::Key => Some("the key was revoked"),
                    Ok(None) => Some("the session ended"),
                    Err(_) => None,
                };
                if let Some(reason) = reason {
                    let _ = socket.send(Message::Close(Some(axum::extract::ws::CloseFrame { code: 1008, reason: reason.into() }))).await;
                    return Ok(());
                }
            }
            () = s.shutdown.cancelled() => {
                // 1012: service restart; the client reconnects (to another replica) and resumes.
                let _ = socket.send(Message::Close(Some(axum::extract::ws::CloseFrame { code: 1012, reason: "restarting".into() }))).await;
                return Ok(());
            }
        }
    }
}

//! Admin: bots (their signing secrets are write-only); agents: notes in a conversation's
//! transcript. The transcript itself, bot turns included, is `GET /conversations/{id}/messages`.

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_proto::common::v1::Empty;
use switchboard_proto::session::v1 as spb;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::access::{Intent, conversation};
use crate::auth::{AdminCaller, Caller};
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::views::{Message, rfc3339};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_bot, list_bots))
        .routes(routes!(get_bot, update_bot, delete_bot))
        .routes(routes!(add_note))
}

/// A bot: an HTTPS endpoint the business runs. Put it in front of a workstream's agents by
/// setting the workstream's `bot_id`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Bot {
    pub id: String,
    pub name: String,
    pub endpoint: String,
    pub timeout_ms: u32,
    pub max_attempts: u32,
    pub active: bool,
    /// The first hex digits of the secret's SHA-256 (the secret is never returned).
    pub secret_hint: String,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<spb::Bot> for Bot {
    fn from(b: spb::Bot) -> Self {
        Self {
            created_at: b.created_at.as_ref().and_then(rfc3339),
            updated_at: b.updated_at.as_ref().and_then(rfc3339),
            id: b.id,
            name: b.name,
            endpoint: b.endpoint,
            timeout_ms: b.timeout_ms,
            max_attempts: b.max_attempts,
            active: b.active,
            secret_hint: b.secret_hint,
        }
    }
}

/// A bot to create.
// No Debug: it carries a secret, which must never reach a log line.
#[derive(Deserialize, ToSchema)]
pub struct NewBot {
    pub name: String,
    /// `https://…` on a public address (private, link-local and metadata addresses are refused; loopback and `http://` only in development).
    pub endpoint: String,
    /// Signs every call (HMAC-SHA256, see docs/bots.md); 16 to 256 characters.
    pub signing_secret: String,
    /// Deadline of one call (default 5000).
    #[serde(default)]
    pub timeout_ms: u32,
    /// Calls per turn before escalating to a person (default 2, at most 5).
    #[serde(default)]
    pub max_attempts: u32,
}

/// Changes to a bot; absent fields stay.
// No Debug: it carries a secret, which must never reach a log line.
#[derive(Deserialize, ToSchema)]
pub struct BotPatch {
    pub name: Option<String>,
    pub endpoint: Option<String>,
    pub signing_secret: Option<String>,
    pub timeout_ms: Option<u32>,
    pub max_attempts: Option<u32>,
    pub active: Option<bool>,
}

#[utoipa::path(post, path = "/bots", tag = "bots", request_body = NewBot, responses((status = 201, body = Bot), (status = 400, body = crate::error::ErrorBody)))]
async fn create_bot(_: AdminCaller, State(s): State<AppState>, Json(b): Json<NewBot>) -> ApiResult<(StatusCode, Json<Bot>)> {
    let bot = s
        .session()
        .create_bot(spb::CreateBotRequest {
            name: b.name,
            endpoint: b.endpoint,
            signing_secret: b.signing_secret,
            timeout_ms: b.timeout_ms,
            max_attempts: b.max_attempts,
        })
        .await
        .api()?;
    Ok((StatusCode::CREATED, Json(bot.into())))
}

#[utoipa::path(get, path = "/bots", tag = "bots", responses((status = 200, body = Vec<Bot>)))]
async fn list_bots(_: AdminCaller, State(s): State<AppState>) -> ApiResult<Json<Vec<Bot>>> {
    let r = s.session().list_bots(Empty {}).await.api()?;
    Ok(Json(r.bots.into_iter().map(Into::into).collect()))
}

#[utoipa::path(get, path = "/bots/{id}", tag = "bots", responses((status = 200, body = Bot), (status = 404, body = crate::error::ErrorBody)))]
async fn get_bot(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Bot>> {
    Ok(Json(s.session().get_bot(spb::GetByIdRequest { id }).await.api()?.into()))
}

#[utoipa::path(patch, path = "/bots/{id}", tag = "bots", request_body = BotPatch, responses((status = 200, body = Bot)))]
async fn update_bot(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>, Json(p): Json<BotPatch>) -> ApiResult<Json<Bot>> {
    let bot = s
        .session()
        .update_bot(spb::UpdateBotRequest {
            id,
            name: p.name,
            endpoint: p.endpoint,
            signing_secret: p.signing_secret,
            timeout_ms: p.timeout_ms,
            max_attempts: p.max_attempts,
            active: p.active,
        })
        .await
        .api()?;
    Ok(Json(bot.into()))
}

#[utoipa::path(delete, path = "/bots/{id}", tag = "bots", responses((status = 204)))]
async fn delete_bot(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.session().delete_bot(spb::GetByIdRequest { id }).await.api()?;
    Ok(StatusCode::NO_CONTENT)
}

/// An internal note (customers never see it).
#[derive(Debug, Deserialize, ToSchema)]
pub struct NoteRequest {
    pub text: String,
}

#[utoipa::path(post, path = "/conversations/{id}/notes", tag = "conversations", request_body = NoteRequest,
    description = "Adds an internal note to the transcript (the assigned agent, or a supervisor of its queue).",
    responses((status = 201, body = Message), (status = 403, body = crate::error::ErrorBody)))]
async fn add_note(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(n): Json<NoteRequest>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    conversation(&s, &caller, &id, Intent::Work).await?;
    let note = s
        .session()
        .add_note(spb::AddNoteRequest {
            conversation_id: id,
            text: n.text,
        })
        .await
        .api()?;
    Ok((StatusCode::CREATED, Json(note.try_into()?)))
}

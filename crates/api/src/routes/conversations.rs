//! Conversations: list (agents see theirs, supervisors their queues), read with messages and
//! media, reply (text, media, template), end, close, transfer, pick and assign.

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use switchboard_domain::conversation::ConversationStatus;
use switchboard_domain::ids::{AgentId, ClientMessageId, CustomerId, FileId, NumberId, QueueId, TemplateRef};
use switchboard_domain::message::AuthorKind;
use switchboard_proto::closed_sets::{code, codes_of, read};
use switchboard_proto::routing::v1 as rpb;
use switchboard_proto::session::v1 as spb;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::access::{Intent, conversation};
use crate::auth::{Caller, Role, SupervisorCaller};
use crate::error::{ApiError, ApiResult, parse_id};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::{Conversation, Message, Page, PageQuery, WorkItem, comma_list};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation))
        .routes(routes!(compose_rules))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(get_media))
        .routes(routes!(end))
        .routes(routes!(close))
        .routes(routes!(revive))
        .routes(routes!(release))
        .routes(routes!(force_close))
        .routes(routes!(transfer))
        .routes(routes!(pick))
        .routes(routes!(assign))
}

/// Filters of the conversation list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationFilter {
    /// Comma-separated statuses: open, active, waiting, wrap_up, closed.
    pub status: Option<String>,
    #[param(value_type = Option<String>, format = Uuid)]
    pub queue_id: Option<QueueId>,
    /// Supervisors and admins only (agents always see their own).
    #[param(value_type = Option<String>, format = Uuid)]
    pub agent_id: Option<AgentId>,
    #[param(value_type = Option<String>, format = Uuid)]
    pub number_id: Option<NumberId>,
    #[param(value_type = Option<String>, format = Uuid)]
    pub customer_id: Option<CustomerId>,
    /// Items per page (default 50, at most 200).
    #[serde(default, deserialize_with = "crate::views::page_size")]
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[utoipa::path(get, path = "/conversations", tag = "conversations", params(ConversationFilter),
    description = "Agents get the conversations assigned to them; supervisors those of their queues; admins all.",
    responses((status = 200, body = Page<Conversation>)))]
async fn list_conversations(
    caller: Caller,
    State(s): State<AppState>,
    Query(f): Query<ConversationFilter>,
) -> ApiResult<Json<Page<Conversation>>> {
    let mut agent_id = f.agent_id.map(|a| a.to_string()).unwrap_or_default();
    let mut queue_id = f.queue_id.map(|q| q.to_string()).unwrap_or_default();
    match caller.role {
        Role::Agent => {
            let me = caller.agent()?.to_string();
            if !agent_id.is_empty() && agent_id != me {
                return Err(ApiError::forbidden());
            }
            agent_id = me;
        }
        Role::Supervisor if !caller.queue_ids.is_empty() => {
            if queue_id.is_empty() && caller.queue_ids.len() == 1 {
                queue_id = caller.queue_ids[0].to_string();
            }
            if queue_id.is_empty() {
                return Err(ApiError::invalid("choose one of your queues with queue_id"));
            }
            if !caller.watches(Some(&queue_id)) {
                return Err(ApiError::forbidden());
            }
        }
        Role::Supervisor | Role::Admin => {}
    }
    let page = PageQuery {
        page_size: f.page_size,
        page_token: f.page_token,
    };
    let statuses = comma_list(f.status);
    let status_codes = codes_of::<ConversationStatus>(&statuses);
    let r = s
        .session()
        .list_conversations(spb::ListConversationsRequest {
            statuses,
            status_codes,
            number_id: f.number_id.map(|n| n.to_string()).unwrap_or_default(),
            agent_id,
            queue_id,
            customer_id: f.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            page: Some(page.to_pb()),
        })
        .await
        .api()?;
    Ok(Json(Page::new(
        r.conversations.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
        r.page,
    )))
}

#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations",
    responses((status = 200, body = Conversation), (status = 403, body = crate::error::ErrorBody)))]
async fn get_conversation(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Conversation>> {
    Ok(Json(conversation(&s, &caller, &id, Intent::Read).await?.try_into()?))
}

/// What a reply in a conversation may carry besides text, by its number's settings.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComposeRules {
    /// Agents may send files on this number.
    pub attachments: bool,
    /// The largest file, in bytes.
    pub max_attachment_bytes: u64,
    /// The number's default language (for templates).
    pub default_language: String,
}

#[utoipa::path(get, path = "/conversations/{id}/compose", tag = "conversations",
    description = "Whether agents may attach files in this conversation (its number's settings), and the largest file.",
    responses((status = 200, body = ComposeRules), (status = 403, body = crate::error::ErrorBody)))]
async fn compose_rules(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ComposeRules>> {
    let c = conversation(&s, &caller, &id, Intent::Read).await?;
    let number = s.session().get_number(spb::GetByIdRequest { id: c.number_id }).await.api()?;
    let settings = number.settings.unwrap_or_default();
    Ok(Json(ComposeRules {
        attachments: settings.agent_attachments,
        max_attachment_bytes: settings.max_attachment_bytes,
        default_language: settings.default_language,
    }))
}

/// Which messages.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageRange {
    /// Only messages after this sequence number.
    pub after_seq: Option<i64>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/conversations/{id}/messages", tag = "conversations", params(MessageRange),
    responses((status = 200, body = Vec<Message>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_messages(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<MessageRange>,
) -> ApiResult<Json<Vec<Message>>> {
    conversation(&s, &caller, &id, Intent::Read).await?;
    let r = s
        .session()
        .list_messages(spb::ListMessagesRequest {
            conversation_id: id,
            after_seq: q.after_seq.unwrap_or(0),
            limit: q.limit.unwrap_or(100).clamp(1, 500),
        })
        .await
        .api()?;
    Ok(Json(r.messages.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

/// A file to send: one uploaded to the conversation (`file_id`, from `POST
/// /conversations/{id}/files`), or one Twilio fetches from `url`, which must be public HTTPS.
#[derive(Debug, Deserialize, ToSchema)]
pub struct OutMedia {
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub file_id: Option<FileId>,
    #[serde(default)]
    pub url: String,
    /// The type of a file sent by `url`.
    #[serde(default)]
    pub content_type: String,
    /// Size in bytes, checked against the number's attachment limit.
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub caption: String,
}

/// A template to send (required outside the 24-hour window).
#[derive(Debug, Deserialize, ToSchema)]
pub struct OutTemplate {
    /// The template's id, or its `name`.
    #[serde(default)]
    #[schema(value_type = String)]
    pub template_id: TemplateRef,
    #[serde(default)]
    pub name: String,
    /// Defaults to the template's default language.
    #[serde(default)]
    pub language: String,
    /// `{"1": "Ana"}` for `{{1}}`.
    #[serde(default)]
    pub variables: std::collections::HashMap<String, String>,
}

/// A reply: exactly one of `text`, `media`, `template`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendRequest {
    pub text: Option<String>,
    pub media: Option<OutMedia>,
    pub template: Option<OutTemplate>,
    /// Your id for this send: repeating a request with the same id sends once.
    #[serde(default)]
    #[schema(value_type = String)]
    pub client_message_id: ClientMessageId,
}

#[utoipa::path(post, path = "/conversations/{id}/messages", tag = "conversations", request_body = SendRequest,
    description = "Sends a reply as the assigned agent. Outside the customer's 24-hour window only an approved template is allowed: \
                   a free-form message is refused with 422, `details.rule` naming the rule and `details.window_expires_at`.",
    responses((status = 201, body = Message), (status = 422, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn send_message(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(r): Json<SendRequest>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let me = caller.agent()?;
    conversation(&s, &caller, &id, Intent::Work).await?;
    let content = match (r.text, r.media, r.template) {
        (Some(body), None, None) => spb::send_message_request::Content::Text(spb::TextContent { body }),
        (None, Some(m), None) => spb::send_message_request::Content::Media(spb::MediaContent {
            url: m.url,
            content_type: m.content_type,
            size_bytes: m.size_bytes,
            caption: m.caption,
            file_id: m.file_id.map(|f| f.to_string()).unwrap_or_default(),
        }),
        (None, None, Some(t)) => spb::send_message_request::Content::Template(spb::TemplateContent {
            template_id: t.template_id.into(),
            name: t.name,
            language: t.language,
            variables: t.variables,
        }),
        _ => return Err(ApiError::invalid("give exactly one of text, media and template")),
    };
    let message = s
        .session()
        .send_message(spb::SendMessageRequest {
            conversation_id: id,
            author_kind: AuthorKind::Agent.as_str().into(),
            author_kind_code: code(AuthorKind::Agent),
            author_id: me.to_string(),
            content: Some(content),
            client_message_id: r.client_message_id.into(),
        })
        .await
        .api()?;
    Ok((StatusCode::CREATED, Json(message.try_into()?)))
}

#[utoipa::path(get, path = "/conversations/{id}/messages/{message_id}/media/{index}", tag = "conversations",
    description = "Streams a file a customer sent, through the session media proxy (Twilio's credentials never reach the client).",
    responses((status = 200, content_type = "application/octet-stream"), (status = 403, body = crate::error::ErrorBody)))]
async fn get_media(
    caller: Caller,
    State(s): State<AppState>,
    Path((id, message_id, index)): Path<(String, String, u32)>,
) -> ApiResult<Response> {
    conversation(&s, &caller, &id, Intent::Read).await?;
    parse_id(&message_id, "message id")?;
    let mut stream = s
        .session()
        .get_media(spb::GetMediaRequest {
            message_id,
            index,
            conversation_id: id,
        })
        .await
        .api()?;
    let first = stream.message().await.map_err(ApiError::from)?.unwrap_or_default();
    // A customer chose this type: only plain media is shown inline; a type that is not a valid
    // header value is served as bytes.
    let content_type = http::HeaderValue::from_str(&first.content_type)
        .ok()
        .filter(|_| !first.content_type.is_empty())
        .unwrap_or_else(|| http::HeaderValue::from_static("application/octet-stream"));
    // An uploaded file keeps its (safe) name; a customer's is numbered.
    let name = if first.file_name.is_empty() {
        format!("media-{index}")
    } else {
        first.file_name.clone()
    };
    let disposition = if switchboard_domain::attachment::shows_inline(&first.content_type) {
        format!("inline; filename=\"{name}\"")
    } else {
        format!("attachment; filename=\"{name}\"")
    };
    let rest = futures_util::stream::once(async move { Ok::<_, tonic::Status>(first.data) })
        .chain(stream.map(|chunk| chunk.map(|c| c.data)))
        .map(|r| r.map(axum::body::Bytes::from).map_err(std::io::Error::other));
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, http::HeaderValue::from_static("private, max-age=300")),
            (header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff")),
            (
                header::CONTENT_DISPOSITION,
                http::HeaderValue::from_str(&disposition).unwrap_or_else(|_| http::HeaderValue::from_static("attachment")),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                http::HeaderValue::from_static("default-src 'none'; sandbox"),
            ),
        ],
        Body::from_stream(rest),
    )
        .into_response())
}

/// Names for automated messages ({AgentName}, {QueueName}), from routing's configuration
/// cache; a lookup that fails leaves the names empty rather than failing the transition.
async fn names(s: &AppState, agent_id: &str, queue_id: &str) -> (String, String) {
    if agent_id.is_empty() && queue_id.is_empty() {
        return (String::new(), String::new());
    }
    let request = rpb::NamesRequest {
        agent_id: agent_id.to_owned(),
        queue_id: queue_id.to_owned(),
    };
    match s.routing().get_names(request).await {
        Ok(names) => {
            let names = names.into_inner();
            (names.agent_name, names.queue_name)
        }
        Err(status) => {
            tracing::warn!(agent_id, queue_id, code = ?status.code(), message = status.message(), "cannot read the names for the automated message");
            (String::new(), String::new())
        }
    }
}

async fn transition(
    s: &AppState,
    caller: &Caller,
    current: spb::Conversation,
    transition: &str,
    note: String,
) -> ApiResult<Json<Conversation>> {
    let agent_id = caller.agent_id.map(|a| a.to_string()).unwrap_or_default();
    let (agent_name, queue_name) = names(s, &current.agent_id, &current.queue_id).await;
    let conversation = s
        .session()
        .transition_conversation(spb::TransitionRequest {
            conversation_id: current.id,
            transition: transition.into(),
            agent_id,
            note,
            agent_name,
            queue_name,
            ..Default::default()
        })
        .await
        .api()?;
    Ok(Json(conversation.try_into()?))
}

#[utoipa::path(post, path = "/conversations/{id}/end", tag = "conversations",
    description = "The agent ends the conversation: Active → Wrap-up (capacity follows the workstream's wrap-up rule).",
    responses((status = 200, body = Conversation), (status = 422, body = crate::error::ErrorBody)))]
async fn end(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Conversation>> {
    caller.agent()?;
    let current = conversation(&s, &caller, &id, Intent::Work).await?;
    transition(&s, &caller, current, "end", String::new()).await
}

#[utoipa::path(post, path = "/conversations/{id}/close", tag = "conversations",
    description = "The agent closes the session: Wrap-up → Closed (the survey goes out when enabled), or Active → Waiting without End.",
    responses((status = 200, body = Conversation), (status = 422, body = crate::error::ErrorBody)))]
async fn close(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Conversation>> {
    caller.agent()?;
    let current = conversation(&s, &caller, &id, Intent::Work).await?;
    transition(&s, &caller, current, "close_session", String::new()).await
}

#[utoipa::path(post, path = "/conversations/{id}/revive", tag = "conversations",
    description = "The agent resumes a conversation of theirs that is Waiting (closed without End, the customer silent): Waiting → Active, holding capacity again.",
    responses((status = 200, body = Conversation), (status = 422, body = crate::error::ErrorBody)))]
async fn revive(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Conversation>> {
    caller.agent()?;
    // Read access: a Waiting conversation is still its agent's, though not workable.
    let current = conversation(&s, &caller, &id, Intent::Read).await?;
    transition(&s, &caller, current, "revive", String::new()).await
}

#[utoipa::path(post, path = "/conversations/{id}/release", tag = "conversations", request_body = Note,
    description = "Releases an Active or Waiting conversation back to its queue (Open), freeing the agent's capacity; routing offers it again. Its agent or a supervisor of its queue may.",
    responses((status = 200, body = Conversation), (status = 422, body = crate::error::ErrorBody)))]
async fn release(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(body): Json<Note>,
) -> ApiResult<Json<Conversation>> {
    let current = conversation(&s, &caller, &id, Intent::Read).await?;
    let status: Option<ConversationStatus> = read(current.status_code, &current.status).ok();
    if !matches!(status, Some(ConversationStatus::Active | ConversationStatus::Waiting)) {
        return Err(ApiError::new(
            switchboard_service_kit::ErrorCode::FailedPrecondition,
            format!("only an active or waiting conversation can be released (it is {})", current.status),
        ));
    }
    transition(&s, &caller, current, "release_to_queue", body.note).await
}

/// Why a supervisor closes a conversation.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct Note {
    /// Recorded in the transcript.
    #[serde(default)]
    pub note: String,
}

#[utoipa::path(post, path = "/conversations/{id}/force-close", tag = "supervisor", request_body = Note,
    responses((status = 200, body = Conversation), (status = 422, body = crate::error::ErrorBody)))]
async fn force_close(
    SupervisorCaller(caller): SupervisorCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(n): Json<Note>,
) -> ApiResult<Json<Conversation>> {
    let current = conversation(&s, &caller, &id, Intent::Work).await?;
    transition(&s, &caller, current, "force_close", n.note).await
}

/// Where to transfer: exactly one of `queue_id` and `agent_id`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TransferRequest {
    pub queue_id: Option<QueueId>,
    pub agent_id: Option<AgentId>,
    #[serde(default)]
    pub note: String,
}

#[utoipa::path(post, path = "/conversations/{id}/transfer", tag = "conversations", request_body = TransferRequest,
    description = "The assigned agent or a supervisor moves the conversation to another queue or agent.",
    responses((status = 200, body = WorkItem), (status = 403, body = crate::error::ErrorBody)))]
async fn transfer(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(t): Json<TransferRequest>,
) -> ApiResult<Json<WorkItem>> {
    conversation(&s, &caller, &id, Intent::Work).await?;
    let mut routing = s.routing();
    let item = match (t.queue_id, t.agent_id) {
        (Some(queue_id), None) => routing
            .transfer_to_queue(rpb::TransferToQueueRequest {
                conversation_id: id,
                queue_id: queue_id.to_string(),
                note: t.note,
            })
            .await
            .api()?,
        (None, Some(agent_id)) => routing
            .transfer_to_agent(rpb::ConversationAgent {
                conversation_id: id,
                agent_id: agent_id.to_string(),
            })
            .await
            .api()?,
        _ => return Err(ApiError::invalid("give exactly one of queue_id and agent_id")),
    };
    Ok(Json(item.try_into()?))
}

#[utoipa::path(post, path = "/conversations/{id}/pick", tag = "agent",
    description = "Takes a waiting conversation of a pick workstream (see `GET /me/pickable`).",
    responses((status = 200, body = WorkItem), (status = 422, body = crate::error::ErrorBody)))]
async fn pick(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<WorkItem>> {
    let me = caller.agent()?;
    parse_id(&id, "conversation id")?;
    let item = s
        .routing()
        .pick(rpb::ConversationAgent {
            conversation_id: id,
            agent_id: me.to_string(),
        })
        .await
        .api()?;
    Ok(Json(item.try_into()?))
}

/// The agent to assign.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssignRequest {
    #[schema(value_type = String, format = Uuid)]
    pub agent_id: AgentId,
}

#[utoipa::path(post, path = "/conversations/{id}/assign", tag = "supervisor", request_body = AssignRequest,
    responses((status = 200, body = WorkItem), (status = 403, body = crate::error::ErrorBody)))]
async fn assign(
    SupervisorCaller(caller): SupervisorCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(a): Json<AssignRequest>,
) -> ApiResult<Json<WorkItem>> {
    conversation(&s, &caller, &id, Intent::Work).await?;
    let item = s
        .routing()
        .assign_by_supervisor(rpb::ConversationAgent {
            conversation_id: id,
            agent_id: a.agent_id.to_string(),
        })
        .await
        .api()?;
    Ok(Json(item.try_into()?))
}

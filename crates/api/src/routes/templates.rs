//! Admin: WhatsApp templates (and "sync now" from Twilio's Content API) and automated messages.

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_bus::Envelope;
use switchboard_bus::events::SyncTemplatesV1;
use switchboard_domain::ids::{ChannelId, NumberId};
use switchboard_proto::session::v1 as spb;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::{AdminCaller, Caller, Role};
use crate::error::{ApiError, ApiResult, parse_id};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::{AutomatedMessage, Template, TemplateLocalization};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_template, list_templates))
        .routes(routes!(get_template, update_template, delete_template))
        .routes(routes!(sync_templates))
        .routes(routes!(list_automated, set_automated, delete_automated))
}

/// A template to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TemplateInput {
    #[schema(value_type = String, format = Uuid)]
    pub number_id: NumberId,
    pub name: String,
    pub default_language: String,
    pub localizations: Vec<TemplateLocalization>,
}

impl From<TemplateInput> for spb::TemplateInput {
    fn from(t: TemplateInput) -> Self {
        Self {
            number_id: t.number_id.to_string(),
            name: t.name,
            default_language: t.default_language,
            localizations: t
                .localizations
                .into_iter()
                .map(|l| spb::TemplateLocalization {
                    language: l.language,
                    text: l.text,
                    content_sid: l.content_sid,
                    status: l.status,
                    content_type: l.content_type,
                    content_json: String::new(),
                })
                .collect(),
        }
    }
}

/// Templates of one number.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateFilter {
    #[param(value_type = String, format = Uuid)]
    pub number_id: NumberId,
}

#[utoipa::path(post, path = "/templates", tag = "admin", request_body = TemplateInput, responses((status = 201, body = Template)))]
async fn create_template(
    _: AdminCaller,
    State(s): State<AppState>,
    Json(t): Json<TemplateInput>,
) -> ApiResult<(StatusCode, Json<Template>)> {
    let template = s.session().create_template(spb::TemplateInput::from(t)).await.api()?;
    Ok((StatusCode::CREATED, Json(template.try_into()?)))
}

#[utoipa::path(get, path = "/templates", tag = "admin", params(TemplateFilter), responses((status = 200, body = Vec<Template>)))]
async fn list_templates(caller: Caller, State(s): State<AppState>, Query(f): Query<TemplateFilter>) -> ApiResult<Json<Vec<Template>>> {
    // Agents read templates too: they pick one when the window has closed.
    caller.require(Role::Agent)?;
    let r = s
        .session()
        .list_templates(spb::ListTemplatesRequest {
            number_id: f.number_id.to_string(),
        })
        .await
        .api()?;
    Ok(Json(r.templates.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

#[utoipa::path(get, path = "/templates/{id}", tag = "admin", responses((status = 200, body = Template)))]
async fn get_template(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Template>> {
    caller.require(Role::Agent)?;
    Ok(Json(s.session().get_template(spb::GetByIdRequest { id }).await.api()?.try_into()?))
}

#[utoipa::path(put, path = "/templates/{id}", tag = "admin", request_body = TemplateInput, responses((status = 200, body = Template)))]
async fn update_template(
    _: AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(t): Json<TemplateInput>,
) -> ApiResult<Json<Template>> {
    let template = s
        .session()
        .update_template(spb::UpdateTemplateRequest {
            id,
            template: Some(t.into()),
        })
        .await
        .api()?;
    Ok(Json(template.try_into()?))
}

#[utoipa::path(delete, path = "/templates/{id}", tag = "admin", responses((status = 204)))]
async fn delete_template(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.session().delete_template(spb::GetByIdRequest { id }).await.api()?;
    Ok(StatusCode::NO_CONTENT)
}

/// A sync request accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncAccepted {
    /// The channel whose templates are fetched from Twilio's Content API now.
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
}

#[utoipa::path(post, path = "/channels/{id}/templates/sync", tag = "admin",
    description = "Fetches the channel's templates and their approval status from Twilio's Content API now (asynchronously).",
    responses((status = 202, body = SyncAccepted)))]
async fn sync_templates(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<(StatusCode, Json<SyncAccepted>)> {
    let channel = ChannelId::from(parse_id(&id, "channel id")?);
    // Refuse unknown channels now rather than after the command is queued.
    s.session().get_channel(spb::GetByIdRequest { id: id.clone() }).await.api()?;
    let event = Envelope::new(SyncTemplatesV1 { channel_id: Some(channel) });
    s.publisher.publish_event(&event, true).await.map_err(|e| {
        ApiError::new(
            switchboard_service_kit::ErrorCode::Unavailable,
            format!("the bus is unavailable: {e}"),
        )
    })?;
    Ok((StatusCode::ACCEPTED, Json(SyncAccepted { channel_id: channel })))
}

/// Automated messages of a channel (and optionally one number).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutomatedFilter {
    #[param(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    #[param(value_type = Option<String>, format = Uuid)]
    pub number_id: Option<NumberId>,
}

/// Which automated message to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutomatedKey {
    #[param(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    #[param(value_type = Option<String>, format = Uuid)]
    pub number_id: Option<NumberId>,
    pub trigger: String,
    pub language: String,
}

#[utoipa::path(get, path = "/automated-messages", tag = "admin", params(AutomatedFilter), responses((status = 200, body = Vec<AutomatedMessage>)))]
async fn list_automated(
    _: AdminCaller,
    State(s): State<AppState>,
    Query(f): Query<AutomatedFilter>,
) -> ApiResult<Json<Vec<AutomatedMessage>>> {
    let r = s
        .session()
        .list_automated_messages(spb::ListAutomatedMessagesRequest {
            channel_id: f.channel_id.to_string(),
            number_id: f.number_id.map(|n| n.to_string()).unwrap_or_default(),
        })
        .await
        .api()?;
    Ok(Json(r.messages.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?))
}

#[utoipa::path(put, path = "/automated-messages", tag = "admin", request_body = AutomatedMessage,
    description = "Creates or replaces the automated message of a trigger and language.",
    responses((status = 200, body = AutomatedMessage)))]
async fn set_automated(_: AdminCaller, State(s): State<AppState>, Json(m): Json<AutomatedMessage>) -> ApiResult<Json<AutomatedMessage>> {
    let saved = s
        .session()
        .set_automated_message(spb::AutomatedMessage {
            channel_id: m.channel_id.to_string(),
            number_id: m.number_id.map(|n| n.to_string()).unwrap_or_default(),
            trigger: m.trigger,
            language: m.language,
            text: m.text,
            active: m.active,
            source: String::new(),
        })
        .await
        .api()?;
    Ok(Json(saved.try_into()?))
}

#[utoipa::path(delete, path = "/automated-messages", tag = "admin", params(AutomatedKey),
    description = "Removes a custom automated message; the default text applies again.",
    responses((status = 204)))]
async fn delete_automated(_: AdminCaller, State(s): State<AppState>, Query(k): Query<AutomatedKey>) -> ApiResult<StatusCode> {
    s.session()
        .delete_automated_message(spb::DeleteAutomatedMessageRequest {
            channel_id: k.channel_id.to_string(),
            number_id: k.number_id.map(|n| n.to_string()).unwrap_or_default(),
            trigger: k.trigger,
            language: k.language,
        })
        .await
        .api()?;
    Ok(StatusCode::NO_CONTENT)
}

//! Admin: channels (Twilio accounts), their WhatsApp numbers, number settings and the survey.

use axum::extract::State;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use switchboard_domain::ids::{ChannelId, TemplateId};
use switchboard_proto::session::v1 as spb;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::{AdminCaller, Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::{Channel, Number, NumberSettings, Page, PageQuery};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_channel, list_channels))
        .routes(routes!(get_channel, update_channel, delete_channel))
        .routes(routes!(create_number, list_numbers))
        .routes(routes!(get_number, update_number, delete_number))
        .routes(routes!(set_survey))
}

/// A channel to create. The auth token is stored encrypted and never shown again.
// No Debug: it carries a secret, which must never reach a log line.
#[derive(Deserialize, ToSchema)]
pub struct NewChannel {
    pub name: String,
    /// `AC…`.
    pub account_sid: String,
    /// The account's auth token (signs webhooks, authorizes sends).
    pub auth_token: String,
    /// The shared Twilio Sandbox for WhatsApp.
    #[serde(default)]
    pub sandbox: bool,
    /// The sandbox's `join <code>` words.
    #[serde(default)]
    pub sandbox_join_code: String,
    /// Save without asking Twilio whether it accepts the credentials. By default they are
    /// checked, and credentials Twilio refuses (20003) are not saved (422).
    #[serde(default)]
    pub skip_credential_check: bool,
}

/// Changes to a channel; absent fields stay as they are.
// No Debug: it carries a secret, which must never reach a log line.
#[derive(Deserialize, ToSchema)]
pub struct ChannelPatch {
    pub name: Option<String>,
    /// A rotated auth token.
    pub auth_token: Option<String>,
    pub sandbox: Option<bool>,
    pub sandbox_join_code: Option<String>,
    pub active: Option<bool>,
    /// Save a new auth token without asking Twilio whether it accepts it.
    #[serde(default)]
    pub skip_credential_check: bool,
}

#[utoipa::path(post, path = "/channels", tag = "admin", request_body = NewChannel,
    responses((status = 201, body = Channel), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 422, description = "Twilio refuses the credentials (20003); nothing was saved", body = crate::error::ErrorBody)))]
async fn create_channel(_: AdminCaller, State(s): State<AppState>, Json(new): Json<NewChannel>) -> ApiResult<(StatusCode, Json<Channel>)> {
    let channel = s
        .session()
        .create_channel(spb::CreateChannelRequest {
            name: new.name,
            account_sid: new.account_sid,
            auth_token: new.auth_token,
            sandbox: new.sandbox,
            sandbox_join_code: new.sandbox_join_code,
            skip_credential_check: new.skip_credential_check,
        })
        .await
        .api()?;
    Ok((StatusCode::CREATED, Json(channel.into())))
}

#[utoipa::path(get, path = "/channels", tag = "admin", params(PageQuery), responses((status = 200, body = Page<Channel>)))]
async fn list_channels(_: AdminCaller, State(s): State<AppState>, Query(page): Query<PageQuery>) -> ApiResult<Json<Page<Channel>>> {
    let r = s
        .session()
        .list_channels(spb::ListChannelsRequest { page: Some(page.to_pb()) })
        .await
        .api()?;
    Ok(Json(Page::new(r.channels.into_iter().map(Into::into).collect(), r.page)))
}

#[utoipa::path(get, path = "/channels/{id}", tag = "admin", responses((status = 200, body = Channel), (status = 404, body = crate::error::ErrorBody)))]
async fn get_channel(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Channel>> {
    Ok(Json(s.session().get_channel(spb::GetByIdRequest { id }).await.api()?.into()))
}

#[utoipa::path(patch, path = "/channels/{id}", tag = "admin", request_body = ChannelPatch, responses((status = 200, body = Channel),
    (status = 422, description = "Twilio refuses the new auth token (20003); nothing was changed", body = crate::error::ErrorBody)))]
async fn update_channel(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<ChannelPatch>,
) -> ApiResult<Json<Channel>> {
    caller.require(Role::Admin)?;
    let channel = s
        .session()
        .update_channel(spb::UpdateChannelRequest {
            id,
            name: p.name,
            auth_token: p.auth_token,
            sandbox: p.sandbox,
            sandbox_join_code: p.sandbox_join_code,
            active: p.active,
            skip_credential_check: p.skip_credential_check,
        })
        .await
        .api()?;
    Ok(Json(channel.into()))
}

#[utoipa::path(delete, path = "/channels/{id}", tag = "admin",
    responses((status = 204), (status = 422, description = "the channel still has numbers", body = crate::error::ErrorBody)))]
async fn delete_channel(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.session().delete_channel(spb::GetByIdRequest { id }).await.api()?;
    Ok(StatusCode::NO_CONTENT)
}

/// A WhatsApp number to add to a channel.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewNumber {
    #[schema(value_type = String, format = Uuid)]
    pub channel_id: ChannelId,
    /// E.164, e.g. `+14155238886`.
    pub phone: String,
    #[serde(default)]
    pub display_name: String,
    /// Defaults apply to fields left out.
    #[serde(default)]
    pub settings: Option<NumberSettings>,
    /// Save it even if Twilio does not list it among the account's WhatsApp senders (by default
    /// such a number is refused with 422 and nothing is saved).
    #[serde(default)]
    pub skip_sender_check: bool,
}

/// Changes to a number; `settings`, when given, replaces every setting.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NumberPatch {
    pub display_name: Option<String>,
    pub active: Option<bool>,
    pub settings: Option<NumberSettings>,
}

/// Numbers of one channel.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NumberFilter {
    /// Only this channel's numbers.
    #[param(value_type = Option<String>, format = Uuid)]
    pub channel_id: Option<ChannelId>,
    /// Items per page (default 50, at most 200).
    #[serde(default, deserialize_with = "crate::views::page_size")]
    #[param(minimum = 1, maximum = 200)]
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
}

#[utoipa::path(post, path = "/numbers", tag = "admin", request_body = NewNumber, responses((status = 201, body = Number)))]
async fn create_number(_: AdminCaller, State(s): State<AppState>, Json(new): Json<NewNumber>) -> ApiResult<(StatusCode, Json<Number>)> {
    let number = s
        .session()
        .create_number(spb::CreateNumberRequest {
            channel_id: new.channel_id.to_string(),
            phone: new.phone,
            display_name: new.display_name,
            settings: new.settings.map(Into::into),
            skip_sender_check: new.skip_sender_check,
        })
        .await
        .api()?;
    Ok((StatusCode::CREATED, Json(number.try_into()?)))
}

#[utoipa::path(get, path = "/numbers", tag = "admin", params(NumberFilter), responses((status = 200, body = Page<Number>)))]
async fn list_numbers(_: AdminCaller, State(s): State<AppState>, Query(f): Query<NumberFilter>) -> ApiResult<Json<Page<Number>>> {
    let page = PageQuery {
        page_size: f.page_size,
        page_token: f.page_token,
    };
    let r = s
        .session()
        .list_numbers(spb::ListNumbersRequest {
            channel_id: f.channel_id.map(|c| c.to_string()).unwrap_or_default(),
            page: Some(page.to_pb()),
        })
        .await
        .api()?;
    Ok(Json(Page::new(
        r.numbers.into_iter().map(TryInto::try_into).collect::<Result<_, _>>()?,
        r.page,
    )))
}

#[utoipa::path(get, path = "/numbers/{id}", tag = "admin", responses((status = 200, body = Number)))]
async fn get_number(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Number>> {
    Ok(Json(s.session().get_number(spb::GetByIdRequest { id }).await.api()?.try_into()?))
}

#[utoipa::path(patch, path = "/numbers/{id}", tag = "admin", request_body = NumberPatch, responses((status = 200, body = Number)))]
async fn update_number(
    _: AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(p): Json<NumberPatch>,
) -> ApiResult<Json<Number>> {
    let number = s
        .session()
        .update_number(spb::UpdateNumberRequest {
            id,
            display_name: p.display_name,
            active: p.active,
            settings: p.settings.map(Into::into),
        })
        .await
        .api()?;
    Ok(Json(number.try_into()?))
}

/// What deleting a number did.
#[derive(Debug, Serialize, ToSchema)]
pub struct NumberDeleted {
    pub conversations_closed: u32,
    pub messages_failed: u32,
    pub templates_removed: u32,
}

#[utoipa::path(delete, path = "/numbers/{id}", tag = "admin",
    description = "Closes the number's live conversations, fails its pending sends and removes its templates.",
    responses((status = 200, body = NumberDeleted)))]
async fn delete_number(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<NumberDeleted>> {
    let r = s.session().delete_number(spb::GetByIdRequest { id }).await.api()?;
    Ok(Json(NumberDeleted {
        conversations_closed: r.conversations_closed,
        messages_failed: r.messages_failed,
        templates_removed: r.templates_removed,
    }))
}

/// The post-conversation survey of a number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Survey {
    pub enabled: bool,
    /// The survey URL; the conversation id is appended as `conversation_id`.
    pub url: String,
    /// Invitation text inside the 24-hour window (the link is appended).
    #[serde(default)]
    pub message: String,
    /// Approved template used outside the window.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub template_id: Option<TemplateId>,
}

#[utoipa::path(put, path = "/numbers/{id}/survey", tag = "admin", request_body = Survey, responses((status = 200, body = Number)))]
async fn set_survey(
    _: AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(survey): Json<Survey>,
) -> ApiResult<Json<Number>> {
    if survey.enabled && !(survey.url.starts_with("https://") || survey.url.starts_with("http://")) {
        return Err(ApiError::invalid("url must be an http(s) URL when the survey is enabled"));
    }
    let mut session = s.session();
    let number = session.get_number(spb::GetByIdRequest { id: id.clone() }).await.api()?;
    let mut settings = number.settings.unwrap_or_default();
    settings.survey_enabled = survey.enabled;
    settings.survey_url = survey.url;
    settings.survey_message = survey.message;
    settings.survey_template_id = survey.template_id.map(|t| t.to_string()).unwrap_or_default();
    let number = session
        .update_number(spb::UpdateNumberRequest {
            id,
            display_name: None,
            active: None,
            settings: Some(settings),
        })
        .await
        .api()?;
    Ok(Json(number.try_into()?))
}

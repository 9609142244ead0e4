//! Admin: inbound messages no number took (sent to a number not configured on the channel, or
//! inactive). Ingress answered them 200, so Twilio does not retry them; this is where they are
//! found.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use switchboard_domain::ids::ChannelId;
use switchboard_proto::session::v1 as spb;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::AdminCaller;
use crate::error::ApiResult;
use crate::extract::{Json, Query};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_unroutable))
}

/// Which messages to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnroutableFilter {
    /// Only this channel's.
    #[param(value_type = Option<String>, format = Uuid)]
    pub channel_id: Option<ChannelId>,
    /// How many, newest first (default 100, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// An inbound message no number took.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnroutableMessage {
    pub id: String,
    pub channel_id: ChannelId,
    pub message_sid: String,
    /// The number it was sent to (E.164).
    pub to: String,
    /// The customer.
    pub from: String,
    /// `unknown_number` (not configured on the channel) or `inactive_number`.
    pub reason: String,
    pub body: String,
    pub received_at: Option<String>,
}

#[utoipa::path(get, path = "/unroutable-messages", tag = "admin", params(UnroutableFilter),
    description = "Inbound messages sent to a number that is not configured on their channel, or inactive, newest first. \
                   They were answered 200 (Twilio would otherwise retry a message that can never be routed) and kept here.",
    responses((status = 200, body = Vec<UnroutableMessage>), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn list_unroutable(
    _: AdminCaller,
    State(s): State<AppState>,
    Query(f): Query<UnroutableFilter>,
) -> ApiResult<Json<Vec<UnroutableMessage>>> {
    let limit = f.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(crate::error::ApiError::invalid("limit must be between 1 and 500"));
    }
    let listed = s
        .session()
        .list_unroutable_messages(spb::ListUnroutableMessagesRequest {
            channel_id: f.channel_id.map(|c| c.to_string()).unwrap_or_default(),
            limit,
        })
        .await
        .api()?;
    Ok(Json(
        listed
            .messages
            .into_iter()
            .map(|m| {
                Ok(UnroutableMessage {
                    received_at: crate::views::timestamp(m.received_at.as_ref()),
                    id: m.id,
                    channel_id: crate::views::wire(&m.channel_id, "channel id")?,
                    message_sid: m.message_sid,
                    to: m.to,
                    from: m.from,
                    reason: m.reason,
                    body: m.body,
                })
            })
            .collect::<Result<_, crate::error::ApiError>>()?,
    ))
}

//! The REST routes, grouped by resource. Handlers stay thin: authorize, convert, call session or
//! routing over gRPC, convert back.

pub mod activity;
pub mod agent;
pub mod bots;
pub mod channel_health;
pub mod channels;
pub mod conversations;
pub mod files;
pub mod keys;
pub mod reports;
pub mod routing_config;
pub mod supervisor;
pub mod templates;
pub mod unroutable;
pub mod users;
pub mod webhook_keys;
pub mod webhooks;

use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Turns a gRPC reply into the API's result.
pub trait GrpcExt<T> {
    /// The reply's message, or its status as an [`ApiError`].
    fn api(self) -> ApiResult<T>;
}

impl<T> GrpcExt<T> for Result<tonic::Response<T>, tonic::Status> {
    fn api(self) -> ApiResult<T> {
        self.map(tonic::Response::into_inner).map_err(ApiError::from)
    }
}

/// Refuses an `agent` that routing does not know (`404`), before a key or a user is bound to it.
pub(crate) async fn agent_exists(s: &AppState, agent: Option<uuid::Uuid>) -> ApiResult<()> {
    if let Some(agent) = agent {
        let config = switchboard_proto::routing::v1::ConfigRef {
            kind: "agent".into(),
            id: agent.to_string(),
        };
        s.routing().get_config(config).await.api()?;
    }
    Ok(())
}

/// Every REST route under `/api/v1`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(channels::router())
        .merge(channel_health::router())
        .merge(templates::router())
        .merge(routing_config::router())
        .merge(keys::router())
        .merge(agent::router())
        .merge(conversations::router())
        .merge(files::router())
        .merge(activity::router())
        .merge(supervisor::router())
        .merge(reports::router())
        .merge(bots::router())
        .merge(unroutable::router())
        .merge(webhooks::router())
        .merge(webhook_keys::router())
        .merge(users::router())
}

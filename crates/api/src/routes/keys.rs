//! Admin: API keys.

use axum::extract::State;
use http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminCaller, CreatedKey, KeyInfo, NewKey};
use crate::error::ApiResult;
use crate::extract::{Json, Path};
use crate::state::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

#[utoipa::path(post, path = "/api-keys", tag = "admin", request_body = NewKey,
    description = "Creates a key; the response carries the key itself, shown only this once.",
    responses((status = 201, body = CreatedKey), (status = 400, body = crate::error::ErrorBody)))]
async fn create_key(_: AdminCaller, State(s): State<AppState>, Json(new): Json<NewKey>) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    super::agent_exists(&s, new.agent_id).await?;
    Ok((StatusCode::CREATED, Json(s.keys.create(&new).await?)))
}

#[utoipa::path(get, path = "/api-keys", tag = "admin", responses((status = 200, body = Vec<KeyInfo>)))]
async fn list_keys(_: AdminCaller, State(s): State<AppState>) -> ApiResult<Json<Vec<KeyInfo>>> {
    Ok(Json(s.keys.list().await?))
}

#[utoipa::path(delete, path = "/api-keys/{id}", tag = "admin", responses((status = 200, body = KeyInfo), (status = 404, body = crate::error::ErrorBody)))]
async fn revoke_key(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<KeyInfo>> {
    Ok(Json(s.keys.revoke(crate::error::parse_id(&id, "id")?).await?))
}

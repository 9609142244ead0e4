//! Signing in to the web desk (`/auth/…`) and, for admins, its users (`/users`).

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::SET_COOKIE;
use serde::Deserialize;
use switchboard_service_kit::ErrorCode;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminCaller, Caller, ClientAddress, Via};
use crate::cookies;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::users::{NewUser, SetupToken, SignedIn, User, UserPatch};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(setup))
        .routes(routes!(invite_user, list_users))
        .routes(routes!(update_user))
        .routes(routes!(reset_password))
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
pub struct SignInRequest {
    pub email: String,
    pub password: String,
}

/// A password change by the signed-in user.
#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Choosing a password with a setup token (an invitation or a reset).
#[derive(Deserialize, ToSchema)]
pub struct SetupRequest {
    pub token: String,
    pub password: String,
}

fn too_many(wait: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::ResourceExhausted,
        format!("too many failed sign-ins; try again in {} s", wait.as_secs().max(1)),
    )
}

#[utoipa::path(post, path = "/auth/sign-in", tag = "auth", request_body = SignInRequest, security(()),
    description = "Signs a user in: sets the `sb_session` cookie (HttpOnly, Secure, SameSite=Strict) and returns the CSRF token \
                   to send as `X-CSRF-Token` with every state-changing request. Wrong passwords are limited per address and per account.",
    responses((status = 200, body = SignedIn), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
async fn sign_in(State(s): State<AppState>, ClientAddress(address): ClientAddress, Json(req): Json<SignInRequest>) -> ApiResult<Response> {
    if let Some(address) = address {
        s.limits.address_allowed(address).map_err(too_many)?;
    }
    s.limits.account_allowed(&req.email).map_err(too_many)?;
    match s.users.sign_in(&req.email, &req.password).await {
        Ok((token, signed_in)) => {
            let cookie = cookies::set_cookie(&token, s.users.session_ttl());
            Ok(([(SET_COOKIE, cookie)], axum::Json(signed_in)).into_response())
        }
        Err(error) => {
            if error.code == ErrorCode::Unauthenticated {
                if let Some(address) = address {
                    s.limits.failed(address);
                }
                s.limits.account_failed(&req.email);
            }
            Err(error)
        }
    }
}

#[utoipa::path(post, path = "/auth/sign-out", tag = "auth",
    description = "Ends this browser session and clears its cookie.",
    responses((status = 204), (status = 401, body = crate::error::ErrorBody)))]
async fn sign_out(caller: Caller, State(s): State<AppState>, headers: http::HeaderMap) -> ApiResult<Response> {
    if caller.via == Via::Key {
        return Err(ApiError::new(
            ErrorCode::FailedPrecondition,
            "an API key is revoked, not signed out",
        ));
    }
    let token = cookies::session_token(&headers);
    s.users.sign_out(caller.key_id, token.as_deref()).await?;
    Ok((StatusCode::NO_CONTENT, [(SET_COOKIE, cookies::clear_cookie())]).into_response())
}

#[utoipa::path(get, path = "/auth/me", tag = "auth",
    description = "The signed-in user and the session's CSRF token (422 for an API key: there is no session).",
    responses((status = 200, body = SignedIn), (status = 401, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn me(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<SignedIn>> {
    Ok(Json(s.users.me(&caller).await?))
}

#[utoipa::path(post, path = "/auth/password", tag = "auth", request_body = PasswordChange,
    description = "Changes the signed-in user's password (12 to 256 characters); their other sessions end.",
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn change_password(caller: Caller, State(s): State<AppState>, Json(req): Json<PasswordChange>) -> ApiResult<StatusCode> {
    s.users.change_password(&caller, &req.current_password, &req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/auth/setup", tag = "auth", request_body = SetupRequest, security(()),
    description = "Chooses a password with the one-time token of an invitation or a reset; then sign in.",
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)))]
async fn setup(State(s): State<AppState>, ClientAddress(address): ClientAddress, Json(req): Json<SetupRequest>) -> ApiResult<StatusCode> {
    if let Some(address) = address {
        s.limits.address_allowed(address).map_err(too_many)?;
    }
    let done = s.users.setup(&req.token, &req.password).await;
    if let (Err(e), Some(address)) = (&done, address)
        && e.code == ErrorCode::Unauthenticated
    {
        s.limits.failed(address);
    }
    done.map(|()| StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/users", tag = "admin", request_body = NewUser,
    description = "Invites a user: the response carries a one-time setup token (valid `api.web.setup_hours`) with which they choose a password.",
    responses((status = 201, body = SetupToken), (status = 400, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn invite_user(_: AdminCaller, State(s): State<AppState>, Json(new): Json<NewUser>) -> ApiResult<(StatusCode, Json<SetupToken>)> {
    super::agent_exists(&s, new.agent_id).await?;
    Ok((StatusCode::CREATED, Json(s.users.invite(&new).await?)))
}

#[utoipa::path(get, path = "/users", tag = "admin", responses((status = 200, body = Vec<User>)))]
async fn list_users(_: AdminCaller, State(s): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(s.users.list().await?))
}

#[utoipa::path(patch, path = "/users/{id}", tag = "admin", request_body = UserPatch,
    description = "Renames a user, changes a supervisor's queues, or disables a user (their sessions end) or enables them again.",
    responses((status = 200, body = User), (status = 404, body = crate::error::ErrorBody)))]
async fn update_user(
    _: AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(patch): Json<UserPatch>,
) -> ApiResult<Json<User>> {
    Ok(Json(s.users.update(crate::error::parse_id(&id, "id")?, &patch).await?))
}

#[utoipa::path(post, path = "/users/{id}/reset-password", tag = "admin",
    description = "Resets a user's password: the old one stops working, their sessions end, and a new one-time setup token is returned.",
    responses((status = 200, body = SetupToken), (status = 404, body = crate::error::ErrorBody)))]
async fn reset_password(_: AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<SetupToken>> {
    Ok(Json(s.users.reset(crate::error::parse_id(&id, "id")?).await?))
}

//! Who is calling: the request extractors for [`Caller`] (an API key or a desk session, with the
//! failed-authentication and per-key limits), [`AdminCaller`], [`SupervisorCaller`] and
//! [`ClientAddress`]. They read the shared state; the types and the rules they apply live in
//! `auth`, which knows nothing of the state.

use std::time::Duration;

use axum::extract::FromRequestParts;
use http::request::Parts;
use switchboard_service_kit::ErrorCode;

use crate::auth::{AdminCaller, Caller, ClientAddress, Role, SupervisorCaller, Via, presented_key};
use crate::error::ApiError;
use crate::state::AppState;

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(parts, state)))
    }
}

fn client_address(parts: &Parts, state: &AppState) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| {
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        switchboard_domain::client_address::client_address(c.0.ip(), forwarded, &state.settings.limits.trusted_proxies)
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let address = client_address(parts, state);
        let too_many = |wait: Duration, what: &str| {
            ApiError::new(
                ErrorCode::ResourceExhausted,
                format!("{what}; try again in {} s", wait.as_secs().max(1)),
            )
        };
        if let Some(address) = address {
            state
                .limits
                .address_allowed(address)
                .map_err(|wait| too_many(wait, "too many failed authentications from this address"))?;
        }
        let presented = presented_key(parts);
        let cookie = crate::cookies::session_token(&parts.headers);
        let authenticated = match (&presented, &cookie) {
            (Some(key), _) => state.keys.authenticate(key).await,
            (None, Some(token)) => match state.users.authenticate(token).await? {
                Some(session) => {
                    if let Via::Session { csrf, .. } = &session.via {
                        crate::cookies::check(parts, csrf)?;
                    }
                    Ok(session)
                }
                None => Err(ApiError::new(ErrorCode::Unauthenticated, "your session has ended; sign in again")),
            },
            (None, None) => Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "a valid API key (Authorization: Bearer sb_…) or a signed-in session is required",
            )),
        };
        let caller = match authenticated {
            Ok(caller) => caller,
            Err(error) => {
                // A wrong key is a guess; no key at all is not, nor a session cookie that has
                // ended (256 random bits cannot be guessed; a browser keeps sending a stale one).
                if let (Some(address), ErrorCode::Unauthenticated, Some(_)) = (address, error.code, &presented) {
                    state.limits.failed(address);
                }
                return Err(error);
            }
        };
        state
            .limits
            .request(caller.key_id)
            .map_err(|wait| too_many(wait, "this key is over its request rate"))?;
        Ok((*caller).clone())
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Role::Admin)?;
        Ok(Self(caller))
    }
}

impl FromRequestParts<AppState> for SupervisorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(Role::Supervisor)?;
        Ok(Self(caller))
    }
}

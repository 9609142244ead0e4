//! Admin: routing configuration (workstreams with their classification and route-to-queue
//! rules, queues, operating hours, skills, capacity profiles, agents), stored and validated by
//! routing. Every kind has the same five operations.

use axum::extract::State;
use http::StatusCode;
use serde::Deserialize;
use switchboard_proto::routing::v1 as rpb;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::auth::{AdminCaller, Caller, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use crate::views::ConfigObject;

/// A routing object to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ConfigInput {
    /// Unique within its kind.
    pub name: String,
    /// The kind's definition (workstream: mode, queues, rules…; queue: priority, members,
    /// assignment, overflow…); an invalid one is refused with the field at fault.
    #[schema(value_type = Object)]
    #[serde(default = "empty_object")]
    pub definition: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

async fn put(caller: &Caller, s: &AppState, kind: &str, id: String, input: ConfigInput) -> ApiResult<ConfigObject> {
    caller.require(Role::Admin)?;
    let object = s
        .routing()
        .put_config(rpb::PutConfigRequest {
            kind: kind.into(),
            id,
            name: input.name,
            definition_json: input.definition.to_string(),
        })
        .await
        .api()?;
    Ok(object.into())
}

async fn list(caller: &Caller, s: &AppState, kind: &str) -> ApiResult<Vec<ConfigObject>> {
    caller.require(Role::Supervisor)?;
    let r = s.routing().list_config(rpb::ListConfigRequest { kind: kind.into() }).await.api()?;
    Ok(r.objects.into_iter().map(Into::into).collect())
}

async fn get(caller: &Caller, s: &AppState, kind: &str, id: String) -> ApiResult<ConfigObject> {
    caller.require(Role::Supervisor)?;
    Ok(s.routing().get_config(rpb::ConfigRef { kind: kind.into(), id }).await.api()?.into())
}

async fn delete(caller: &Caller, s: &AppState, kind: &str, id: String) -> ApiResult<StatusCode> {
    caller.require(Role::Admin)?;
    s.routing().delete_config(rpb::ConfigRef { kind: kind.into(), id }).await.api()?;
    Ok(StatusCode::NO_CONTENT)
}

macro_rules! config_kind {
    ($module:ident, $kind:tt, $list:tt, $one:tt, $tag:tt) => {
        mod $module {
            use super::*;

            #[utoipa::path(post, path = $list, tag = $tag, operation_id = concat!("create_", $kind), request_body = ConfigInput,
                responses((status = 201, body = ConfigObject), (status = 400, body = crate::error::ErrorBody)))]
            pub async fn create(AdminCaller(caller): AdminCaller, State(s): State<AppState>, Json(input): Json<ConfigInput>) -> ApiResult<(StatusCode, Json<ConfigObject>)> {
                put(&caller, &s, $kind, String::new(), input).await.map(|o| (StatusCode::CREATED, Json(o)))
            }

            #[utoipa::path(get, path = $list, tag = $tag, operation_id = concat!("list_", $kind), responses((status = 200, body = Vec<ConfigObject>)))]
            pub async fn list_all(caller: Caller, State(s): State<AppState>) -> ApiResult<Json<Vec<ConfigObject>>> {
                list(&caller, &s, $kind).await.map(Json)
            }

            #[utoipa::path(get, path = $one, tag = $tag, operation_id = concat!("get_", $kind), responses((status = 200, body = ConfigObject), (status = 404, body = crate::error::ErrorBody)))]
            pub async fn get_one(caller: Caller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<ConfigObject>> {
                get(&caller, &s, $kind, id).await.map(Json)
            }

            #[utoipa::path(put, path = $one, tag = $tag, operation_id = concat!("replace_", $kind), request_body = ConfigInput, responses((status = 200, body = ConfigObject)))]
            pub async fn replace(AdminCaller(caller): AdminCaller, State(s): State<AppState>, Path(id): Path<String>, Json(input): Json<ConfigInput>) -> ApiResult<Json<ConfigObject>> {
                crate::error::parse_id(&id, "id")?;
                put(&caller, &s, $kind, id, input).await.map(Json)
            }

            #[utoipa::path(delete, path = $one, tag = $tag, operation_id = concat!("delete_", $kind), responses((status = 204), (status = 422, body = crate::error::ErrorBody)))]
            pub async fn remove(AdminCaller(caller): AdminCaller, State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
                delete(&caller, &s, $kind, id).await
            }

            pub fn router() -> OpenApiRouter<AppState> {
                OpenApiRouter::new().routes(routes!(create, list_all)).routes(routes!(get_one, replace, remove))
            }
        }
    };
}

config_kind!(
    workstreams,
    "workstream",
    "/workstreams",
    "/workstreams/{id}",
    "routing configuration"
);
config_kind!(queues, "queue", "/queues", "/queues/{id}", "routing configuration");
config_kind!(
    operating_hours,
    "operating_hours",
    "/operating-hours",
    "/operating-hours/{id}",
    "routing configuration"
);
config_kind!(skills, "skill", "/skills", "/skills/{id}", "routing configuration");
config_kind!(
    capacity_profiles,
    "capacity_profile",
    "/capacity-profiles",
    "/capacity-profiles/{id}",
    "routing configuration"
);
config_kind!(agents, "agent", "/agents", "/agents/{id}", "routing configuration");

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(workstreams::router())
        .merge(queues::router())
        .merge(operating_hours::router())
        .merge(skills::router())
        .merge(capacity_profiles::router())
        .merge(agents::router())
        .routes(routes!(set_classification))
        .routes(routes!(set_route_to_queue))
}

/// Replaces one part of a workstream's definition.
async fn set_part(caller: &Caller, s: &AppState, id: String, part: &str, rules: serde_json::Value) -> ApiResult<ConfigObject> {
    caller.require(Role::Admin)?;
    if !rules.is_array() {
        return Err(ApiError::invalid(format!("{part} must be a JSON array of rules")));
    }
    let current = s
        .routing()
        .get_config(rpb::ConfigRef {
            kind: "workstream".into(),
            id: id.clone(),
        })
        .await
        .api()?;
    let mut definition: serde_json::Value =
        serde_json::from_str(&current.definition_json).map_err(|e| ApiError::internal(format!("stored workstream is not JSON: {e}")))?;
    definition[part] = rules;
    put(
        caller,
        s,
        "workstream",
        id,
        ConfigInput {
            name: current.name,
            definition,
        },
    )
    .await
}

#[utoipa::path(put, path = "/workstreams/{id}/classification", tag = "routing configuration",
    description = "Replaces the workstream's classification rulesets (evaluated in order, each first-match).",
    request_body(content = Vec<Object>, description = "an array of rulesets"),
    responses((status = 200, body = ConfigObject)))]
async fn set_classification(
    AdminCaller(caller): AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(rules): Json<Vec<serde_json::Value>>,
) -> ApiResult<Json<ConfigObject>> {
    set_part(&caller, &s, id, "classification", rules.into()).await.map(Json)
}

#[utoipa::path(put, path = "/workstreams/{id}/route-to-queue", tag = "routing configuration",
    description = "Replaces the workstream's route-to-queue rules (first match; a rule may split by percentage across up to 5 queues).",
    request_body(content = Vec<Object>, description = "an array of route-to-queue rules"),
    responses((status = 200, body = ConfigObject)))]
async fn set_route_to_queue(
    AdminCaller(caller): AdminCaller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Json(rules): Json<Vec<serde_json::Value>>,
) -> ApiResult<Json<ConfigObject>> {
    set_part(&caller, &s, id, "route_to_queue", rules.into()).await.map(Json)
}

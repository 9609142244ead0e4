//! Files agents upload to send: `POST /conversations/{id}/files` takes the raw bytes (its
//! `Content-Type` is the file's type), session checks them against the number's attachment
//! settings and keeps them, and a reply then sends the file by id
//! (`{"media": {"file_id": "…"}}`). Twilio fetches it from ingress at a signed URL that expires.

use axum::body::Body;
use axum::extract::State;
use futures_util::StreamExt;
use http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};
use switchboard_domain::attachment::WHATSAPP_MAX_MEDIA_BYTES;
use switchboard_domain::ids::ConversationId;
use switchboard_domain::message::AuthorKind;
use switchboard_proto::closed_sets::code;
use switchboard_proto::session::v1 as spb;
use switchboard_service_kit::ErrorCode;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::GrpcExt;
use crate::access::{Intent, conversation};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use crate::views::{timestamp, wire};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload))
}

/// The bytes go to session in pieces this large.
const CHUNK: usize = 256 * 1024;

/// An uploaded file.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedFile {
    /// Send it with `{"media": {"file_id": …}}`.
    pub id: String,
    pub conversation_id: ConversationId,
    /// The name it is sent under (paths and quotes removed, its type's extension kept).
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    pub created_at: Option<String>,
}

impl TryFrom<spb::File> for UploadedFile {
    type Error = ApiError;

    fn try_from(f: spb::File) -> Result<Self, ApiError> {
        Ok(Self {
            created_at: timestamp(f.created_at.as_ref()),
            id: f.id,
            conversation_id: wire(&f.conversation_id, "conversation id")?,
            file_name: f.file_name,
            content_type: f.content_type,
            size_bytes: f.size_bytes,
            sha256: f.sha256,
        })
    }
}

/// The file's name.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file's name, as the customer's phone shows it (documents); defaults to `file`.
    #[serde(default)]
    pub name: String,
}

#[utoipa::path(post, path = "/conversations/{id}/files", tag = "conversations", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes; `Content-Type` is its type (image/jpeg, image/png, audio/mpeg, audio/ogg, audio/amr, video/mp4, application/pdf)."),
    description = "Uploads a file to send in the conversation, as its assigned agent. It is checked against the number's attachment \
                   settings (agents may send files; the type; the size, at most WhatsApp's limit for the type: 5 MB for images, \
                   16 MB for the rest) and must be what its type says. Refused with 422 and `details.rule`.",
    responses((status = 201, body = UploadedFile), (status = 422, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)))]
async fn upload(
    caller: Caller,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<UploadedFile>)> {
    let me = caller.agent()?;
    conversation(&s, &caller, &id, Intent::Work).await?;
    // Held until the file is with session: the bytes stay in memory until then.
    let _place = s.limits.upload().ok_or_else(|| {
        ApiError::new(
            ErrorCode::ResourceExhausted,
            "too many files are being uploaded right now; try again in a moment",
        )
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::new(ErrorCode::UnsupportedMediaType, "give the file's type as its Content-Type"))?
        .to_owned();
    if q.name.contains('\0') {
        return Err(ApiError::invalid("name contains a NUL character (U+0000)"));
    }
    let bytes = read_capped(body, WHATSAPP_MAX_MEDIA_BYTES).await?;
    let first = spb::UploadFileChunk {
        conversation_id: id,
        author_kind: AuthorKind::Agent.as_str().into(),
        author_kind_code: code(AuthorKind::Agent),
        author_id: me.to_string(),
        file_name: q.name,
        content_type,
        data: Vec::new(),
    };
    let rest: Vec<spb::UploadFileChunk> = bytes
        .chunks(CHUNK)
        .map(|piece| spb::UploadFileChunk {
            data: piece.to_vec(),
            ..Default::default()
        })
        .collect();
    let chunks = futures_util::stream::iter(std::iter::once(first).chain(rest));
    let file = s.session().upload_file(chunks).await.api()?;
    Ok((StatusCode::CREATED, Json(file.try_into()?)))
}

/// Reads the body, refusing it (413) as soon as it passes `cap` bytes.
async fn read_capped(body: Body, cap: u64) -> ApiResult<Vec<u8>> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(frame) = stream.next().await {
        let frame = frame.map_err(|e| ApiError::invalid(format!("the upload was interrupted: {e}")))?;
        bytes.extend_from_slice(&frame);
        if bytes.len() as u64 > cap {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("the file is larger than {cap} bytes, WhatsApp's limit for any media"),
            ));
        }
    }
    Ok(bytes)
}

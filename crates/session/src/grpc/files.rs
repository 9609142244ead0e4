//! The gRPC side of agents' files: `UploadFile` (a client stream, refused as soon as it is too
//! large), `ReadFile` (ingress serving a signed URL) and the chunks both file reads send.

use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use switchboard_domain::attachment::WHATSAPP_MAX_MEDIA_BYTES;
use switchboard_domain::policy::PolicyDenial;
use switchboard_proto::session::v1 as pb;
use tonic::{Status, Streaming};

use crate::app::Session;
use crate::error::{SessionError, parse_id};
use crate::files::{Bytes, FileRow, SignedUrl, Upload, refused};
use crate::grpc::convert::{optional_id, timestamp};

/// A stream of file chunks.
pub type ChunkStream = std::pin::Pin<Box<dyn Stream<Item = Result<pb::MediaChunk, Status>> + Send>>;

/// Receives an upload: the first chunk names the file, the rest carry bytes. A file over the
/// number's cap for its type is refused as soon as it passes it.
pub async fn upload(session: &Session, mut chunks: Streaming<pb::UploadFileChunk>) -> Result<pb::File, SessionError> {
    let first = chunks
        .message()
        .await
        .map_err(|e| SessionError::invalid(format!("the upload was interrupted: {}", e.message())))?
        .ok_or_else(|| SessionError::invalid("an upload needs at least one chunk naming the file"))?;
    let upload = Upload {
        conversation_id: parse_id(&first.conversation_id, "conversation_id")?,
        author: switchboard_proto::closed_sets::read_author(first.author_kind_code, &first.author_kind).map_err(SessionError::Invalid)?,
        author_id: optional_id(&first.author_id, "author_id")?,
        file_name: first.file_name,
        content_type: first.content_type,
    };
    let cap = session
        .upload_cap(upload.conversation_id, &upload.content_type)
        .await?
        .min(WHATSAPP_MAX_MEDIA_BYTES);
    let mut bytes = first.data;
    while bytes.len() as u64 <= cap {
        match chunks.message().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk.data),
            Ok(None) => break,
            Err(e) => return Err(SessionError::invalid(format!("the upload was interrupted: {}", e.message()))),
        }
    }
    if bytes.len() as u64 > cap {
        return Err(refused(PolicyDenial::MediaTooLarge {
            size: bytes.len() as u64,
            limit: cap,
        }));
    }
    let file = session.upload_file(upload, bytes).await?;
    Ok(file_pb(&file))
}

/// Serves the file a signed URL names.
pub async fn read_signed(session: Arc<Session>, r: pb::ReadFileRequest) -> Result<ChunkStream, SessionError> {
    let signed = SignedUrl {
        file_id: parse_id(&r.file_id, "file_id")?,
        expires: r.expires,
        key_id: r.key_id.into(),
        signature: r.signature,
    };
    let (file, bytes) = session.read_signed_file(signed).await?;
    Ok(chunks(&file, bytes))
}

/// The chunks of `file`: the first names its type, size and name.
pub fn chunks(file: &FileRow, bytes: Bytes) -> ChunkStream {
    let mut first = Some(pb::MediaChunk {
        content_type: file.content_type.clone(),
        data: Vec::new(),
        size_bytes: file.size(),
        file_name: file.file_name.clone(),
    });
    bytes
        .map(move |piece| {
            let data = piece.map_err(Status::from)?;
            Ok(match first.take() {
                Some(head) => pb::MediaChunk { data, ..head },
                None => pb::MediaChunk {
                    data,
                    ..Default::default()
                },
            })
        })
        .boxed()
}

/// A file as the API sees it.
pub fn file_pb(file: &FileRow) -> pb::File {
    pb::File {
        id: file.id.to_string(),
        conversation_id: file.conversation_id.to_string(),
        file_name: file.file_name.clone(),
        content_type: file.content_type.clone(),
        size_bytes: file.size(),
        sha256: switchboard_twilio::signature::hex(&file.sha256),
        created_at: Some(timestamp(file.created_at)),
    }
}

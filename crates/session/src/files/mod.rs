//! Files agents upload to send (#21 item 5).
//!
//! An upload is checked when it arrives against the conversation's number (agents may send
//! files, an allowed type, the cap for that type, bytes that are of that type), so a file that
//! could never be sent is not kept. A message then names the file instead of a URL; session signs
//! a URL for it on ingress (`/v1/files/{id}/{name}?expires=…&key=…&signature=…`, HMAC-SHA256
//! under a key derived from the token keys) that Twilio fetches the file from, and that stops
//! working `[session.files] url_ttl_secs` later. Ingress holds no key: it hands the URL's parts
//! to `ChannelDirectory.ReadFile`, and session checks them.

pub mod store;

use futures_util::stream::BoxStream;
use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgConnection};
use switchboard_domain::attachment;
use switchboard_domain::policy::{self, Author, OutboundContent};
use time::OffsetDateTime;
use uuid::Uuid;

pub use store::{CHUNK_BYTES, FileStore};

use crate::app::Session;
use crate::error::SessionError;

/// An uploaded file's record (its bytes are read with [`Session::file_bytes`]).
#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: switchboard_domain::ids::FileId,
    pub conversation_id: switchboard_domain::ids::ConversationId,
    pub author_kind: switchboard_domain::message::AuthorKind,
    pub author_id: Option<Uuid>,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: Vec<u8>,
    pub object_key: Option<String>,
    pub created_at: OffsetDateTime,
}

impl FileRow {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        u64::try_from(self.size_bytes).unwrap_or(0)
    }
}

/// A file's columns (everything but its bytes).
macro_rules! file_columns {
    () => {
        "id, conversation_id, author_kind, author_id, file_name, content_type, size_bytes, sha256, object_key, created_at"
    };
}

/// Who uploads what, where.
#[derive(Debug, Clone)]
pub struct Upload {
    pub conversation_id: Uuid,
    pub author: Author,
    pub author_id: Option<Uuid>,
    pub file_name: String,
    pub content_type: String,
}

/// The parts of a signed file URL, as ingress received them.
#[derive(Debug, Clone)]
pub struct SignedUrl {
    pub file_id: Uuid,
    pub expires: i64,
    pub key_id: switchboard_domain::ids::SigningKeyId,
    pub signature: String,
}

/// A file's bytes, in chunks.
pub type Bytes = BoxStream<'static, Result<Vec<u8>, SessionError>>;

/// An upload the number's settings refuse.
pub fn refused(denial: policy::PolicyDenial) -> SessionError {
    tracing::info!(rule = denial.rule(), "upload refused by policy");
    crate::metrics::file("upload", "refused", 1);
    SessionError::Policy {
        denial,
        window_expires_at: None,
    }
}

fn signed_message(file_id: Uuid, expires: i64) -> String {
    format!("{file_id}/{expires}")
}

impl Session {
    /// The most bytes an upload of `content_type` to `conversation_id` may have (its number's
    /// cap for the type), or why none may go, so the receiver can refuse a file before reading
    /// it, or as soon as it is too large.
    pub async fn upload_cap(&self, conversation_id: Uuid, content_type: &str) -> Result<u64, SessionError> {
        let ctx = self.send_context(&mut *self.pool.acquire().await?, conversation_id).await?;
        policy::upload_cap(&ctx.attachments(), content_type).map_err(refused)
    }

    /// Keeps a file an agent (or bot) uploads to a conversation, or refuses it naming the rule.
    pub async fn upload_file(&self, upload: Upload, bytes: Vec<u8>) -> Result<FileRow, SessionError> {
        if upload.author == Author::Automated {
            return Err(SessionError::invalid("files are uploaded by an agent or a bot"));
        }
        // The connection goes back before the bytes go to an object store.
        let ctx = self.send_context(&mut *self.pool.acquire().await?, upload.conversation_id).await?;
        ctx.still_open()?;
        let size = bytes.len() as u64;
        let head = &bytes[..bytes.len().min(16)];
        policy::check_upload(&ctx.attachments(), &upload.content_type, size, head).map_err(refused)?;
        let id = Uuid::now_v7();
        let sha256 = Sha256::digest(&bytes).to_vec();
        let key = self.files.key(upload.conversation_id, id);
        let data = match &key {
            Some(key) => {
                self.files.put(key, bytes).await?;
                None
            }
            None => Some(bytes),
        };
        let inserted = sqlx::query_as::<_, FileRow>(concat!(
            "INSERT INTO session.files (id, conversation_id, author_kind, author_id, file_name, content_type, size_bytes, sha256, object_key, data, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
            file_columns!()
        ))
        .bind(id)
        .bind(upload.conversation_id)
        .bind(upload.author.as_str())
        .bind(upload.author_id)
        .bind(attachment::file_name(&upload.file_name, &upload.content_type))
        .bind(attachment::base_type(&upload.content_type))
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(sha256)
        .bind(&key)
        .bind(data)
        .bind(self.now())
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(file) => {
                crate::metrics::file("upload", "ok", 1);
                tracing::info!(file_id = %file.id, conversation_id = %file.conversation_id, size, store = self.files.kind(), "file uploaded");
                Ok(file)
            }
            Err(error) => {
                // The row is the record of the object: without it, the object must go too.
                if let Some(key) = &key
                    && let Err(cleanup) = self.files.delete(key).await
                {
                    tracing::warn!(error = %cleanup, "cannot delete the object of a file whose row was not stored");
                }
                Err(error.into())
            }
        }
    }

    /// Loads file `id`, in a transaction or from the pool.
    pub async fn file<'e>(&self, db: impl sqlx::PgExecutor<'e>, id: Uuid) -> Result<FileRow, SessionError> {
        sqlx::query_as::<_, FileRow>(concat!("SELECT ", file_columns!(), " FROM session.files WHERE id = $1"))
            .bind(id)
            .fetch_optional(db)
            .await?
            .ok_or(SessionError::NotFound("file"))
    }

    /// What a message naming file `file_id` sends: the file at a fresh signed URL, with its
    /// stored type and size. The file must have been uploaded to this conversation.
    pub(crate) async fn file_content(
        &self,
        conn: &mut PgConnection,
        conversation_id: Uuid,
        file_id: Uuid,
        caption: Option<String>,
    ) -> Result<(OutboundContent, FileRow), SessionError> {
        let file = self.file(&mut *conn, file_id).await?;
        if file.conversation_id != conversation_id.into() {
            return Err(SessionError::NotFound("file"));
        }
        let content = OutboundContent::Media {
            url: self.file_url(&file)?,
            content_type: file.content_type.clone(),
            size_bytes: Some(file.size()),
            caption,
        };
        Ok((content, file))
    }

    /// The URL Twilio fetches `file` from, valid for `url_ttl_secs`.
    pub fn file_url(&self, file: &FileRow) -> Result<String, SessionError> {
        let ttl = i64::try_from(self.settings.files.url_ttl_secs).unwrap_or(3600);
        let expires = self.now().unix_timestamp() + ttl;
        let (key_id, signature) = self.cipher.sign_url(&signed_message(file.id.uuid(), expires));
        let mut url = url::Url::parse(&self.public_base_url)
            .map_err(|e| SessionError::Internal(anyhow::anyhow!("public_base_url is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| SessionError::Internal(anyhow::anyhow!("public_base_url cannot carry a path")))?
            .pop_if_empty()
            .extend(["v1", "files", &file.id.to_string(), &file.file_name]);
        url.query_pairs_mut()
            .append_pair("expires", &expires.to_string())
            .append_pair("key", &key_id)
            .append_pair("signature", &signature);
        Ok(url.into())
    }

    /// The file a signed URL names, with its bytes, if the signature is right and not expired.
    pub async fn read_signed_file(&self, signed: SignedUrl) -> Result<(FileRow, Bytes), SessionError> {
        if !self.cipher.verify_url(
            signed.key_id.as_str(),
            &signed_message(signed.file_id, signed.expires),
            &signed.signature,
        ) {
            crate::metrics::file("serve", "bad_signature", 1);
            return Err(SessionError::Forbidden("the file URL's signature is not valid".into()));
        }
        if signed.expires < self.now().unix_timestamp() {
            crate::metrics::file("serve", "expired", 1);
            return Err(SessionError::Forbidden("the file URL has expired".into()));
        }
        let file = match self.file(&self.pool, signed.file_id).await {
            Ok(file) => file,
            Err(error) => {
                crate::metrics::file("serve", "missing", 1);
                return Err(error);
            }
        };
        let bytes = self.file_bytes(&file).await?;
        crate::metrics::file("serve", "ok", 1);
        Ok((file, bytes))
    }

    /// The bytes of `file`, in chunks.
    pub async fn file_bytes(&self, file: &FileRow) -> Result<Bytes, SessionError> {
        self.files
            .read(&self.pool, file.id.uuid(), file.object_key.as_deref(), file.size())
            .await
    }

    /// Deletes files older than `retention_days`, a batch at a time; returns how many went.
    pub async fn expire_files(&self) -> Result<u64, SessionError> {
        let days = self.settings.files.retention_days;
        if days == 0 {
            return Ok(0);
        }
        let cutoff = self.now() - time::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400));
        let mut deleted = 0u64;
        loop {
            let batch: Vec<(Uuid, Option<String>)> =
                sqlx::query_as("SELECT id, object_key FROM session.files WHERE created_at < $1 ORDER BY created_at LIMIT 200")
                    .bind(cutoff)
                    .fetch_all(&self.pool)
                    .await?;
            if batch.is_empty() {
                return Ok(deleted);
            }
            // Objects first: a row whose object is gone serves "missing", an object without a
            // row would be kept for ever.
            for key in batch.iter().filter_map(|(_, key)| key.as_deref()) {
                self.files.delete(key).await?;
            }
            let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
            let gone = sqlx::query("DELETE FROM session.files WHERE id = ANY($1)")
                .bind(&ids)
                .execute(&self.pool)
                .await?
                .rows_affected();
            deleted += gone;
            crate::metrics::file("expire", "ok", gone);
        }
    }
}

/// One round of the retention sweep: deletes expired files, by one replica at a time.
pub async fn retention_round(session: std::sync::Arc<Session>) {
    match switchboard_storage::singleton::run_if_first(&session.pool, "session.file_retention", session.expire_files()).await {
        Some(Ok(n)) if n > 0 => tracing::info!(deleted = n, "expired files deleted"),
        Some(Err(error)) => tracing::warn!(error = %error, "deleting expired files failed"),
        _ => {}
    }
}

//! Where uploaded files' bytes live: in PostgreSQL (`session.files.data`, the default) or in an
//! object store (S3 or S3-compatible, or a local directory) through the `object_store` crate.
//! The metadata is always in `session.files`; an object store holds the bytes under
//! `<prefix>/<conversation id>/<file id>`.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::SessionError;

/// The bytes of one file are read back in pieces this large.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// Where the bytes go.
#[derive(Debug, Clone)]
pub enum FileStore {
    /// `session.files.data`.
    Postgres,
    /// An object store, under `prefix`.
    Object {
        /// Where the bytes go when they do not stay in PostgreSQL (S3 or a directory).
        store: Arc<dyn ObjectStore>,
        /// Where in it.
        prefix: Path,
    },
}

impl FileStore {
    /// Builds the store `[session.files]` names (`store`, with the object store's
    /// `store_options`); an error says what is wrong with the setting.
    pub fn open(store: &str, store_options: &BTreeMap<String, SecretString>) -> Result<Self, String> {
        let location = store.trim();
        if location.is_empty() || location == "postgres" {
            return Ok(Self::Postgres);
        }
        let url = url::Url::parse(location).map_err(|e| format!("{location:?} is neither \"postgres\" nor a URL ({e})"))?;
        if !matches!(url.scheme(), "s3" | "s3a" | "file") {
            return Err(format!(
                "the {} scheme is not supported: use postgres, s3://bucket/prefix or file:///directory",
                url.scheme()
            ));
        }
        let options = store_options.iter().map(|(k, v)| (k.clone(), v.expose_secret().to_owned()));
        let (store, prefix) = object_store::parse_url_opts(&url, options).map_err(|e| format!("cannot use {location}: {e}"))?;
        Ok(Self::Object {
            store: Arc::from(store),
            prefix,
        })
    }

    /// The store's kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Object { .. } => "object_store",
        }
    }

    /// The object key of a file (None in PostgreSQL).
    pub fn key(&self, conversation_id: Uuid, file_id: Uuid) -> Option<String> {
        match self {
            Self::Postgres => None,
            Self::Object { prefix, .. } => Some(
                prefix
                    .clone()
                    .join(conversation_id.to_string())
                    .join(file_id.to_string())
                    .to_string(),
            ),
        }
    }

    /// Writes an object (before its row is inserted; [`Self::delete`] undoes it if that fails).
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), SessionError> {
        if let Self::Object { store, .. } = self {
            store
                .put(&Path::from(key), bytes.into())
                .await
                .map_err(|e| SessionError::Unavailable(format!("the file store did not take the file: {e}")))?;
        }
        Ok(())
    }

    /// Deletes an object; one already gone counts as deleted.
    pub async fn delete(&self, key: &str) -> Result<(), SessionError> {
        if let Self::Object { store, .. } = self {
            match store.delete(&Path::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(SessionError::Unavailable(format!("the file store did not delete the file: {e}"))),
            }
        }
        Ok(())
    }

    /// Streams a file's bytes: from its object, or from its row a chunk at a time (the column is
    /// stored out of line and uncompressed, so each `substring` reads only its chunk).
    pub async fn read(
        &self,
        pool: &PgPool,
        file_id: Uuid,
        object_key: Option<&str>,
        size: u64,
    ) -> Result<BoxStream<'static, Result<Vec<u8>, SessionError>>, SessionError> {
        match (self, object_key) {
            (Self::Object { store, .. }, Some(key)) => {
                let result = store.get(&Path::from(key)).await.map_err(|e| match e {
                    object_store::Error::NotFound { .. } => SessionError::NotFound("file"),
                    other => SessionError::Unavailable(format!("the file store did not give the file: {other}")),
                })?;
                Ok(result
                    .into_stream()
                    .map_ok(|bytes| bytes.to_vec())
                    .map_err(|e| SessionError::Unavailable(format!("reading the file was interrupted: {e}")))
                    .boxed())
            }
            (_, None) => {
                let pool = pool.clone();
                // substring() takes int positions; files are at most WhatsApp's 16 MB.
                let chunk = i32::try_from(CHUNK_BYTES).unwrap_or(i32::MAX);
                let size = i32::try_from(size).unwrap_or(i32::MAX);
                Ok(futures_util::stream::try_unfold(0i32, move |offset| {
                    let pool = pool.clone();
                    async move {
                        if offset >= size {
                            return Ok(None);
                        }
                        let piece: Option<(Option<Vec<u8>>,)> =
                            sqlx::query_as("SELECT substring(data FROM $2 FOR $3) FROM session.files WHERE id = $1")
                                .bind(file_id)
                                .bind(offset + 1)
                                .bind(chunk)
                                .fetch_optional(&pool)
                                .await?;
                        match piece {
                            Some((Some(bytes),)) if !bytes.is_empty() => Ok(Some((bytes, offset.saturating_add(chunk)))),
                            _ => Err(SessionError::NotFound("file")),
                        }
                    }
                })
                .boxed())
            }
            (Self::Postgres, Some(_)) => Err(SessionError::Unavailable(
                "this file is in an object store, and none is configured".into(),
            )),
        }
    }
}

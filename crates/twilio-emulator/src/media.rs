//! Outbound media, as Twilio takes it: when a message names `MediaUrl`s, Twilio downloads each
//! file before WhatsApp sees the message (no credentials, redirects followed, within 15 s). A
//! download that fails, answers without a supported `Content-Type`, or is over WhatsApp's limit
//! for its type (16 MB, images 5 MB) fails the message with **63019** "Media failed to download"
//! (`reference/twilio.md` §7). What was fetched is kept on the sent message, so a test can check
//! the bytes that reached "Twilio".

use std::time::Duration;

use sha2::{Digest, Sha256};
use switchboard_domain::attachment::{AttachmentSettings, WHATSAPP_MAX_MEDIA_BYTES, is_allowed_type};

use crate::handle::Emulator;
use crate::model::FetchedMedia;

/// Twilio's error for a file it could not download.
pub const MEDIA_FAILED: u32 = 63019;

/// Downloads every URL; returns what came and whether the message fails (63019).
pub(crate) async fn fetch_all(em: &Emulator, urls: &[String]) -> (Vec<FetchedMedia>, Option<u32>) {
    let mut fetched = Vec::with_capacity(urls.len());
    for url in urls {
        fetched.push(fetch(em, url).await);
    }
    let failed = fetched.iter().any(|f| f.error.is_some()).then_some(MEDIA_FAILED);
    (fetched, failed)
}

async fn fetch(em: &Emulator, url: &str) -> FetchedMedia {
    let mut media = FetchedMedia {
        url: url.to_owned(),
        status: 0,
        content_type: None,
        content_disposition: None,
        size_bytes: 0,
        sha256: String::new(),
        error: None,
    };
    let response = match em.inner.http.get(url).timeout(Duration::from_secs(15)).send().await {
        Ok(response) => response,
        Err(e) => {
            media.error = Some(format!("download failed: {e}"));
            return media;
        }
    };
    media.status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    media.content_type = header(reqwest::header::CONTENT_TYPE);
    media.content_disposition = header(reqwest::header::CONTENT_DISPOSITION);
    if !response.status().is_success() {
        media.error = Some(format!("the media URL answered {}", media.status));
        return media;
    }
    let content_type = media.content_type.clone().unwrap_or_default();
    if !is_allowed_type(&content_type) {
        media.error = Some(format!("unsupported Content-Type {content_type:?}"));
        return media;
    }
    let limit = AttachmentSettings {
        max_bytes: WHATSAPP_MAX_MEDIA_BYTES,
        ..Default::default()
    }
    .cap_for(&content_type);
    let mut hasher = Sha256::new();
    let mut response = response;
    loop {
        match response.chunk().await {
            Ok(None) => break,
            Ok(Some(bytes)) => {
                media.size_bytes += bytes.len() as u64;
                hasher.update(&bytes);
                if media.size_bytes > limit {
                    media.error = Some(format!("larger than WhatsApp's {limit} bytes for {content_type}"));
                    return media;
                }
            }
            Err(e) => {
                media.error = Some(format!("download interrupted: {e}"));
                return media;
            }
        }
    }
    media.sha256 = switchboard_twilio::signature::hex(&hasher.finalize());
    media
}

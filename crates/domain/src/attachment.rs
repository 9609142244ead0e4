//! Which files may cross the channel. Dynamics allows `.jpg .jpeg .png .mp3 .oga .ogg .amr .mp4
//! .pdf`, customer and agent attachments are switched per number (both off by default), and a
//! size cap applies (5 MB by default, never above WhatsApp's own limits). A customer file that
//! is not allowed reaches the agent as a note naming it, never silently dropped.

use serde::{Deserialize, Serialize};

/// Default size cap for attachments (Dynamics' org-wide default).
pub const DEFAULT_MAX_BYTES: u64 = 5 * 1024 * 1024;
/// WhatsApp's limit for a whole media message.
pub const WHATSAPP_MAX_MEDIA_BYTES: u64 = 16 * 1024 * 1024;
/// WhatsApp's limit for images.
pub const WHATSAPP_MAX_IMAGE_BYTES: u64 = 5 * 1024 * 1024;

/// The file extensions the channel carries, with their MIME types.
pub const ALLOWED: [(&str, &str); 9] = [
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("png", "image/png"),
    ("mp3", "audio/mpeg"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("amr", "audio/amr"),
    ("mp4", "video/mp4"),
    ("pdf", "application/pdf"),
];

/// Per-number attachment settings (a WhatsApp channel instance in Dynamics' terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentSettings {
    /// Customers may send files.
    pub customer_attachments: bool,
    /// Agents (and bots) may send files.
    pub agent_attachments: bool,
    /// Largest file, in bytes (at most WhatsApp's 16 MB).
    pub max_bytes: u64,
}

impl Default for AttachmentSettings {
    fn default() -> Self {
        Self {
            customer_attachments: false,
            agent_attachments: false,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

impl AttachmentSettings {
    /// Returns an error when the cap is zero or above WhatsApp's limit.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_bytes == 0 || self.max_bytes > WHATSAPP_MAX_MEDIA_BYTES {
            return Err(format!(
                "attachment size cap must be between 1 byte and {WHATSAPP_MAX_MEDIA_BYTES} bytes (WhatsApp's limit)"
            ));
        }
        Ok(())
    }

    /// Returns the effective cap for `content_type` (images are capped at 5 MB by WhatsApp).
    pub fn cap_for(&self, content_type: &str) -> u64 {
        if base_type(content_type).starts_with("image/") {
            self.max_bytes.min(WHATSAPP_MAX_IMAGE_BYTES)
        } else {
            self.max_bytes
        }
    }
}

/// Returns the MIME type without parameters, lowercased (`audio/ogg; codecs=opus` → `audio/ogg`).
pub fn base_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Returns whether `content_type` is one the channel carries.
pub fn is_allowed_type(content_type: &str) -> bool {
    let base = base_type(content_type);
    ALLOWED.iter().any(|(_, mime)| *mime == base)
}

/// Returns whether a browser may show a customer's file of this type inline on the desk's
/// origin: images (but not SVG, which runs script), audio and video. Anything else (HTML, PDF,
/// documents, unknown types) is served as a download.
pub fn shows_inline(content_type: &str) -> bool {
    let base = base_type(content_type);
    let media = base.starts_with("image/") || base.starts_with("audio/") || base.starts_with("video/");
    media && !base.contains("svg") && !base.contains("xml")
}

/// Returns the allowed extensions as a readable list.
pub fn allowed_list() -> String {
    ALLOWED.iter().map(|(ext, _)| format!(".{ext}")).collect::<Vec<_>>().join(" ")
}

/// A file a customer sent (Twilio gives its type; its name only sometimes, its size never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundFile {
    /// Content type from `MediaContentType{N}`.
    pub content_type: String,
    /// File name, when known.
    pub file_name: Option<String>,
    /// Size in bytes, when known.
    pub size_bytes: Option<u64>,
}

/// What happens to a customer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundDecision {
    /// Keep it as an attachment of the message.
    Accept,
    /// Do not keep the file; show the agent this note instead.
    Note(String),
}

/// Decides what to do with a file a customer sent.
pub fn decide_inbound(settings: &AttachmentSettings, file: &InboundFile) -> InboundDecision {
    let name = file
        .file_name
        .clone()
        .unwrap_or_else(|| format!("a file of type {}", base_type(&file.content_type)));
    if !settings.customer_attachments {
        return InboundDecision::Note(format!(
            "The customer sent {name}, but customer attachments are turned off for this number."
        ));
    }
    if !is_allowed_type(&file.content_type) {
        return InboundDecision::Note(format!(
            "The customer sent {name}, a file type this channel does not carry (allowed: {}). Ask them to send it as a PDF.",
            allowed_list()
        ));
    }
    let cap = settings.cap_for(&file.content_type);
    if let Some(size) = file.size_bytes
        && size > cap
    {
        return InboundDecision::Note(format!(
            "The customer sent {name} ({size} bytes), larger than the {cap}-byte limit for this number."
        ));
    }
    InboundDecision::Accept
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_media_is_shown_inline() {
        for shown in ["image/jpeg", "IMAGE/PNG", "audio/ogg; codecs=opus", "video/mp4"] {
            assert!(super::shows_inline(shown), "{shown}");
        }
        for download in [
            "image/svg+xml",
            "text/html",
            "application/pdf",
            "application/octet-stream",
            "",
            "text/plain",
        ] {
            assert!(!super::shows_inline(download), "{download}");
        }
    }

    use super::*;

    fn file(ct: &str, name: Option<&str>, size: Option<u64>) -> InboundFile {
        InboundFile {
            content_type: ct.into(),
            file_name: name.map(Into::into),
            size_bytes: size,
        }
    }

    #[test]
    fn off_by_default_and_the_agent_gets_a_note() {
        let d = decide_inbound(&AttachmentSettings::default(), &file("image/jpeg", Some("receipt.jpg"), None));
        assert!(
            matches!(d, InboundDecision::Note(ref n) if n.contains("receipt.jpg") && n.contains("turned off")),
            "{d:?}"
        );
    }

    #[test]
    fn allowed_types_pass_and_others_become_notes_naming_the_file() {
        let on = AttachmentSettings {
            customer_attachments: true,
            ..Default::default()
        };
        for ct in [
            "image/jpeg",
            "image/png",
            "audio/mpeg",
            "audio/ogg; codecs=opus",
            "audio/amr",
            "video/mp4",
            "application/pdf",
        ] {
            assert_eq!(decide_inbound(&on, &file(ct, None, Some(1000))), InboundDecision::Accept, "{ct}");
        }
        let docx = decide_inbound(
            &on,
            &file(
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                Some("contract.docx"),
                None,
            ),
        );
        assert!(
            matches!(docx, InboundDecision::Note(ref n) if n.contains("contract.docx") && n.contains(".pdf")),
            "{docx:?}"
        );
        let unnamed = decide_inbound(&on, &file("text/plain", None, None));
        assert!(
            matches!(unnamed, InboundDecision::Note(ref n) if n.contains("text/plain")),
            "{unnamed:?}"
        );
    }

    #[test]
    fn size_caps_apply_and_images_never_exceed_whatsapps_5_mb() {
        let on = AttachmentSettings {
            customer_attachments: true,
            agent_attachments: true,
            max_bytes: WHATSAPP_MAX_MEDIA_BYTES,
        };
        assert_eq!(on.cap_for("image/png"), WHATSAPP_MAX_IMAGE_BYTES);
        assert_eq!(on.cap_for("video/mp4"), WHATSAPP_MAX_MEDIA_BYTES);
        assert!(matches!(
            decide_inbound(&on, &file("image/png", None, Some(WHATSAPP_MAX_IMAGE_BYTES + 1))),
            InboundDecision::Note(_)
        ));
        assert_eq!(
            decide_inbound(&on, &file("video/mp4", None, Some(WHATSAPP_MAX_IMAGE_BYTES + 1))),
            InboundDecision::Accept
        );
        assert!(
            AttachmentSettings {
                max_bytes: WHATSAPP_MAX_MEDIA_BYTES + 1,
                ..on
            }
            .validate()
            .is_err()
        );
        assert!(AttachmentSettings { max_bytes: 0, ..on }.validate().is_err());
        assert!(AttachmentSettings::default().validate().is_ok());
    }
}

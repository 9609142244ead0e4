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

/// Returns whether `head` (a file's first bytes) looks like a file of `content_type`, by the
/// magic numbers of the types the channel carries. An agent's upload declares its type; a file
/// whose bytes say otherwise (an HTML page labelled `image/png`, say) is refused before Twilio
/// or a customer's phone has to make sense of it.
pub fn content_matches(content_type: &str, head: &[u8]) -> bool {
    match base_type(content_type).as_str() {
        "image/jpeg" => head.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "application/pdf" => head.starts_with(b"%PDF-"),
        "audio/ogg" => head.starts_with(b"OggS"),
        "audio/amr" => head.starts_with(b"#!AMR"),
        // An ID3 tag, or straight into an MPEG audio frame (11 sync bits).
        "audio/mpeg" => head.starts_with(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0),
        // An ISO base media file opens with a box whose type is `ftyp`.
        "video/mp4" => head.get(4..8) == Some(b"ftyp".as_slice()),
        _ => false,
    }
}

/// The canonical extension of an allowed type (`image/jpeg` → `jpg`).
pub fn extension_for(content_type: &str) -> Option<&'static str> {
    let base = base_type(content_type);
    ALLOWED.iter().find(|(_, mime)| *mime == base).map(|(ext, _)| *ext)
}

/// Longest file name kept (WhatsApp shows documents by name).
pub const MAX_FILE_NAME_CHARS: usize = 120;

/// Makes the name an uploaded file is kept and served under: no directories, no control
/// characters or quotes, at most [`MAX_FILE_NAME_CHARS`], and ending in an extension of its type
/// (the customer's phone decides how to open a document by it).
pub fn file_name(given: &str, content_type: &str) -> String {
    let ext = extension_for(content_type).unwrap_or("bin");
    let last = given.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\'' | '`' | ';'))
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let stem_max = MAX_FILE_NAME_CHARS - ext.len() - 1;
    let has_ext = cleaned
        .rsplit_once('.')
        .is_some_and(|(stem, e)| !stem.is_empty() && mime_of_ext(e) == mime_of_ext(ext));
    if has_ext && cleaned.chars().count() <= MAX_FILE_NAME_CHARS {
        return cleaned.to_owned();
    }
    let stem = if has_ext {
        cleaned.rsplit_once('.').map(|(stem, _)| stem).unwrap_or(cleaned)
    } else {
        cleaned
    };
    let stem: String = stem.chars().take(stem_max).collect();
    let stem = if stem.trim().is_empty() { "file".to_owned() } else { stem };
    format!("{stem}.{ext}")
}

fn mime_of_ext(ext: &str) -> Option<&'static str> {
    let ext = ext.to_ascii_lowercase();
    ALLOWED.iter().find(|(e, _)| *e == ext).map(|(_, mime)| *mime)
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

    #[test]
    fn a_files_bytes_must_be_of_its_declared_type() {
        let cases: [(&str, &[u8]); 8] = [
            ("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            ("image/png", b"\x89PNG\r\n\x1a\n\0\0"),
            ("application/pdf", b"%PDF-1.7\n"),
            ("audio/ogg; codecs=opus", b"OggS\0\x02"),
            ("audio/amr", b"#!AMR\n"),
            ("audio/mpeg", b"ID3\x04\0"),
            ("audio/mpeg", &[0xFF, 0xFB, 0x90, 0x64]),
            ("video/mp4", b"\0\0\0\x18ftypmp42"),
        ];
        for (ct, head) in cases {
            assert!(content_matches(ct, head), "{ct}");
        }
        assert!(!content_matches("image/png", b"<html><script>"));
        assert!(!content_matches("image/jpeg", b"\x89PNG\r\n\x1a\n"));
        assert!(!content_matches("video/mp4", b"ftyp"));
        assert!(!content_matches("text/html", b"<html>"));
        assert!(!content_matches("image/jpeg", b""));
    }

    #[test]
    fn file_names_lose_paths_and_quotes_and_keep_their_types_extension() {
        assert_eq!(file_name("invoice.pdf", "application/pdf"), "invoice.pdf");
        assert_eq!(file_name("Photo.JPEG", "image/jpeg"), "Photo.JPEG");
        assert_eq!(file_name("../../etc/passwd", "application/pdf"), "passwd.pdf");
        assert_eq!(file_name("C:\\Users\\ana\\scan.png", "image/png"), "scan.png");
        assert_eq!(file_name("a\"b\r\n.pdf", "application/pdf"), "ab.pdf");
        assert_eq!(file_name("report.exe", "application/pdf"), "report.exe.pdf");
        assert_eq!(file_name("", "audio/ogg"), "file.oga");
        assert_eq!(file_name(".pdf", "application/pdf"), "pdf.pdf");
        let long = file_name(&"x".repeat(500), "video/mp4");
        assert_eq!(long.chars().count(), MAX_FILE_NAME_CHARS);
        assert!(long.ends_with(".mp4"));
        let long_with_ext = file_name(&format!("{}.pdf", "y".repeat(500)), "application/pdf");
        assert_eq!(long_with_ext.chars().count(), MAX_FILE_NAME_CHARS);
        assert!(long_with_ext.ends_with("y.pdf"));
    }
}

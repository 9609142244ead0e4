//! Status callbacks, as Twilio sends them: form-encoded, signed with the account's auth token
//! over the callback URL; no callback for the initial `queued`; then `sent` → `delivered` →
//! `read`, or `failed`/`undelivered` with an error code. Optionally delayed, shuffled, doubled.

use std::time::Duration;

use crate::handle::Emulator;

/// Sends the callbacks of message `sid` in the background.
#[allow(clippy::too_many_arguments)] // every field of a callback
pub(crate) fn schedule(
    em: Emulator,
    sid: String,
    account_sid: String,
    token: String,
    url: String,
    from: String,
    to: String,
    error_code: Option<u32>,
) {
    let settings = em.lock().callbacks;
    let mut statuses: Vec<(&'static str, Option<u32>)> = match error_code {
        // Sandbox, sender and media-download problems fail at once; content problems after
        // WhatsApp looked.
        Some(code @ (63015 | 63007 | crate::media::MEDIA_FAILED)) => vec![("failed", Some(code))],
        Some(code) => vec![("sent", None), ("undelivered", Some(code))],
        None if settings.read => vec![("sent", None), ("delivered", None), ("read", None)],
        None => vec![("sent", None), ("delivered", None)],
    };
    let final_status = statuses.last().map(|(s, c)| ((*s).to_owned(), *c));
    if settings.reorder {
        fastrand::shuffle(&mut statuses);
    }
    if settings.duplicate {
        statuses = statuses.into_iter().flat_map(|s| [s, s]).collect();
    }
    if let Some((status, code)) = final_status
        && let Some(m) = em.lock().sent.iter_mut().find(|m| m.sid == sid)
    {
        m.status = status;
        m.error_code = code;
    }
    if settings.lost {
        // Twilio sends them, but they never reach Switchboard (a moved URL, a broken proxy).
        return;
    }
    tokio::spawn(async move {
        for (status, code) in statuses {
            tokio::time::sleep(Duration::from_millis(settings.delay_ms)).await;
            let mut params: Vec<(String, String)> = vec![
                ("AccountSid".into(), account_sid.clone()),
                ("MessageSid".into(), sid.clone()),
                ("SmsSid".into(), sid.clone()),
                ("MessageStatus".into(), status.into()),
                ("SmsStatus".into(), status.into()),
                ("To".into(), to.clone()),
                ("From".into(), from.clone()),
                ("ChannelPrefix".into(), "whatsapp".into()),
                ("ApiVersion".into(), "2010-04-01".into()),
            ];
            if status == "read" {
                params.push(("EventType".into(), "READ".into()));
            }
            if let Some(code) = code {
                // WhatsApp failures often arrive with an empty ErrorMessage.
                params.push(("ErrorCode".into(), code.to_string()));
                params.push(("ErrorMessage".into(), String::new()));
            }
            let sent = crate::deliver::post(&em, &url, &token, &params).await;
            match (sent.status, sent.error) {
                (200..=399, _) => {}
                (_, Some(error)) => tracing::warn!(%sid, status, error = %error, attempts = sent.attempts, "status callback failed"),
                (answer, None) => tracing::warn!(%sid, status, answer, attempts = sent.attempts, "status callback refused"),
            }
        }
    });
}

//! Twilio's error codes for WhatsApp: which are worth retrying, and human text for each (many
//! arrive in status callbacks with an empty `ErrorMessage`).

/// Whether a failed request should be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Back off and try again (429/20429, 5xx, network, channel rate limits).
    Retryable,
    /// Trying again cannot help.
    Permanent,
}

/// Classifies a Twilio answer by HTTP status and error code.
pub fn classify(http_status: u16, code: Option<u32>) -> Retry {
    match (http_status, code) {
        (429, _) | (_, Some(20429 | 63017 | 63018)) => Retry::Retryable,
        (500..=599, _) => Retry::Retryable,
        _ => Retry::Permanent,
    }
}

/// Returns a human explanation of a Twilio error code.
pub fn describe(code: u32) -> Option<&'static str> {
    Some(match code {
        11200 => "Twilio could not fetch a URL (timeout, a 4xx/5xx answer or a missing Content-Type)",
        11205 => "Twilio could not connect to a URL",
        11751 => "the media is too large or of an unsupported type for WhatsApp",
        12300 => "a webhook answered with an invalid Content-Type",
        20003 => "authentication failed: check the account SID and auth token",
        20404 => "the resource was not found in Twilio",
        20429 => "too many concurrent requests to Twilio's API; retried with backoff",
        21211 => "the 'To' number is not valid",
        21408 => "sending to this region is not enabled on the Twilio account",
        21610 => "the recipient has opted out (replied STOP)",
        21617 => "the message body is longer than 1,600 characters",
        21620 => "a media URL is not valid",
        21623 => "too many media files (more than 10)",
        21654 => "ContentVariables were sent without a ContentSid",
        21655 => "the ContentSid is not valid, deleted, or belongs to another account",
        21656 => "the ContentVariables are not valid (not JSON, or a value is empty)",
        63001 => "WhatsApp could not authenticate the request",
        63003 => "the recipient is not on WhatsApp or their number is inactive",
        63005 => "WhatsApp did not accept the content",
        63007 => "the sending WhatsApp number is not set up on this Twilio account",
        63013 => "the message breaks a WhatsApp policy",
        63015 => "the sandbox can only message numbers that joined it (send 'join <code>')",
        63016 => "outside the 24-hour customer-service window: only an approved template can be sent",
        63017 => "the Twilio account's message rate limit was exceeded",
        63018 => "the WhatsApp sender's rate or messaging limit was exceeded",
        63019 => "WhatsApp could not download the media",
        63020 => "the Meta Business Manager invitation from Twilio was not accepted",
        63021 => "WhatsApp refused the content (unsupported media type, or template text too long)",
        63024 => "the recipient cannot receive WhatsApp messages (not a user, terms not accepted, outdated app)",
        63027 => "the template does not exist in that language",
        63028 => "the number of template parameters does not match the template",
        63030 => "a parameter is not supported for this kind of WhatsApp message",
        63031 => "the sender and the recipient are the same",
        63032 => "WhatsApp did not deliver because the user is in a Meta experiment",
        63033 => "the recipient blocked this WhatsApp sender",
        63038 => "the account reached its daily message limit",
        63040 => "the template was rejected by WhatsApp",
        63041 => "the template is paused by WhatsApp after negative feedback",
        63049 => "Meta chose not to deliver this marketing message",
        63051 => "the WhatsApp Business account is locked",
        63112 => "Meta disabled or restricted the WhatsApp Business account (a policy violation): see the Business Manager",
        _ => return None,
    })
}

/// Returns `message` when Twilio sent one, else the catalogue's text, else a generic one.
pub fn explain(code: u32, message: Option<&str>) -> String {
    match (message.map(str::trim).filter(|m| !m.is_empty()), describe(code)) {
        (Some(m), _) => m.to_owned(),
        (None, Some(d)) => d.to_owned(),
        (None, None) => {
            format!("Twilio error {code} (see https://www.twilio.com/docs/errors/{code})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_and_permanent() {
        assert_eq!(classify(429, Some(20429)), Retry::Retryable);
        assert_eq!(classify(429, None), Retry::Retryable);
        assert_eq!(classify(503, None), Retry::Retryable);
        assert_eq!(classify(400, Some(63018)), Retry::Retryable);
        assert_eq!(classify(400, Some(21211)), Retry::Permanent);
        assert_eq!(classify(400, Some(63016)), Retry::Permanent);
        assert_eq!(classify(401, Some(20003)), Retry::Permanent);
    }

    #[test]
    fn codes_without_a_message_get_human_text() {
        assert!(explain(63016, Some("")).contains("24-hour"));
        assert_eq!(explain(21211, Some("Invalid 'To' Phone Number")), "Invalid 'To' Phone Number");
        assert!(explain(99999, None).contains("99999"));
        for code in [63019, 63024, 11751, 63016, 63018, 63032, 63049, 63051, 63112, 20429, 63017] {
            assert!(describe(code).is_some());
        }
    }
}

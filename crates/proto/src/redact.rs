//! `Debug` for the messages that carry a secret (an auth token, a bot's signing secret): every
//! field as prost would print it, the secret as `[redacted]` (or `None`), so a request logged
//! with `{:?}` never shows one.

use std::fmt;

use crate::session::v1 as pb;

const REDACTED: &str = "[redacted]";

fn secret(value: &str) -> &'static str {
    if value.is_empty() { "\"\"" } else { REDACTED }
}

fn optional_secret(value: Option<&String>) -> Option<&'static str> {
    value.map(|_| REDACTED)
}

impl fmt::Debug for pb::ResolveChannelResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveChannelResponse")
            .field("channel_id", &self.channel_id)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &format_args!("{}", secret(&self.auth_token)))
            .field("active", &self.active)
            .field("sandbox", &self.sandbox)
            .field("webhook_keys", &self.webhook_keys)
            .finish()
    }
}

impl fmt::Debug for pb::WebhookKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookKeySecret")
            .field("key", &self.key)
            .field("secret", &format_args!("{}", secret(&self.secret)))
            .finish()
    }
}

impl fmt::Debug for pb::AddWebhookKeyRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddWebhookKeyRequest")
            .field("channel_id", &self.channel_id)
            .field("key", &self.key)
            .field("secret", &format_args!("{}", secret(&self.secret)))
            .finish()
    }
}

impl fmt::Debug for pb::CreateChannelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateChannelRequest")
            .field("name", &self.name)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &format_args!("{}", secret(&self.auth_token)))
            .field("sandbox", &self.sandbox)
            .field("sandbox_join_code", &self.sandbox_join_code)
            .field("skip_credential_check", &self.skip_credential_check)
            .finish()
    }
}

impl fmt::Debug for pb::UpdateChannelRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateChannelRequest")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("auth_token", &optional_secret(self.auth_token.as_ref()))
            .field("sandbox", &self.sandbox)
            .field("sandbox_join_code", &self.sandbox_join_code)
            .field("active", &self.active)
            .field("skip_credential_check", &self.skip_credential_check)
            .finish()
    }
}

impl fmt::Debug for pb::CreateBotRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateBotRequest")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("signing_secret", &format_args!("{}", secret(&self.signing_secret)))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl fmt::Debug for pb::UpdateBotRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateBotRequest")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("signing_secret", &optional_secret(self.signing_secret.as_ref()))
            .field("timeout_ms", &self.timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .field("active", &self.active)
            .finish()
    }
}

impl fmt::Debug for pb::ResolveBotResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveBotResponse")
            .field("bot", &self.bot)
            .field("signing_secret", &format_args!("{}", secret(&self.signing_secret)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::pb;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let token = "tok0123456789abcdef0123456789abcd";
        let printed = [
            format!(
                "{:?}",
                pb::CreateChannelRequest {
                    name: "Acme".into(),
                    auth_token: token.into(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::UpdateChannelRequest {
                    auth_token: Some(token.into()),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::ResolveChannelResponse {
                    auth_token: token.into(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::CreateBotRequest {
                    signing_secret: token.into(),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::UpdateBotRequest {
                    signing_secret: Some(token.into()),
                    ..Default::default()
                }
            ),
            format!(
                "{:?}",
                pb::ResolveBotResponse {
                    signing_secret: token.into(),
                    ..Default::default()
                }
            ),
        ];
        for p in &printed {
            assert!(!p.contains(token), "{p}");
            assert!(p.contains("[redacted]"), "{p}");
        }
        assert!(printed[0].contains("Acme"), "other fields still shown");
    }
}

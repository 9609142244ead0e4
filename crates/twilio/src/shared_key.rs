//! Webhooks signed with a SharedKey (Twilio's Webhooks configuration API, public beta, 2026):
//! such a request carries `X-Twilio-Webhooks-Signature-Settings: key=<id>,algorithm=<alg>` beside
//! `X-Twilio-Signature`. Only the hash and the secret change: the signed string is still the URL
//! followed by the sorted POST parameters ([`crate::signature::signing_string`]). Without the
//! header, the auth token and HMAC-SHA1 sign it, as always.

pub use crate::signature::{Algorithm, compute_with as compute, validate_with as validate};

/// The header that names the shared key and algorithm.
pub const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";

/// What `X-Twilio-Webhooks-Signature-Settings` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSettings {
    /// The SharedKey's id.
    pub key: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
}

/// A settings header that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// No `key=`.
    #[error("X-Twilio-Webhooks-Signature-Settings names no key")]
    NoKey,
    /// An algorithm this version does not know.
    #[error("unsupported webhook signature algorithm {0:?}")]
    UnsupportedAlgorithm(String),
}

impl SignatureSettings {
    /// Parses `key=<id>,algorithm=<alg>`; a missing algorithm is HMAC-SHA1, as in Twilio's SDKs.
    pub fn parse(header: &str) -> Result<Self, SettingsError> {
        let mut key = None;
        let mut algorithm = None;
        for part in header.split(',') {
            if let Some((name, value)) = part.split_once('=') {
                match name.trim() {
                    "key" if !value.trim().is_empty() => key = Some(value.trim().to_owned()),
                    "algorithm" if !value.trim().is_empty() => algorithm = Some(value.trim()),
                    _ => {}
                }
            }
        }
        let algorithm = match algorithm {
            None => Algorithm::HmacSha1,
            Some(name) => Algorithm::parse(name).ok_or_else(|| SettingsError::UnsupportedAlgorithm(name.chars().take(40).collect()))?,
        };
        Ok(Self {
            key: key.ok_or(SettingsError::NoKey)?,
            algorithm,
        })
    }

    /// The header value Twilio sends.
    pub fn header(&self) -> String {
        format!("key={},algorithm={}", self.key, self.algorithm.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_0123456789abcdef";
    const URL: &str = "https://sb.example.com/v1/twilio/0192f000-0000-7000-8000-000000000001/inbound";

    fn params() -> Vec<(String, String)> {
        [
            ("MessageSid", "SM11111111111111111111111111111111"),
            ("Body", "Olá"),
            ("From", "whatsapp:+5511987654321"),
            ("To", "whatsapp:+14155238886"),
            ("AccountSid", "AC00000000000000000000000000000000"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    /// Computed with twilio-python 9.13's `RequestValidator(SECRET).compute_signature(URL,
    /// params, algorithm)`.
    #[test]
    fn matches_twilio_python_for_both_algorithms() {
        assert_eq!(
            compute(Algorithm::HmacSha256, SECRET, URL, &params()),
            "G30HeBQpNuNEHw+3SCcYwKJEVYi4ySfZjiZbyKY5DY0="
        );
        assert_eq!(compute(Algorithm::HmacSha1, SECRET, URL, &params()), "JSw64pHG13cmSM/Ar4zhv/keEr0=");
        let with_port = URL.replace(".com/", ".com:443/");
        assert!(validate(
            Algorithm::HmacSha256,
            SECRET,
            &with_port,
            &params(),
            "G30HeBQpNuNEHw+3SCcYwKJEVYi4ySfZjiZbyKY5DY0="
        ));
        assert!(!validate(
            Algorithm::HmacSha1,
            SECRET,
            URL,
            &params(),
            "G30HeBQpNuNEHw+3SCcYwKJEVYi4ySfZjiZbyKY5DY0="
        ));
        assert!(!validate(
            Algorithm::HmacSha256,
            "another",
            URL,
            &params(),
            "G30HeBQpNuNEHw+3SCcYwKJEVYi4ySfZjiZbyKY5DY0="
        ));
    }

    #[test]
    fn settings_header_parses_as_the_sdks_do() {
        let s = SignatureSettings::parse("key=webhooks_sharedkey_01,algorithm=HMAC_SHA256").unwrap();
        assert_eq!(s.key, "webhooks_sharedkey_01");
        assert_eq!(s.algorithm, Algorithm::HmacSha256);
        assert_eq!(s.header(), "key=webhooks_sharedkey_01,algorithm=HMAC_SHA256");
        assert_eq!(
            SignatureSettings::parse(" algorithm=hmac_sha1 , key=k2").unwrap().algorithm,
            Algorithm::HmacSha1
        );
        assert_eq!(
            SignatureSettings::parse("key=k3").unwrap().algorithm,
            Algorithm::HmacSha1,
            "no algorithm: SHA-1"
        );
        assert_eq!(SignatureSettings::parse("algorithm=HMAC_SHA256"), Err(SettingsError::NoKey));
        assert_eq!(
            SignatureSettings::parse("key=k,algorithm=HMAC_SHA512"),
            Err(SettingsError::UnsupportedAlgorithm("HMAC_SHA512".into()))
        );
    }
}

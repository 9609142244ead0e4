//! How Switchboard signs its calls to bots, and how a bot verifies them (`docs/bots.md`).
//!
//! Each request carries `X-Switchboard-Signature: t=<unix seconds>,v1=<hex>` where the hex is
//! HMAC-SHA256, keyed with the bot's signing secret, of `<t>.<raw request body>`. A bot
//! recomputes it over the exact bytes it received, compares in constant time, and refuses
//! timestamps more than five minutes away from its clock (so a captured request cannot be
//! replayed later).

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const HEADER: &str = "x-switchboard-signature";
/// The header carrying the turn id (the same on every attempt of a turn).
pub const TURN_HEADER: &str = "x-switchboard-turn";
/// How far a timestamp may be from the verifier's clock.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header.
    #[error("the request is not signed")]
    Missing,
    /// The header is not `t=…,v1=…`.
    #[error("the signature header is malformed")]
    Malformed,
    /// The timestamp is outside the tolerance.
    #[error("the signature is stale (timestamp {0} is more than {TOLERANCE_SECS} s away)")]
    Stale(i64),
    /// The HMAC does not match.
    #[error("the signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Returns the header value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks `header` (absent: unsigned) for `body` at `now` (Unix seconds).
pub fn verify(secret: &[u8], header: Option<&str>, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            Some(("v1", v)) => signatures.push(unhex(v).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale(timestamp));
    }
    // Several v1 entries let a bot accept the old and the new secret while rotating.
    if signatures.iter().any(|s| mac(secret, timestamp, body).verify_slice(s).is_ok()) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_secret_0123456789";
    const BODY: &[u8] = br#"{"turn_id":"t1"}"#;

    #[test]
    fn a_signed_request_verifies_and_anything_else_is_refused() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, Some(&header), BODY, 1_700_000_100), Ok(()));
        assert_eq!(verify(SECRET, None, BODY, 1_700_000_000), Err(SignatureError::Missing));
        assert_eq!(
            verify(SECRET, Some(&header), br#"{"turn_id":"t2"}"#, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"another secret", Some(&header), BODY, 1_700_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, Some(&header), BODY, 1_700_000_301),
            Err(SignatureError::Stale(1_700_000_000))
        );
        assert_eq!(
            verify(SECRET, Some(&header), BODY, 1_699_999_699),
            Err(SignatureError::Stale(1_700_000_000))
        );
        assert_eq!(verify(SECRET, Some("v1=abcd"), BODY, 1_700_000_000), Err(SignatureError::Malformed));
        assert_eq!(
            verify(SECRET, Some("t=1700000000,v1=zz"), BODY, 1_700_000_000),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn matches_an_independent_hmac_sha256() {
        // HMAC-SHA256("key", "1.{}") computed independently (Python: hmac.new(b"key", b"1.{}", "sha256")).
        let header = sign(b"key", 1, b"{}");
        assert_eq!(header, "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224");
        let rotated = format!("{},v1={}", sign(b"old", 5, b"x"), &sign(b"new", 5, b"x")[7..]);
        assert_eq!(verify(b"new", Some(&rotated), b"x", 5), Ok(()));
        assert_eq!(verify(b"old", Some(&rotated), b"x", 5), Ok(()));
    }
}

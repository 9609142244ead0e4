//! `X-Twilio-Signature`: HMAC-SHA1, keyed with the account's auth token, over the full URL Twilio
//! called followed by every POST parameter sorted by name (byte order), each name then value,
//! repeated names with their values deduplicated and sorted; base64 with padding. Twilio is not
//! consistent about ports, so the URL is also tried with `:443`/`:80` added or removed. JSON
//! webhooks sign the URL only and carry `bodySHA256` in the query.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Decodes an `application/x-www-form-urlencoded` body into name/value pairs, in order.
pub fn form_params(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Returns the string Twilio signs: the URL (without its `#fragment`: connection overrides are
/// not signed), then each sorted name and value.
pub fn signing_string(url: &str, params: &[(String, String)]) -> String {
    let url = crate::overrides::split(url).0;
    let mut grouped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (k, v) in params {
        grouped.entry(k.as_str()).or_default().push(v.as_str());
    }
    let mut data = String::with_capacity(url.len() + params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
    data.push_str(url);
    for (k, mut values) in grouped {
        values.sort_unstable();
        values.dedup();
        for v in values {
            data.push_str(k);
            data.push_str(v);
        }
    }
    data
}

/// A signature algorithm Twilio offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `HMAC_SHA1` (the auth-token signature's, and the default).
    HmacSha1,
    /// `HMAC_SHA256`.
    HmacSha256,
}

impl Algorithm {
    /// Parses Twilio's name (case-insensitive, as twilio-python does).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "HMAC_SHA1" => Some(Self::HmacSha1),
            "HMAC_SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }

    /// Twilio's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC_SHA1",
            Self::HmacSha256 => "HMAC_SHA256",
        }
    }
}

/// Computes the signature of `params` posted to `url` with `secret` and `algorithm`.
pub fn compute_with(algorithm: Algorithm, secret: &str, url: &str, params: &[(String, String)]) -> String {
    let data = signing_string(url, params);
    // HMAC accepts keys of any length, so neither can fail.
    match algorithm {
        Algorithm::HmacSha1 => {
            let mut mac =
                <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
            mac.update(data.as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        }
        Algorithm::HmacSha256 => {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!("hmac takes any key length"));
            mac.update(data.as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        }
    }
}

/// Returns whether `signature` is right for `params` posted to `url` (any port form).
pub fn validate_with(algorithm: Algorithm, secret: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    // Evaluate every variant (no short-circuit) so timing does not reveal which one matched.
    url_variants(url).iter().fold(false, |ok, u| {
        constant_time_eq(&compute_with(algorithm, secret, u, params), signature) | ok
    })
}

/// Computes the signature Twilio sends for `url` and `params` (HMAC-SHA1 with the auth token).
pub fn compute(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    compute_with(Algorithm::HmacSha1, auth_token, url, params)
}

pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The URL forms a signature is checked against: as given, with the default port added, with
/// any port removed, and each with `'` percent-encoded as WHATWG URL parsers write it.
pub fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    if let Some(with) = add_port(url) {
        out.push(with);
    }
    if let Some(without) = remove_port(url) {
        out.push(without);
    }
    let encoded: Vec<String> = out.iter().filter(|u| u.contains('\'')).map(|u| u.replace('\'', "%27")).collect();
    out.extend(encoded);
    out
}

/// Returns whether `signature` is Twilio's for `params` posted to `url` (any port form).
pub fn validate(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    validate_with(Algorithm::HmacSha1, auth_token, url, params, signature)
}

/// Returns whether a JSON-body webhook is genuine: the `bodySHA256` query parameter must be the
/// SHA-256 of `body`, and the signature is over the URL alone.
pub fn validate_json_body(auth_token: &str, url: &str, body: &[u8], signature: &str) -> bool {
    let expected_hash = hex(&Sha256::digest(body));
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
        .unwrap_or_default();
    let carried = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    let hash_ok = carried.is_some_and(|h| constant_time_eq(&h, &expected_hash));
    validate(auth_token, url, &[], signature) && hash_ok
}

/// Lowercase hex of `bytes` (digests in signatures, file hashes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Splits `scheme://[userinfo@]host[:port]rest` into (prefix up to host end, port, rest).
fn split_port(url: &str) -> Option<(&str, Option<&str>, &str, &str)> {
    let scheme_end = url.find("://")?;
    let scheme = &url[..scheme_end];
    let authority_start = scheme_end + 3;
    let authority_len = url[authority_start..].find(['/', '?', '#']).unwrap_or(url.len() - authority_start);
    let authority_end = authority_start + authority_len;
    let authority = &url[authority_start..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host = &authority[host_start..];
    let colon = if host.starts_with('[') {
        host.find("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    match colon {
        Some(c) if host[c + 1..].bytes().all(|b| b.is_ascii_digit()) && c + 1 < host.len() => {
            let port_start = authority_start + host_start + c;
            Some((
                &url[..port_start],
                Some(&url[port_start + 1..authority_end]),
                &url[authority_end..],
                scheme,
            ))
        }
        _ => Some((&url[..authority_end], None, &url[authority_end..], scheme)),
    }
}

/// Returns `url` with the scheme's default port made explicit, when it has no port.
pub fn add_port(url: &str) -> Option<String> {
    let (head, port, rest, scheme) = split_port(url)?;
    if port.is_some() {
        return None;
    }
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    Some(format!("{head}:{default}{rest}"))
}

/// Returns `url` without its port, when it has one.
pub fn remove_port(url: &str) -> Option<String> {
    let (head, port, rest, _) = split_port(url)?;
    port.map(|_| format!("{head}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn shared() -> Vec<(String, String)> {
        p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ])
    }

    #[test]
    fn connection_overrides_in_the_fragment_are_not_signed() {
        let with = format!("{URL}#ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx");
        assert_eq!(compute(TOKEN, &with, &shared()), compute(TOKEN, URL, &shared()));
        assert!(validate(TOKEN, URL, &shared(), &compute(TOKEN, &with, &shared())));
    }

    fn go_params() -> Vec<(String, String)> {
        p(&[
            ("Digits", "1234"),
            ("CallSid", "CA1234567890ABCDE"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
            ("From", "+14158675309"),
            ("ReasonConferenceEnded", "test"),
            ("Reason", "Participant"),
        ])
    }

    // reference/twilio.md §3.4, vectors 1–19.
    #[test]
    fn vector_01_basic() {
        assert_eq!(compute(TOKEN, URL, &shared()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert!(validate(TOKEN, URL, &shared(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
    }

    #[test]
    fn vector_02_signed_with_443_validated_without() {
        assert_eq!(
            compute(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", &shared()),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        assert!(validate(TOKEN, URL, &shared(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
    }

    #[test]
    fn vector_03_signed_with_80_validated_without() {
        assert!(validate(
            TOKEN,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &shared(),
            "0ZXoZLH/DfblKGATFgpif+LLRf4="
        ));
    }

    #[test]
    fn vector_04_custom_port_http() {
        assert!(validate(
            TOKEN,
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &shared(),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="
        ));
    }

    #[test]
    fn vector_05_custom_port_stripped() {
        assert!(validate(
            TOKEN,
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &shared(),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn vector_06_repeated_keys() {
        let params = p(&[
            ("Sid", "CA123"),
            ("SidAccount", "AC123"),
            ("Digits", "5678"),
            ("Digits", "1234"),
            ("Digits", "1234"),
        ]);
        assert!(validate(TOKEN, URL, &params, "IK+Dwps556ElfBT0I3Rgjkr1wJU="));
    }

    #[test]
    fn vector_07_repeated_keys_either_order() {
        let a = p(&[
            ("MessagingBinding.Address", "+1325xxxxxxx"),
            ("MessagingBinding.Address", "+1415xxxxxxx"),
        ]);
        let b = p(&[
            ("MessagingBinding.Address", "+1415xxxxxxx"),
            ("MessagingBinding.Address", "+1325xxxxxxx"),
        ]);
        assert!(validate(TOKEN, URL, &a, "83O6e2vORAoJHUNzJjDWN1jz+BA="));
        assert!(validate(TOKEN, URL, &b, "83O6e2vORAoJHUNzJjDWN1jz+BA="));
    }

    #[test]
    fn vectors_08_to_10_credentials_in_the_url() {
        assert!(validate(
            TOKEN,
            "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2",
            &shared(),
            "CukzLTc1tT5dXEDIHm/tKBanW10="
        ));
        assert!(validate(
            TOKEN,
            "https://user@mycompany.com/myapp.php?foo=1&bar=2",
            &shared(),
            "2YRLlVAflCqxaNicjMpJcSTgzSs="
        ));
        assert!(validate(
            TOKEN,
            "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2",
            &shared(),
            "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="
        ));
    }

    #[test]
    fn vector_11_apostrophe_percent_encoded() {
        let raw = "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It's+amazing";
        assert!(validate(TOKEN, raw, &shared(), "TfZzewPq8wqrGlMfyAud8+/IvJ0="));
        assert!(validate(
            TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=2&Body=It%27s+amazing",
            &shared(),
            "TfZzewPq8wqrGlMfyAud8+/IvJ0="
        ));
        assert_eq!(compute(TOKEN, raw, &shared()), "dsq4Ehbj6cs+KdTkpF5sSSplOWw=");
    }

    #[test]
    fn vectors_12_to_14_json_body() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(hex(&Sha256::digest(body)), hash);
        assert!(validate_json_body(
            TOKEN,
            &format!("{URL}&bodySHA256={hash}"),
            body,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
        assert!(validate_json_body(
            TOKEN,
            &format!("https://mycompany.com/myapp.php?bodySHA256={hash}"),
            body,
            "y77kIzt2vzLz71DgmJGsen2scGs="
        ));
        let empty = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert!(validate_json_body(
            TOKEN,
            &format!("{URL}&bodySHA256={empty}"),
            b"{}",
            "Ldidvp12m26NI7eqEvxnEpkd9Hc="
        ));
        // A tampered body fails even with the right URL signature.
        assert!(!validate_json_body(
            TOKEN,
            &format!("{URL}&bodySHA256={hash}"),
            br#"{"property": "value", "boolean": false}"#,
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ));
    }

    #[test]
    fn vectors_15_to_18_go_sdk() {
        assert!(validate(TOKEN, URL, &go_params(), "vOEb5UThFn24KEfnOFLQY2AE5FY="));
        assert!(validate(
            TOKEN,
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            &go_params(),
            "n2xBNyzSW7rfYStDtOFiFMv7qNo="
        ));
        assert!(validate(
            TOKEN,
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            &go_params(),
            "n2xBNyzSW7rfYStDtOFiFMv7qNo="
        ));
        assert!(
            !validate(TOKEN, URL, &go_params(), "95+Bu0JVPi0r/SsESZCVf0dWAjw="),
            "the concatenate-then-sort result must be rejected"
        );
        let form = form_params(b"property=value&boolean=true");
        assert!(validate(TOKEN, URL, &form, "NBdBDr/T/lgjI+tlgpXjKZQZs/k="));
    }

    #[test]
    fn vector_19_docs_worked_example() {
        let params = p(&[
            ("Digits", "1234"),
            ("To", "+18005551212"),
            ("From", "+14158675310"),
            ("Caller", "+14158675310"),
            ("CallSid", "CA1234567890ABCDE"),
        ]);
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signing_string(url, &params),
            "https://example.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675310Digits1234From+14158675310To+18005551212"
        );
        assert!(validate(TOKEN, url, &params, "L/OH5YylLD5NRKLltdqwSvS0BnU="));
    }

    const WA_TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const WA1_BODY: &str = "SmsMessageSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&NumMedia=0&ProfileName=Ana+Mar%C3%ADa&MessageType=text&SmsSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&WaId=5511987654321&SmsStatus=received&Body=Ol%C3%A1%2C+preciso+de+ajuda+com+meu+pedido+%23123+%F0%9F%98%8A&To=whatsapp%3A%2B14155238886&NumSegments=1&ReferralNumMedia=0&MessageSid=SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&AccountSid=AC11111111111111111111111111111111&From=whatsapp%3A%2B5511987654321&ApiVersion=2010-04-01";

    // reference/twilio.md §3.6.
    #[test]
    fn whatsapp_example_wa1_utf8_and_emoji() {
        let params = form_params(WA1_BODY.as_bytes());
        let url = "https://cc.example.com/twilio/whatsapp/inbound";
        assert!(signing_string(url, &params).contains("BodyOlá, preciso de ajuda com meu pedido #123 😊From"));
        assert!(validate(WA_TOKEN, url, &params, "WYmUcgS+FOCH6tSvW0FsvF47ue8="));
        assert!(validate(WA_TOKEN, url, &params, "s8IRCi7Liw69XLHlO+xYpKUUGAQ="), "signed with :443");
    }

    #[test]
    fn whatsapp_example_st1_read_status() {
        let body = "EventType=READ&SmsSid=SMffffffffffffffffffffffffffffffff&SmsStatus=read&MessageStatus=read&ChannelToAddress=%2B55119876XXXX&To=whatsapp%3A%2B5511987654321&ChannelPrefix=whatsapp&MessageSid=SMffffffffffffffffffffffffffffffff&AccountSid=AC11111111111111111111111111111111&From=whatsapp%3A%2B14155238886&ApiVersion=2010-04-01&ChannelInstallSid=XE22222222222222222222222222222222";
        assert!(validate(
            WA_TOKEN,
            "https://cc.example.com/twilio/whatsapp/status",
            &form_params(body.as_bytes()),
            "Mlzvo2nZAa47GOxc7/0p5ZeqxeY="
        ));
    }

    #[test]
    fn one_changed_byte_anywhere_fails() {
        let url = "https://cc.example.com/twilio/whatsapp/inbound";
        let sig = "WYmUcgS+FOCH6tSvW0FsvF47ue8=";
        let bytes = WA1_BODY.as_bytes();
        for i in (0..bytes.len()).step_by(7) {
            let mut altered = bytes.to_vec();
            altered[i] = if altered[i] == b'x' { b'y' } else { b'x' };
            assert!(
                !validate(WA_TOKEN, url, &form_params(&altered), sig),
                "byte {i} altered still validated"
            );
        }
        assert!(
            !validate(
                WA_TOKEN,
                "https://cc.example.com/twilio/whatsapp/inbound/",
                &form_params(bytes),
                sig
            ),
            "trailing slash"
        );
        assert!(
            !validate("0123456789abcdef0123456789abcdeF", url, &form_params(bytes), sig),
            "token is case-sensitive"
        );
        assert!(!validate(WA_TOKEN, url, &form_params(bytes), ""));
    }

    #[test]
    fn ports_are_added_and_removed_only_where_it_makes_sense() {
        assert_eq!(add_port("https://a.b/x?q=1").as_deref(), Some("https://a.b:443/x?q=1"));
        assert_eq!(add_port("http://a.b").as_deref(), Some("http://a.b:80"));
        assert_eq!(add_port("https://a.b:8443/x"), None);
        assert_eq!(remove_port("https://u:p@a.b:8443/x").as_deref(), Some("https://u:p@a.b/x"));
        assert_eq!(remove_port("https://u:p@a.b/x"), None, "the password's colon is not a port");
        assert_eq!(remove_port("http://[::1]:8080/x").as_deref(), Some("http://[::1]/x"));
        assert_eq!(add_port("http://[::1]/x").as_deref(), Some("http://[::1]:80/x"));
    }
}

//! Twilio's webhook connection overrides: a URL fragment (`#ct=…&rt=…&rc=…&rp=…`) that tells
//! Twilio how long to wait and when to retry a webhook (`reference/twilio.md` §1.5). Without one,
//! Twilio retries once and only on a failed TCP connect or TLS handshake: a webhook answered
//! 503 (the broker unreachable) would be lost unless a fallback URL takes it. The fragment never
//! reaches the server and is not part of the signed URL.

use std::fmt;

/// When Twilio retries a webhook (`rp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// A 4xx answer.
    ClientError,
    /// A 5xx answer.
    ServerError,
    /// A failed TCP connect or TLS handshake.
    Connect,
    /// No answer within the read timeout.
    Read,
    /// All of the above.
    All,
}

impl RetryOn {
    fn as_str(self) -> &'static str {
        match self {
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::Connect => "ct",
            Self::Read => "rt",
            Self::All => "all",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "4xx" => Self::ClientError,
            "5xx" => Self::ServerError,
            "ct" => Self::Connect,
            "rt" => Self::Read,
            "all" => Self::All,
            _ => return None,
        })
    }
}

/// Connection overrides, with Twilio's defaults for what a fragment leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionOverrides {
    /// Connect timeout, ms (100–10000; default 5000).
    pub connect_timeout_ms: u32,
    /// Read timeout, ms (100–15000; default 15000).
    pub read_timeout_ms: u32,
    /// Total time for all attempts, ms (100–15000; default 15000).
    pub total_timeout_ms: u32,
    /// Retries after the first attempt (0–5; default 1).
    pub retries: u32,
    /// What is retried (default: a failed connect only).
    pub retry_on: Vec<RetryOn>,
}

impl Default for ConnectionOverrides {
    /// Twilio's behaviour without a fragment.
    fn default() -> Self {
        Self {
            connect_timeout_ms: 5_000,
            read_timeout_ms: 15_000,
            total_timeout_ms: 15_000,
            retries: 1,
            retry_on: vec![RetryOn::Connect],
        }
    }
}

impl ConnectionOverrides {
    /// What Switchboard puts on the URLs it gives out: up to 5 retries, within Twilio's 15 s
    /// total, on a failed connect, a slow answer or a 5xx (ingress answers 503 while it cannot
    /// get the broker's confirm). A retried webhook carries the same MessageSid, so session's
    /// dedupe keeps it single.
    pub fn switchboard() -> Self {
        Self {
            connect_timeout_ms: 2_000,
            read_timeout_ms: 5_000,
            total_timeout_ms: 15_000,
            retries: 5,
            retry_on: vec![RetryOn::Connect, RetryOn::Read, RetryOn::ServerError],
        }
    }

    /// Parses a fragment (without `#`); unknown keys are ignored, values are clamped to
    /// Twilio's ranges, and anything left out keeps Twilio's default.
    pub fn parse(fragment: &str) -> Self {
        let mut o = Self::default();
        for (key, value) in form_urlencoded::parse(fragment.as_bytes()) {
            let number = || value.parse::<u32>().ok();
            match key.as_ref() {
                "ct" => o.connect_timeout_ms = number().map_or(o.connect_timeout_ms, |v| v.clamp(100, 10_000)),
                "rt" => o.read_timeout_ms = number().map_or(o.read_timeout_ms, |v| v.clamp(100, 15_000)),
                "tt" => o.total_timeout_ms = number().map_or(o.total_timeout_ms, |v| v.clamp(100, 15_000)),
                "rc" => o.retries = number().map_or(o.retries, |v| v.min(5)),
                "rp" => o.retry_on = value.split(',').filter_map(RetryOn::parse).collect(),
                _ => {}
            }
        }
        o
    }

    /// Whether an attempt that ended so is retried.
    pub fn retries_on(&self, outcome: RetryOn) -> bool {
        self.retry_on.iter().any(|r| *r == outcome || *r == RetryOn::All)
    }
}

impl fmt::Display for ConnectionOverrides {
    /// The fragment, without `#`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rp: Vec<&str> = self.retry_on.iter().map(|r| r.as_str()).collect();
        write!(
            f,
            "ct={}&rt={}&tt={}&rc={}&rp={}",
            self.connect_timeout_ms,
            self.read_timeout_ms,
            self.total_timeout_ms,
            self.retries,
            rp.join(",")
        )
    }
}

/// Splits `url` into what Twilio requests and signs, and its fragment (the overrides).
pub fn split(url: &str) -> (&str, Option<&str>) {
    match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_round_trips_and_defaults_are_twilios() {
        let ours = ConnectionOverrides::switchboard();
        assert_eq!(ours.to_string(), "ct=2000&rt=5000&tt=15000&rc=5&rp=ct,rt,5xx");
        assert_eq!(ConnectionOverrides::parse(&ours.to_string()), ours);
        let none = ConnectionOverrides::parse("");
        assert_eq!(none, ConnectionOverrides::default());
        assert!(none.retries_on(RetryOn::Connect) && !none.retries_on(RetryOn::ServerError));
        let clamped = ConnectionOverrides::parse("rc=9&ct=1&rp=all&x=1");
        assert_eq!((clamped.retries, clamped.connect_timeout_ms), (5, 100));
        assert!(clamped.retries_on(RetryOn::ClientError));
        assert_eq!(
            split("https://h.example.com/v1/twilio/c/inbound?a=1#rc=5&rp=5xx"),
            ("https://h.example.com/v1/twilio/c/inbound?a=1", Some("rc=5&rp=5xx"))
        );
        assert_eq!(split("https://h.example.com/x"), ("https://h.example.com/x", None));
    }
}

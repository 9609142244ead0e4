//! Calling a business's bot endpoint without becoming a way into our network (SSRF): every
//! address a name resolves to must be public (`switchboard_domain::netguard`), an IP literal in
//! the URL too, redirects are never followed (an https endpoint cannot send us to http or to an
//! internal host), and the answer is read up to a size cap.

use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use switchboard_domain::netguard;

/// Largest bot answer read.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Resolves with the system resolver, keeping only addresses we may call.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Let loopback through (development bots).
    pub allow_loopback: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| netguard::check(a.ip(), allow_loopback).is_ok())
                .collect();
            if allowed.is_empty() {
                let why = resolved
                    .first()
                    .and_then(|a| netguard::check(a.ip(), allow_loopback).err())
                    .map_or_else(|| "no address".to_owned(), |r| r.to_string());
                return Err(format!("the bot endpoint {host} resolves to {why}, which may not be called").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
pub fn check_literal(url: &str, allow_loopback: bool) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| "the bot endpoint is not a URL".to_owned())?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    netguard::check(ip, allow_loopback).map_err(|why| format!("the bot endpoint is {why}, which may not be called"))
}

/// An HTTP client for bot endpoints: guarded resolution, no redirects.
pub fn client(allow_loopback: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent("Switchboard-Bots/1")
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(GuardedResolver { allow_loopback })
        .build()
}

/// Reads at most [`MAX_ANSWER_BYTES`] of `response`.
pub async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("the answer could not be read: {e}"))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("the answer is larger than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

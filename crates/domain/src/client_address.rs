//! Which address a request came from, behind proxies we trust.
//!
//! The peer of a connection is the client unless it is one of our own proxies (an ingress
//! controller, a load balancer), named as networks. Then `X-Forwarded-For` is read from the
//! right, skipping our proxies: the first address that is not one of them is the client.
//! Entries further left were written by the client itself and prove nothing, so they are never
//! taken; a malformed entry stops the walk at the last trusted hop.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A network: an address and a prefix length (`10.0.0.0/8`, `fd00::/8`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A network that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network (e.g. 10.0.0.0/8, fd00::/8 or 192.0.2.7)")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadCidr(s.to_owned());
        let (address, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Cidr {
    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => masked(u128::from(n.to_bits()), u128::from(a.to_bits()), 32, self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => masked(n.to_bits(), a.to_bits(), 128, self.prefix),
            _ => false,
        }
    }
}

fn masked(network: u128, address: u128, width: u8, prefix: u8) -> bool {
    let shift = u32::from(width - prefix);
    shift >= u32::from(width) || (network >> shift) == (address >> shift)
}

/// The client's address: `peer`, or, when `peer` is a trusted proxy, the rightmost address of
/// `forwarded_for` (the `X-Forwarded-For` values, in order) that is not a trusted proxy.
pub fn client_address<'a>(peer: IpAddr, forwarded_for: impl IntoIterator<Item = &'a str>, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for.into_iter().flat_map(|v| v.split(',')).map(str::trim).collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { return client };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    fn nets(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().expect("a network")).collect()
    }

    #[test]
    fn networks_parse_and_contain() {
        let n: Cidr = "10.0.0.0/8".parse().expect("parses");
        assert!(n.contains(ip("10.1.2.3")) && !n.contains(ip("11.0.0.1")));
        assert!(n.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped");
        let one: Cidr = "192.0.2.7".parse().expect("one address");
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "fd00::/8".parse().expect("v6");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        let all: Cidr = "0.0.0.0/0".parse().expect("everything");
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "10.0.0/8", "proxy", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(n.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_our_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        // A client that writes its own header from outside is not believed.
        assert_eq!(client_address(ip("203.0.113.5"), ["1.2.3.4"], &trusted), ip("203.0.113.5"));
        // Through our proxy: the address the proxy saw.
        assert_eq!(client_address(ip("10.0.0.2"), ["203.0.113.5"], &trusted), ip("203.0.113.5"));
        // A client-written entry on the left is skipped; two of our hops are walked past.
        assert_eq!(
            client_address(ip("10.0.0.2"), ["6.6.6.6, 203.0.113.5", "10.0.0.9"], &trusted),
            ip("203.0.113.5")
        );
        // Nothing forwarded, or garbage: the last trusted hop stands.
        assert_eq!(client_address(ip("10.0.0.2"), [], &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.2"), ["6.6.6.6, junk"], &trusted), ip("10.0.0.2"));
        // No trusted proxies configured: the header is ignored.
        assert_eq!(client_address(ip("10.0.0.2"), ["203.0.113.5"], &[]), ip("10.0.0.2"));
    }
}

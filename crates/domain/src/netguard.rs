//! Which addresses Switchboard may call on a business's behalf (bot endpoints): public unicast
//! only. Loopback, private, shared (CGNAT), link-local (cloud metadata at 169.254.169.254
//! among them), unique-local, multicast, documentation and unspecified addresses are refused,
//! including IPv4 addresses wrapped in IPv6. Development may allow loopback alone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address may not be called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// 127.0.0.0/8, ::1.
    #[error("a loopback address")]
    Loopback,
    /// Private, shared, link-local, unique-local, multicast, documentation, reserved or
    /// unspecified.
    #[error("a private, link-local or reserved address")]
    NotPublic,
}

fn v4(ip: Ipv4Addr) -> Result<(), Refused> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        return Err(Refused::Loopback);
    }
    let refused = ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    if refused { Err(Refused::NotPublic) } else { Ok(()) }
}

fn v6(ip: Ipv6Addr) -> Result<(), Refused> {
    if ip.is_loopback() {
        return Err(Refused::Loopback);
    }
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return v4(mapped);
    }
    let first = ip.segments()[0];
    let refused = ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b; // NAT64 of IPv4 (could reach private v4)
    if refused { Err(Refused::NotPublic) } else { Ok(()) }
}

/// Checks that `ip` may be called; `allow_loopback` lets loopback through (development).
pub fn check(ip: IpAddr, allow_loopback: bool) -> Result<(), Refused> {
    let verdict = match ip {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => v6(ip),
    };
    match verdict {
        Err(Refused::Loopback) if allow_loopback => Ok(()),
        other => other,
    }
}

/// Whether `host` (a URL's host, without brackets) names the local machine by name.
pub fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn only_public_unicast_addresses_may_be_called() {
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1:248:1893:25c8:1946",
            "100.63.0.1",
            "100.128.0.1",
        ] {
            assert_eq!(check(ip(public), false), Ok(()), "{public}");
        }
        for private in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "fd00::1",
            "fe80::1",
            "::",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert_eq!(check(ip(private), true), Err(Refused::NotPublic), "{private}");
        }
        for loopback in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(check(ip(loopback), false), Err(Refused::Loopback), "{loopback}");
            assert_eq!(check(ip(loopback), true), Ok(()), "{loopback} in development");
        }
        assert!(is_local_name("localhost") && is_local_name("api.localhost.") && !is_local_name("localhost.example.com"));
    }
}

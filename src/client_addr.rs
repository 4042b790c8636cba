//! Who is on the other end of a request: the peer, or, when the peer is a proxy the
//! configuration trusts, the client that proxy says it forwarded for.
//!
//! `X-Forwarded-For` is written by every hop, and a client can send one of its own, so only the
//! hops appended by trusted proxies mean anything: the header is read from the right, trusted
//! proxies are skipped, and the first address that is not one of them is the client. Anything
//! left of it could have been made up by that client and is never looked at.

use std::fmt;
use std::net::IpAddr;

use actix_web::http::header::HeaderMap;

pub use crate::domain::TrustedProxies;

pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The client's address as far as this app can tell (IPv4-mapped IPv6 shown as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(IpAddr);

impl ClientAddress {
    pub fn ip(self) -> IpAddr {
        self.0
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The client of a request that came from `peer` with `headers`: the peer itself unless it is
/// a trusted proxy, else the right-most `X-Forwarded-For` hop that is not a trusted proxy.
/// A header that cannot be read gives the peer (a proxy that mangles it is not believed).
/// When every hop is trusted, the left-most one is the closest thing to a client there is.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<ClientAddress> {
    let peer = peer.map(|ip| ip.to_canonical())?;
    if !trusted.contains(peer) {
        return Some(ClientAddress(peer));
    }
    match forwarded_hops(headers) {
        Ok(hops) => {
            let mut client = peer;
            for hop in hops.into_iter().rev() {
                client = hop;
                if !trusted.contains(hop) {
                    break;
                }
            }
            Some(ClientAddress(client))
        }
        Err(problem) => {
            tracing::warn!(%peer, problem, "ignoring X-Forwarded-For from a trusted proxy");
            Some(ClientAddress(peer))
        }
    }
}

/// Whether the client reached the site over HTTPS: this connection is TLS, or a trusted proxy
/// says so with `X-Forwarded-Proto: https`.
pub fn is_https(
    scheme_is_https: bool,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> bool {
    if scheme_is_https {
        return true;
    }
    let Some(peer) = peer else { return false };
    if !trusted.contains(peer) {
        return false;
    }
    // Several proxies may each add one; the last was written by the proxy next to the app.
    headers
        .get_all(X_FORWARDED_PROTO)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .next_back()
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Every `X-Forwarded-For` hop, left to right, over all of the header's lines.
fn forwarded_hops(headers: &HeaderMap) -> Result<Vec<IpAddr>, String> {
    let mut hops = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let value = value
            .to_str()
            .map_err(|_| "the header is not ASCII".to_owned())?;
        for hop in value.split(',') {
            hops.push(parse_hop(hop.trim())?);
        }
    }
    Ok(hops)
}

/// One hop: an address, maybe with a port (`1.2.3.4:5678`, `[::1]:5678`), as some proxies
/// write them.
fn parse_hop(hop: &str) -> Result<IpAddr, String> {
    let bad = || format!("`{}` is not an address", hop.escape_debug());
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Ok(ip.to_canonical());
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Ok(socket.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).expect("valid proxies")
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        map
    }

    fn client(peer: &str, xff: &[&str], proxies: &TrustedProxies) -> String {
        let lines: Vec<(&str, &str)> = xff.iter().map(|v| (X_FORWARDED_FOR, *v)).collect();
        client_address(Some(peer.parse().unwrap()), &headers(&lines), proxies)
            .unwrap()
            .to_string()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(client("127.0.0.1", &["203.0.113.9"], &none), "127.0.0.1");
    }

    #[test]
    fn an_untrusted_peer_cannot_claim_another_address() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(client("192.0.2.1", &["203.0.113.9"], &proxies), "192.0.2.1");
    }

    #[test]
    fn a_trusted_peer_gives_the_right_most_untrusted_hop() {
        let proxies = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        // The client made up 1.1.1.1; 198.51.100.7 is what the outer proxy saw.
        assert_eq!(
            client("127.0.0.1", &["1.1.1.1, 198.51.100.7, 10.1.2.3"], &proxies),
            "198.51.100.7"
        );
        // The same over several header lines.
        assert_eq!(
            client(
                "127.0.0.1",
                &["1.1.1.1", "198.51.100.7", "10.1.2.3"],
                &proxies
            ),
            "198.51.100.7"
        );
    }

    #[test]
    fn ports_and_brackets_in_hops_are_understood() {
        let proxies = trusted(&["127.0.0.1"]);
        assert_eq!(
            client("127.0.0.1", &["198.51.100.7:4711"], &proxies),
            "198.51.100.7"
        );
        assert_eq!(
            client("127.0.0.1", &["[2001:db8::1]:4711"], &proxies),
            "2001:db8::1"
        );
        assert_eq!(
            client("127.0.0.1", &["[2001:db8::1]"], &proxies),
            "2001:db8::1"
        );
    }

    #[test]
    fn a_malformed_header_gives_the_peer() {
        let proxies = trusted(&["127.0.0.1"]);
        for bad in ["unknown", "198.51.100.7, ", "", "1.2.3.4 5.6.7.8"] {
            assert_eq!(
                client("127.0.0.1", &[bad], &proxies),
                "127.0.0.1",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let proxies = trusted(&["127.0.0.1"]);
        assert_eq!(client("127.0.0.1", &[], &proxies), "127.0.0.1");
    }

    #[test]
    fn when_every_hop_is_trusted_the_left_most_is_taken() {
        let proxies = trusted(&["10.0.0.0/8", "127.0.0.1"]);
        assert_eq!(
            client("127.0.0.1", &["10.0.0.5, 10.0.0.6"], &proxies),
            "10.0.0.5"
        );
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_ranges() {
        let proxies = trusted(&["127.0.0.0/8"]);
        assert_eq!(
            client("::ffff:127.0.0.1", &["198.51.100.7"], &proxies),
            "198.51.100.7"
        );
    }

    #[test]
    fn https_is_believed_only_from_a_trusted_proxy() {
        let proxies = trusted(&["127.0.0.1"]);
        let peer = Some("127.0.0.1".parse().unwrap());
        let stranger = Some("192.0.2.1".parse().unwrap());
        let https = headers(&[(X_FORWARDED_PROTO, "https")]);
        assert!(is_https(false, peer, &https, &proxies));
        assert!(!is_https(false, stranger, &https, &proxies));
        assert!(!is_https(false, peer, &HeaderMap::new(), &proxies));
        assert!(!is_https(false, peer, &https, &TrustedProxies::default()));
        assert!(is_https(true, stranger, &HeaderMap::new(), &proxies));
        let mixed = headers(&[(X_FORWARDED_PROTO, "https, http")]);
        assert!(!is_https(false, peer, &mixed, &proxies));
    }
}

//! `[server] trusted_proxies`: the proxies whose forwarding headers are believed
//! (`client_addr` reads the headers).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// The addresses and ranges (`[server] trusted_proxies`) whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses addresses (`10.0.0.1`, `::1`) and CIDR ranges (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!("`{entry}` is not an address or a CIDR range like 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_ranges_match_what_they_cover() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "::1"]).unwrap();
        assert!(proxies.contains("10.200.0.1".parse().unwrap()));
        assert!(proxies.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(proxies.contains("::1".parse().unwrap()));
        assert!(!proxies.contains("11.0.0.1".parse().unwrap()));
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry() {
        for bad in ["10.0.0.0/33", "nowhere", "10.0.0.1/", ""] {
            let err = TrustedProxies::parse(&[bad]).expect_err(bad);
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
        assert_eq!(
            TrustedProxies::parse(&["10.1.2.3/8", "::1"])
                .unwrap()
                .to_string(),
            "10.0.0.0/8, ::1/128"
        );
    }
}

//! The caller's network, for the security log and new-network notices: the address itself (sealed) and a
//! blind index of its network prefix (/24 for IPv4, /48 for IPv6), so "seen before" is decided without
//! storing anything readable.

use std::net::IpAddr;

use qchat_shared::accounts::purpose;
use qchat_shared::crypto::{BlindIndex, BlindIndexer};
use qchat_shared::http::{ClientAddr, Request};

/// The caller's address, if the platform told us.
pub fn client_addr(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<ClientAddr>().map(|c| c.0)
}

/// The network prefix an address belongs to, as text (`203.0.113.0/24`, `2001:db8:1::/48`).
pub fn prefix(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

pub fn network_index(indexer: &BlindIndexer, ip: IpAddr) -> BlindIndex {
    indexer.index(purpose::NETWORK, prefix(ip).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_nearby_addresses() {
        assert_eq!(
            prefix("203.0.113.77".parse().expect("ip")),
            "203.0.113.0/24"
        );
        assert_eq!(
            prefix("2001:db8:1:2::5".parse().expect("ip")),
            "2001:db8:1::/48"
        );
    }
}

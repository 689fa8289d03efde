//! IPv4 CIDR blocks: parse, contain, overlap and split, for the network
//! rules of the cluster spec (kops's networkCIDR, subnets, nonMasqueradeCIDR,
//! serviceClusterIPRange are all IPv4 here).

use std::fmt;
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits zero).
    base: u32,
    prefix: u8,
}

impl Cidr {
    /// `a.b.c.d/n` with the host bits zero, as kops writes them.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("`{text}` is not an IPv4 CIDR block (e.g. 172.20.0.0/16)");
        let (addr, prefix) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let base = u32::from(addr);
        if base & !mask(prefix) != 0 {
            let network = Ipv4Addr::from(base & mask(prefix));
            return Err(format!(
                "`{text}` has host bits set (the block is {network}/{prefix})"
            ));
        }
        Ok(Cidr { base, prefix })
    }

    fn last(&self) -> u32 {
        self.base | !mask(self.prefix)
    }

    /// Whether `other` lies entirely inside this block.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && other.base & mask(self.prefix) == self.base
    }

    pub fn overlaps(&self, other: &Cidr) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }

    /// The block cut into `2^bits` equal parts, lowest first.
    pub fn split(&self, bits: u8) -> Vec<Cidr> {
        let prefix = (self.prefix + bits).min(32);
        let step = 1u64 << (32 - prefix);
        (0..1u64 << (prefix - self.prefix))
            .map(|i| Cidr {
                base: (self.base as u64 + i * step) as u32,
                prefix,
            })
            .collect()
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(text: &str) -> Cidr {
        Cidr::parse(text).unwrap()
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(c("172.20.0.0/16").to_string(), "172.20.0.0/16");
        assert!(Cidr::parse("172.20.0.0").is_err());
        assert!(Cidr::parse("172.20.0.0/33").is_err());
        assert!(Cidr::parse("300.20.0.0/16").is_err());
        let err = Cidr::parse("172.20.1.0/16").unwrap_err();
        assert!(err.contains("172.20.0.0/16"), "{err}");
    }

    #[test]
    fn contains_and_overlaps() {
        assert!(c("172.20.0.0/16").contains(&c("172.20.64.0/18")));
        assert!(!c("172.20.0.0/16").contains(&c("172.21.0.0/18")));
        assert!(!c("172.20.64.0/18").contains(&c("172.20.0.0/16")));
        assert!(c("100.64.0.0/10").contains(&c("100.64.0.0/13")));
        assert!(c("0.0.0.0/0").contains(&c("10.0.0.0/8")));
        assert!(c("100.64.0.0/10").overlaps(&c("100.96.0.0/11")));
        assert!(!c("100.64.0.0/10").overlaps(&c("172.20.0.0/16")));
    }

    #[test]
    fn splits_like_kops() {
        let parts: Vec<String> = c("172.20.0.0/16")
            .split(2)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            parts,
            [
                "172.20.0.0/18",
                "172.20.64.0/18",
                "172.20.128.0/18",
                "172.20.192.0/18"
            ]
        );
        assert_eq!(c("172.20.0.0/16").split(0), vec![c("172.20.0.0/16")]);
    }
}

//! [`ProtocolId`]: the 16-bit SP socket type exchanged in the handshake.

use std::fmt;

/// The 16-bit SP socket type, `(protocol number << 4) | role`, as carried in bytes 4–5 of the
/// connection header. Raw and cooked sockets of one protocol share the same ID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolId(pub u16);

impl ProtocolId {
    /// PAIR v0 (`pair`).
    pub const PAIR0: Self = Self(0x10);
    /// PAIR v1 (`pair1`).
    pub const PAIR1: Self = Self(0x11);
    /// PUB (`pub`).
    pub const PUB: Self = Self(0x20);
    /// SUB (`sub`).
    pub const SUB: Self = Self(0x21);
    /// REQ (`req`).
    pub const REQ: Self = Self(0x30);
    /// REP (`rep`).
    pub const REP: Self = Self(0x31);
    /// PUSH (`push`).
    pub const PUSH: Self = Self(0x50);
    /// PULL (`pull`).
    pub const PULL: Self = Self(0x51);
    /// SURVEYOR (`surveyor`).
    pub const SURVEYOR: Self = Self(0x62);
    /// RESPONDENT (`respondent`).
    pub const RESPONDENT: Self = Self(0x63);
    /// BUS (`bus`).
    pub const BUS: Self = Self(0x70);
    /// STAR (`star`, mangos' experimental protocol).
    pub const STAR: Self = Self(0x640);

    /// Every SP type this crate knows, in protocol-number order.
    pub const ALL: [Self; 12] = [
        Self::PAIR0,
        Self::PAIR1,
        Self::PUB,
        Self::SUB,
        Self::REQ,
        Self::REP,
        Self::PUSH,
        Self::PULL,
        Self::SURVEYOR,
        Self::RESPONDENT,
        Self::BUS,
        Self::STAR,
    ];

    /// Returns the only protocol this one may talk to, or `None` for an unknown ID.
    pub const fn peer(self) -> Option<Self> {
        Some(match self {
            Self::PAIR0 | Self::PAIR1 | Self::BUS | Self::STAR => self,
            Self::PUB => Self::SUB,
            Self::SUB => Self::PUB,
            Self::REQ => Self::REP,
            Self::REP => Self::REQ,
            Self::PUSH => Self::PULL,
            Self::PULL => Self::PUSH,
            Self::SURVEYOR => Self::RESPONDENT,
            Self::RESPONDENT => Self::SURVEYOR,
            _ => return None,
        })
    }

    /// Returns the protocol's name, which is also the WebSocket subprotocol prefix.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self {
            Self::PAIR0 => "pair",
            Self::PAIR1 => "pair1",
            Self::PUB => "pub",
            Self::SUB => "sub",
            Self::REQ => "req",
            Self::REP => "rep",
            Self::PUSH => "push",
            Self::PULL => "pull",
            Self::SURVEYOR => "surveyor",
            Self::RESPONDENT => "respondent",
            Self::BUS => "bus",
            Self::STAR => "star",
            _ => return None,
        })
    }

    /// Returns true when a socket of type `self` may attach a pipe whose peer sent `other`.
    pub fn is_valid_peer(self, other: Self) -> bool {
        self.peer() == Some(other)
    }

    /// Returns false for the one-way senders (PUB, PUSH), whose sockets never receive.
    pub const fn receives(self) -> bool {
        !matches!(self, Self::PUB | Self::PUSH)
    }

    /// Returns false for the one-way receivers (SUB, PULL), whose sockets never send.
    pub const fn sends(self) -> bool {
        !matches!(self, Self::SUB | Self::PULL)
    }
}

impl fmt::Debug for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}(0x{:x})", self.0),
            None => write!(f, "unknown(0x{:x})", self.0),
        }
    }
}

impl fmt::Display for ProtocolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_symmetric() {
        for p in ProtocolId::ALL {
            let peer = p.peer().unwrap();
            assert_eq!(peer.peer(), Some(p));
            assert!(p.is_valid_peer(peer));
        }
        assert!(!ProtocolId::PAIR0.is_valid_peer(ProtocolId::PAIR1));
        assert!(!ProtocolId::REQ.is_valid_peer(ProtocolId::PUB));
    }
}

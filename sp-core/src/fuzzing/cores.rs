//! What the protocol targets share: every role, cooked and raw, built from input bytes, and a
//! reader of the input that never runs out.

use std::time::Duration;

use crate::backtrace::{BOTTOM_OF_STACK_BIT, WORD_LEN};
use crate::protocol::bus::{Bus, BusConfig, XBus};
use crate::protocol::pair::{Pair, PairConfig, XPair};
use crate::protocol::pair1::{Pair1, Pair1Config, Pair1Poly, XPair1};
use crate::protocol::pipeline::{Pull, PullConfig, Push, PushConfig, XPull, XPush};
use crate::protocol::pubsub::{Pub, PubConfig, Sub, SubConfig, XPub, XSub};
use crate::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use crate::protocol::reqrep_raw::{XRep, XRepConfig, XReq, XReqConfig};
use crate::protocol::star::{Star, StarConfig, XStar};
use crate::protocol::survey::{
    Respondent, RespondentConfig, Surveyor, SurveyorConfig, XRespondent, XRespondentConfig,
    XSurveyor, XSurveyorConfig,
};
use crate::protocol::Protocol;
use crate::{Message, PipeId};

/// Every socket role, cooked then raw, in the order a role byte picks them.
pub(super) const ROLES: [Role; 25] = [
    Role::Req,
    Role::Rep,
    Role::Push,
    Role::Pull,
    Role::Pair,
    Role::Pair1,
    Role::Pair1Poly,
    Role::Pub,
    Role::Sub,
    Role::Bus,
    Role::Surveyor,
    Role::Respondent,
    Role::Star,
    Role::XReq,
    Role::XRep,
    Role::XPair,
    Role::XPair1,
    Role::XPush,
    Role::XPull,
    Role::XPub,
    Role::XSub,
    Role::XBus,
    Role::XSurveyor,
    Role::XRespondent,
    Role::XStar,
];

/// A socket role, cooked or raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Req,
    Rep,
    Push,
    Pull,
    Pair,
    Pair1,
    Pair1Poly,
    Pub,
    Sub,
    Bus,
    Surveyor,
    Respondent,
    Star,
    XReq,
    XRep,
    XPair,
    XPair1,
    XPush,
    XPull,
    XPub,
    XSub,
    XBus,
    XSurveyor,
    XRespondent,
    XStar,
}

/// The settings a core is built with.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub(super) recv_buffer: usize,
    pub(super) send_buffer: usize,
    pub(super) max_ttl: u8,
    pub(super) resend: Option<Duration>,
    pub(super) survey_time: Duration,
    pub(super) prefer_new: bool,
    pub(super) seed: u64,
}

/// A core, with the roles whose own methods the targets call kept by type.
pub(super) enum Core {
    Req(Req),
    Surveyor(Surveyor),
    Sub(Sub),
    XSub(XSub),
    Other(Box<dyn Protocol>),
}

impl Core {
    pub(super) fn new(role: Role, s: &Settings) -> Self {
        let pair1 = || Pair1Config {
            max_ttl: s.max_ttl,
            recv_buffer: s.recv_buffer,
        };
        let star = || StarConfig {
            max_ttl: s.max_ttl,
            send_buffer: s.send_buffer,
            recv_buffer: s.recv_buffer,
        };
        let bus = || BusConfig {
            send_buffer: s.send_buffer,
            recv_buffer: s.recv_buffer,
        };
        let sub = || SubConfig {
            recv_buffer: s.recv_buffer,
            prefer_new: s.prefer_new,
        };
        let pair = || PairConfig {
            recv_buffer: s.recv_buffer,
        };
        let pull = || PullConfig {
            recv_buffer: s.recv_buffer,
        };
        let publ = || PubConfig {
            send_buffer: s.send_buffer,
        };
        let other: Box<dyn Protocol> = match role {
            Role::Req => {
                return Core::Req(Req::new(ReqConfig {
                    resend_interval: s.resend,
                    resend_tick: None,
                    seed: s.seed,
                }))
            }
            Role::Surveyor => {
                return Core::Surveyor(Surveyor::new(SurveyorConfig {
                    survey_time: s.survey_time,
                    seed: s.seed,
                    recv_buffer: s.recv_buffer,
                }))
            }
            Role::Sub => return Core::Sub(Sub::new(sub())),
            Role::XSub => return Core::XSub(XSub::new(sub())),
            Role::Rep => Box::new(Rep::new(RepConfig {
                max_ttl: s.max_ttl,
                recv_buffer: s.recv_buffer,
            })),
            Role::Respondent => Box::new(Respondent::new(RespondentConfig {
                max_ttl: s.max_ttl,
                recv_buffer: s.recv_buffer,
            })),
            Role::Push => Box::new(Push::new(PushConfig::default())),
            Role::Pull => Box::new(Pull::new(pull())),
            Role::Pair => Box::new(Pair::new(pair())),
            Role::Pair1 => Box::new(Pair1::new(pair1())),
            Role::Pair1Poly => Box::new(Pair1Poly::new(pair1())),
            Role::Pub => Box::new(Pub::new(publ())),
            Role::Bus => Box::new(Bus::new(bus())),
            Role::Star => Box::new(Star::new(star())),
            Role::XReq => Box::new(XReq::new(XReqConfig {
                recv_buffer: s.recv_buffer,
            })),
            Role::XRep => Box::new(XRep::new(XRepConfig {
                max_ttl: s.max_ttl,
                recv_buffer: s.recv_buffer,
            })),
            Role::XPair => Box::new(XPair::new(pair())),
            Role::XPair1 => Box::new(XPair1::new(pair1())),
            Role::XPush => Box::new(XPush::new(PushConfig::default())),
            Role::XPull => Box::new(XPull::new(pull())),
            Role::XPub => Box::new(XPub::new(publ())),
            Role::XBus => Box::new(XBus::new(bus())),
            Role::XSurveyor => Box::new(XSurveyor::new(XSurveyorConfig {
                recv_buffer: s.recv_buffer,
            })),
            Role::XRespondent => Box::new(XRespondent::new(XRespondentConfig {
                max_ttl: s.max_ttl,
                recv_buffer: s.recv_buffer,
            })),
            Role::XStar => Box::new(XStar::new(star())),
        };
        Core::Other(other)
    }

    pub(super) fn get(&mut self) -> &mut dyn Protocol {
        match self {
            Core::Req(p) => p,
            Core::Surveyor(p) => p,
            Core::Sub(p) => p,
            Core::XSub(p) => p,
            Core::Other(p) => p.as_mut(),
        }
    }

    pub(super) fn peek(&self) -> &dyn Protocol {
        match self {
            Core::Req(p) => p,
            Core::Surveyor(p) => p,
            Core::Sub(p) => p,
            Core::XSub(p) => p,
            Core::Other(p) => p.as_ref(),
        }
    }
}

/// Reads a fuzz input front to back; an exhausted input reads as zeros.
pub(super) struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub(super) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub(super) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    pub(super) fn word(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    pub(super) fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[usize::from(self.byte()) % options.len()]
    }
}

/// Queue lengths the targets configure and set (0 counts as 1; 8193 is refused).
pub(super) const QUEUE_LENS: [usize; 8] = [0, 1, 2, 3, 4, 8, 16, 128];
pub(super) const SET_QUEUE_LENS: [usize; 8] = [0, 1, 2, 3, 5, 16, 8192, 8193];
/// Resend intervals and survey times.
pub(super) const DURATIONS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(60),
    Duration::MAX,
];
/// Steps of the clock.
pub(super) const STEPS: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(1),
    Duration::from_millis(9),
    Duration::from_millis(50),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(61),
];
pub(super) const MAX_TTLS: [u8; 4] = [0, 1, 8, 255];

/// Whether `msg`, which a core of `role` handed to the application, is what that role makes
/// of `wire` received on `pipe`: the body is what follows the role's header on the wire, and
/// the header is what the role shows of it (nothing, the backtrace, the pipe's word in front
/// of the backtrace, or the hop count). Backtraces are words whose last one alone has bit 31
/// set, no more than the TTL allows; hop counts stay within the TTL. `max_ttl` is the
/// configured one (cores treat 0 as 1).
pub(super) fn is_parse_of(
    role: Role,
    max_ttl: u8,
    pipe: PipeId,
    wire: &[u8],
    msg: &Message,
) -> bool {
    let ttl = usize::from(max_ttl.max(1));
    let Some(prefix_len) = wire.len().checked_sub(msg.body.len()) else {
        return false;
    };
    let (prefix, body) = wire.split_at(prefix_len);
    if body != msg.body || msg.pipe != Some(pipe) {
        return false;
    }
    let header = &msg.header[..];
    let pipe_word = pipe.get().to_be_bytes();
    match role {
        Role::Req | Role::Surveyor => {
            header.is_empty() && is_backtrace(prefix, 1) && prefix.len() == WORD_LEN
        }
        Role::Rep | Role::Respondent => header.is_empty() && is_backtrace(prefix, ttl),
        Role::XRep | Role::XRespondent => {
            header.len() == WORD_LEN + prefix.len()
                && header[..WORD_LEN] == pipe_word
                && &header[WORD_LEN..] == prefix
                && is_backtrace(prefix, ttl)
        }
        Role::XReq | Role::XSurveyor => header == prefix && is_backtrace(prefix, usize::MAX),
        Role::Pair1 | Role::Pair1Poly => {
            header.is_empty() && hop_count(prefix).is_some_and(|hops| hops <= ttl)
        }
        Role::Star => header.is_empty() && hop_count(prefix).is_some_and(|hops| hops < ttl),
        Role::XPair1 => header == prefix && hop_count(prefix).is_some_and(|hops| hops <= ttl),
        Role::XStar => {
            // The hop count as received (below the TTL), plus this hop.
            let (Some(received), Some(shown)) = (hop_count(prefix), hop_count(header)) else {
                return false;
            };
            received < ttl && shown == received + 1
        }
        Role::XBus => prefix.is_empty() && header == pipe_word,
        Role::Pull
        | Role::XPull
        | Role::Pair
        | Role::XPair
        | Role::Sub
        | Role::XSub
        | Role::Bus => prefix.is_empty() && header.is_empty(),
        // These never receive.
        Role::Push | Role::XPush | Role::Pub | Role::XPub => false,
    }
}

/// Whether `bytes` is a backtrace of at most `max_words` words: whole 4-byte words, bit 31
/// set on the last one only.
fn is_backtrace(bytes: &[u8], max_words: usize) -> bool {
    let chunks = bytes.chunks_exact(WORD_LEN);
    if !chunks.remainder().is_empty() {
        return false;
    }
    let words: Vec<u32> = chunks
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        .collect();
    (1..=max_words).contains(&words.len())
        && words
            .iter()
            .rev()
            .skip(1)
            .all(|w| w & BOTTOM_OF_STACK_BIT == 0)
        && words.last().is_some_and(|w| w & BOTTOM_OF_STACK_BIT != 0)
}

/// The hop count a PAIR v1 or STAR hop-count word holds (`None`: not one such word). PAIR v1
/// allows up to 255 in the last byte, STAR the same; the other three bytes are zero.
fn hop_count(bytes: &[u8]) -> Option<usize> {
    match bytes {
        [0, 0, 0, hops] => Some(usize::from(*hops)),
        _ => None,
    }
}

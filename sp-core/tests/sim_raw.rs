//! Raw sockets (XREQ, XREP, XPAIR1), polyamorous PAIR v1 and devices built from raw cores:
//! the scenarios of SP-PROTOCOLS.md sections 4.2, 5 and 8.6, run in the simulator.
//!
//! A device here is one simulated node holding two raw cores and moving every message, header
//! included, from one to the other ([`Device`]); a reflector is one raw core that sends back
//! what it receives ([`Reflector`]). They do what `sp_transport::device` does with sockets.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::pair1::{Pair1, Pair1Config, Pair1Poly, XPair1};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::reqrep_raw::{XRep, XRepConfig, XReq, XReqConfig};
use sp_core::protocol::{Event, Input, Protocol, RecvError, SendError, Transmit};
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, RawPeer, Sim};
use sp_core::{Message, PipeId, ProtocolId};

const SEED: u64 = 0x5eed_0005;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A wire message: the hop-count word `word`, then `body`.
fn hop(word: u32, body: &str) -> Bytes {
    let mut bytes = word.to_be_bytes().to_vec();
    bytes.extend_from_slice(body.as_bytes());
    bytes.into()
}

/// A request stack of `words` words (hop words 1, 2, ... then request ID 0x80000001) in front
/// of the body `"<words>-words"`.
fn stack(words: usize) -> Bytes {
    let mut out: Vec<u8> = (1..words as u32).flat_map(u32::to_be_bytes).collect();
    out.extend_from_slice(&0x8000_0001u32.to_be_bytes());
    out.extend_from_slice(format!("{words}-words").as_bytes());
    Bytes::from(out)
}

fn req() -> Req {
    Req::new(ReqConfig {
        seed: SEED,
        ..ReqConfig::default()
    })
}

fn connected(sim: &mut Sim, a: NodeId, b: NodeId) -> LinkId {
    let link = sim.add_link(a, b, LinkConfig::default());
    sim.connect(link);
    link
}

/// Sends `msg` on `node`, whose core is a `P`, exactly as given (header included).
fn raw_send<P: Protocol + 'static>(
    sim: &mut Sim,
    node: NodeId,
    msg: Message,
) -> Result<(), SendError> {
    sim.with_protocol::<P, _>(node, |p, now| p.send(msg, now))
}

// ---- XREP (section 5.1) ----

// NNG test_xrep_send_no_header: a reply without a pipe word goes nowhere, yet succeeds.
#[test]
fn xrep_send_no_header_dropped() {
    let mut sim = Sim::new(SEED, Instant::now());
    let client = sim.add_node("req", req(), App::Collect);
    let xrep = sim.add_node("xrep", XRep::new(XRepConfig::default()), App::Manual);
    connected(&mut sim, client, xrep);
    sim.send(client, "q").unwrap();
    sim.run_for(ms(5));
    let request = sim.recv(xrep).unwrap();

    for header in [Bytes::new(), request.header.slice(..3)] {
        let sent = raw_send::<XRep>(&mut sim, xrep, Message::with_header(header, "a"));
        assert_eq!(sent, Ok(()));
    }
    sim.run_for(ms(5));

    assert!(!sim.transcript_contains(xrep, "tx "));
    assert!(sim.received_bodies(client).is_empty());
}

// NNG test_req_recv_garbage's XREP side: the header is the arrival pipe and the request ID
// (8 bytes), and sending it back unchanged answers the request.
#[test]
fn xrep_header_is_arrival_pipe_then_stack_and_routes_the_reply() {
    let mut sim = Sim::new(SEED, Instant::now());
    let client = sim.add_node("req", req(), App::Collect);
    let xrep = sim.add_node("xrep", XRep::new(XRepConfig::default()), App::Manual);
    connected(&mut sim, client, xrep);

    sim.send(client, "ping").unwrap();
    sim.run_for(ms(5));
    let request = sim.recv(xrep).unwrap();
    let id = sim.protocol::<Req>(client).unwrap().request_id().unwrap();
    assert_eq!(request.header.len(), 8);
    let pipe = u32::from_be_bytes(request.header[..4].try_into().unwrap());
    assert!(PipeId::new(pipe).is_some());
    assert_eq!(request.header[4..], id.to_bytes());
    assert_eq!(request.body, "ping");

    let reply = Message::with_header(request.header, "pong");
    assert_eq!(raw_send::<XRep>(&mut sim, xrep, reply), Ok(()));
    sim.run_for(ms(5));

    assert_eq!(sim.received_bodies(client), vec![b("pong")]);
}

// NNG kicks a peer whose request has no bottom word (test_rep_recv_garbage, for XREP).
#[test]
fn xrep_kicks_request_without_bottom_word() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-req", RawPeer::new(ProtocolId::REQ), App::Manual);
    let xrep = sim.add_node("xrep", XRep::new(XRepConfig::default()), App::Collect);
    let link = connected(&mut sim, raw, xrep);

    let body = Bytes::from_static(b"\x00\x00\x00\x01\x00\x00\x00\x02no");
    sim.at(ms(0), Action::SendBlocking { node: raw, body });
    sim.run_until_idle(100);

    assert!(!sim.is_connected(link));
    assert!(sim.inbox(xrep).is_empty());
}

// NNG test_xrep_ttl_drop (ttl 3): stacks of 2 and 3 words pass, 4 words are dropped and the
// pipe stays.
#[test]
fn xrep_ttl_drop() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-req", RawPeer::new(ProtocolId::REQ), App::Manual);
    let config = XRepConfig {
        max_ttl: 3,
        ..XRepConfig::default()
    };
    let xrep = sim.add_node("xrep", XRep::new(config), App::Collect);
    let link = connected(&mut sim, raw, xrep);

    for words in [2, 4, 3, 4] {
        let body = stack(words);
        sim.at(ms(0), Action::SendBlocking { node: raw, body });
    }
    sim.run_until_idle(100);

    let got: Vec<(usize, Bytes)> = sim
        .inbox(xrep)
        .iter()
        .map(|e| {
            let msg = e.result.as_ref().unwrap();
            (msg.header.len(), msg.body.clone())
        })
        .collect();
    assert_eq!(got, vec![(12, b("2-words")), (16, b("3-words"))]);
    assert!(sim.is_connected(link));
}

// ---- XREQ (section 5.1) ----

#[test]
fn xreq_sends_header_as_is_and_receives_the_whole_stack() {
    let mut sim = Sim::new(SEED, Instant::now());
    let xreq = sim.add_node("xreq", XReq::new(XReqConfig::default()), App::Collect);
    let rep = sim.add_node(
        "rep",
        Rep::new(RepConfig::default()),
        App::prefix_responder("re:"),
    );
    connected(&mut sim, xreq, rep);
    let header = Bytes::from_static(b"\x00\x00\x00\x07\x80\x00\x00\x05");

    // Two requests in flight at once: XREQ keeps no request state.
    for body in ["a", "b"] {
        let msg = Message::with_header(header.clone(), body);
        let _ = raw_send::<XReq>(&mut sim, xreq, msg);
        sim.run_for(ms(5));
    }

    let got: Vec<(Bytes, Bytes)> = sim
        .inbox(xreq)
        .iter()
        .filter_map(|e| e.result.as_ref().ok())
        .map(|m| (m.header.clone(), m.body.clone()))
        .collect();
    assert_eq!(got, vec![(header.clone(), b("re:a")), (header, b("re:b"))]);
}

// NNG kicks a pipe whose reply has no bottom word.
#[test]
fn xreq_kicks_reply_without_bottom_word() {
    let mut sim = Sim::new(SEED, Instant::now());
    let xreq = sim.add_node("xreq", XReq::new(XReqConfig::default()), App::Collect);
    let raw = sim.add_node("raw-rep", RawPeer::new(ProtocolId::REP), App::Manual);
    let link = connected(&mut sim, xreq, raw);

    let body = Bytes::from_static(b"\x00\x00\x00\x01");
    sim.at(ms(0), Action::SendBlocking { node: raw, body });
    sim.run_until_idle(100);

    assert!(!sim.is_connected(link));
    assert!(sim.inbox(xreq).is_empty());
}

// ---- Devices (sections 5.2, 5.3; scenario 88) ----

// Scenario 88 (`device_test.c` test_device_forward): REQ -> XREP|XREQ -> REP and back.
#[test]
fn reqrep_through_a_device_both_ways() {
    let mut sim = Sim::new(SEED, Instant::now());
    let client = sim.add_node("req", req(), App::Collect);
    let dev = sim.add_node("device", broker(), App::Manual);
    let server = sim.add_node(
        "rep",
        Rep::new(RepConfig::default()),
        App::prefix_responder("re:"),
    );
    connect_device(&mut sim, client, dev);
    connect_device(&mut sim, dev, server);

    for (i, body) in ["one", "two", "three"].into_iter().enumerate() {
        sim.at(
            ms(10 * i as u64),
            Action::Send {
                node: client,
                body: b(body),
            },
        );
    }
    sim.run_for(ms(100));

    assert_eq!(
        sim.received_bodies(client),
        vec![b("re:one"), b("re:two"), b("re:three")]
    );
}

// Section 5.3: every XREP hop adds a word; with the default TTL of 8 a request crosses at most
// 7 devices. The request is dropped once it has passed more devices than that.
#[test]
fn ttl_drop_after_max_hops() {
    for (devices, answered) in [(7, true), (8, false)] {
        let mut sim = Sim::new(SEED, Instant::now());
        let client = sim.add_node("req", req(), App::Collect);
        let server = sim.add_node(
            "rep",
            Rep::new(RepConfig::default()),
            App::prefix_responder("re:"),
        );
        let mut prev = client;
        for i in 0..devices {
            let dev = sim.add_node(&format!("dev{i}"), broker(), App::Manual);
            connect_device(&mut sim, prev, dev);
            prev = dev;
        }
        connect_device(&mut sim, prev, server);

        sim.send(client, "deep").unwrap();
        sim.run_for(ms(200));

        let expected = if answered { vec![b("re:deep")] } else { vec![] };
        assert_eq!(sim.received_bodies(client), expected, "{devices} devices");
        assert_eq!(
            sim.received_bodies(server).len(),
            usize::from(answered),
            "{devices} devices"
        );
    }
}

// mangos TTLDropTest / nanomsg reqttl.c: two devices pass with the default TTL; a final REP
// with TTL 2 drops the 3-word request.
#[test]
fn ttl_counts_device_hops_at_the_final_rep() {
    for (max_ttl, answered) in [(2, false), (3, true)] {
        let mut sim = Sim::new(SEED, Instant::now());
        let client = sim.add_node("req", req(), App::Collect);
        let d1 = sim.add_node("d1", broker(), App::Manual);
        let d2 = sim.add_node("d2", broker(), App::Manual);
        let config = RepConfig {
            max_ttl,
            ..RepConfig::default()
        };
        let server = sim.add_node("rep", Rep::new(config), App::prefix_responder("re:"));
        connect_device(&mut sim, client, d1);
        connect_device(&mut sim, d1, d2);
        connect_device(&mut sim, d2, server);

        sim.send(client, "x").unwrap();
        sim.run_for(ms(100));

        assert_eq!(
            sim.received_bodies(client).len(),
            usize::from(answered),
            "ttl {max_ttl}"
        );
    }
}

// ---- XPAIR1 (section 4.2; scenario 81) ----

fn xpair1(max_ttl: u8) -> XPair1 {
    XPair1::new(Pair1Config {
        max_ttl,
        ..Pair1Config::default()
    })
}

// NNG test_mono_raw_header: wrong length, reserved bits or 0xFF are refused; a good header
// goes out incremented (3 -> 4 on the wire) and a raw receiver shows the wire value.
#[test]
fn pair1_raw_header_rules() {
    let mut sim = Sim::new(SEED, Instant::now());
    let tx = sim.add_node("xpair1-a", xpair1(8), App::Manual);
    let rx = sim.add_node("xpair1-b", xpair1(8), App::Collect);
    connected(&mut sim, tx, rx);

    for header in [
        &b""[..],
        b"\x00\x00\x03",
        b"\x00\x00\x00\x03\x00",
        b"\xDE\xAD\x00\x00",
        b"\x00\x00\x00\xFF",
        b"\x00\x00\x01\x00",
    ] {
        let sent = raw_send::<XPair1>(&mut sim, tx, Message::with_header(header, "x"));
        assert_eq!(sent, Err(SendError::InvalidHeader), "{header:?}");
    }
    let good = Message::with_header(&b"\x00\x00\x00\x03"[..], "ok");
    assert_eq!(raw_send::<XPair1>(&mut sim, tx, good), Ok(()));
    sim.run_for(ms(5));

    let got: Vec<Message> = sim
        .inbox(rx)
        .iter()
        .map(|e| e.result.clone().unwrap())
        .collect();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (&got[0].header[..], &got[0].body[..]),
        (&b"\x00\x00\x00\x04"[..], &b"ok"[..])
    );
    assert!(got[0].pipe.is_some(), "a received message names its pipe");
}

// NNG test_pair1_ttl: with ttl-max 4, raw header 3 arrives as 4; header 4 (5 on the wire) is
// dropped. With ttl-max 15, header 14 arrives as 15 and header 15 is dropped.
#[test]
fn pair1_ttl_drops_after_max_hops() {
    for (max_ttl, passes, drops) in [(4u8, 3u8, 4u8), (15, 14, 15)] {
        let mut sim = Sim::new(SEED, Instant::now());
        let tx = sim.add_node("xpair1-a", xpair1(8), App::Manual);
        let rx = sim.add_node("xpair1-b", xpair1(max_ttl), App::Collect);
        let link = connected(&mut sim, tx, rx);

        for hops in [drops, passes] {
            let header = u32::from(hops).to_be_bytes();
            let msg = Message::with_header(header.to_vec(), format!("{hops}"));
            raw_send::<XPair1>(&mut sim, tx, msg).unwrap();
            sim.run_for(ms(5));
        }

        let got: Vec<(Bytes, Bytes)> = sim
            .inbox(rx)
            .iter()
            .map(|e| e.result.clone().unwrap())
            .map(|m| (m.header, m.body))
            .collect();
        let seen = u32::from(passes + 1).to_be_bytes().to_vec();
        assert_eq!(
            got,
            vec![(seen.into(), b(&passes.to_string()))],
            "ttl {max_ttl}"
        );
        assert!(sim.is_connected(link));
    }
}

// NNG test_pair1_recv_garbage for the raw socket: a hop word above 0xFF kicks the pipe.
#[test]
fn xpair1_kicks_garbage_hop_word() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw", RawPeer::new(ProtocolId::PAIR1), App::Manual);
    let x = sim.add_node("xpair1", xpair1(8), App::Collect);
    let link = connected(&mut sim, raw, x);

    let body = hop(0x1000, "garbage");
    sim.at(ms(0), Action::SendBlocking { node: raw, body });
    sim.run_until_idle(100);

    assert!(!sim.is_connected(link));
    assert!(sim.inbox(x).is_empty());
}

// Scenario 89 (`device_test.c` test_device_reflect): a raw PAIR1 reflector echoes `ping` and
// `pong` back to its client, one hop more on the wire each way.
#[test]
fn xpair1_reflector_echoes_to_its_client() {
    let mut sim = Sim::new(SEED, Instant::now());
    let client = sim.add_node("pair1", Pair1::new(Pair1Config::default()), App::Collect);
    let reflector = sim.add_node("reflector", Reflector::new(xpair1(8)), App::Manual);
    connected(&mut sim, client, reflector);

    sim.at(
        ms(0),
        Action::SendBlocking {
            node: client,
            body: b("ping"),
        },
    );
    sim.at(
        ms(10),
        Action::SendBlocking {
            node: client,
            body: b("pong"),
        },
    );
    sim.run_until_idle(200);

    assert_eq!(sim.received_bodies(client), vec![b("ping"), b("pong")]);
    // The echo went out with the client's hop count plus one.
    assert!(sim.transcript_contains(reflector, "tx "));
    assert!(sim.transcript_contains(reflector, "[00000002]"));
}

// ---- PAIR1 polyamorous (section 4.2; scenario 82) ----

fn poly() -> Pair1Poly {
    Pair1Poly::new(Pair1Config::default())
}

// Scenario 82 (`pair1_poly_test.c` test_poly_cooked): two clients, each answered on the pipe
// its message came from.
#[test]
fn pair1_poly_answers_each_client_on_its_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let server = sim.add_node("poly", poly(), App::Manual);
    let clients: Vec<NodeId> = ["c1", "c2"]
        .into_iter()
        .map(|name| {
            let c = sim.add_node(name, Pair1::new(Pair1Config::default()), App::Collect);
            connected(&mut sim, c, server);
            c
        })
        .collect();
    assert_eq!(sim.protocol::<Pair1Poly>(server).unwrap().pipes().len(), 2);

    sim.send(clients[0], "from c1").unwrap();
    sim.send(clients[1], "from c2").unwrap();
    sim.run_for(ms(5));
    for _ in 0..2 {
        let msg = sim.recv(server).unwrap();
        assert!(msg.pipe.is_some(), "poly receive records the pipe");
        let mut answer = b"re ".to_vec();
        answer.extend_from_slice(&msg.body);
        let reply = Message::new(answer).with_pipe(msg.pipe);
        assert_eq!(raw_send::<Pair1Poly>(&mut sim, server, reply), Ok(()));
    }
    sim.run_for(ms(5));

    assert_eq!(sim.received_bodies(clients[0]), vec![b("re from c1")]);
    assert_eq!(sim.received_bodies(clients[1]), vec![b("re from c2")]);
}

// `pair1_poly_test.c` test_poly_best_effort: a send to a vanished pipe, or to a pipe whose
// two-message queue is full, is dropped silently; nothing blocks.
#[test]
fn pair1_poly_best_effort() {
    let mut sim = Sim::new(SEED, Instant::now());
    let server = sim.add_node("poly", poly(), App::Manual);
    let c1 = sim.add_node("c1", Pair1::new(Pair1Config::default()), App::Manual);
    let link = connected(&mut sim, c1, server);
    let pipe = sim.protocol::<Pair1Poly>(server).unwrap().pipes()[0];

    // One message goes out at once, two wait in the pipe's queue, the rest are dropped.
    for n in 0..10 {
        let msg = Message::new(format!("m{n}")).with_pipe(pipe);
        assert_eq!(raw_send::<Pair1Poly>(&mut sim, server, msg), Ok(()));
    }
    assert_eq!(
        sim.protocol::<Pair1Poly>(server).unwrap().dropped_sends(),
        7
    );
    sim.run_for(ms(10));
    for n in 0..3 {
        assert_eq!(sim.recv(c1).unwrap().body, b(&format!("m{n}")));
    }
    assert_eq!(sim.recv(c1), Err(RecvError::WouldBlock));

    sim.disconnect(link);
    let msg = Message::new("late").with_pipe(pipe);
    assert_eq!(raw_send::<Pair1Poly>(&mut sim, server, msg), Ok(()));
    let unaddressed = Message::new("nobody");
    assert_eq!(raw_send::<Pair1Poly>(&mut sim, server, unaddressed), Ok(()));
    sim.run_for(ms(10));
    assert!(!sim.transcript_contains(server, "\"late\""));
}

// `pair1_poly_test.c` test_poly_default: with no pipe named, the first attached pipe gets it,
// with one hop on the wire.
#[test]
fn pair1_poly_default_goes_to_the_first_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let server = sim.add_node("poly", poly(), App::Manual);
    let c1 = sim.add_node("c1", Pair1::new(Pair1Config::default()), App::Collect);
    let c2 = sim.add_node("c2", Pair1::new(Pair1Config::default()), App::Collect);
    connected(&mut sim, c1, server);
    connected(&mut sim, c2, server);

    sim.send(server, "hello").unwrap();
    sim.run_for(ms(5));

    assert_eq!(sim.received_bodies(c1), vec![b("hello")]);
    assert!(sim.received_bodies(c2).is_empty());
    assert!(sim.transcript_contains(server, "[00000001] b\"hello\""));
}

// `pair1_poly_test.c` test_poly_recv_garbage: hop word 0x1000 kicks that pipe only.
#[test]
fn pair1_poly_recv_garbage_kicks_only_that_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let server = sim.add_node("poly", poly(), App::Collect);
    let raw = sim.add_node("raw", RawPeer::new(ProtocolId::PAIR1), App::Manual);
    let good = sim.add_node("c1", Pair1::new(Pair1Config::default()), App::Manual);
    let bad_link = connected(&mut sim, raw, server);
    let good_link = connected(&mut sim, good, server);

    sim.at(
        ms(0),
        Action::SendBlocking {
            node: raw,
            body: hop(0x1000, "junk"),
        },
    );
    sim.at(
        ms(1),
        Action::SendBlocking {
            node: good,
            body: b("fine"),
        },
    );
    sim.run_until_idle(100);

    assert!(!sim.is_connected(bad_link));
    assert!(sim.is_connected(good_link));
    assert_eq!(sim.received_bodies(server), vec![b("fine")]);
    assert_eq!(sim.protocol::<Pair1Poly>(server).unwrap().pipes().len(), 1);
}

// ---- Simulated devices ----

/// A REQ/REP broker: XREP facing the requesters, XREQ facing the servers.
fn broker() -> Device<XRep, XReq> {
    Device::new(
        XRep::new(XRepConfig::default()),
        XReq::new(XReqConfig::default()),
    )
}

/// Links `from` (the dialer) to `to` and connects them. A broker dials towards the servers
/// and accepts requesters, so a dialing device speaks its back protocol (REQ) on the link and
/// an accepting one its front protocol (REP).
fn connect_device(sim: &mut Sim, from: NodeId, to: NodeId) {
    let link = sim.add_link(from, to, LinkConfig::default());
    set_announce(sim, from, ProtocolId::REQ);
    set_announce(sim, to, ProtocolId::REP);
    sim.connect(link);
}

fn set_announce(sim: &mut Sim, node: NodeId, protocol: ProtocolId) {
    if sim.protocol::<Device<XRep, XReq>>(node).is_some() {
        sim.with_protocol::<Device<XRep, XReq>, _>(node, |d, _| d.announce = protocol);
    }
}

/// A device in one simulated node (SP-PROTOCOLS.md section 5.2): raw core `A` for the pipes
/// whose peer is `A`'s partner, raw core `B` for the others, and every message moved, header
/// included, from one to the other. Messages the other side cannot take yet wait in order.
struct Device<A, B> {
    /// What the node announces on the next link it connects.
    announce: ProtocolId,
    front: A,
    back: B,
    back_pipes: BTreeSet<PipeId>,
    to_back: VecDeque<Message>,
    to_front: VecDeque<Message>,
    events: VecDeque<Event>,
}

impl<A: Protocol, B: Protocol> Device<A, B> {
    fn new(front: A, back: B) -> Self {
        assert!(front.is_raw() && back.is_raw(), "devices take raw cores");
        Self {
            announce: front.protocol(),
            front,
            back,
            back_pipes: BTreeSet::new(),
            to_back: VecDeque::new(),
            to_front: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Ok(msg) = self.front.recv(now) {
                self.to_back.push_back(msg);
            }
            while let Ok(msg) = self.back.recv(now) {
                self.to_front.push_back(msg);
            }
            while let Some(msg) = self.to_back.pop_front() {
                if self.back.send(msg.clone(), now) == Err(SendError::WouldBlock) {
                    self.to_back.push_front(msg);
                    break;
                }
                moved = true;
            }
            while let Some(msg) = self.to_front.pop_front() {
                if self.front.send(msg.clone(), now) == Err(SendError::WouldBlock) {
                    self.to_front.push_front(msg);
                    break;
                }
                moved = true;
            }
            if !moved {
                break;
            }
        }
        let events = std::iter::from_fn(|| self.front.poll_event())
            .chain(std::iter::from_fn(|| self.back.poll_event()));
        let driver_events = events.filter(|e| !matches!(e, Event::Readable | Event::Writable));
        self.events.extend(driver_events.collect::<Vec<_>>());
    }
}

impl<A: Protocol, B: Protocol> Protocol for Device<A, B> {
    fn protocol(&self) -> ProtocolId {
        self.announce
    }

    fn handle(&mut self, input: Input, now: Instant) {
        let pipe = match &input {
            Input::PipeAdded { pipe, peer } => {
                if *peer == self.back.peer_protocol() {
                    self.back_pipes.insert(*pipe);
                }
                *pipe
            }
            Input::PipeRemoved { pipe }
            | Input::PipeWritable { pipe }
            | Input::Received { pipe, .. }
            | Input::Unsent { pipe, .. } => *pipe,
        };
        let removed = matches!(input, Input::PipeRemoved { .. });
        if self.back_pipes.contains(&pipe) {
            self.back.handle(input, now);
        } else {
            self.front.handle(input, now);
        }
        if removed {
            self.back_pipes.remove(&pipe);
        }
        self.pump(now);
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.front
            .poll_transmit()
            .or_else(|| self.back.poll_transmit())
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_receiving(&self, pipe: PipeId) -> bool {
        if self.back_pipes.contains(&pipe) {
            self.back.is_receiving(pipe)
        } else {
            self.front.is_receiving(pipe)
        }
    }

    fn send(&mut self, _msg: Message, _now: Instant) -> Result<(), SendError> {
        Err(SendError::NotSupported)
    }

    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        Err(RecvError::NotSupported)
    }
}

/// A reflector in one simulated node (section 5.2 item 3): one raw core that peers with
/// itself and sends back everything it receives, in order.
struct Reflector<P> {
    core: P,
    pending: VecDeque<Message>,
    events: VecDeque<Event>,
}

impl<P: Protocol> Reflector<P> {
    fn new(core: P) -> Self {
        assert!(core.is_raw() && core.peer_protocol() == core.protocol());
        Self {
            core,
            pending: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    fn pump(&mut self, now: Instant) {
        while let Ok(msg) = self.core.recv(now) {
            self.pending.push_back(msg);
        }
        while let Some(msg) = self.pending.pop_front() {
            if self.core.send(msg.clone(), now) == Err(SendError::WouldBlock) {
                self.pending.push_front(msg);
                break;
            }
        }
        let events = std::iter::from_fn(|| self.core.poll_event());
        let driver_events = events.filter(|e| !matches!(e, Event::Readable | Event::Writable));
        self.events.extend(driver_events.collect::<Vec<_>>());
    }
}

impl<P: Protocol> Protocol for Reflector<P> {
    fn protocol(&self) -> ProtocolId {
        self.core.protocol()
    }

    fn handle(&mut self, input: Input, now: Instant) {
        self.core.handle(input, now);
        self.pump(now);
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_transmit(&mut self) -> Option<Transmit> {
        self.core.poll_transmit()
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_receiving(&self, pipe: PipeId) -> bool {
        self.core.is_receiving(pipe)
    }

    fn send(&mut self, _msg: Message, _now: Instant) -> Result<(), SendError> {
        Err(SendError::NotSupported)
    }

    fn recv(&mut self, _now: Instant) -> Result<Message, RecvError> {
        Err(RecvError::NotSupported)
    }
}

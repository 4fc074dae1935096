//! SURVEYOR/RESPONDENT scenarios from SP-PROTOCOLS.md section 8.4, the raw roles of section 5.1
//! and a survey relay device (section 5.2), run in the deterministic simulator.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sp_core::protocol::survey::{
    Respondent, RespondentConfig, Surveyor, SurveyorConfig, XRespondent, XRespondentConfig,
    XSurveyor, XSurveyorConfig,
};
use sp_core::protocol::{Event, Input, Protocol, RecvError, SendError, Transmit};
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, RawPeer, Sim};
use sp_core::{Message, PipeId, ProtocolId};

const SEED: u64 = 0x5eed_0003;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn surveyor(survey_time: Duration) -> Surveyor {
    Surveyor::new(SurveyorConfig {
        survey_time,
        seed: SEED,
        ..SurveyorConfig::default()
    })
}

fn respondent() -> Respondent {
    Respondent::new(RespondentConfig::default())
}

/// One SURVEYOR (collecting responses) linked to one RESPONDENT running `resp_app`, connected.
fn pair(survey_time: Duration, resp_app: App) -> (Sim, NodeId, NodeId, LinkId) {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(survey_time), App::Collect);
    let resp = sim.add_node("respondent", respondent(), resp_app);
    let link = sim.add_link(surv, resp, LinkConfig::default());
    sim.connect(link);
    (sim, surv, resp, link)
}

/// A backtrace of `words` words (the last one a survey ID) followed by a body naming the count.
fn stack(words: usize) -> Bytes {
    let mut out: Vec<u8> = (1..words as u32).flat_map(u32::to_be_bytes).collect();
    out.extend_from_slice(&0x8000_0001u32.to_be_bytes());
    out.extend_from_slice(format!("{words}-words").as_bytes());
    Bytes::from(out)
}

fn errors(sim: &Sim, node: NodeId) -> Vec<RecvError> {
    let inbox = sim.inbox(node);
    inbox
        .iter()
        .filter_map(|e| e.result.clone().err())
        .collect()
}

// Scenario 58.
#[test]
fn surveyor_broadcast_reaches_three_respondents() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(1000)), App::Collect);
    let resps: Vec<NodeId> = (0..3)
        .map(|i| {
            let app = App::prefix_responder("re:");
            sim.add_node(&format!("resp{i}"), respondent(), app)
        })
        .collect();
    for (i, &resp) in resps.iter().enumerate() {
        let config = LinkConfig {
            latency: ms(1 + 3 * i as u64),
            ..LinkConfig::default()
        };
        let link = sim.add_link(surv, resp, config);
        sim.connect(link);
    }

    sim.send(surv, "ping").unwrap();
    sim.run_until_idle(1000);

    for &resp in &resps {
        assert_eq!(sim.received_bodies(resp), vec![Bytes::from("ping")]);
    }
    let inbox = sim.inbox(surv);
    assert_eq!(sim.received_bodies(surv), vec![Bytes::from("re:ping"); 3]);
    assert!(inbox[..3].iter().all(|e| e.at < ms(1000)));
    assert_eq!(inbox[3].result, Err(RecvError::SurveyExpired));
    assert_eq!(inbox[3].at, ms(1000));
}

// Scenario 59.
#[test]
fn surveyor_recv_times_out_at_expiry_and_late_response_drops() {
    let (mut sim, surv, resp, link) = pair(ms(50), App::Manual);

    sim.send(surv, "hello").unwrap();
    sim.run_until(ms(60));
    assert_eq!(sim.recv(resp).unwrap().body, "hello");
    assert_eq!(sim.inbox(surv).len(), 1);
    assert_eq!(sim.inbox(surv)[0].result, Err(RecvError::SurveyExpired));
    assert_eq!(sim.inbox(surv)[0].at, ms(50));

    sim.send(resp, "late").unwrap();
    sim.run_until_idle(100);

    assert!(
        sim.transcript_contains(surv, "Received"),
        "the response did arrive"
    );
    assert_eq!(sim.inbox(surv).len(), 1, "and was discarded");
    assert_eq!(sim.recv(surv), Err(RecvError::BadState));
    assert!(sim.is_connected(link));
}

// Scenario 60.
#[test]
fn surveyor_new_survey_cancels_the_old_one() {
    let (mut sim, surv, resp, _) = pair(ms(1000), App::Manual);
    for (t, body) in [(0, "abc"), (100, "def")] {
        let body = body.into();
        sim.at(ms(t), Action::Send { node: surv, body });
    }

    sim.run_until(ms(50));
    assert_eq!(sim.recv(resp).unwrap().body, "abc");
    sim.run_until(ms(150));
    sim.send(resp, "abc-answer").unwrap();
    assert_eq!(sim.recv(resp).unwrap().body, "def");
    // The pipe is busy with the first answer until it is delivered.
    assert_eq!(sim.send(resp, "def-answer"), Err(SendError::WouldBlock));
    sim.run_for(ms(5));
    sim.send(resp, "def-answer").unwrap();
    sim.run_until(ms(500));

    assert_eq!(sim.received_bodies(surv), vec![Bytes::from("def-answer")]);
    assert!(
        sim.transcript_contains(surv, "abc-answer"),
        "the stale answer did arrive"
    );
}

// Scenario 60 (TestSurveyorCancelDiscard): unread responses to the old survey are discarded.
#[test]
fn surveyor_new_survey_discards_queued_responses() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(1000)), App::Manual);
    let resp = sim.add_node("respondent", respondent(), App::prefix_responder("re:"));
    let link = sim.add_link(surv, resp, LinkConfig::default());
    sim.connect(link);

    sim.send(surv, "abc").unwrap();
    sim.run_until(ms(10));
    sim.send(surv, "def").unwrap();
    sim.run_until(ms(20));

    assert_eq!(sim.recv(surv).unwrap().body, "re:def");
    assert_eq!(sim.recv(surv), Err(RecvError::WouldBlock));
}

// Scenario 61.
#[test]
fn surveyor_recv_without_survey_is_bad_state() {
    let (mut sim, surv, _, _) = pair(ms(1000), App::Manual);

    assert_eq!(sim.recv(surv), Err(RecvError::BadState));
}

// Scenario 62.
#[test]
fn surveyor_send_never_blocks_with_200_surveys_to_a_non_reading_respondent() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(1000)), App::Manual);
    let resp = sim.add_node("respondent", respondent(), App::Manual);
    let link = sim.add_link(surv, resp, LinkConfig::default());
    // A surveyor with no peer at all also succeeds.
    assert_eq!(sim.send(surv, "alone"), Ok(()));
    sim.connect(link);

    for i in 0..200 {
        assert_eq!(sim.send(surv, format!("s{i}")), Ok(()), "survey {i}");
    }
    sim.run_until(ms(100));

    // One survey went out at once and 8 waited in the pipe's queue; the rest missed the pipe.
    let dropped = sim.protocol::<Surveyor>(surv).unwrap().dropped_surveys();
    assert_eq!(dropped, 200 - 1 - 8);
    let mut got = Vec::new();
    while let Ok(msg) = sim.recv(resp) {
        got.push(msg.body);
    }
    let expected: Vec<Bytes> = (0..9).map(|i| Bytes::from(format!("s{i}"))).collect();
    assert_eq!(got, expected);
}

// Scenario 63 (NNG behaviour: the pipe is kicked).
#[test]
fn surveyor_kicks_pipe_on_garbage_response() {
    let garbage = App::Responder(Box::new(|_: &Message| {
        Some(Bytes::from_static(b"\x01\x02"))
    }));
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(100)), App::Collect);
    let raw = sim.add_node("raw-resp", RawPeer::new(ProtocolId::RESPONDENT), garbage);
    let link = sim.add_link(surv, raw, LinkConfig::default());
    sim.connect(link);

    sim.send(surv, "ping").unwrap();
    sim.run_until_idle(100);

    assert!(sim.transcript_contains(surv, "MalformedHeader"));
    assert!(!sim.is_connected(link));
    assert!(sim.received_bodies(surv).is_empty());
    assert_eq!(errors(&sim, surv), vec![RecvError::SurveyExpired]);
}

#[test]
fn surveyor_drops_response_with_unknown_id_and_keeps_pipe() {
    let stale = App::Responder(Box::new(|m: &Message| {
        let mut answer = m.body.to_vec();
        answer[3] ^= 1; // a different survey ID
        Some(answer.into())
    }));
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(100)), App::Collect);
    let raw = sim.add_node("raw-resp", RawPeer::new(ProtocolId::RESPONDENT), stale);
    let link = sim.add_link(surv, raw, LinkConfig::default());
    sim.connect(link);

    sim.send(surv, "ping").unwrap();
    sim.run_until(ms(50));

    assert!(sim.inbox(surv).is_empty());
    assert!(sim.is_connected(link));
    assert_eq!(sim.recv(surv), Err(RecvError::WouldBlock));
}

#[test]
fn surveyor_refuses_incompatible_peer() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(100)), App::Manual);
    let rep = sim.add_node("rep", RawPeer::new(ProtocolId::REP), App::Manual);
    let link = sim.add_link(surv, rep, LinkConfig::default());

    sim.connect(link);

    assert!(sim.transcript_contains(surv, "IncompatiblePeer"));
    assert!(!sim.is_connected(link));
}

// Scenario 64 (TTL, as scenario 54).
#[test]
fn respondent_drops_surveys_over_ttl_and_keeps_pipe() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-surv", RawPeer::new(ProtocolId::SURVEYOR), App::Manual);
    let resp = sim.add_node("respondent", respondent(), App::Collect);
    let link = sim.add_link(raw, resp, LinkConfig::default());
    sim.connect(link);

    for words in [9, 8] {
        let body = stack(words);
        sim.at(ms(0), Action::SendBlocking { node: raw, body });
    }
    sim.run_until_idle(100);

    assert_eq!(sim.received_bodies(resp), vec![Bytes::from("8-words")]);
    assert!(sim.is_connected(link));
}

// Scenario 64 (garbage, as scenario 51; NNG behaviour: the pipe is kicked).
#[test]
fn respondent_kicks_pipe_on_survey_without_bottom_word() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-surv", RawPeer::new(ProtocolId::SURVEYOR), App::Manual);
    let resp = sim.add_node("respondent", respondent(), App::Collect);
    let link = sim.add_link(raw, resp, LinkConfig::default());
    sim.connect(link);

    sim.send(raw, Bytes::from_static(b"\x00\x00\x00\x01abc"))
        .unwrap();
    sim.run_until_idle(100);

    assert!(sim.inbox(resp).is_empty());
    assert!(sim.transcript_contains(resp, "MalformedHeader"));
    assert!(!sim.is_connected(link));
}

// Scenario 65.
#[test]
fn respondent_send_before_recv_is_bad_state() {
    let (mut sim, surv, resp, _) = pair(ms(1000), App::Manual);
    assert_eq!(sim.send(resp, "early"), Err(SendError::BadState));

    sim.send(surv, "q").unwrap();
    sim.run_for(ms(5));
    assert_eq!(sim.recv(resp).unwrap().body, "q");
    assert_eq!(sim.send(resp, "a1"), Ok(()));
    assert_eq!(sim.send(resp, "a2"), Err(SendError::BadState));
    sim.run_for(ms(5));

    assert_eq!(sim.received_bodies(surv), vec![Bytes::from("a1")]);
}

#[test]
fn respondent_response_after_surveyor_left_reports_success() {
    let (mut sim, surv, resp, link) = pair(ms(1000), App::Manual);
    sim.send(surv, "q").unwrap();
    sim.run_for(ms(5));
    assert_eq!(sim.recv(resp).unwrap().body, "q");
    sim.disconnect(link);

    assert_eq!(sim.send(resp, "late"), Ok(()));
    assert_eq!(sim.send(resp, "again"), Err(SendError::BadState));
    assert!(!sim.transcript_contains(resp, "tx "));
}

#[test]
fn xrespondent_pushes_pipe_word_and_routes_the_response_by_it() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(1000)), App::Collect);
    let config = XRespondentConfig::default();
    let x = sim.add_node("xresp", XRespondent::new(config), App::Manual);
    let link = sim.add_link(surv, x, LinkConfig::default());
    sim.connect(link);

    sim.send(surv, "q").unwrap();
    sim.run_for(ms(5));
    let survey = sim.recv(x).unwrap();
    let id = sim.protocol::<Surveyor>(surv).unwrap().survey_id().unwrap();
    let pipe = u32::from_be_bytes(survey.header[..4].try_into().unwrap());
    assert!(PipeId::new(pipe).is_some());
    assert_eq!(survey.header[4..], id.to_bytes());
    assert_eq!(survey.body, "q");

    // A wrong pipe word goes nowhere; the right one reaches the surveyor, pipe word removed.
    let mut wrong = survey.header.to_vec();
    wrong[3] ^= 1;
    for header in [Bytes::from(wrong), survey.header.clone()] {
        let msg = Message::with_header(header, "answer");
        let sent = sim.with_protocol::<XRespondent, _>(x, |x, now| x.send(msg, now));
        assert_eq!(sent, Ok(()));
    }
    sim.run_for(ms(5));

    assert_eq!(sim.received_bodies(surv), vec![Bytes::from("answer")]);
}

// As scenario 54, for XRESPONDENT (test_xresp_ttl_drop): ttl 3 passes 2- and 3-word stacks.
#[test]
fn xrespondent_drops_surveys_over_ttl() {
    let mut sim = Sim::new(SEED, Instant::now());
    let raw = sim.add_node("raw-surv", RawPeer::new(ProtocolId::SURVEYOR), App::Manual);
    let config = XRespondentConfig {
        max_ttl: 3,
        ..XRespondentConfig::default()
    };
    let x = sim.add_node("xresp", XRespondent::new(config), App::Collect);
    let link = sim.add_link(raw, x, LinkConfig::default());
    sim.connect(link);

    for words in [2, 4, 3, 4] {
        let body = stack(words);
        sim.at(ms(0), Action::SendBlocking { node: raw, body });
    }
    sim.run_until_idle(100);

    let got: Vec<(usize, Bytes)> = sim
        .inbox(x)
        .iter()
        .map(|e| {
            let msg = e.result.as_ref().unwrap();
            (msg.header.len(), msg.body.clone())
        })
        .collect();
    let expected = vec![(12, Bytes::from("2-words")), (16, Bytes::from("3-words"))];
    assert_eq!(got, expected);
    assert!(sim.is_connected(link));
}

#[test]
fn xsurveyor_broadcasts_header_as_given_and_keeps_response_stack() {
    let mut sim = Sim::new(SEED, Instant::now());
    let x = sim.add_node(
        "xsurv",
        XSurveyor::new(XSurveyorConfig::default()),
        App::Manual,
    );
    for i in 0..2 {
        let resp = sim.add_node(
            &format!("resp{i}"),
            respondent(),
            App::prefix_responder("re:"),
        );
        let link = sim.add_link(x, resp, LinkConfig::default());
        sim.connect(link);
    }
    let header = Bytes::from_static(b"\x00\x00\x00\x07\x80\x00\x00\x05");

    let msg = Message::with_header(header.clone(), "q");
    let sent = sim.with_protocol::<XSurveyor, _>(x, |x, now| x.send(msg, now));
    assert_eq!(sent, Ok(()));
    sim.run_for(ms(5));

    for _ in 0..2 {
        let got = sim.recv(x).unwrap();
        assert_eq!(
            (got.header, got.body),
            (header.clone(), Bytes::from("re:q"))
        );
    }
    assert_eq!(sim.recv(x), Err(RecvError::WouldBlock));
}

// Section 5.2 "survey relay" (nanomsg tests/device6.c): XRESPONDENT front, XSURVEYOR back.
#[test]
fn survey_relays_through_a_device() {
    let mut sim = Sim::new(SEED, Instant::now());
    let surv = sim.add_node("surveyor", surveyor(ms(100)), App::Collect);
    let dev = sim.add_node("device", Device::new(), App::Manual);
    let front = sim.add_link(surv, dev, LinkConfig::default());
    connect_devices(&mut sim, front, &[(dev, ProtocolId::RESPONDENT)]);
    for i in 0..2 {
        let resp = sim.add_node(
            &format!("resp{i}"),
            respondent(),
            App::prefix_responder("re:"),
        );
        let back = sim.add_link(dev, resp, LinkConfig::default());
        connect_devices(&mut sim, back, &[(dev, ProtocolId::SURVEYOR)]);
    }

    sim.send(surv, "who").unwrap();
    sim.run_until_idle(1000);

    assert_eq!(sim.received_bodies(surv), vec![Bytes::from("re:who"); 2]);
}

// Section 5.3: every XRESPONDENT hop adds a word, and the final respondent's TTL counts them.
#[test]
fn survey_through_two_devices_needs_ttl_three() {
    for (max_ttl, answered) in [(2, false), (3, true)] {
        let mut sim = Sim::new(SEED, Instant::now());
        let surv = sim.add_node("surveyor", surveyor(ms(100)), App::Collect);
        let dev1 = sim.add_node("dev1", Device::new(), App::Manual);
        let dev2 = sim.add_node("dev2", Device::new(), App::Manual);
        let config = RespondentConfig {
            max_ttl,
            ..RespondentConfig::default()
        };
        let resp = sim.add_node(
            "respondent",
            Respondent::new(config),
            App::prefix_responder("re:"),
        );
        let l1 = sim.add_link(surv, dev1, LinkConfig::default());
        connect_devices(&mut sim, l1, &[(dev1, ProtocolId::RESPONDENT)]);
        let l2 = sim.add_link(dev1, dev2, LinkConfig::default());
        let announce = [(dev1, ProtocolId::SURVEYOR), (dev2, ProtocolId::RESPONDENT)];
        connect_devices(&mut sim, l2, &announce);
        let l3 = sim.add_link(dev2, resp, LinkConfig::default());
        connect_devices(&mut sim, l3, &[(dev2, ProtocolId::SURVEYOR)]);

        sim.send(surv, "deep").unwrap();
        sim.run_until_idle(1000);

        let expected = if answered {
            vec![Bytes::from("re:deep")]
        } else {
            vec![]
        };
        assert_eq!(sim.received_bodies(surv), expected, "max_ttl {max_ttl}");
        assert_eq!(sim.received_bodies(resp).len(), usize::from(answered));
    }
}

/// Makes each device announce its protocol on `link`, then connects it.
fn connect_devices(sim: &mut Sim, link: LinkId, announce: &[(NodeId, ProtocolId)]) {
    for &(dev, protocol) in announce {
        sim.with_protocol::<Device, _>(dev, |d, _| d.announce = protocol);
    }
    sim.connect(link);
}

/// A survey relay device in one simulated node (SP-PROTOCOLS.md section 5.2): an
/// [`XRespondent`] for pipes whose peer is a surveyor, an [`XSurveyor`] for pipes whose peer is
/// a respondent, and every message moved, header included, from one to the other.
struct Device {
    /// What the node announces on the next link it connects: RESPONDENT towards surveyors,
    /// SURVEYOR towards respondents.
    announce: ProtocolId,
    front: XRespondent,
    back: XSurveyor,
    back_pipes: BTreeSet<PipeId>,
    events: VecDeque<Event>,
}

impl Device {
    fn new() -> Self {
        Self {
            announce: ProtocolId::RESPONDENT,
            front: XRespondent::new(XRespondentConfig::default()),
            back: XSurveyor::new(XSurveyorConfig::default()),
            back_pipes: BTreeSet::new(),
            events: VecDeque::new(),
        }
    }

    /// Forwards everything both sides have received, then collects the events the driver
    /// must see (the device itself reacts to Readable and never blocks on Writable).
    fn pump(&mut self, now: Instant) {
        loop {
            let mut moved = false;
            while let Ok(msg) = self.front.recv(now) {
                self.back.send(msg, now).unwrap();
                moved = true;
            }
            while let Ok(msg) = self.back.recv(now) {
                self.front.send(msg, now).unwrap();
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

impl Protocol for Device {
    fn protocol(&self) -> ProtocolId {
        self.announce
    }

    fn handle(&mut self, input: Input, now: Instant) {
        let pipe = match &input {
            Input::PipeAdded { pipe, peer } => {
                if *peer == ProtocolId::RESPONDENT {
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

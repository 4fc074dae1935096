//! Property tests: REQ/REP under pipe churn, transcript replay, and backtrace parsing.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sp_core::backtrace::{
    pop_pipe_word, push_pipe_word, split_backtrace, BacktraceError, RequestId,
};
use sp_core::protocol::reqrep::{Rep, RepConfig, Req, ReqConfig};
use sp_core::protocol::RecvError;
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, Sim, TranscriptEntry};
use sp_core::PipeId;

/// Parameters of one link between a REQ and a REP.
#[derive(Clone, Debug)]
struct LinkParams {
    latency_ms: u64,
    jitter_ms: u64,
    loss_percent: u8,
    capacity: usize,
}

/// A REQ/REP topology (every REQ linked to every REP) with scripted churn and requests.
#[derive(Clone, Debug)]
struct Scenario {
    seed: u64,
    reqs: usize,
    reps: usize,
    resend_ms: u64,
    links: Vec<LinkParams>,
    /// `(time ms, link index, connect?)`.
    churn: Vec<(u64, usize, bool)>,
    /// `(time ms, REQ index)`.
    requests: Vec<(u64, usize)>,
}

/// Churn and requests happen before this; then every link reconnects and each REQ sends a
/// final request that must be answered.
const CHURN_END_MS: u64 = 2_000;
const SETTLE: Duration = Duration::from_secs(40);

fn link_params() -> impl Strategy<Value = LinkParams> {
    (0u64..20, 0u64..10, 0u8..=20, 1usize..=3).prop_map(
        |(latency_ms, jitter_ms, loss_percent, capacity)| LinkParams {
            latency_ms,
            jitter_ms,
            loss_percent,
            capacity,
        },
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (any::<u64>(), 1usize..=2, 1usize..=3, 20u64..400).prop_flat_map(
        |(seed, reqs, reps, resend_ms)| {
            let n_links = reqs * reps;
            (
                proptest::collection::vec(link_params(), n_links),
                proptest::collection::vec((0..CHURN_END_MS, 0..n_links, any::<bool>()), 0..60),
                proptest::collection::vec((0..CHURN_END_MS, 0..reqs), 1..30),
            )
                .prop_map(move |(links, churn, requests)| Scenario {
                    seed,
                    reqs,
                    reps,
                    resend_ms,
                    links,
                    churn,
                    requests,
                })
        },
    )
}

fn reply_body(request: &[u8]) -> Bytes {
    let mut out = b"re:".to_vec();
    out.extend_from_slice(request);
    out.into()
}

/// Builds and runs the scenario; returns the finished simulation and the REQ nodes.
fn run(s: &Scenario, start: Instant) -> (Sim, Vec<NodeId>) {
    let mut sim = Sim::new(s.seed, start);
    let reqs: Vec<NodeId> = (0..s.reqs)
        .map(|i| {
            let config = ReqConfig {
                resend_interval: Some(Duration::from_millis(s.resend_ms)),
                resend_tick: None,
                seed: s.seed.wrapping_add(i as u64),
            };
            sim.add_node(&format!("req{i}"), Req::new(config), App::Collect)
        })
        .collect();
    let reps: Vec<NodeId> = (0..s.reps)
        .map(|i| {
            let respond =
                App::Responder(Box::new(|m: &sp_core::Message| Some(reply_body(&m.body))));
            sim.add_node(&format!("rep{i}"), Rep::new(RepConfig::default()), respond)
        })
        .collect();
    let mut links: Vec<LinkId> = Vec::new();
    for (r, &req) in reqs.iter().enumerate() {
        for (p, &rep) in reps.iter().enumerate() {
            let params = &s.links[r * s.reps + p];
            let config = LinkConfig {
                latency: Duration::from_millis(params.latency_ms),
                jitter: Duration::from_millis(params.jitter_ms),
                loss: f64::from(params.loss_percent) / 100.0,
                capacity: params.capacity,
                redial: None,
            };
            let link = sim.add_link(req, rep, config);
            sim.connect(link);
            links.push(link);
        }
    }
    for &(t, link, up) in &s.churn {
        let action = if up {
            Action::Connect(links[link])
        } else {
            Action::Disconnect(links[link])
        };
        sim.at(Duration::from_millis(t), action);
    }
    for (n, &(t, r)) in s.requests.iter().enumerate() {
        let body = Bytes::from(format!("req{r}-{n}"));
        sim.at(
            Duration::from_millis(t),
            Action::Send {
                node: reqs[r],
                body,
            },
        );
    }
    let end = Duration::from_millis(CHURN_END_MS);
    for &link in &links {
        sim.at(end, Action::Connect(link));
    }
    for (r, &req) in reqs.iter().enumerate() {
        let body = Bytes::from(format!("req{r}-final"));
        sim.at(
            end + Duration::from_millis(1),
            Action::SendBlocking { node: req, body },
        );
    }
    sim.run_until(end + SETTLE);
    (sim, reqs)
}

fn transcript_of(s: &Scenario, start: Instant) -> Vec<TranscriptEntry> {
    run(s, start).0.transcript().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every reply reaches the application exactly once, only while its request is the
    /// current one, and the final request (sent once the network is stable) is answered.
    #[test]
    fn req_rep_replies_exactly_once_under_churn(s in scenario()) {
        let (sim, reqs) = run(&s, Instant::now());
        for (r, &req) in reqs.iter().enumerate() {
            let inbox = sim.inbox(req);
            let mut answered: Vec<&Bytes> = Vec::new();
            for entry in inbox {
                let current = entry.current_request.as_ref();
                let body = match &entry.result {
                    Ok(msg) => &msg.body,
                    Err(e) => sim.fail(&format!("req{r} got {e:?}")),
                };
                let current = current.unwrap_or_else(|| sim.fail("a reply before any request"));
                sim.check(*body == reply_body(current), || {
                    format!("req{r} got {body:?} while {current:?} was current")
                });
                sim.check(!answered.contains(&current), || format!("req{r}: {current:?} answered twice"));
                answered.push(current);
            }
            let last = inbox.last().and_then(|e| e.current_request.clone());
            let final_body = Bytes::from(format!("req{r}-final"));
            sim.check(last.as_ref() == Some(&final_body), || format!("req{r}: final request unanswered"));
            sim.check(inbox.iter().all(|e| e.result != Err(RecvError::ConnectionReset)), || {
                "connection reset with resending on".to_owned()
            });
        }
    }

    /// The same seed and script give a byte-identical transcript.
    #[test]
    fn same_seed_gives_same_transcript(s in scenario()) {
        let start = Instant::now();
        let a = transcript_of(&s, start);
        let b = transcript_of(&s, start);
        prop_assert!(a == b, "seed {}: transcripts differ", s.seed);
    }

    /// Splitting arbitrary bytes never panics, and a success is an exact, well-formed prefix.
    #[test]
    fn split_backtrace_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128), ttl in any::<u8>()) {
        let original = Bytes::from(bytes);
        let mut body = original.clone();
        match split_backtrace(&mut body, ttl) {
            Ok(header) => {
                prop_assert!(!header.is_empty() && header.len() % 4 == 0);
                prop_assert!(header.len() / 4 <= usize::from(ttl));
                let words: Vec<u32> =
                    header.chunks(4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]])).collect();
                let (bottom, hops) = words.split_last().unwrap();
                prop_assert!(bottom & 0x8000_0000 != 0);
                prop_assert!(hops.iter().all(|w| w & 0x8000_0000 == 0));
                let mut joined = header.to_vec();
                joined.extend_from_slice(&body);
                prop_assert_eq!(Bytes::from(joined), original);
            }
            Err(BacktraceError::TooManyHops { hops, max_ttl }) => {
                prop_assert_eq!(max_ttl, ttl);
                prop_assert_eq!(hops, usize::from(ttl) + 1);
                prop_assert_eq!(body, original);
            }
            Err(e) => {
                prop_assert_eq!(e, BacktraceError::NoBottom);
                prop_assert_eq!(body, original);
            }
        }
    }

    /// Pushing hops onto a request ID and popping them returns the original stack, and the
    /// pushed stack parses back as one backtrace.
    #[test]
    fn pushing_and_popping_hops_round_trips(
        hops in proptest::collection::vec(1u32..=PipeId::MAX, 0..10),
        id in 0x8000_0000u32..=u32::MAX,
        payload in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let id = RequestId::new(id).unwrap();
        let mut header = Bytes::copy_from_slice(&id.to_bytes());
        for &hop in &hops {
            push_pipe_word(&mut header, PipeId::new(hop).unwrap());
        }
        let mut wire = header.to_vec();
        wire.extend_from_slice(&payload);
        let mut body = Bytes::from(wire);
        let parsed = split_backtrace(&mut body, 255).unwrap();
        prop_assert_eq!(&parsed, &header);
        prop_assert_eq!(&body[..], &payload[..]);

        let mut popped = Vec::new();
        while let Some(word) = pop_pipe_word(&mut header) {
            popped.push(word);
        }
        let mut expected: Vec<u32> = hops.iter().rev().copied().collect();
        expected.push(id.get());
        prop_assert_eq!(popped, expected);
    }
}

//! Property tests: SURVEYOR never delivers a response after its survey's deadline, nor one that
//! answers another survey, whatever the latencies, jitter, pipe churn and receive timing.
#![allow(clippy::disallowed_methods)] // tests choose an arbitrary base instant

use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sp_core::protocol::survey::{Respondent, RespondentConfig, Surveyor, SurveyorConfig};
use sp_core::protocol::RecvError;
use sp_core::sim::{Action, App, LinkConfig, LinkId, NodeId, Sim, TranscriptEntry};

/// Parameters of one link between the surveyor and a respondent.
#[derive(Clone, Debug)]
struct LinkParams {
    latency_ms: u64,
    jitter_ms: u64,
    capacity: usize,
}

/// One surveyor linked to every respondent, with scripted surveys, receives and churn.
#[derive(Clone, Debug)]
struct Scenario {
    seed: u64,
    respondents: usize,
    survey_time_ms: u64,
    links: Vec<LinkParams>,
    /// Times (ms) at which a new survey starts.
    surveys: Vec<u64>,
    /// `None`: the application receives as soon as it is woken. `Some(times)`: it receives
    /// only at these times (ms), so responses wait in the queue and may outlive the survey.
    recvs: Option<Vec<u64>>,
    /// With `recvs`, also receive at the very instant each survey's deadline falls.
    recv_at_deadlines: bool,
    /// `(time ms, link index, connect?)`.
    churn: Vec<(u64, usize, bool)>,
}

/// Surveys, receives and churn happen before this; then every link reconnects.
const SCRIPT_END_MS: u64 = 1_000;
/// Scripted times, latencies and survey times are multiples of this, so that deliveries,
/// receives and deadlines often fall on the same instant: the boundary cases.
const GRID_MS: u64 = 5;
/// When the network has settled, a final survey with a long survey time must collect an answer
/// from every respondent.
const FINAL_AT: Duration = Duration::from_millis(4_000);
const FINAL_SURVEY_TIME: Duration = Duration::from_secs(1);
const FINAL_BODY: &str = "final";
/// Respondents answer a survey with this prefix followed by the survey's body.
const ANSWER_PREFIX: &str = "re:";

/// A time in `0..end` ms on the grid.
fn grid_ms(end: u64) -> impl Strategy<Value = u64> {
    (0..end / GRID_MS).prop_map(|n| n * GRID_MS)
}

fn link_params() -> impl Strategy<Value = LinkParams> {
    // Jitter moves deliveries off the grid, so half the links have none.
    let jitter_ms = prop_oneof![Just(0u64), 0u64..40];
    (grid_ms(80), jitter_ms, 1usize..=3).prop_map(|(latency_ms, jitter_ms, capacity)| LinkParams {
        latency_ms,
        jitter_ms,
        capacity,
    })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (any::<u64>(), 1usize..=3, grid_ms(150)).prop_flat_map(|(seed, respondents, survey_time_ms)| {
        (
            proptest::collection::vec(link_params(), respondents),
            proptest::collection::vec(grid_ms(SCRIPT_END_MS), 1..12),
            proptest::option::of(proptest::collection::vec(grid_ms(SCRIPT_END_MS), 0..40)),
            proptest::collection::vec(
                (grid_ms(SCRIPT_END_MS), 0..respondents, any::<bool>()),
                0..10,
            ),
            any::<bool>(),
        )
            .prop_map(
                move |(links, surveys, recvs, churn, recv_at_deadlines)| Scenario {
                    seed,
                    respondents,
                    survey_time_ms,
                    links,
                    surveys,
                    recvs,
                    recv_at_deadlines,
                    churn,
                },
            )
    })
}

/// Builds and runs the scenario; returns the finished simulation and the surveyor.
fn run(s: &Scenario, start: Instant) -> (Sim, NodeId) {
    let mut sim = Sim::new(s.seed, start);
    let config = SurveyorConfig {
        survey_time: Duration::from_millis(s.survey_time_ms),
        seed: s.seed,
        ..SurveyorConfig::default()
    };
    let app = if s.recvs.is_some() {
        App::Manual
    } else {
        App::Collect
    };
    let surv = sim.add_node("surveyor", Surveyor::new(config), app);
    let mut links: Vec<LinkId> = Vec::new();
    for (i, params) in s.links.iter().enumerate() {
        let resp = sim.add_node(
            &format!("resp{i}"),
            Respondent::new(RespondentConfig::default()),
            App::prefix_responder(ANSWER_PREFIX),
        );
        let config = LinkConfig {
            latency: Duration::from_millis(params.latency_ms),
            jitter: Duration::from_millis(params.jitter_ms),
            capacity: params.capacity,
            ..LinkConfig::default()
        };
        let link = sim.add_link(surv, resp, config);
        sim.connect(link);
        links.push(link);
    }
    for &(t, link, up) in &s.churn {
        let action = if up {
            Action::Connect(links[link])
        } else {
            Action::Disconnect(links[link])
        };
        sim.at(Duration::from_millis(t), action);
    }
    for (n, &t) in s.surveys.iter().enumerate() {
        let body = Bytes::from(format!("s{n}"));
        sim.at(Duration::from_millis(t), Action::Send { node: surv, body });
    }
    let deadlines = s.surveys.iter().map(|&t| t + s.survey_time_ms);
    let probes = deadlines.filter(|_| s.recv_at_deadlines && s.recvs.is_some());
    for t in s.recvs.iter().flatten().copied().chain(probes) {
        sim.at(Duration::from_millis(t), Action::Recv { node: surv });
    }
    for &link in &links {
        sim.at(Duration::from_millis(SCRIPT_END_MS), Action::Connect(link));
    }

    sim.run_until(FINAL_AT);
    sim.with_protocol::<Surveyor, _>(surv, |s, _| s.set_survey_time(FINAL_SURVEY_TIME));
    sim.send(surv, FINAL_BODY).unwrap();
    sim.run_until(FINAL_AT + FINAL_SURVEY_TIME / 2);
    if s.recvs.is_some() {
        while sim.recv(surv).is_ok() {}
    }
    sim.run_until(FINAL_AT + 2 * FINAL_SURVEY_TIME);
    (sim, surv)
}

/// Returns when the survey with `body` was sent and when its deadline was.
fn survey_window(sim: &Sim, surv: NodeId, s: &Scenario, body: &Bytes) -> (Duration, Duration) {
    let Some(sent) = sim.sends(surv).iter().find(|r| r.body == body) else {
        sim.fail(&format!("survey {body:?} was never sent"));
    };
    let survey_time = if body == FINAL_BODY {
        FINAL_SURVEY_TIME
    } else {
        Duration::from_millis(s.survey_time_ms)
    };
    (sent.at, sent.at + survey_time)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every delivered response answers the survey that is current, arrives before that
    /// survey's deadline, and expiry is reported only once the deadline has passed. The final
    /// survey, sent on a settled network, hears from every respondent.
    #[test]
    fn no_survey_response_is_delivered_after_its_deadline(s in scenario()) {
        let (sim, surv) = run(&s, Instant::now());
        let mut final_answers = 0;
        for entry in sim.inbox(surv) {
            let current = entry.current_request.as_ref();
            let window = current.map(|body| survey_window(&sim, surv, &s, body));
            match (&entry.result, current, window) {
                (Ok(msg), Some(current), Some((_, deadline))) => {
                    sim.check(msg.body == [ANSWER_PREFIX.as_bytes(), current].concat(), || {
                        format!("got {:?} while {current:?} was current", msg.body)
                    });
                    sim.check(entry.at < deadline, || {
                        format!("{:?} delivered at {:?}, deadline {deadline:?}", msg.body, entry.at)
                    });
                    final_answers += usize::from(current == FINAL_BODY);
                }
                (Err(RecvError::SurveyExpired), _, Some((_, deadline))) => {
                    sim.check(entry.at >= deadline, || {
                        format!("expiry reported at {:?}, before the deadline {deadline:?}", entry.at)
                    });
                }
                (Err(RecvError::BadState), _, window) => {
                    sim.check(window.is_none_or(|(_, deadline)| entry.at >= deadline), || {
                        format!("BadState at {:?} while a survey ran", entry.at)
                    });
                }
                (result, current, _) => {
                    sim.fail(&format!("unexpected {result:?} with {current:?} current"))
                }
            }
        }
        sim.check(final_answers == s.respondents, || {
            format!("the final survey heard {final_answers} of {} respondents", s.respondents)
        });
    }

    /// The same seed and script give a byte-identical transcript.
    #[test]
    fn same_seed_gives_same_survey_transcript(s in scenario()) {
        let start = Instant::now();
        let transcript = |s: &Scenario| -> Vec<TranscriptEntry> {
            run(s, start).0.transcript().to_vec()
        };
        prop_assert!(transcript(&s) == transcript(&s), "seed {}: transcripts differ", s.seed);
    }
}

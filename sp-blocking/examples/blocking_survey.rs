//! Survey (SURVEYOR/RESPONDENT) with blocking calls, the fifth pattern of "Getting Started
//! with nanomsg": the surveyor asks every respondent a question and collects the answers that
//! arrive before the survey's deadline. `survey` returns the responses as an iterator that
//! ends at the deadline.
//!
//! ```sh
//! cargo run -p sp-blocking --example blocking_survey
//! ```

use std::error::Error;
use std::thread;
use std::time::{Duration, Instant};

use sp_blocking::{PipeEvent, PipeEvents, Respondent, Surveyor};

fn main() -> Result<(), Box<dyn Error>> {
    let surveyor = Surveyor::new();
    surveyor.set_survey_time(Duration::from_millis(500));
    let mut events = surveyor.pipe_events();
    let listener = surveyor.listen("tcp://127.0.0.1:0")?;
    println!("surveyor listening on {listener}");

    let mut respondents = Vec::new();
    let mut threads = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let respondent = Respondent::new();
        respondent.set_recv_timeout(Some(Duration::from_secs(5)));
        respondent.dial(&listener)?;
        respondents.push(respondent.clone());
        threads.push(thread::spawn(move || -> sp_blocking::Result<()> {
            let question = respondent.recv()?;
            println!("{name} <- {:?}", String::from_utf8_lossy(&question.body));
            respondent.send(format!("{name} votes pizza"))?;
            Ok(())
        }));
    }
    // A survey goes only to the respondents connected when it starts.
    wait_for_peers(&mut events, respondents.len())?;

    let started = Instant::now();
    println!("surveyor -> \"what's for lunch?\"");
    let mut count = 0;
    for response in surveyor.survey("what's for lunch?")? {
        let response = response?;
        count += 1;
        println!(
            "surveyor <- {:?} after {:?}",
            String::from_utf8_lossy(&response.body),
            started.elapsed()
        );
    }
    println!(
        "survey over after {:?}: {count} of {} responded",
        started.elapsed(),
        respondents.len()
    );
    for thread in threads {
        thread
            .join()
            .map_err(|_| "a respondent thread panicked")??;
    }

    surveyor.close();
    for respondent in &respondents {
        respondent.close();
    }
    Ok(())
}

/// Waits (at most 5 s) until `n` peers' pipes have attached to the socket of `events`.
fn wait_for_peers(events: &mut PipeEvents, n: usize) -> Result<(), Box<dyn Error>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut attached = 0;
    while attached < n {
        match events.recv_until(deadline) {
            Some(PipeEvent::Attached(_)) => attached += 1,
            Some(_) => {}
            None => return Err(format!("only {attached} of {n} peers attached in time").into()),
        }
    }
    Ok(())
}

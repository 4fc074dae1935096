//! Survey (SURVEYOR/RESPONDENT) on smol, the fifth pattern of "Getting Started with
//! nanomsg": the surveyor asks every respondent a question and collects the answers that
//! arrive before the survey's deadline. `survey` returns the responses as a stream that ends
//! at the deadline.
//!
//! ```sh
//! cargo run -p sp-smol --example smol_survey
//! ```

use std::error::Error;
use std::future::Future;
use std::time::{Duration, Instant};

use sp_smol::{PipeEvent, PipeEvents, Respondent, Surveyor};

fn main() -> Result<(), Box<dyn Error>> {
    smol::block_on(run())
}

async fn run() -> Result<(), Box<dyn Error>> {
    let surveyor = Surveyor::new();
    surveyor.set_survey_time(Duration::from_millis(500));
    let mut events = surveyor.pipe_events();
    let listener = surveyor.listen("tcp://127.0.0.1:0").await?;
    println!("surveyor listening on {listener}");

    let mut respondents = Vec::new();
    let mut tasks = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let respondent = Respondent::new();
        respondent.set_recv_timeout(Some(Duration::from_secs(5)));
        respondent.dial(&listener).await?;
        respondents.push(respondent.clone());
        tasks.push(smol::spawn(async move {
            let question = respondent.recv().await?;
            println!("{name} <- {:?}", String::from_utf8_lossy(&question.body));
            respondent.send(format!("{name} votes pizza")).await?;
            Ok::<(), sp_smol::Error>(())
        }));
    }
    // A survey goes only to the respondents connected when it starts.
    wait_for_peers(&mut events, respondents.len()).await?;

    let started = Instant::now();
    println!("surveyor -> \"what's for lunch?\"");
    let mut responses = surveyor.survey("what's for lunch?").await?;
    let mut count = 0;
    while let Some(response) = responses.next_response().await {
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
    for task in tasks {
        task.await?;
    }

    surveyor.close().await;
    for respondent in &respondents {
        respondent.close().await;
    }
    Ok(())
}

/// Waits (at most 5 s) until `n` peers' pipes have attached to the socket of `events`.
async fn wait_for_peers(events: &mut PipeEvents, n: usize) -> Result<(), Box<dyn Error>> {
    timeout(Duration::from_secs(5), async {
        let mut attached = 0;
        while attached < n {
            match events.next().await {
                Some(PipeEvent::Attached(_)) => attached += 1,
                Some(_) => {}
                None => return Err("the socket closed while waiting for peers".into()),
            }
        }
        Ok(())
    })
    .await?
}

/// Runs `fut` for at most `limit`.
async fn timeout<T>(limit: Duration, fut: impl Future<Output = T>) -> Result<T, Box<dyn Error>> {
    smol::future::or(async { Ok(fut.await) }, async {
        smol::Timer::after(limit).await;
        Err(format!("timed out after {limit:?}").into())
    })
    .await
}

//! A tour over real sockets with blocking calls: REQ/REP, PUSH/PULL and PAIR across TCP and IPC
//! on loopback.
//!
//! Run with `cargo run --release -p sp-blocking --example blocking_demo`.

use std::thread;
use std::time::Duration;

use sp_blocking::{Pair, Pull, Push, Rep, Req, Result};

fn main() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sp-blocking-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir for the IPC sockets");
    let ipc = |name: &str| format!("ipc://{}", dir.join(name).display());

    for url in ["tcp://127.0.0.1:0".to_string(), ipc("reqrep.sock")] {
        req_rep(&url)?;
    }
    for url in ["tcp://127.0.0.1:0".to_string(), ipc("pipeline.sock")] {
        push_pull(&url)?;
    }
    for url in ["tcp://127.0.0.1:0".to_string(), ipc("pair.sock")] {
        pair(&url)?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("demo finished: every message arrived");
    Ok(())
}

fn req_rep(url: &str) -> Result<()> {
    let rep = Rep::new();
    let bound = rep.listen(url)?.to_string();
    let req = Req::new();
    req.dial(&bound)?;
    println!("REQ/REP over {bound}");
    let server = thread::spawn(move || -> Result<()> {
        for _ in 0..3 {
            let request = rep.recv()?;
            let text = String::from_utf8_lossy(&request.body).to_string();
            println!("  rep <- {text:?}");
            rep.send(format!("{text} squared").into_bytes())?;
        }
        Ok(())
    });
    for n in 1..=3 {
        req.send(format!("{n}").into_bytes())?;
        let reply = req.recv()?;
        println!("  req <- {:?}", String::from_utf8_lossy(&reply.body));
    }
    server.join().expect("rep thread")?;
    Ok(())
}

fn push_pull(url: &str) -> Result<()> {
    let pull = Pull::new();
    let bound = pull.listen(url)?.to_string();
    let push = Push::new();
    push.dial(&bound)?;
    println!("PUSH/PULL over {bound}");
    for job in ["resize image", "send mail", "compact logs"] {
        push.send(job.as_bytes().to_vec())?;
        println!("  push -> {job:?}");
    }
    pull.set_recv_timeout(Some(Duration::from_secs(5)));
    for _ in 0..3 {
        let job = pull.recv()?;
        println!("  pull <- {:?}", String::from_utf8_lossy(&job.body));
    }
    Ok(())
}

fn pair(url: &str) -> Result<()> {
    let left = Pair::new();
    let bound = left.listen(url)?.to_string();
    let right = Pair::new();
    right.dial(&bound)?;
    println!("PAIR over {bound}");
    left.send("hello from the left")?;
    println!(
        "  right <- {:?}",
        String::from_utf8_lossy(&right.recv()?.body)
    );
    right.send("hello from the right")?;
    println!(
        "  left <- {:?}",
        String::from_utf8_lossy(&left.recv()?.body)
    );
    Ok(())
}

//! A tour over real sockets: REQ/REP, PUSH/PULL and PAIR across TCP and IPC on loopback.
//!
//! Run with `cargo run --release -p sp-smol --example smol_demo`.

use std::time::Duration;

use sp_smol::{Pair, Pull, Push, Rep, Req, Result};

fn main() -> Result<()> {
    smol::block_on(run())
}

async fn run() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("sp-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temp dir for the IPC sockets");
    let ipc = |name: &str| format!("ipc://{}", dir.join(name).display());

    for url in ["tcp://127.0.0.1:0".to_string(), ipc("reqrep.sock")] {
        req_rep(&url).await?;
    }
    for url in ["tcp://127.0.0.1:0".to_string(), ipc("pipeline.sock")] {
        push_pull(&url).await?;
    }
    for url in ["tcp://127.0.0.1:0".to_string(), ipc("pair.sock")] {
        pair(&url).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("demo finished: every message arrived");
    Ok(())
}

async fn req_rep(url: &str) -> Result<()> {
    let rep = Rep::new();
    let bound = rep.listen(url).await?.to_string();
    let req = Req::new();
    req.dial(&bound).await?;
    println!("REQ/REP over {bound}");
    let server = smol::spawn(async move {
        for _ in 0..3 {
            let request = rep.recv().await?;
            let text = String::from_utf8_lossy(&request.body).to_string();
            println!("  rep <- {text:?}");
            rep.send(format!("{text} squared").into_bytes()).await?;
        }
        Ok::<_, sp_smol::Error>(())
    });
    for n in 1..=3 {
        req.send(format!("{n}").into_bytes()).await?;
        let reply = req.recv().await?;
        println!("  req <- {:?}", String::from_utf8_lossy(&reply.body));
    }
    server.await?;
    Ok(())
}

async fn push_pull(url: &str) -> Result<()> {
    let pull_a = Pull::new();
    let bound = pull_a.listen(url).await?.to_string();
    let push = Push::new();
    push.dial(&bound).await?;
    println!("PUSH/PULL over {bound}");
    for job in ["resize image", "send mail", "compact logs"] {
        push.send(job.as_bytes().to_vec()).await?;
        println!("  push -> {job:?}");
    }
    pull_a.set_recv_timeout(Some(Duration::from_secs(5)));
    for _ in 0..3 {
        let job = pull_a.recv().await?;
        println!("  pull <- {:?}", String::from_utf8_lossy(&job.body));
    }
    Ok(())
}

async fn pair(url: &str) -> Result<()> {
    let left = Pair::new();
    let bound = left.listen(url).await?.to_string();
    let right = Pair::new();
    right.dial(&bound).await?;
    println!("PAIR over {bound}");
    left.send("hello from the left").await?;
    println!(
        "  right <- {:?}",
        String::from_utf8_lossy(&right.recv().await?.body)
    );
    right.send("hello from the right").await?;
    println!(
        "  left <- {:?}",
        String::from_utf8_lossy(&left.recv().await?.body)
    );
    Ok(())
}

//! A tour over real sockets on loopback: REQ/REP, PUSH/PULL and PAIR across TCP and IPC;
//! REQ/REP over TLS and secure WebSocket with a throwaway certificate; PUB/SUB over WebSocket;
//! a survey; many requests in flight on contexts through a device (broker).
//!
//! Run with `cargo run --release -p sp-tokio --example demo`.

use std::time::Duration;

use sp_tokio::{
    Pair, Pub, Pull, Push, Rep, Req, Respondent, Result, Sub, Surveyor, TlsConfig, XRep, XReq,
};

#[tokio::main]
async fn main() -> Result<()> {
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
    let (server_tls, client_tls) = throwaway_pki();
    for url in ["tls+tcp://127.0.0.1:0", "wss://127.0.0.1:0/rpc"] {
        secure_req_rep(url, &server_tls, &client_tls).await?;
    }
    pub_sub("ws://127.0.0.1:0/news").await?;
    survey("tcp://127.0.0.1:0").await?;
    broker_with_contexts().await?;
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
    let server = tokio::spawn(async move {
        for _ in 0..3 {
            let request = rep.recv().await?;
            let text = String::from_utf8_lossy(&request.body).to_string();
            println!("  rep <- {text:?}");
            rep.send(format!("{text} squared").into_bytes()).await?;
        }
        Ok::<_, sp_tokio::Error>(())
    });
    for n in 1..=3 {
        req.send(format!("{n}").into_bytes()).await?;
        let reply = req.recv().await?;
        println!("  req <- {:?}", String::from_utf8_lossy(&reply.body));
    }
    server.await.expect("rep task")?;
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

/// A CA and a server certificate for 127.0.0.1, made up for this run only.
fn throwaway_pki() -> (TlsConfig, TlsConfig) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("key")).expect("ca");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let server = TlsConfig::builder()
        .cert_key_pem(cert.pem(), key.serialize_pem())
        .build()
        .expect("server tls");
    let client = TlsConfig::builder()
        .ca_pem(ca.pem())
        .build()
        .expect("client tls");
    (server, client)
}

async fn secure_req_rep(url: &str, server: &TlsConfig, client: &TlsConfig) -> Result<()> {
    let rep = Rep::new();
    rep.set_tls(server.clone());
    let bound = rep.listen(url).await?.to_string();
    let req = Req::new();
    req.set_tls(client.clone());
    req.dial(&bound).await?;
    println!("REQ/REP over {bound} (certificate verified)");
    req.send("secret question").await?;
    let q = rep.recv().await?;
    println!("  rep <- {:?}", String::from_utf8_lossy(&q.body));
    rep.send("secret answer").await?;
    println!(
        "  req <- {:?}",
        String::from_utf8_lossy(&req.recv().await?.body)
    );
    Ok(())
}

async fn pub_sub(url: &str) -> Result<()> {
    let publisher = Pub::new();
    let bound = publisher.listen(url).await?.to_string();
    let sub = Sub::new();
    sub.subscribe(b"weather/");
    sub.set_recv_timeout(Some(Duration::from_secs(5)));
    sub.dial(&bound).await?;
    println!("PUB/SUB over {bound}, subscribed to \"weather/\"");
    while publisher.pipe_count() == 0 {
        tokio::task::yield_now().await;
    }
    for topic in ["sports/cup: 2-1", "weather/oslo: snow", "weather/rome: sun"] {
        publisher.send(topic.as_bytes().to_vec()).await?;
        println!("  pub -> {topic:?}");
    }
    for _ in 0..2 {
        println!(
            "  sub <- {:?}",
            String::from_utf8_lossy(&sub.recv().await?.body)
        );
    }
    Ok(())
}

async fn survey(url: &str) -> Result<()> {
    let surveyor = Surveyor::new();
    let bound = surveyor.listen(url).await?.to_string();
    let mut voters = Vec::new();
    for name in ["ann", "bob", "cid"] {
        let r = Respondent::new();
        r.dial(&bound).await?;
        voters.push((name, r));
    }
    while surveyor.pipe_count() < voters.len() {
        tokio::task::yield_now().await;
    }
    println!("SURVEYOR/RESPONDENT over {bound}");
    surveyor.send("lunch at noon?").await?;
    for (name, r) in &voters {
        let q = r.recv().await?;
        r.send(format!("{name}: yes to {:?}", String::from_utf8_lossy(&q.body)).into_bytes())
            .await?;
    }
    for _ in 0..voters.len() {
        println!(
            "  surveyor <- {:?}",
            String::from_utf8_lossy(&surveyor.recv().await?.body)
        );
    }
    Ok(())
}

/// Clients' REQ contexts -> XREP | device | XREQ -> worker REPs, all over TCP.
async fn broker_with_contexts() -> Result<()> {
    let (front, back) = (XRep::new(), XReq::new());
    let front_url = front.listen("tcp://127.0.0.1:0").await?.to_string();
    let back_url = back.listen("tcp://127.0.0.1:0").await?.to_string();
    let (f, b) = (front.clone(), back.clone());
    let device = tokio::spawn(async move { sp_tokio::device(&f, &b).await });
    println!("broker: clients -> {front_url} | device | {back_url} -> workers");
    for w in 0..2 {
        let worker = Rep::new();
        worker.dial(&back_url).await?;
        tokio::spawn(async move {
            while let Ok(job) = worker.recv().await {
                let reply = format!("worker {w} did {}", String::from_utf8_lossy(&job.body));
                if worker.send(reply.into_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
    let client = Req::new();
    client.dial(&front_url).await?;
    let mut jobs = Vec::new();
    for i in 0..8 {
        let ctx = client.context()?;
        jobs.push(tokio::spawn(async move {
            ctx.send(format!("job {i}").into_bytes()).await?;
            ctx.recv().await
        }));
    }
    for job in jobs {
        let reply = job.await.expect("client task")?;
        println!("  client <- {:?}", String::from_utf8_lossy(&reply.body));
    }
    front.close().await;
    back.close().await;
    device.await.expect("device task")?;
    Ok(())
}

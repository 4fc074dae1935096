//! A blocking socket and a tokio socket on either end of one connection.

mod support;

use std::thread;
use std::time::Duration;

use support::{url, within, Transport};

/// A blocking REP thread answers a tokio REQ over TCP (and over inproc, within one process).
#[test]
fn blocking_rep_serves_tokio_req() {
    within(20, || {
        for t in [Transport::Tcp, Transport::Ipc, Transport::Inproc] {
            let rep = sp_blocking::Rep::new();
            let bound = rep.listen(url(t)).unwrap().to_string();
            let server = thread::spawn(move || {
                for _ in 0..50 {
                    let request = rep.recv().expect("blocking rep receives");
                    let mut reply = b"re: ".to_vec();
                    reply.extend_from_slice(&request.body);
                    rep.send(reply).expect("blocking rep replies");
                }
                rep.close();
            });
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let req = sp_tokio::Req::new();
                req.set_recv_timeout(Some(Duration::from_secs(5)));
                req.dial(&bound).await.unwrap();
                for i in 0..50 {
                    req.send(format!("q{i}").into_bytes()).await.unwrap();
                    let reply = req.recv().await.unwrap();
                    assert_eq!(reply.body, format!("re: q{i}").into_bytes(), "{t:?}");
                }
                req.close().await;
            });
            server.join().unwrap();
        }
    });
}

/// A tokio PUSH feeds a blocking PULL over TCP; the blocking side reads the connection itself.
#[test]
fn tokio_push_feeds_blocking_pull() {
    within(20, || {
        let pull = sp_blocking::Pull::new();
        let bound = pull.listen(url(Transport::Tcp)).unwrap().to_string();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sender = rt.spawn(async move {
            let push = sp_tokio::Push::new();
            push.dial(&bound).await.unwrap();
            for i in 0..5000u32 {
                push.send(i.to_be_bytes().to_vec()).await.unwrap();
            }
            push.close().await;
        });
        for i in 0..5000u32 {
            assert_eq!(&pull.recv().unwrap().body[..], i.to_be_bytes());
        }
        rt.block_on(sender).unwrap();
    });
}

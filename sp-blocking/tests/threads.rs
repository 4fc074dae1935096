//! How many threads sp-blocking runs: a fixed pool, whatever the number of sockets, endpoints
//! and pipes. One test per binary: it counts the process's threads.

mod support;

use std::time::Duration;

use support::{url, wait_until, within, Transport};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// The most threads sp-blocking may add to a process: async-io's reactor thread and the
/// executor's workers.
const POOL: usize = 4;

#[test]
fn a_few_hundred_pipes_on_every_transport_run_on_a_fixed_pool() {
    if thread_count() == 0 {
        return; // no /proc: nothing to count
    }
    within(60, || {
        let base = thread_count();
        let rep = sp_blocking::Rep::new();
        let req = sp_blocking::Req::new();
        let tls = support::tls_server();
        rep.set_tls(tls.0);
        req.set_tls(tls.1);
        let dir = tempfile::tempdir().unwrap();
        let urls = [
            rep.listen(url(Transport::Tcp)).unwrap().to_string(),
            rep.listen(format!("ipc://{}", dir.path().join("s").display()))
                .unwrap()
                .to_string(),
            rep.listen("tls+tcp://127.0.0.1:0").unwrap().to_string(),
            rep.listen("ws://127.0.0.1:0/sp").unwrap().to_string(),
            rep.listen("wss://127.0.0.1:0/sp").unwrap().to_string(),
        ];
        const PER_TRANSPORT: usize = 60;
        for u in &urls {
            for _ in 0..PER_TRANSPORT {
                req.dial(u.as_str()).unwrap();
            }
        }
        let pipes = urls.len() * PER_TRANSPORT;
        wait_until("every pipe attaches", || {
            rep.pipe_count() == pipes && req.pipe_count() == pipes
        });
        let running = thread_count();
        assert!(
            running <= base + POOL,
            "{pipes} pipes each side: {} threads beyond the test's {base}",
            running - base
        );

        // Traffic over every pipe starts no thread either.
        let server = {
            let rep = rep.clone();
            std::thread::spawn(move || {
                for _ in 0..pipes {
                    let m = rep.recv().unwrap();
                    rep.send(m.body).unwrap();
                }
            })
        };
        for i in 0..pipes {
            let reply = req.request(format!("ping {i}")).unwrap();
            assert_eq!(reply.body, format!("ping {i}").as_bytes());
        }
        server.join().unwrap();
        assert!(
            thread_count() <= base + POOL + 1,
            "the server thread, and the pool"
        );

        req.close();
        rep.close();
        std::thread::sleep(Duration::from_millis(20));
        // The pool stays for the process (its threads are parked); nothing else remains.
        assert!(thread_count() <= base + POOL);
    });
}

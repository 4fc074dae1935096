//! How many threads sockets use, and that they end after close. One test per binary: it counts
//! the process's threads.

mod support;

use std::time::Duration;

use support::{url, wait_until, within, Transport};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

#[test]
fn threads_per_socket_listener_dialer_and_pipe_and_none_after_close() {
    if thread_count() == 0 {
        return; // no /proc: nothing to count
    }
    within(20, || {
        let base = thread_count();
        let rep = sp_blocking::Rep::new();
        assert_eq!(thread_count(), base + 1, "a socket: its timer thread");
        let bound = rep.listen(url(Transport::Tcp)).unwrap().to_string();
        assert_eq!(thread_count(), base + 2, "a listener: its accept thread");
        let req = sp_blocking::Req::new();
        req.dial(&bound).unwrap();
        wait_until("both ends attach", || rep.pipe_count() == 1);
        // REQ: timer, dialer (its pipe's writer), reader. REP: one writer and one reader for
        // the accepted connection.
        wait_until("the pipes' threads start", || thread_count() == base + 7);
        req.send("ping").unwrap();
        let m = rep.recv().unwrap();
        rep.send(m.body).unwrap();
        assert_eq!(&req.recv().unwrap().body[..], b"ping");
        assert_eq!(
            thread_count(),
            base + 7,
            "sending and receiving start no thread"
        );

        req.close();
        rep.close();
        wait_until("every socket thread ends", || thread_count() == base);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(thread_count(), base);
    });
}

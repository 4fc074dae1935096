//! Raw-TCP baselines: the same message flow as the SP perf tests over plain tokio
//! `TcpStream`s with SP's 8-byte big-endian length framing, but no SP handshake and no
//! protocol layer. They show what the SP stack costs on top of the socket itself.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::report::{LatencyReport, ThroughputReport};
use super::PerfError;

/// Extracts `host:port` from a `tcp://host:port` URL.
///
/// # Errors
/// Any other scheme.
pub fn tcp_host_port(url: &str) -> Result<&str, PerfError> {
    url.strip_prefix("tcp://")
        .filter(|hp| !hp.is_empty())
        .ok_or_else(|| PerfError(format!("raw modes need a tcp://host:port URL, not {url}")))
}

fn io_err(what: &'static str) -> impl Fn(std::io::Error) -> PerfError {
    move |e| PerfError(format!("{what}: {e}"))
}

type Reader = BufReader<OwnedReadHalf>;
type Writer = BufWriter<OwnedWriteHalf>;

fn split(stream: TcpStream) -> Result<(Reader, Writer), PerfError> {
    stream.set_nodelay(true).map_err(io_err("set_nodelay"))?;
    let (r, w) = stream.into_split();
    Ok((
        BufReader::with_capacity(64 * 1024, r),
        BufWriter::with_capacity(64 * 1024, w),
    ))
}

async fn accept_one(url: &str) -> Result<(Reader, Writer), PerfError> {
    let listener = TcpListener::bind(tcp_host_port(url)?)
        .await
        .map_err(io_err("listen"))?;
    let (stream, _) = listener.accept().await.map_err(io_err("accept"))?;
    split(stream)
}

async fn connect(url: &str) -> Result<(Reader, Writer), PerfError> {
    let stream = TcpStream::connect(tcp_host_port(url)?)
        .await
        .map_err(io_err("dial"))?;
    split(stream)
}

/// Reads one length-prefixed frame into `buf`, returning its length.
async fn read_frame(r: &mut Reader, buf: &mut Vec<u8>) -> Result<usize, PerfError> {
    let len = r.read_u64().await.map_err(io_err("recv"))?;
    let len = usize::try_from(len).map_err(|_| PerfError(format!("recv: frame of {len} bytes")))?;
    buf.resize(len, 0);
    r.read_exact(buf).await.map_err(io_err("recv"))?;
    Ok(len)
}

/// Queues one length-prefixed frame (call `flush` to push it out).
async fn write_frame(w: &mut Writer, body: &[u8]) -> Result<(), PerfError> {
    w.write_u64(body.len() as u64)
        .await
        .map_err(io_err("send"))?;
    w.write_all(body).await.map_err(io_err("send"))
}

fn check_size(got: usize, want: usize) -> Result<(), PerfError> {
    if got == want {
        Ok(())
    } else {
        Err(PerfError(format!("wrong message size: {got} != {want}")))
    }
}

/// `raw_local_lat`: accepts one connection and echoes `trips` frames.
///
/// # Errors
/// IO errors and wrong sizes.
pub async fn latency_server(url: &str, size: usize, trips: u32) -> Result<(), PerfError> {
    let (mut r, mut w) = accept_one(url).await?;
    let mut buf = Vec::with_capacity(size);
    for _ in 0..trips {
        let n = read_frame(&mut r, &mut buf).await?;
        check_size(n, size)?;
        write_frame(&mut w, &buf).await?;
        w.flush().await.map_err(io_err("send"))?;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

/// `raw_remote_lat`: connects and times `trips` round trips.
///
/// # Errors
/// IO errors.
pub async fn latency_client(
    url: &str,
    size: usize,
    trips: u32,
) -> Result<LatencyReport, PerfError> {
    let (mut r, mut w) = connect(url).await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let msg = vec![0u8; size];
    let mut buf = Vec::with_capacity(size);
    let start = Instant::now();
    for _ in 0..trips {
        write_frame(&mut w, &msg).await?;
        w.flush().await.map_err(io_err("send"))?;
        read_frame(&mut r, &mut buf).await?;
    }
    let total = start.elapsed();
    Ok(LatencyReport {
        total,
        msg_size: size,
        round_trips: trips,
    })
}

/// `raw_local_thr`: accepts one connection, waits for the empty start frame, times `count`
/// frames, then answers with an empty "done" frame.
///
/// # Errors
/// IO errors and wrong sizes.
pub async fn throughput_server(
    url: &str,
    size: usize,
    count: u32,
) -> Result<ThroughputReport, PerfError> {
    let (mut r, mut w) = accept_one(url).await?;
    let mut buf = Vec::with_capacity(size);
    read_frame(&mut r, &mut buf).await?;
    let start = Instant::now();
    for _ in 0..count {
        let n = read_frame(&mut r, &mut buf).await?;
        check_size(n, size)?;
    }
    let total = start.elapsed();
    write_frame(&mut w, &[]).await?;
    let _ = w.flush().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(ThroughputReport {
        total,
        msg_size: size,
        count,
    })
}

/// `raw_remote_thr`: connects, sends the empty start frame and `count + 1` frames (as NNG's
/// client does), then waits up to 5 s for "done".
///
/// # Errors
/// IO errors.
pub async fn throughput_client(url: &str, size: usize, count: u32) -> Result<(), PerfError> {
    let (mut r, mut w) = connect(url).await?;
    write_frame(&mut w, &[]).await?;
    let msg = vec![0u8; size];
    for _ in 0..=count {
        write_frame(&mut w, &msg).await?;
    }
    w.flush().await.map_err(io_err("send"))?;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), read_frame(&mut r, &mut buf)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            tcp_host_port("tcp://127.0.0.1:5555").unwrap(),
            "127.0.0.1:5555"
        );
        assert!(tcp_host_port("ipc:///tmp/x").is_err());
        assert!(tcp_host_port("tcp://").is_err());
    }

    #[tokio::test]
    async fn raw_round_trip_and_throughput() {
        // Pick a free port, then run both sides of each test on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let server_url = url.clone();
        let server = tokio::spawn(async move { throughput_server(&server_url, 100, 1000).await });
        let client = loop {
            // The server may not be listening yet; retry until it is.
            match TcpStream::connect(("127.0.0.1", port)).await {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };
        // Drive the client by hand over the connection we made.
        let (mut r, mut w) = split(client).unwrap();
        write_frame(&mut w, &[]).await.unwrap();
        for _ in 0..=1000 {
            write_frame(&mut w, &[1u8; 100]).await.unwrap();
        }
        w.flush().await.unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_frame(&mut r, &mut buf).await.unwrap(), 0);
        let report = server.await.unwrap().unwrap();
        assert_eq!((report.count, report.msg_size), (1000, 100));
    }
}

//! Command-line tools for the SP workspace.
//!
//! * [`spcat`]: a drop-in for NNG's `nngcat` (binary `spcat`).
//! * [`perf`]: NNG's perf tests plus raw-TCP baselines (binary `sp-perf`).
//! * [`benchchart`]: draws `scripts/bench-vs.sh`'s results as an SVG bar chart (binary
//!   `sp-bench-chart`).
//! * [`tls`]: nngcat's TLS flags, shared by both.
//! * [`socket`]: the protocol list and [`socket::AnySocket`], shared by both.
//! * [`runtime`]: `--runtime tokio|smol|blocking`, and [`runtime::ToolRuntime`], the runtime
//!   interface both tools are written against; [`blocking`] is its `sp-blocking` side.

#![forbid(unsafe_code)]

pub mod benchchart;
pub mod blocking;
pub mod perf;
pub mod runtime;
pub mod socket;
pub mod spcat;
pub mod tls;

/// Sends `tracing` output to stderr: `level` 0 = nothing, 1 = info, 2 = debug, 3+ = trace.
pub fn init_tracing(level: u8) {
    use tracing_subscriber::filter::LevelFilter;
    let filter = match level {
        0 => return,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

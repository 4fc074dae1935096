//! `spcat`: a drop-in for NNG's `nngcat` built on `sp-tokio` (spec section 7).
//!
//! * [`args`]: nngcat's command line (option syntax, abbreviations, validation rules).
//! * [`format`]: the output formats, as pure encoders.
//! * [`run`]: the socket set-up and the four loops.

pub mod args;
pub mod format;
pub mod run;

use std::ffi::OsString;
use std::io;

use args::{Parsed, PROG};
use run::{load_source, Printer};

/// Runs spcat with the given argv (program name first) and returns the exit status.
pub fn main_with_args(argv: Vec<OsString>) -> i32 {
    let cfg = match args::parse(argv) {
        Ok(Parsed::Run(cfg)) => cfg,
        Ok(Parsed::Help) => {
            // nngcat prints its usage and exits 1.
            print!("{}", args::usage());
            return 1;
        }
        Ok(Parsed::Version) => {
            println!("{}", env!("CARGO_PKG_VERSION"));
            return 0;
        }
        Err(e) => {
            eprintln!("{PROG}: {e}");
            return 1;
        }
    };
    crate::init_tracing(cfg.verbose.saturating_sub(1));
    let data = match cfg.source.as_ref().map(load_source).transpose() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{PROG}: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{PROG}: cannot start the runtime: {e}");
            return 1;
        }
    };
    let mut printer = Printer::new(cfg.format, io::stdout().lock());
    let result = rt.block_on(run::run(&cfg, data, &mut printer));
    drop(rt);
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{PROG}: {e}");
            1
        }
    }
}

/// Runs spcat with the process's arguments and returns the exit status.
pub fn main() -> i32 {
    main_with_args(std::env::args_os().collect())
}

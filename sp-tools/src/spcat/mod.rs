//! `spcat`: a drop-in for NNG's `nngcat` (spec section 7), on `sp-tokio` or, with
//! `--runtime smol`, on `sp-smol`.
//!
//! * [`args`]: nngcat's command line (option syntax, abbreviations, validation rules).
//! * [`format`](mod@format): the output formats, as pure encoders.
//! * [`run`]: the socket set-up and the four loops.
//! * [`verbose`]: `-v`'s pipe lines and `-v -v`'s statistics summary, on stderr.

pub mod args;
pub mod format;
pub mod run;
pub mod verbose;

use std::ffi::OsString;
use std::io;

use args::{Parsed, PROG};
use run::{load_source, Printer, RunError};
use sp_smol::Smol;
use sp_tokio::Tokio;

use crate::runtime::RuntimeKind;

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
    let mut printer = Printer::new(cfg.format, io::stdout().lock());
    // The loops run on the calling thread; the sockets' tasks on the runtime (tokio: this same
    // thread; smol: its global executor's thread).
    let result = match cfg.runtime {
        RuntimeKind::Tokio => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run::run(
                &Tokio::new(rt.handle().clone()),
                &cfg,
                data,
                &mut printer,
            )),
            Err(e) => Err(RunError(format!("cannot start the runtime: {e}"))),
        },
        RuntimeKind::Smol => smol::block_on(run::run(&Smol::default(), &cfg, data, &mut printer)),
        RuntimeKind::Blocking => crate::blocking::block_on(run::run(
            &crate::blocking::Blocking,
            &cfg,
            data,
            &mut printer,
        )),
    };
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

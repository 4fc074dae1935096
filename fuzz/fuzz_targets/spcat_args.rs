#![no_main]

#[path = "../common/spcat_args.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::spcat_args(data));

#![no_main]

#[path = "../common/tls_config.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::tls_config(data));

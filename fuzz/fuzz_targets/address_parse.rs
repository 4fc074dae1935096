#![no_main]

#[path = "../common/address_parse.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::address_parse(data));

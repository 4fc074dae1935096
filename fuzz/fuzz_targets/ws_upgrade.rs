#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sp_transport::fuzzing::ws_upgrade(data));

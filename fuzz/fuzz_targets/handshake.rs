#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sp_core::fuzzing::handshake(
    data,
    std::time::Instant::now()
));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sp_core::fuzzing::protocol_receive(
    data,
    std::time::Instant::now()
));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sp_core::fuzzing::protocol_scenario(
    data,
    std::time::Instant::now()
));

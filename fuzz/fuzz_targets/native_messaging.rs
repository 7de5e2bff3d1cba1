#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deskhand_agent::fuzzing::native_messaging(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deskhand_browser::fuzzing::extract_schema(data));

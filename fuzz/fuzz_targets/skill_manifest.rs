#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deskhand_agent::fuzzing::skill_manifest(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deskhand_schedule::fuzzing::cron(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyfrag_client::fuzzing::client_config(data));

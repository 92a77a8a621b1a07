#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyfrag_server::fuzzing::prf_request_body(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keyfrag_pkcs11::fuzzing::attribute_template(data));

//! Fuzz target: see `provmesh_protocol::fuzz_targets::admission_review` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| provmesh_protocol::fuzz_targets::admission_review(data));

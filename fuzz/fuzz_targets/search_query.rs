//! Fuzz target: see `provmesh_protocol::fuzz_targets::search_query` for what it checks.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| provmesh_protocol::fuzz_targets::search_query(data));

//! fuzz_targets (in progress)

//! Rekor v1 entry kinds (in progress).

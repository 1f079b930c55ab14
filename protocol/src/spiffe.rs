//! spiffe (in progress)

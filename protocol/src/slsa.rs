//! slsa (in progress)

//! sigstore (in progress)

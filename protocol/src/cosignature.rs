//! cosignature (in progress)

//! dsse (in progress)

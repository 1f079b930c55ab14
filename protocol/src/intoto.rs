//! intoto (in progress)

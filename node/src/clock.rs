//! The wall clock, read in one place and handed to the sans-IO core as a [`Timestamp`].

use std::time::{SystemTime, UNIX_EPOCH};

use provmesh_protocol::machine::Timestamp;

/// `time` as the protocol sees it (milliseconds since the Unix epoch; 0 before it).
pub fn timestamp_of(time: SystemTime) -> Timestamp {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_millis(millis)
}

/// The current time as the protocol sees it.
pub fn now() -> Timestamp {
    timestamp_of(SystemTime::now())
}

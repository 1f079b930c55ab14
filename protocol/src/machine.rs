//! The contract every provmesh protocol state machine follows.
//!
//! provmesh's protocol decisions (sequencing the log, witnessing, gossip and anti-entropy,
//! equivocation detection, lookup routing) are state machines that do no I/O. The node
//! and the simulator drive the same machines with the same loop, in the style of
//! quinn-proto and str0m:
//!
//! ```text
//! loop {
//!     machine.handle_input(now, input)     // or handle_timeout(now) when the timer fires
//!     while let Some(output) = machine.poll_output() {
//!         perform(output)                  // send, store, reply …
//!     }
//!     next_wakeup = machine.poll_timeout()
//! }
//! ```
//!
//! Rules of the contract:
//! 1. **Time is an argument.** Every input carries `now` as a [`Timestamp`]; machines
//!    never read a clock and never draw randomness themselves (a seed or random bytes
//!    come in as input or configuration). The same inputs give the same outputs.
//! 2. **Drain until idle.** After each input the driver calls
//!    [`StateMachine::poll_output`] until it returns `None`, then arms a timer for
//!    [`StateMachine::poll_timeout`].
//! 3. **Persist before anything depends on it.** A machine that needs state to be durable
//!    (a log entry before it is acknowledged, a checkpoint before it is published, a
//!    witness's last cosigned size before its cosignature leaves) emits a "persist this"
//!    output with a [`PersistId`] and holds every output that depends on it until the
//!    driver acknowledges that id — only once the write is durable. [`Outbox`] implements
//!    that ordering once, for all machines. A failed write is reported too; what depends
//!    on it never leaves.
//! 4. **Bounded.** Machines bound their queues and report overload as a typed error
//!    output instead of buffering without limit.

use std::collections::{BTreeSet, VecDeque};

/// A point in time: milliseconds since the Unix epoch, as read by the driver.
///
/// The protocol core never reads a clock; the node passes the system time, the simulator
/// its virtual time.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp from milliseconds since the Unix epoch.
    pub const fn from_unix_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    /// A timestamp from whole seconds since the Unix epoch (saturating).
    pub const fn from_unix_seconds(seconds: u64) -> Self {
        Timestamp(seconds.saturating_mul(1000))
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_unix_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down), the unit of C2SP cosignatures.
    pub const fn as_unix_seconds(self) -> u64 {
        self.0 / 1000
    }

    /// This time plus a duration, saturating at the end of representable time.
    pub fn saturating_add(self, duration: std::time::Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(millis))
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A sans-IO protocol state machine (see the module documentation for the contract).
pub trait StateMachine {
    /// What the driver feeds in: messages received, requests, persistence results.
    type Input;
    /// What the machine asks the driver to do: send, persist, reply.
    type Output;

    /// Handles one input observed at `now`.
    fn handle_input(&mut self, now: Timestamp, input: Self::Input);

    /// Handles the passage of time up to `now` (timers that are due fire).
    fn handle_timeout(&mut self, now: Timestamp);

    /// The next output, or `None` when the machine is idle. Drain after every input.
    #[must_use]
    fn poll_output(&mut self) -> Option<Self::Output>;

    /// When the machine next needs [`StateMachine::handle_timeout`], if ever.
    fn poll_timeout(&self) -> Option<Timestamp>;
}

/// Names one "persist this" request; the driver acknowledges it once the write is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistId(u64);

impl PersistId {
    /// The raw number, for logs and metrics.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What an [`Outbox`] hands to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P, O> {
    /// Make `write` durable, then call [`Outbox::acknowledge`] (or [`Outbox::fail`]) with `id`.
    Persist {
        /// The id to acknowledge.
        id: PersistId,
        /// What to write.
        write: P,
    },
    /// Perform `output`: every write requested before it is durable.
    Release(O),
}

/// Why an acknowledgement was refused: the driver acknowledged something it was not asked
/// to persist, or twice. A driver bug, never a peer's doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The id was never issued, or was already acknowledged or failed.
    #[error("persist id {0:?} is not pending")]
    NotPending(PersistId),
}

/// Orders a machine's outputs behind the writes they depend on.
///
/// The rule, once for every machine: an output queued with [`Outbox::release_after_persisted`]
/// is released only after **every** write requested before it has been acknowledged.
/// Outputs are released in the order they were queued; writes are handed out at once.
/// If a write fails, every output queued after it is withdrawn and returned to the
/// machine, which turns them into errors — they never leave the node.
#[derive(Debug)]
pub struct Outbox<P, O> {
    next_id: u64,
    /// Writes requested and not yet acknowledged.
    pending: BTreeSet<u64>,
    /// Writes not yet handed to the driver.
    writes: VecDeque<(PersistId, P)>,
    /// Outputs with the first persist id they must not wait for: every id below it must
    /// be acknowledged before the output is released.
    held: VecDeque<(u64, O)>,
}

impl<P, O> Default for Outbox<P, O> {
    fn default() -> Self {
        Outbox {
            next_id: 0,
            pending: BTreeSet::new(),
            writes: VecDeque::new(),
            held: VecDeque::new(),
        }
    }
}

impl<P, O> Outbox<P, O> {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests a durable write; returns the id the driver will acknowledge.
    pub fn persist(&mut self, write: P) -> PersistId {
        let id = PersistId(self.next_id);
        self.next_id += 1;
        self.pending.insert(id.0);
        self.writes.push_back((id, write));
        id
    }

    /// Queues an output to be released once every write requested so far is durable.
    pub fn release_after_persisted(&mut self, output: O) {
        self.held.push_back((self.next_id, output));
    }

    /// Records that the write `id` is durable.
    pub fn acknowledge(&mut self, id: PersistId) -> Result<(), AckError> {
        if self.pending.remove(&id.0) {
            Ok(())
        } else {
            Err(AckError::NotPending(id))
        }
    }

    /// Records that the write `id` failed. Every output queued after that write was
    /// requested is withdrawn and returned, in order; they must never be released.
    pub fn fail(&mut self, id: PersistId) -> Result<Vec<O>, AckError> {
        if !self.pending.remove(&id.0) {
            return Err(AckError::NotPending(id));
        }
        let (keep, withdrawn): (VecDeque<_>, VecDeque<_>) = self
            .held
            .drain(..)
            .partition(|(barrier, _)| *barrier <= id.0);
        self.held = keep;
        Ok(withdrawn.into_iter().map(|(_, output)| output).collect())
    }

    /// The next effect for the driver: first any write to perform, then the oldest output
    /// whose writes are all durable. `None` when nothing can proceed yet.
    #[must_use]
    pub fn poll(&mut self) -> Option<Effect<P, O>> {
        if let Some((id, write)) = self.writes.pop_front() {
            return Some(Effect::Persist { id, write });
        }
        let oldest_pending = self.pending.first().copied();
        match (self.held.front(), oldest_pending) {
            (Some((barrier, _)), Some(pending)) if pending < *barrier => None,
            (Some(_), _) => self
                .held
                .pop_front()
                .map(|(_, output)| Effect::Release(output)),
            (None, _) => None,
        }
    }

    /// Writes requested and not yet acknowledged (for back-pressure and metrics).
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    /// Outputs waiting for writes (for back-pressure and metrics).
    pub fn held_outputs(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn output_waits_for_the_write_before_it() {
        let mut outbox = Outbox::new();
        let id = outbox.persist("checkpoint 5");
        outbox.release_after_persisted("publish 5");
        assert_eq!(
            outbox.poll(),
            Some(Effect::Persist {
                id,
                write: "checkpoint 5"
            })
        );
        assert_eq!(outbox.poll(), None, "not durable yet");
        outbox.acknowledge(id).unwrap();
        assert_eq!(outbox.poll(), Some(Effect::Release("publish 5")));
        assert_eq!(outbox.poll(), None);
        assert_eq!(outbox.acknowledge(id), Err(AckError::NotPending(id)));
    }

    #[test]
    fn a_failed_write_withdraws_what_depends_on_it() {
        let mut outbox = Outbox::new();
        outbox.release_after_persisted("independent");
        let first = outbox.persist("entry 1");
        outbox.release_after_persisted("ack 1");
        let second = outbox.persist("entry 2");
        outbox.release_after_persisted("ack 2");
        outbox.acknowledge(second).unwrap();
        assert_eq!(outbox.fail(first).unwrap(), vec!["ack 1", "ack 2"]);
        let mut released = Vec::new();
        while let Some(effect) = outbox.poll() {
            released.push(effect);
        }
        assert!(released.contains(&Effect::Release("independent")));
        assert!(!released.contains(&Effect::Release("ack 1")));
    }

    #[derive(Debug, Clone)]
    enum Step {
        Persist,
        Release,
        AckOne(usize),
        Poll,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Persist),
            Just(Step::Release),
            any::<usize>().prop_map(Step::AckOne),
            Just(Step::Poll),
        ]
    }

    proptest! {
        /// Whatever the interleaving, an output is released only when every write
        /// requested before it is acknowledged, outputs keep their order, and all of them
        /// come out once everything is durable.
        #[test]
        fn outputs_never_overtake_their_writes(steps in proptest::collection::vec(step(), 0..200)) {
            let mut outbox: Outbox<u64, (u64, usize)> = Outbox::new();
            let mut issued = 0u64;
            let mut unacked: Vec<PersistId> = Vec::new();
            let mut acked = BTreeSet::new();
            let mut queued = 0usize;
            let mut released = Vec::new();
            let mut check = |effect: Effect<u64, (u64, usize)>, acked: &BTreeSet<u64>, unacked: &mut Vec<PersistId>| {
                match effect {
                    Effect::Persist { id, .. } => unacked.push(id),
                    Effect::Release((writes_before, seq)) => {
                        for w in 0..writes_before {
                            assert!(acked.contains(&w), "output {seq} overtook write {w}");
                        }
                        released.push(seq);
                    }
                }
            };
            for step in steps {
                match step {
                    Step::Persist => { outbox.persist(issued); issued += 1; }
                    Step::Release => { outbox.release_after_persisted((issued, queued)); queued += 1; }
                    Step::AckOne(i) if !unacked.is_empty() => {
                        let id = unacked.remove(i % unacked.len());
                        outbox.acknowledge(id).unwrap();
                        acked.insert(id.get());
                    }
                    Step::AckOne(_) => {}
                    Step::Poll => if let Some(e) = outbox.poll() { check(e, &acked, &mut unacked) },
                }
            }
            // Drain everything: hand out writes, acknowledge them all, release the rest.
            loop {
                while let Some(e) = outbox.poll() { check(e, &acked, &mut unacked); }
                if unacked.is_empty() { break; }
                for id in unacked.drain(..) { outbox.acknowledge(id).unwrap(); acked.insert(id.get()); }
            }
            prop_assert_eq!(released, (0..queued).collect::<Vec<_>>());
            prop_assert_eq!(outbox.pending_writes(), 0);
            prop_assert_eq!(outbox.held_outputs(), 0);
        }
    }
}

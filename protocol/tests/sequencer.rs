//! The sequencer's promises, checked against a model store under random schedules of
//! submissions, duplicates, timers, completed and failed writes, and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use proptest::prelude::*;
use provmesh_protocol::checkpoint;
use provmesh_protocol::log::sequencer::{
    EntryLookup, Halt, Rejection, Sequencer, SequencerConfig, SequencerInput, SequencerOutput,
    StoredState, Ticket,
};
use provmesh_protocol::log::{AdmittedEntry, Batch, SignedCheckpointNote};
use provmesh_protocol::machine::{PersistId, StateMachine, Timestamp};
use provmesh_protocol::merkle::{Hash, MemoryHashStore, leaf_hash, stored_hash_count, tree_hash};
use provmesh_protocol::note::{Ed25519Signer, KeyName, Verifier};

const ORIGIN: &str = "log.org-a.example";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &[7; 32])
}

fn entry(body: &[u8]) -> AdmittedEntry {
    AdmittedEntry {
        body: body.to_vec(),
        leaf_hash: leaf_hash(body),
        search_keys: Vec::new(),
        attestation: None,
    }
}

/// What a durable store holds: the model the sequencer's batches are applied to.
#[derive(Default)]
struct ModelStore {
    bodies: Vec<Vec<u8>>,
    by_leaf: HashMap<Hash, u64>,
    hashes: MemoryHashStore,
    checkpoints: HashMap<u64, SignedCheckpointNote>,
    latest: Option<SignedCheckpointNote>,
}

impl EntryLookup for ModelStore {
    type Error = Infallible;
    fn index_of(&self, leaf_hash: &Hash) -> Result<Option<u64>, Infallible> {
        Ok(self.by_leaf.get(leaf_hash).copied())
    }
}

impl ModelStore {
    /// Applies a batch the way the store contract says: all of it, checked.
    fn commit(&mut self, batch: &Batch) {
        let size = self.bodies.len() as u64;
        assert_eq!(batch.first_stored_hash, stored_hash_count(size));
        let mut produced = Vec::new();
        for (offset, sequenced) in batch.entries.iter().enumerate() {
            assert_eq!(
                sequenced.index,
                size + offset as u64,
                "indexes are consecutive"
            );
            assert_eq!(sequenced.entry.leaf_hash, leaf_hash(&sequenced.entry.body));
            assert!(
                self.by_leaf
                    .insert(sequenced.entry.leaf_hash, sequenced.index)
                    .is_none(),
                "a canonical body got a second leaf"
            );
            self.bodies.push(sequenced.entry.body.clone());
            let before = self.hashes.stored_hashes().len();
            self.hashes.append(sequenced.entry.leaf_hash).unwrap();
            produced.extend_from_slice(&self.hashes.stored_hashes()[before..]);
        }
        assert_eq!(
            batch.stored_hashes, produced,
            "stored hashes match the tree"
        );
        let checkpoint = &batch.checkpoint;
        assert_eq!(checkpoint.size, self.bodies.len() as u64);
        assert_eq!(checkpoint.root_hash, self.hashes.root());
        let verifier = Verifier::Ed25519(signer().verifier());
        let opened = checkpoint::open(&checkpoint.note, ORIGIN, &verifier).unwrap();
        assert_eq!(opened.checkpoint.size(), checkpoint.size);
        if let Some(previous) = self.checkpoints.insert(checkpoint.size, checkpoint.clone()) {
            assert_eq!(
                previous, *checkpoint,
                "two different checkpoints for one size"
            );
        }
        self.latest = Some(checkpoint.clone());
    }

    fn stored_state(&self) -> StoredState {
        StoredState {
            size: self.bodies.len() as u64,
            latest_checkpoint: self.latest.clone(),
        }
    }
}

/// Drives a sequencer against a model store and checks every output as it appears.
struct Harness {
    sequencer: Sequencer,
    store: ModelStore,
    writes: VecDeque<(PersistId, Batch)>,
    now: Timestamp,
    next_ticket: u64,
    submitted: HashMap<Ticket, Vec<u8>>,
    answered: HashMap<Ticket, SequencerOutput>,
    published_sizes: Vec<u64>,
}

impl Harness {
    fn new(config: SequencerConfig) -> Self {
        let store = ModelStore::default();
        let sequencer =
            Sequencer::recover(config, signer(), store.stored_state(), &store.hashes, None)
                .unwrap();
        let mut harness = Harness {
            sequencer,
            store,
            writes: VecDeque::new(),
            now: Timestamp::from_unix_millis(1_700_000_000_000),
            next_ticket: 0,
            submitted: HashMap::new(),
            answered: HashMap::new(),
            published_sizes: Vec::new(),
        };
        harness.drain();
        harness
    }

    fn submit(&mut self, body: &[u8]) -> Ticket {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.submitted.insert(ticket, body.to_vec());
        self.sequencer
            .submit(self.now, ticket, entry(body), &self.store);
        self.drain();
        ticket
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now.saturating_add(Duration::from_millis(ms));
        if self.sequencer.poll_timeout().is_some_and(|t| t <= self.now) {
            self.sequencer.handle_timeout(self.now);
        }
        self.drain();
    }

    fn complete_oldest_write(&mut self) -> bool {
        let Some((id, batch)) = self.writes.pop_front() else {
            return false;
        };
        let first_index = batch.checkpoint.size - batch.entries.len() as u64;
        if first_index != self.store.bodies.len() as u64 {
            // A write after a failed one: the store's contract check refuses it.
            self.sequencer
                .handle_input(self.now, SequencerInput::PersistFailed(id));
            self.drain();
            return true;
        }
        self.store.commit(&batch);
        self.sequencer
            .handle_input(self.now, SequencerInput::Persisted(id));
        self.drain();
        true
    }

    fn fail_oldest_write(&mut self) -> bool {
        let Some((id, _)) = self.writes.pop_front() else {
            return false;
        };
        self.sequencer
            .handle_input(self.now, SequencerInput::PersistFailed(id));
        self.drain();
        true
    }

    fn drain(&mut self) {
        while let Some(output) = self.sequencer.poll_output() {
            match output {
                SequencerOutput::Persist { id, batch } => self.writes.push_back((id, batch)),
                SequencerOutput::Published(checkpoint) => {
                    assert!(
                        self.store.checkpoints.get(&checkpoint.size) == Some(&*checkpoint),
                        "a checkpoint was published before it was durable"
                    );
                    if let Some(&last) = self.published_sizes.last() {
                        assert!(checkpoint.size > last, "published sizes increase");
                    }
                    self.published_sizes.push(checkpoint.size);
                }
                SequencerOutput::Integrated {
                    ticket,
                    index,
                    integrated_time,
                    ref checkpoint,
                } => {
                    let body = &self.submitted[&ticket];
                    assert_eq!(
                        self.store.bodies.get(index as usize),
                        Some(body),
                        "acknowledged before durable, or at the wrong index"
                    );
                    assert!(checkpoint.size > index);
                    assert!(self.store.checkpoints.contains_key(&checkpoint.size));
                    assert!(integrated_time as u64 <= self.now.as_unix_seconds());
                    self.record(ticket, output.clone());
                }
                SequencerOutput::Duplicate { ticket, index } => {
                    let body = &self.submitted[&ticket];
                    assert_eq!(self.store.bodies.get(index as usize), Some(body));
                    self.record(ticket, output.clone());
                }
                SequencerOutput::Rejected { ticket, .. } => self.record(ticket, output.clone()),
            }
        }
    }

    fn record(&mut self, ticket: Ticket, output: SequencerOutput) {
        assert!(
            self.answered.insert(ticket, output).is_none(),
            "a ticket was answered twice"
        );
    }

    /// Closes the open batch and completes every write.
    fn settle(&mut self) {
        self.advance(10_000);
        while self.complete_oldest_write() {}
    }
}

#[test]
fn a_new_log_publishes_the_empty_tree_first() {
    let mut h = Harness::new(SequencerConfig::default());
    assert!(h.published_sizes.is_empty(), "not before it is durable");
    assert!(h.complete_oldest_write());
    assert_eq!(h.published_sizes, vec![0]);
    assert_eq!(
        h.store.latest.as_ref().unwrap().root_hash,
        provmesh_protocol::merkle::EMPTY_ROOT
    );
}

#[test]
fn batches_close_when_the_store_is_idle_full_or_due() {
    let config = SequencerConfig {
        max_batch_entries: 4,
        max_batch_delay: Duration::from_millis(250),
        max_pending_entries: 100,
    };
    let mut h = Harness::new(config);
    h.complete_oldest_write();
    h.submit(b"alone");
    assert_eq!(
        h.writes.len(),
        1,
        "an idle store takes a lone entry at once"
    );
    for i in 0..4u8 {
        h.submit(&[i]);
    }
    assert_eq!(
        h.writes.len(),
        2,
        "while a write is in flight, a full batch closes"
    );
    assert_eq!(h.writes[1].1.entries.len(), 4);
    h.submit(b"late");
    h.advance(249);
    assert_eq!(h.writes.len(), 2, "not before the delay");
    h.advance(1);
    assert_eq!(
        h.writes.len(),
        3,
        "closes when its oldest entry waited the delay"
    );
    assert!(h.answered.is_empty(), "nothing answered before durable");
    while h.complete_oldest_write() {}
    assert_eq!(h.answered.len(), 6);
    assert_eq!(h.published_sizes, vec![0, 1, 5, 6]);
}

#[test]
fn entries_gathered_during_a_write_go_when_it_completes() {
    let mut h = Harness::new(SequencerConfig::default());
    h.complete_oldest_write();
    h.submit(b"first");
    for i in 0..10u8 {
        h.submit(&[i]);
    }
    assert_eq!(h.writes.len(), 1, "the ten wait for the write in flight");
    h.complete_oldest_write();
    assert_eq!(
        h.writes.len(),
        1,
        "and go together as soon as it is durable"
    );
    assert_eq!(h.writes[0].1.entries.len(), 10);
    h.complete_oldest_write();
    assert_eq!(h.published_sizes, vec![0, 1, 11]);
}

#[test]
fn duplicates_add_no_leaf_and_wait_for_the_original() {
    let mut h = Harness::new(SequencerConfig::default());
    h.complete_oldest_write();
    let first = h.submit(b"same");
    let open_duplicate = h.submit(b"same");
    h.advance(300);
    let in_flight_duplicate = h.submit(b"same");
    assert!(
        h.answered.is_empty(),
        "duplicates of a pending entry wait for it"
    );
    h.complete_oldest_write();
    let durable_duplicate = h.submit(b"same");
    for ticket in [open_duplicate, in_flight_duplicate, durable_duplicate] {
        assert_eq!(
            h.answered[&ticket],
            SequencerOutput::Duplicate { ticket, index: 0 }
        );
    }
    assert!(matches!(
        h.answered[&first],
        SequencerOutput::Integrated { index: 0, .. }
    ));
    assert_eq!(h.store.bodies.len(), 1);
}

#[test]
fn overload_is_refused_not_queued() {
    let config = SequencerConfig {
        max_batch_entries: 2,
        max_batch_delay: Duration::from_millis(250),
        max_pending_entries: 3,
    };
    let mut h = Harness::new(config);
    h.complete_oldest_write();
    for i in 0..3u8 {
        h.submit(&[i]);
    }
    let refused = h.submit(b"one too many");
    assert_eq!(
        h.answered[&refused],
        SequencerOutput::Rejected {
            ticket: refused,
            reason: Rejection::Overloaded { pending: 3 }
        }
    );
    h.settle();
    let accepted = h.submit(b"after the backlog cleared");
    h.settle();
    assert!(matches!(
        h.answered[&accepted],
        SequencerOutput::Integrated { index: 3, .. }
    ));
}

#[test]
fn a_failed_write_withdraws_its_answers_and_halts_the_log() {
    let config = SequencerConfig {
        max_batch_entries: 2,
        max_batch_delay: Duration::from_millis(250),
        max_pending_entries: 100,
    };
    let mut h = Harness::new(config);
    h.complete_oldest_write();
    let a = h.submit(b"a");
    let b = h.submit(b"b");
    let c = h.submit(b"c");
    let d = h.submit(b"d");
    let open = h.submit(b"e");
    assert_eq!(
        h.writes.len(),
        3,
        "a alone (store idle), then b+c and d+e (full)"
    );
    h.fail_oldest_write();
    let halted = Rejection::Halted(Halt::StorageFailed);
    for ticket in [a, b, c, d, open] {
        assert_eq!(
            h.answered[&ticket],
            SequencerOutput::Rejected {
                ticket,
                reason: halted.clone()
            }
        );
    }
    let after = h.submit(b"f");
    assert!(matches!(
        &h.answered[&after],
        SequencerOutput::Rejected { reason, .. } if *reason == halted
    ));
    // The store refuses the later writes (they do not follow the tree it holds).
    while h.complete_oldest_write() {}
    assert_eq!(h.published_sizes, vec![0]);
}

#[test]
fn restart_resumes_and_never_resigns_a_size() {
    let mut h = Harness::new(SequencerConfig::default());
    h.complete_oldest_write();
    for i in 0..10u8 {
        h.submit(&[i]);
    }
    h.settle();
    // A batch closed but not durable when the process died: it never happened.
    h.submit(b"lost");
    h.advance(300);
    assert_eq!(h.writes.len(), 1);
    let store = std::mem::take(&mut h.store);
    let mut sequencer = Sequencer::recover(
        SequencerConfig::default(),
        signer(),
        store.stored_state(),
        &store.hashes,
        None,
    )
    .unwrap();
    assert!(sequencer.poll_output().is_none(), "nothing to redo");
    assert_eq!(sequencer.sequenced_size(), 10);
    assert_eq!(sequencer.published().unwrap().size, 10);
}

#[test]
fn a_restored_backup_refuses_to_sign_until_it_holds_the_published_tree() {
    let mut h = Harness::new(SequencerConfig::default());
    h.complete_oldest_write();
    for i in 0..5u8 {
        h.submit(&[i]);
    }
    h.settle();
    // The backup: a copy of the store at size 5.
    let backup_state = h.store.stored_state();
    let backup_hashes = h.store.hashes.clone();
    for i in 5..9u8 {
        h.submit(&[i]);
    }
    h.settle();
    let published = h.store.latest.clone().unwrap();

    let mut restored = Sequencer::recover(
        SequencerConfig::default(),
        signer(),
        backup_state.clone(),
        &backup_hashes,
        Some(&published.note),
    )
    .unwrap();
    assert_eq!(
        restored.halted(),
        Some(&Halt::BehindPublished {
            local: 5,
            published: 9
        })
    );
    restored.submit(
        h.now,
        Ticket(1),
        entry(b"would fork"),
        &ModelStore::default(),
    );
    assert!(matches!(
        restored.poll_output(),
        Some(SequencerOutput::Rejected {
            reason: Rejection::Halted(Halt::BehindPublished { .. }),
            ..
        })
    ));
    assert!(restored.poll_output().is_none());

    // The live store itself, checked against an older published checkpoint: consistent.
    let old = h.store.checkpoints[&5].clone();
    let live = Sequencer::recover(
        SequencerConfig::default(),
        signer(),
        h.store.stored_state(),
        &h.store.hashes,
        Some(&old.note),
    )
    .unwrap();
    assert_eq!(live.halted(), None);

    // A store with another history at the published size: forked, refuses to sign.
    let mut other = ModelStore::default();
    let mut other_harness = Harness::new(SequencerConfig::default());
    other_harness.complete_oldest_write();
    for i in 100..109u8 {
        other_harness.submit(&[i]);
    }
    other_harness.settle();
    std::mem::swap(&mut other, &mut other_harness.store);
    let forked = Sequencer::recover(
        SequencerConfig::default(),
        signer(),
        other.stored_state(),
        &other.hashes,
        Some(&published.note),
    )
    .unwrap();
    assert_eq!(
        forked.halted(),
        Some(&Halt::ForkedFromPublished { size: 9 })
    );
    assert_ne!(
        tree_hash(9, &other.hashes).unwrap(),
        published.root_hash,
        "the scenario really forks"
    );
}

#[test]
fn recover_rejects_a_checkpoint_that_does_not_describe_the_tree() {
    let mut h = Harness::new(SequencerConfig::default());
    h.complete_oldest_write();
    h.submit(b"x");
    h.settle();
    let mut state = h.store.stored_state();
    state.size = 0;
    assert!(
        Sequencer::recover(
            SequencerConfig::default(),
            signer(),
            state,
            &h.store.hashes,
            None
        )
        .is_err()
    );
    // Another key's checkpoint is not this log's.
    let other_key = Ed25519Signer::from_seed(KeyName::new(ORIGIN).unwrap(), &[8; 32]);
    assert!(
        Sequencer::recover(
            SequencerConfig::default(),
            other_key,
            h.store.stored_state(),
            &h.store.hashes,
            None
        )
        .is_err()
    );
}

#[derive(Debug, Clone)]
enum Step {
    Submit(u8),
    Advance(u16),
    Complete,
    Fail,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0u8..40).prop_map(Step::Submit),
        3 => (0u16..400).prop_map(Step::Advance),
        4 => Just(Step::Complete),
        1 => Just(Step::Fail),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    })]

    /// Under any schedule: every submission is answered exactly once, nothing is
    /// answered or published before it is durable, no body gets two leaves, published
    /// sizes increase, and the durable checkpoints always describe the durable tree
    /// (checked as each output appears, in `Harness`).
    #[test]
    fn every_schedule_keeps_the_promises(
        steps in proptest::collection::vec(step(), 0..200),
        max_batch in 1usize..8,
        max_pending in 1usize..20,
    ) {
        let config = SequencerConfig {
            max_batch_entries: max_batch,
            max_batch_delay: Duration::from_millis(250),
            max_pending_entries: max_pending,
        };
        let mut h = Harness::new(config);
        for step in steps {
            match step {
                Step::Submit(n) => { h.submit(&[n]); }
                Step::Advance(ms) => h.advance(u64::from(ms)),
                Step::Complete => { h.complete_oldest_write(); }
                Step::Fail => { h.fail_oldest_write(); }
            }
        }
        h.settle();
        prop_assert_eq!(h.answered.len(), h.submitted.len(), "every ticket answered");
        prop_assert_eq!(h.sequencer.pending_entries(), 0);
        if h.sequencer.halted().is_none() {
            prop_assert_eq!(h.sequencer.published().map(|c| c.size), Some(h.store.bodies.len() as u64));
        }
    }
}

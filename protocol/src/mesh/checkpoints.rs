//! The checkpoint book: which logs a node follows, the latest checkpoint it holds for
//! each, what it relays, when it fetches consistency proofs and from whom, and
//! anti-entropy with random peers.
//!
//! Gossipsub (one topic per log) and request-response carry the bytes; every decision is
//! made here, so the node and the simulator run the same rules. The book is a sans-IO
//! machine (see [`crate::machine`]): time comes in as an argument, randomness from the
//! seed in [`CheckpointBookConfig::seed`], and outputs leave through
//! [`CheckpointBook::poll_output`], drained after every input, with
//! [`CheckpointBook::poll_timeout`] saying when to call [`CheckpointBook::handle_timeout`].
//! The inputs that must answer at once — a gossipsub validation verdict, the notes of an
//! anti-entropy answer — return their answer; everything else is an output.
//!
//! # What the book decides
//!
//! * **Validation and relay** ([`CheckpointBook::handle_checkpoint`] → [`Relay`]). The
//!   origin is read from the note's first line; a log the node does not know or does not
//!   follow is ignored before any signature is checked. A note that is not a checkpoint
//!   of the log signed by the log's key is rejected (the driver scores the sender down).
//!   A valid checkpoint is accepted for relay when it is new to the node — bigger than
//!   the latest adopted one, or the first one — and ignored when it is a duplicate or
//!   older. A checkpoint that conflicts with one the node holds is relayed too, so that
//!   every follower sees the split view, not only this node.
//! * **Adoption.** The first checkpoint of a log is adopted as is (trust on first use;
//!   later checkpoints must extend it). A bigger one is adopted only once an RFC 9162
//!   consistency proof from the latest adopted checkpoint to it verifies; until then it
//!   is the log's single *pending candidate* (the biggest seen). Checkpoints from the
//!   node's own sequencer or store (`from = None`) are adopted without a proof: the
//!   sequencer only signs extensions of its own tree ([`crate::log::sequencer`]).
//!   Adopted sizes never decrease.
//! * **Conflicts are reported, never adopted.** Two checkpoints validly signed for one
//!   size with different roots, and a proof that reproduces the newer signed root while
//!   deriving a different root for our older size, are output as
//!   [`CheckpointEvent::Conflict`]. A proof that merely fails to verify is not evidence
//!   (anyone can send garbage): the peer that sent it is reported as
//!   [`CheckpointEvent::Misbehaved`] and another server is asked.
//! * **Proof fetching.** A proof is asked of the peer the candidate came from if it
//!   declared that it serves the log ([`CheckpointBook::peer_serves`]: the log's
//!   authority, mirrors), else of a random connected server, preferring servers not yet
//!   asked. A request that times out, fails, or whose peer disconnects is retried with
//!   another server; after [`CheckpointBookConfig::max_fetch_attempts`] attempts the
//!   candidate is dropped ([`CheckpointEvent::GaveUp`]) until it is seen again.
//! * **Anti-entropy.** About every [`CheckpointBookConfig::anti_entropy_interval`]
//!   (jittered by ±50 % so nodes do not synchronise) the book sends a [`Summary`] of its
//!   followed logs to one random connected peer. The peer answers with its notes that are
//!   newer or that the requester lacks ([`CheckpointBook::handle_summary`]), and if the
//!   requester holds newer ones it sends its own summary back (push-pull), at most once
//!   per interval per peer so that two nodes waiting for proofs do not ping-pong.
//!
//! # Who follows what
//!
//! [`FollowPolicy::follows`] is the rule, a pure function the driver evaluates whenever
//! the set of accepted domain records changes, passing the result to
//! [`CheckpointBook::set_log`]. A node follows a log when
//! 1. the log belongs to the node's own trust domain (it fronts that log);
//! 2. the operator configured the origin (the node looks it up or audits it);
//! 3. the federation has at most [`FollowPolicy::follow_all_up_to_domains`] domains —
//!    in a small federation everyone follows everything, which costs little and makes
//!    every node a detector of split views; or
//! 4. the log's domain is among the [`FollowPolicy::witness_sample`] domains ranked
//!    highest for the node by rendezvous hashing, `SHA-256(tag ‖ len(key) ‖ key ‖
//!    domain)`. Each node then follows a bounded number of foreign domains whatever the
//!    size of the federation, every domain is followed by about
//!    `nodes × witness_sample / domains` nodes, and a domain joining or leaving changes
//!    each node's sample by at most one domain. The key is the node's choice: the name of
//!    its own trust domain makes all nodes of a domain follow the same logs (the ones its
//!    witness cosigns), a per-node key spreads the load further.
//!
//! Evidence is not subject to following: it is gossiped to everyone (not this module).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::checkpoint::{self, CheckpointOpenError};
use crate::machine::Timestamp;
use crate::merkle::{ConsistencyError, Hash, consistency_proof_roots, verify_consistency};
use crate::mesh::cosignatures::{Cosignatures, InvalidCosignature, WitnessRoster, served_note};
use crate::note::{Note, Verifier};
use crate::spiffe::TrustDomain;

/// Tunables of a [`CheckpointBook`]. Every collection the book keeps is bounded by one of
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBookConfig {
    /// Mean time between two anti-entropy rounds (each is jittered to 50–150 % of it).
    /// Default 10 s.
    pub anti_entropy_interval: Duration,
    /// How long a consistency proof request may take before another server is asked.
    /// Default 5 s.
    pub proof_fetch_timeout: Duration,
    /// Proof requests per candidate (including attempts that found no server) before the
    /// candidate is dropped. Default 3.
    pub max_fetch_attempts: u32,
    /// Logs the book knows, followed or not. Default 10 000.
    pub max_logs: usize,
    /// Logs the book follows. Default 1 000.
    pub max_followed_logs: usize,
    /// Candidates waiting for a consistency proof at once (one per log at most).
    /// Default 256.
    pub max_pending_fetches: usize,
    /// Notes in one anti-entropy answer; beyond it a random subset is sent and the rest
    /// follows in later rounds. Default 64.
    pub max_checkpoints_per_answer: usize,
    /// The largest checkpoint note accepted, in bytes. A served checkpoint carries the log
    /// signature and at most 15 cosignatures (design: "Transparency log"), a few KiB.
    /// Default 16 KiB.
    pub max_note_bytes: usize,
    /// Connected peers tracked. Default 1 024.
    pub max_peers: usize,
    /// Origins one peer may declare it serves. Default 256.
    pub max_origins_per_peer: usize,
    /// How far in the future a witness cosignature's timestamp may lie and still count
    /// (see [`crate::mesh::cosignatures`]). Default 5 min.
    pub cosignature_clock_skew: Duration,
    /// Seed of the book's peer-picking PRNG (not cryptographic). The node passes random
    /// bytes from the OS, the simulator a per-node seed; two books with one seed and the
    /// same inputs make the same choices. Default 0.
    pub seed: u64,
}

impl Default for CheckpointBookConfig {
    fn default() -> Self {
        CheckpointBookConfig {
            anti_entropy_interval: Duration::from_secs(10),
            proof_fetch_timeout: Duration::from_secs(5),
            max_fetch_attempts: 3,
            max_logs: 10_000,
            max_followed_logs: 1_000,
            max_pending_fetches: 256,
            max_checkpoints_per_answer: 64,
            max_note_bytes: 16 * 1024,
            max_peers: 1_024,
            max_origins_per_peer: 256,
            cosignature_clock_skew: Duration::from_secs(300),
            seed: 0,
        }
    }
}

/// Names one consistency proof request; the answer ([`CheckpointBook::handle_consistency_proof`])
/// or failure ([`CheckpointBook::handle_fetch_failed`]) carries it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// A tree size and its root hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TreeHead {
    /// Number of leaves.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
}

/// The newest checkpoint the book adopted for a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestCheckpoint {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// The signed note with the log's signature only (the lines of other keys removed).
    pub note: Vec<u8>,
    /// The witness cosignatures collected for it, one per domain.
    pub cosignatures: Cosignatures,
    /// When it was adopted.
    pub adopted_at: Timestamp,
}

impl LatestCheckpoint {
    /// The note to serve and gossip: the log's signature and up to 15 cosignatures.
    pub fn served_note(&self) -> Vec<u8> {
        served_note(&self.note, &self.cosignatures)
    }

    /// Its size and root.
    pub fn head(&self) -> TreeHead {
        TreeHead {
            size: self.size,
            root: self.root,
        }
    }
}

/// One line of an anti-entropy [`Summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryEntry {
    /// The log's origin.
    pub origin: String,
    /// The sender's latest adopted checkpoint, or `None` when it follows the log but holds
    /// no checkpoint of it yet.
    pub head: Option<TreeHead>,
    /// How many domains' cosignatures the sender holds for that checkpoint: a peer with
    /// the same head and fewer is sent ours.
    pub cosignatures: usize,
}

/// What a node holds of the logs it follows, sent to a random peer in anti-entropy.
///
/// Its length is bounded by the sender's [`CheckpointBookConfig::max_followed_logs`]; the
/// wire decoder bounds what a peer may send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// One entry per followed log, in origin order.
    pub entries: Vec<SummaryEntry>,
}

/// The gossipsub validation verdict for a received checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relay {
    /// Valid and new to this node: relay it.
    Accept,
    /// Valid or unverifiable, but nothing to relay; the sender did nothing wrong.
    Ignore(IgnoreReason),
    /// Not a valid checkpoint of a followed log: drop it and score the sender down.
    Reject(RejectReason),
}

/// Why a checkpoint was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoreReason {
    /// The book knows no log with this origin (no accepted domain record lists it yet).
    UnknownLog,
    /// The log is known but not followed by this node.
    Unfollowed,
    /// The book already holds this checkpoint (same size and root), adopted or pending.
    Duplicate,
    /// The checkpoint is smaller than the latest adopted one.
    Older,
}

/// Why a checkpoint was rejected: the sender sent something no honest node relays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The note is larger than [`CheckpointBookConfig::max_note_bytes`].
    #[error("checkpoint note is {size} bytes, more than the limit of {max}")]
    TooLarge {
        /// Size of the note.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The note does not start with a non-empty UTF-8 origin line.
    #[error("checkpoint note does not start with an origin line")]
    NoOrigin,
    /// The note is not a checkpoint of the log signed by the log's key.
    #[error("checkpoint of {origin:?} does not verify: {error}")]
    Open {
        /// The origin named on the first line.
        origin: String,
        /// What is wrong.
        error: CheckpointOpenError,
    },
    /// A cosignature line of a known witness key does not verify.
    #[error(transparent)]
    BadCosignature(#[from] InvalidCosignature),
}

/// How two checkpoints of one log were shown to be incompatible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConflictKind {
    /// Both are signed for the same size with different roots.
    SameSize,
    /// The proof reproduces the newer (`theirs`) signed root and derives a root for the
    /// older size different from the older (`ours`) signed one: the log signed two trees
    /// of which neither extends the other.
    Inconsistent {
        /// The RFC 9162 consistency proof from `ours`'s size to `theirs`'s size.
        proof: Vec<Hash>,
        /// When `ours`'s size is a power of two, the subtree of that size in `theirs`'s
        /// tree, which RFC 9162 leaves out of the proof and the evidence must carry.
        old_subtree: Option<Hash>,
    },
}

/// What a peer did wrong, as far as this book can tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misbehavior {
    /// It answered a proof request with a consistency proof that does not verify.
    #[error("consistency proof for {origin:?} from size {first} to {last} is invalid: {error}")]
    InvalidConsistencyProof {
        /// The log.
        origin: String,
        /// The older size asked for.
        first: u64,
        /// The newer size asked for.
        last: u64,
        /// Why the proof failed.
        error: ConsistencyError,
    },
}

/// Why a candidate checkpoint was dropped without being adopted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// No valid proof arrived within this many attempts (timeouts, failures, invalid
    /// proofs, or no server of the log connected).
    AttemptsExhausted {
        /// Attempts made.
        attempts: u32,
    },
    /// [`CheckpointBookConfig::max_pending_fetches`] candidates of other logs are
    /// already waiting for proofs; the checkpoint will come again through gossip or
    /// anti-entropy.
    TooManyPendingFetches {
        /// The limit.
        limit: usize,
    },
}

/// What the book asks its driver to do or to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointEvent<P> {
    /// A checkpoint became the log's latest: persist it, serve it, index it.
    Adopted {
        /// The log.
        origin: String,
        /// Its tree size.
        size: u64,
        /// Its root hash.
        root: Hash,
        /// The signed note (the log's signature only).
        note: Vec<u8>,
        /// The checkpoint adopted before it, if any.
        previous: Option<TreeHead>,
        /// The verified consistency proof from `previous` to it; empty when it was
        /// adopted without a proof (the first, the node's own, or one after size 0).
        proof: Vec<Hash>,
    },
    /// Ask `peer` for the consistency proof of `origin` from `first` to `last` leaves;
    /// deliver the answer with [`CheckpointBook::handle_consistency_proof`] or the failure
    /// with [`CheckpointBook::handle_fetch_failed`].
    FetchConsistency {
        /// Echo this with the answer.
        request_id: RequestId,
        /// Who to ask.
        peer: P,
        /// The log.
        origin: String,
        /// The older tree size (the latest adopted checkpoint).
        first: u64,
        /// The newer tree size (the candidate).
        last: u64,
    },
    /// Two validly signed checkpoints of the log cannot both be true. Neither is adopted
    /// in place of the other; evidence handling takes it from here.
    Conflict {
        /// The log.
        origin: String,
        /// The checkpoint the book held: the latest adopted one, or the pending candidate
        /// when the conflict is between two candidates.
        ours: Vec<u8>,
        /// The checkpoint just received.
        theirs: Vec<u8>,
        /// How they conflict.
        kind: ConflictKind,
    },
    /// A peer answered with something invalid: score it down.
    Misbehaved {
        /// The peer.
        peer: P,
        /// What it did.
        reason: Misbehavior,
    },
    /// A candidate was dropped unadopted.
    GaveUp {
        /// The log.
        origin: String,
        /// The candidate's size.
        size: u64,
        /// Why.
        reason: GiveUpReason,
    },
    /// Send this anti-entropy summary to `peer`; feed the notes it answers with through
    /// [`CheckpointBook::handle_checkpoint`] with `from = Some(peer)`.
    SendSummary {
        /// Who to send it to.
        peer: P,
        /// What to send.
        summary: Summary,
    },
}

/// Why [`CheckpointBook::set_log`] refused a log. All variants are caller errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetLogError {
    /// The origin is empty or contains a control character.
    #[error("log origin {0:?} is empty or contains control characters")]
    InvalidOrigin(String),
    /// The book already knows [`CheckpointBookConfig::max_logs`] logs.
    #[error("the checkpoint book already knows {limit} logs")]
    TooManyLogs {
        /// The limit.
        limit: usize,
    },
    /// The book already follows [`CheckpointBookConfig::max_followed_logs`] logs.
    #[error("the checkpoint book already follows {limit} logs")]
    TooManyFollowed {
        /// The limit.
        limit: usize,
    },
    /// The origin is known with another key. A log key never rotates in place (a new key
    /// is a new log with a new origin); remove the log first to replace it.
    #[error("log {origin:?} is already known with another key")]
    KeyChanged {
        /// The origin.
        origin: String,
    },
}

/// Why [`CheckpointBook::peer_connected`] refused a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerConnectError {
    /// [`CheckpointBookConfig::max_peers`] peers are already tracked.
    #[error("the checkpoint book already tracks {limit} peers")]
    TooManyPeers {
        /// The limit.
        limit: usize,
    },
}

/// One log as [`CheckpointBook::logs`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStatus<'a> {
    /// The origin.
    pub origin: &'a str,
    /// Whether the node follows it.
    pub followed: bool,
    /// The latest adopted checkpoint.
    pub latest: Option<&'a LatestCheckpoint>,
    /// The size of the candidate waiting for a consistency proof.
    pub pending_size: Option<u64>,
    /// Conflicts reported for the log since it was set.
    pub conflicts: u64,
}

/// Which logs a node follows (see "Who follows what" in the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowPolicy {
    /// The node's trust domain: its logs are always followed.
    pub own_trust_domain: TrustDomain,
    /// Origins the operator asked to follow, whatever their domain.
    pub configured_origins: BTreeSet<String>,
    /// Up to this many federated domains (the node's own included), every log is
    /// followed. Default 32.
    pub follow_all_up_to_domains: usize,
    /// In a bigger federation, the number of other domains whose logs the node follows,
    /// chosen by rendezvous hashing. Default 8.
    pub witness_sample: usize,
}

/// Domain separation of the rendezvous hash, so its scores are useless for anything else.
const FOLLOW_HASH_TAG: &[u8] = b"provmesh follow-sample v1\0";

impl FollowPolicy {
    /// The default policy for a node of `own_trust_domain`: nothing configured, follow
    /// everything up to 32 domains, else a sample of 8 other domains.
    pub fn new(own_trust_domain: TrustDomain) -> Self {
        FollowPolicy {
            own_trust_domain,
            configured_origins: BTreeSet::new(),
            follow_all_up_to_domains: 32,
            witness_sample: 8,
        }
    }

    /// Whether the node with `node_key` follows the log `origin` of `owning_domain`, in a
    /// federation of `all_domains` (duplicates are counted once).
    ///
    /// For many logs at once, compute [`FollowPolicy::sampled_domains`] once instead: this
    /// call hashes every domain.
    pub fn follows(
        &self,
        origin: &str,
        owning_domain: &TrustDomain,
        node_key: &[u8],
        all_domains: &[TrustDomain],
    ) -> bool {
        if *owning_domain == self.own_trust_domain || self.configured_origins.contains(origin) {
            return true;
        }
        let distinct: BTreeSet<&TrustDomain> = all_domains.iter().collect();
        if !distinct.contains(owning_domain) {
            // A domain the federation does not list has no accepted record: nothing to
            // sample, and its logs cannot be known anyway.
            return false;
        }
        if distinct.len() <= self.follow_all_up_to_domains {
            return true;
        }
        let own_score = rendezvous_score(node_key, owning_domain);
        let outranked_by = distinct
            .iter()
            .filter(|d| ***d != self.own_trust_domain && **d != owning_domain)
            .filter(|d| rendezvous_score(node_key, d) > own_score)
            .count();
        outranked_by < self.witness_sample
    }

    /// The foreign domains whose logs the node follows besides its own and the configured
    /// origins: all other domains in a small federation, else the
    /// [`FollowPolicy::witness_sample`] domains with the highest rendezvous scores for
    /// `node_key`. Sorted by domain name, without duplicates.
    pub fn sampled_domains<'d>(
        &self,
        node_key: &[u8],
        all_domains: &'d [TrustDomain],
    ) -> Vec<&'d TrustDomain> {
        let distinct: BTreeSet<&TrustDomain> = all_domains.iter().collect();
        let follow_all = distinct.len() <= self.follow_all_up_to_domains;
        let mut others: Vec<(Hash, &TrustDomain)> = distinct
            .into_iter()
            .filter(|d| **d != self.own_trust_domain)
            .map(|d| (rendezvous_score(node_key, d), d))
            .collect();
        if !follow_all {
            // Highest score first; scores tie only on a SHA-256 collision.
            others.sort_unstable_by(|a, b| b.cmp(a));
            others.truncate(self.witness_sample);
        }
        let mut sample: Vec<&TrustDomain> = others.into_iter().map(|(_, d)| d).collect();
        sample.sort_unstable();
        sample
    }
}

/// The rendezvous (highest random weight) score of `domain` for `node_key`:
/// `SHA-256(tag ‖ u64be(len(key)) ‖ key ‖ domain)`. The length prefix keeps key/domain
/// splits unambiguous; compared as a big-endian 256-bit number.
fn rendezvous_score(node_key: &[u8], domain: &TrustDomain) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(FOLLOW_HASH_TAG);
    hasher.update((node_key.len() as u64).to_be_bytes());
    hasher.update(node_key);
    hasher.update(domain.as_str().as_bytes());
    hasher.finalize().into()
}

/// SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014; constants of Vigna's reference `splitmix64.c`). It only picks peers: a
/// peer that predicts it gains nothing it could not get by connecting more often.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by Lemire's multiply-shift: the bias is below
    /// `n / 2^64`, irrelevant for picking among at most a few thousand peers.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// A validly signed checkpoint not (yet) adopted.
#[derive(Debug, Clone)]
struct Candidate {
    size: u64,
    root: Hash,
    /// The log-signed note (the log's signature only).
    note: Vec<u8>,
    cosignatures: Cosignatures,
}

/// Where the proof request of a pending candidate stands.
#[derive(Debug, Clone)]
enum Fetch<P> {
    /// Asked `peer`; retry elsewhere after `deadline`.
    InFlight {
        peer: P,
        request_id: RequestId,
        deadline: Timestamp,
    },
    /// Not asked anyone (no server was connected, or the last one failed); try at
    /// `retry_at`.
    Idle { retry_at: Timestamp },
}

/// A candidate waiting for its consistency proof.
#[derive(Debug, Clone)]
struct Pending<P> {
    candidate: Candidate,
    /// The latest adopted checkpoint the proof must start from.
    base: TreeHead,
    /// Who sent the candidate (asked first if it serves the log).
    source: Option<P>,
    /// Attempts made, bounded by `max_fetch_attempts`.
    attempts: u32,
    /// Servers asked, so retries prefer others; at most `max_fetch_attempts` entries.
    tried: BTreeSet<P>,
    fetch: Fetch<P>,
}

#[derive(Debug, Clone)]
struct LogState<P> {
    verifier: Verifier,
    followed: bool,
    latest: Option<LatestCheckpoint>,
    /// The checkpoints adopted before `latest`, newest first, at most
    /// [`COSIGNED_HISTORY`]: cosignatures still arrive for them after a newer one was
    /// adopted, and a consumer is better served by an older checkpoint with more.
    previous: VecDeque<LatestCheckpoint>,
    pending: Option<Pending<P>>,
    conflicts: u64,
}

impl<P> LogState<P> {
    /// The biggest size the book holds or is checking: a peer's summary below it brings
    /// nothing new.
    fn known_size(&self) -> Option<u64> {
        let latest = self.latest.as_ref().map(|l| l.size);
        let pending = self.pending.as_ref().map(|p| p.candidate.size);
        latest.max(pending)
    }
}

/// How many checkpoints before the latest keep collecting cosignatures.
const COSIGNED_HISTORY: usize = 3;

#[derive(Debug, Clone, Default)]
struct PeerState {
    /// Origins the peer declared it can prove (bounded by `max_origins_per_peer`).
    serves: BTreeSet<String>,
    /// When this book last answered the peer's summary with its own (push-pull).
    last_pull: Option<Timestamp>,
}

/// The checkpoint gossip state machine of one node (see the module documentation).
///
/// `P` names a peer (the node uses libp2p's `PeerId`, the simulator an index).
#[derive(Debug)]
pub struct CheckpointBook<P: Clone + Ord + Debug> {
    config: CheckpointBookConfig,
    rng: SplitMix64,
    logs: BTreeMap<String, LogState<P>>,
    /// Whose cosignatures count.
    witnesses: WitnessRoster,
    followed: usize,
    /// Origins whose log has a pending candidate; bounded by `max_pending_fetches`.
    pending: BTreeSet<String>,
    peers: BTreeMap<P, PeerState>,
    outputs: VecDeque<CheckpointEvent<P>>,
    next_request: u64,
    next_anti_entropy: Timestamp,
}

impl<P: Clone + Ord + Debug> CheckpointBook<P> {
    /// An empty book created at `now`; its first anti-entropy round is due within 0.5–1.5
    /// intervals.
    pub fn new(config: CheckpointBookConfig, now: Timestamp) -> Self {
        let mut book = CheckpointBook {
            rng: SplitMix64(config.seed),
            config,
            logs: BTreeMap::new(),
            witnesses: WitnessRoster::new(),
            followed: 0,
            pending: BTreeSet::new(),
            peers: BTreeMap::new(),
            outputs: VecDeque::new(),
            next_request: 0,
            next_anti_entropy: now,
        };
        book.schedule_anti_entropy(now);
        book
    }

    /// The configuration.
    pub fn config(&self) -> &CheckpointBookConfig {
        &self.config
    }

    // ---- Logs and peers -------------------------------------------------------------

    /// Declares the log `origin`, verified with `verifier`, followed or not (see
    /// [`FollowPolicy`]). The driver keeps the book in line with the accepted domain
    /// records. Setting a known log again changes whether it is followed; unfollowing
    /// drops its pending candidate but keeps its latest checkpoint, against which the
    /// log is checked if it is followed again.
    pub fn set_log(
        &mut self,
        origin: impl Into<String>,
        verifier: Verifier,
        followed: bool,
    ) -> Result<(), SetLogError> {
        let origin = origin.into();
        if let Some(log) = self.logs.get_mut(&origin) {
            if log.verifier != verifier {
                return Err(SetLogError::KeyChanged { origin });
            }
            if followed && !log.followed {
                if self.followed >= self.config.max_followed_logs {
                    return Err(SetLogError::TooManyFollowed {
                        limit: self.config.max_followed_logs,
                    });
                }
                self.followed += 1;
            } else if !followed && log.followed {
                self.followed -= 1;
                log.pending = None;
                self.pending.remove(&origin);
            }
            log.followed = followed;
            return Ok(());
        }
        // Same rule as the checkpoint body: "The origin MUST be non-empty", one line.
        if origin.is_empty() || origin.bytes().any(|b| b < 0x20) {
            return Err(SetLogError::InvalidOrigin(origin));
        }
        if self.logs.len() >= self.config.max_logs {
            return Err(SetLogError::TooManyLogs {
                limit: self.config.max_logs,
            });
        }
        if followed {
            if self.followed >= self.config.max_followed_logs {
                return Err(SetLogError::TooManyFollowed {
                    limit: self.config.max_followed_logs,
                });
            }
            self.followed += 1;
        }
        self.logs.insert(
            origin,
            LogState {
                verifier,
                followed,
                latest: None,
                previous: VecDeque::new(),
                pending: None,
                conflicts: 0,
            },
        );
        Ok(())
    }

    /// Forgets the log `origin` (its domain record revoked or removed it), with its latest
    /// checkpoint and pending candidate. Returns whether it was known.
    pub fn remove_log(&mut self, origin: &str) -> bool {
        let Some(log) = self.logs.remove(origin) else {
            return false;
        };
        if log.followed {
            self.followed -= 1;
        }
        self.pending.remove(origin);
        true
    }

    /// Sets whose witness cosignatures count: the witness keys of the accepted domains.
    /// The driver calls it whenever the accepted domain records change; cosignatures
    /// already collected stay.
    pub fn set_witnesses(&mut self, witnesses: WitnessRoster) {
        self.witnesses = witnesses;
    }

    /// A peer connected. Connecting twice is harmless.
    pub fn peer_connected(&mut self, peer: P) -> Result<(), PeerConnectError> {
        if self.peers.contains_key(&peer) {
            return Ok(());
        }
        if self.peers.len() >= self.config.max_peers {
            return Err(PeerConnectError::TooManyPeers {
                limit: self.config.max_peers,
            });
        }
        self.peers.insert(peer, PeerState::default());
        Ok(())
    }

    /// A peer disconnected: it is no longer picked for anti-entropy or proofs, and proof
    /// requests in flight to it are retried with another server at the next
    /// [`CheckpointBook::handle_timeout`] (which [`CheckpointBook::poll_timeout`] makes due
    /// at once).
    pub fn peer_disconnected(&mut self, peer: &P) {
        if self.peers.remove(peer).is_none() {
            return;
        }
        for origin in &self.pending {
            if let Some(pending) = self.logs.get_mut(origin).and_then(|l| l.pending.as_mut())
                && matches!(&pending.fetch, Fetch::InFlight { peer: p, .. } if p == peer)
            {
                pending.fetch = Fetch::Idle {
                    retry_at: Timestamp::EPOCH,
                };
            }
        }
    }

    /// The connected `peer` declared the logs it can answer proofs for (the log's
    /// authority, mirrors); replaces its earlier declaration. Declarations of peers that
    /// are not connected are ignored. At most [`CheckpointBookConfig::max_origins_per_peer`]
    /// origins are kept, those of known logs first. Candidates waiting for a server of one
    /// of these logs are retried at the next [`CheckpointBook::handle_timeout`].
    pub fn peer_serves<I, S>(&mut self, peer: &P, origins: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        let limit = self.config.max_origins_per_peer;
        let mut known = BTreeSet::new();
        let mut unknown = BTreeSet::new();
        // Bound the work, not only what is kept: a peer may declare without end.
        for origin in origins.into_iter().take(limit.saturating_mul(4)) {
            let origin = origin.as_ref();
            if self.logs.contains_key(origin) {
                if known.len() < limit {
                    known.insert(origin.to_owned());
                }
            } else if unknown.len() < limit {
                unknown.insert(origin.to_owned());
            }
        }
        let room = limit - known.len();
        known.extend(unknown.into_iter().take(room));
        state.serves = known;
        for origin in &self.pending {
            if !state.serves.contains(origin) {
                continue;
            }
            if let Some(pending) = self.logs.get_mut(origin).and_then(|l| l.pending.as_mut())
                && let Fetch::Idle { retry_at } = &mut pending.fetch
            {
                *retry_at = Timestamp::EPOCH;
            }
        }
    }

    // ---- Checkpoints ----------------------------------------------------------------

    /// Handles a checkpoint note received by gossip or in an anti-entropy answer from
    /// `from`, or produced by the node's own sequencer or read from its store
    /// (`from = None`), and returns the gossipsub verdict. See the module documentation
    /// for the rules; effects are outputs.
    pub fn handle_checkpoint(&mut self, now: Timestamp, from: Option<P>, note: &[u8]) -> Relay {
        match self.open(now, note) {
            Ok((origin, candidate)) => self.consider(now, origin, from, candidate),
            Err(verdict) => verdict,
        }
    }

    /// Restores the latest checkpoint of a followed log from the node's store after a
    /// restart, so that the log is held to the history it showed before instead of being
    /// trusted on first use again. The note is checked like a received one (its log
    /// signature and cosignatures); nothing happens when the book already holds a
    /// checkpoint of the log. No output: the checkpoint was adopted before.
    pub fn restore(&mut self, now: Timestamp, note: &[u8]) -> Result<(), Relay> {
        let (origin, candidate) = self.open(now, note)?;
        if let Some(log) = self.logs.get_mut(&origin)
            && log.latest.is_none()
        {
            log.latest = Some(LatestCheckpoint {
                size: candidate.size,
                root: candidate.root,
                note: candidate.note,
                cosignatures: candidate.cosignatures,
                adopted_at: now,
            });
        }
        Ok(())
    }

    /// Checks `note`: a checkpoint of a followed log, signed by the log's key, whose
    /// cosignature lines of known witnesses verify. The verdict is the error.
    fn open(&self, now: Timestamp, note: &[u8]) -> Result<(String, Candidate), Relay> {
        if note.len() > self.config.max_note_bytes {
            return Err(Relay::Reject(RejectReason::TooLarge {
                size: note.len(),
                max: self.config.max_note_bytes,
            }));
        }
        let Some(origin) = origin_line(note) else {
            return Err(Relay::Reject(RejectReason::NoOrigin));
        };
        let Some(log) = self.logs.get(origin) else {
            return Err(Relay::Ignore(IgnoreReason::UnknownLog));
        };
        if !log.followed {
            return Err(Relay::Ignore(IgnoreReason::Unfollowed));
        }
        let mut signed = checkpoint::open(note, origin, &log.verifier).map_err(|error| {
            Relay::Reject(RejectReason::Open {
                origin: origin.to_owned(),
                error,
            })
        })?;
        let cosignatures = self
            .witnesses
            .collect(
                &signed.note,
                now.as_unix_seconds(),
                self.config.cosignature_clock_skew.as_secs(),
            )
            .map_err(|invalid| Relay::Reject(invalid.into()))?;
        let candidate = Candidate {
            size: signed.checkpoint.size(),
            root: *signed.checkpoint.root_hash(),
            note: log_signed(&mut signed.note, &log.verifier),
            cosignatures,
        };
        Ok((origin.to_owned(), candidate))
    }

    /// The answer `proof` (RFC 9162 consistency path, as sent) to the proof request
    /// `request_id` made of `peer`, with `old_subtree`, the root of the older size in the
    /// server's tree, which servers add when the older size is a power of two (the RFC
    /// proof leaves it out; it only matters to prove a fork). Answers to requests the
    /// book no longer waits for (superseded, timed out, or from another peer) are
    /// ignored.
    pub fn handle_consistency_proof(
        &mut self,
        now: Timestamp,
        peer: &P,
        request_id: RequestId,
        proof: &[Hash],
        old_subtree: Option<Hash>,
    ) {
        let Some(origin) = self.in_flight(peer, request_id) else {
            return;
        };
        let Some(log) = self.logs.get_mut(&origin) else {
            return;
        };
        let Some(pending) = log.pending.as_mut() else {
            return;
        };
        let (base, candidate) = (pending.base, &pending.candidate);
        match verify_consistency(
            base.size,
            candidate.size,
            proof,
            &base.root,
            &candidate.root,
        ) {
            Ok(()) => {
                let Some(pending) = log.pending.take() else {
                    return;
                };
                self.pending.remove(&origin);
                adopt(
                    &mut self.outputs,
                    log,
                    &origin,
                    pending.candidate,
                    now,
                    proof.to_vec(),
                );
            }
            Err(error) => {
                if proves_fork(base, candidate, proof, old_subtree) {
                    let ours = log.latest.as_ref().map(|l| l.note.clone());
                    let Some(pending) = log.pending.take() else {
                        return;
                    };
                    self.pending.remove(&origin);
                    log.conflicts += 1;
                    self.outputs.push_back(CheckpointEvent::Conflict {
                        origin,
                        ours: ours.unwrap_or_default(),
                        theirs: pending.candidate.note,
                        kind: ConflictKind::Inconsistent {
                            proof: proof.to_vec(),
                            old_subtree: old_subtree.filter(|_| base.size.is_power_of_two()),
                        },
                    });
                    return;
                }
                self.outputs.push_back(CheckpointEvent::Misbehaved {
                    peer: peer.clone(),
                    reason: Misbehavior::InvalidConsistencyProof {
                        origin: origin.clone(),
                        first: base.size,
                        last: candidate.size,
                        error,
                    },
                });
                pending.fetch = Fetch::Idle { retry_at: now };
                self.dispatch(now, &origin);
            }
        }
    }

    /// The proof request `request_id` to `peer` failed without an answer (the peer
    /// declined, the stream broke): another server is asked at once.
    pub fn handle_fetch_failed(&mut self, now: Timestamp, peer: &P, request_id: RequestId) {
        let Some(origin) = self.in_flight(peer, request_id) else {
            return;
        };
        if let Some(pending) = self.logs.get_mut(&origin).and_then(|l| l.pending.as_mut()) {
            pending.fetch = Fetch::Idle { retry_at: now };
        }
        self.dispatch(now, &origin);
    }

    // ---- Anti-entropy ---------------------------------------------------------------

    /// What the node holds of the logs it follows.
    pub fn summary(&self) -> Summary {
        Summary {
            entries: self
                .logs
                .iter()
                .filter(|(_, log)| log.followed)
                .map(|(origin, log)| SummaryEntry {
                    origin: origin.clone(),
                    head: log.latest.as_ref().map(LatestCheckpoint::head),
                    cosignatures: log.latest.as_ref().map_or(0, |l| l.cosignatures.len()),
                })
                .collect(),
        }
    }

    /// Answers `from`'s anti-entropy summary with the notes of our latest checkpoints that
    /// are newer than `from`'s, differ from them at the same size (so that `from` sees the
    /// conflict), or that it lacks (listed without a head) — at most
    /// [`CheckpointBookConfig::max_checkpoints_per_answer`], a random subset if there are
    /// more. If `from` holds newer checkpoints of logs we follow, our own summary is sent
    /// back to it (at most once per anti-entropy interval per connected peer).
    pub fn handle_summary(&mut self, now: Timestamp, from: &P, summary: &Summary) -> Vec<Vec<u8>> {
        let mut answer: Vec<&LatestCheckpoint> = Vec::new();
        let mut pull = false;
        let mut seen = BTreeSet::new();
        for entry in summary.entries.iter().take(self.config.max_logs) {
            if !seen.insert(entry.origin.as_str()) {
                continue;
            }
            let Some(log) = self.logs.get(&entry.origin) else {
                continue;
            };
            match (&log.latest, entry.head) {
                (Some(ours), None) => answer.push(ours),
                (Some(ours), Some(theirs)) => {
                    let same = ours.head() == theirs;
                    let differs = ours.size == theirs.size && ours.root != theirs.root;
                    let more_cosigned = same && ours.cosignatures.len() > entry.cosignatures;
                    if ours.size > theirs.size || differs || more_cosigned {
                        answer.push(ours);
                    }
                    let newer = log.known_size().is_some_and(|known| theirs.size > known);
                    let less_cosigned = same && ours.cosignatures.len() < entry.cosignatures;
                    pull |= log.followed && (newer || differs || less_cosigned);
                }
                (None, Some(_)) => pull |= log.followed,
                (None, None) => {}
            }
        }
        let limit = self.config.max_checkpoints_per_answer;
        if answer.len() > limit {
            // Partial Fisher–Yates: a uniform random subset, so that a peer far behind
            // catches up on different logs in successive rounds.
            for i in 0..limit {
                let j = i + self.rng.below(answer.len() - i);
                answer.swap(i, j);
            }
            answer.truncate(limit);
        }
        let notes = answer
            .into_iter()
            .map(LatestCheckpoint::served_note)
            .collect();
        if pull {
            let interval = self.config.anti_entropy_interval;
            if let Some(state) = self.peers.get_mut(from)
                && state
                    .last_pull
                    .is_none_or(|last| now >= last.saturating_add(interval))
            {
                state.last_pull = Some(now);
                let summary = self.summary();
                self.outputs.push_back(CheckpointEvent::SendSummary {
                    peer: from.clone(),
                    summary,
                });
            }
        }
        notes
    }

    // ---- Time and outputs -----------------------------------------------------------

    /// Fires what is due at `now`: proof requests that timed out or wait for a server are
    /// retried (or given up), and an anti-entropy round runs when its time has come.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|origin| {
                self.logs
                    .get(*origin)
                    .and_then(|l| l.pending.as_ref())
                    .is_some_and(|p| fetch_due(&p.fetch) <= now)
            })
            .cloned()
            .collect();
        for origin in due {
            self.dispatch(now, &origin);
        }
        if now >= self.next_anti_entropy {
            self.anti_entropy_round();
            self.schedule_anti_entropy(now);
        }
    }

    /// The next output, or `None` when the book is idle. Drain after every input.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<CheckpointEvent<P>> {
        self.outputs.pop_front()
    }

    /// When [`CheckpointBook::handle_timeout`] is next needed: the earliest proof deadline
    /// or retry, or the next anti-entropy round.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let fetches = self
            .pending
            .iter()
            .filter_map(|origin| self.logs.get(origin)?.pending.as_ref())
            .map(|p| fetch_due(&p.fetch));
        fetches.chain([self.next_anti_entropy]).min()
    }

    // ---- Queries --------------------------------------------------------------------

    /// The latest adopted checkpoint of `origin`.
    pub fn latest(&self, origin: &str) -> Option<&LatestCheckpoint> {
        self.logs.get(origin)?.latest.as_ref()
    }

    /// The checkpoint of `origin` to serve to consumers: among the latest and the
    /// [`COSIGNED_HISTORY`] before it, the newest with the most cosigning domains.
    pub fn cosigned(&self, origin: &str) -> Option<&LatestCheckpoint> {
        let log = self.logs.get(origin)?;
        let mut best = log.latest.as_ref()?;
        for older in &log.previous {
            if older.cosignatures.len() > best.cosignatures.len() {
                best = older;
            }
        }
        Some(best)
    }

    /// A connected peer that declared it serves `origin`, picked at random, to ask for a
    /// consistency proof outside the book's own fetching (the domain's witness catching
    /// up with the book).
    pub fn proof_server(&mut self, origin: &str) -> Option<P> {
        choose_server(&self.peers, &mut self.rng, origin, None, &BTreeSet::new())
    }

    /// Every known log, in origin order, for status pages and metrics.
    pub fn logs(&self) -> impl Iterator<Item = LogStatus<'_>> + '_ {
        self.logs.iter().map(|(origin, log)| LogStatus {
            origin,
            followed: log.followed,
            latest: log.latest.as_ref(),
            pending_size: log.pending.as_ref().map(|p| p.candidate.size),
            conflicts: log.conflicts,
        })
    }

    /// Candidates waiting for a consistency proof.
    pub fn pending_fetches(&self) -> usize {
        self.pending.len()
    }

    /// Peers tracked as connected.
    pub fn connected_peers(&self) -> usize {
        self.peers.len()
    }

    // ---- Internals ------------------------------------------------------------------

    /// The decision for a validly signed checkpoint of a followed log.
    fn consider(
        &mut self,
        now: Timestamp,
        origin: String,
        from: Option<P>,
        candidate: Candidate,
    ) -> Relay {
        let Some(log) = self.logs.get_mut(&origin) else {
            return Relay::Ignore(IgnoreReason::UnknownLog);
        };
        let Some(latest) = &mut log.latest else {
            // Trust on first use: every later checkpoint must extend this one.
            adopt(&mut self.outputs, log, &origin, candidate, now, Vec::new());
            return Relay::Accept;
        };
        let base = latest.head();
        if candidate.size < base.size {
            return consider_older(&mut self.outputs, log, origin, candidate);
        }
        if candidate.size == base.size {
            if candidate.root == base.root {
                // The same checkpoint, maybe with cosignatures new to us: those are news
                // worth relaying.
                return if latest.cosignatures.merge(candidate.cosignatures) {
                    Relay::Accept
                } else {
                    Relay::Ignore(IgnoreReason::Duplicate)
                };
            }
            let ours = latest.note.clone();
            log.conflicts += 1;
            self.outputs.push_back(CheckpointEvent::Conflict {
                origin,
                ours,
                theirs: candidate.note,
                kind: ConflictKind::SameSize,
            });
            return Relay::Accept;
        }
        // Bigger than the latest. Our own sequencer only signs extensions of its tree,
        // and every tree extends the empty one: no proof needed for those.
        if from.is_none() || base.size == 0 {
            adopt(&mut self.outputs, log, &origin, candidate, now, Vec::new());
            self.reconcile_pending(now, &origin);
            return Relay::Accept;
        }
        match &mut log.pending {
            Some(pending) if candidate.size == pending.candidate.size => {
                if candidate.root == pending.candidate.root {
                    return if pending.candidate.cosignatures.merge(candidate.cosignatures) {
                        Relay::Accept
                    } else {
                        Relay::Ignore(IgnoreReason::Duplicate)
                    };
                }
                let ours = pending.candidate.note.clone();
                log.conflicts += 1;
                self.outputs.push_back(CheckpointEvent::Conflict {
                    origin,
                    ours,
                    theirs: candidate.note,
                    kind: ConflictKind::SameSize,
                });
                return Relay::Accept;
            }
            // Newer than what we adopted, so worth relaying, but the bigger candidate
            // already being checked will cover it.
            Some(pending) if candidate.size < pending.candidate.size => return Relay::Accept,
            Some(_) => {}
            None if self.pending.len() >= self.config.max_pending_fetches => {
                self.outputs.push_back(CheckpointEvent::GaveUp {
                    origin,
                    size: candidate.size,
                    reason: GiveUpReason::TooManyPendingFetches {
                        limit: self.config.max_pending_fetches,
                    },
                });
                return Relay::Accept;
            }
            None => {}
        }
        // The biggest candidate replaces a smaller one; an answer to the older request is
        // then ignored as stale.
        log.pending = Some(Pending {
            candidate,
            base,
            source: from,
            attempts: 0,
            tried: BTreeSet::new(),
            fetch: Fetch::Idle { retry_at: now },
        });
        self.pending.insert(origin.clone());
        self.dispatch(now, &origin);
        Relay::Accept
    }

    /// After a checkpoint was adopted without a proof, brings the pending candidate in
    /// line: dropped if the new latest covers it, restarted from the new latest if not.
    fn reconcile_pending(&mut self, now: Timestamp, origin: &str) {
        let Some(log) = self.logs.get_mut(origin) else {
            return;
        };
        let (Some(latest), Some(pending)) = (&log.latest, &mut log.pending) else {
            return;
        };
        let head = latest.head();
        if pending.candidate.size > head.size {
            pending.base = head;
            pending.attempts = 0;
            pending.tried.clear();
            pending.fetch = Fetch::Idle { retry_at: now };
            self.dispatch(now, origin);
            return;
        }
        if pending.candidate.size == head.size && pending.candidate.root != head.root {
            let (ours, theirs) = (latest.note.clone(), pending.candidate.note.clone());
            log.conflicts += 1;
            self.outputs.push_back(CheckpointEvent::Conflict {
                origin: origin.to_owned(),
                ours,
                theirs,
                kind: ConflictKind::SameSize,
            });
        }
        log.pending = None;
        self.pending.remove(origin);
    }

    /// Sends the pending candidate's proof request to a server, or waits for one, or gives
    /// the candidate up when its attempts are spent.
    fn dispatch(&mut self, now: Timestamp, origin: &str) {
        let Some(log) = self.logs.get_mut(origin) else {
            self.pending.remove(origin);
            return;
        };
        let Some(pending) = log.pending.as_mut() else {
            self.pending.remove(origin);
            return;
        };
        if pending.attempts >= self.config.max_fetch_attempts {
            let (size, attempts) = (pending.candidate.size, pending.attempts);
            log.pending = None;
            self.pending.remove(origin);
            self.outputs.push_back(CheckpointEvent::GaveUp {
                origin: origin.to_owned(),
                size,
                reason: GiveUpReason::AttemptsExhausted { attempts },
            });
            return;
        }
        pending.attempts += 1;
        let deadline = now.saturating_add(self.config.proof_fetch_timeout);
        let server = choose_server(
            &self.peers,
            &mut self.rng,
            origin,
            pending.source.as_ref(),
            &pending.tried,
        );
        let Some(peer) = server else {
            // No server connected: the attempt counts, so that a log nobody serves is
            // eventually given up; a server declaring itself wakes it early.
            pending.fetch = Fetch::Idle { retry_at: deadline };
            return;
        };
        let request_id = RequestId(self.next_request);
        self.next_request += 1;
        pending.tried.insert(peer.clone());
        pending.fetch = Fetch::InFlight {
            peer: peer.clone(),
            request_id,
            deadline,
        };
        self.outputs.push_back(CheckpointEvent::FetchConsistency {
            request_id,
            peer,
            origin: origin.to_owned(),
            first: pending.base.size,
            last: pending.candidate.size,
        });
    }

    /// The origin whose pending candidate waits for `request_id` from `peer`.
    fn in_flight(&self, peer: &P, request_id: RequestId) -> Option<String> {
        self.pending
            .iter()
            .find(|origin| {
                self.logs
                    .get(*origin)
                    .and_then(|l| l.pending.as_ref())
                    .is_some_and(|p| {
                        matches!(&p.fetch, Fetch::InFlight { peer: asked, request_id: id, .. }
                            if asked == peer && *id == request_id)
                    })
            })
            .cloned()
    }

    /// Asks one random connected peer for what it has. A round runs even when this node
    /// follows no log yet: the summary also carries the domain records it holds (the
    /// driver adds them), and a node that joined after the records were gossiped learns
    /// every domain, and so every log, only this way.
    /// Asks `peer` for what it holds at once instead of at the next anti-entropy round.
    /// The driver calls it when `peer` has just bound this node (a new neighbour may hold
    /// what this node lacks), and when domain records `peer` sent made this node follow
    /// logs it did not follow before (their checkpoints are best pulled from the same
    /// peer now). Nothing happens for a peer that is not connected.
    pub fn pull_from(&mut self, peer: &P) {
        if self.peers.contains_key(peer) {
            let summary = self.summary();
            self.outputs.push_back(CheckpointEvent::SendSummary {
                peer: peer.clone(),
                summary,
            });
        }
    }

    fn anti_entropy_round(&mut self) {
        if self.peers.is_empty() {
            return;
        }
        let index = self.rng.below(self.peers.len());
        let Some(peer) = self.peers.keys().nth(index).cloned() else {
            return;
        };
        let summary = self.summary();
        self.outputs
            .push_back(CheckpointEvent::SendSummary { peer, summary });
    }

    /// Next round in 50–150 % of the interval: the mean stays the interval, and nodes
    /// started together drift apart instead of all asking at once.
    fn schedule_anti_entropy(&mut self, now: Timestamp) {
        let interval = u64::try_from(self.config.anti_entropy_interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let jitter = self
            .rng
            .below(usize::try_from(interval).unwrap_or(usize::MAX)) as u64;
        let delay = (interval / 2).saturating_add(jitter).max(1);
        self.next_anti_entropy = now.saturating_add(Duration::from_millis(delay));
    }
}

/// Makes `candidate` the latest checkpoint of `log`, verified by `proof` from the latest
/// one (empty when no proof was needed); the latest one joins the history.
fn adopt<P>(
    outputs: &mut VecDeque<CheckpointEvent<P>>,
    log: &mut LogState<P>,
    origin: &str,
    candidate: Candidate,
    now: Timestamp,
    proof: Vec<Hash>,
) {
    let previous = log.latest.take();
    outputs.push_back(CheckpointEvent::Adopted {
        origin: origin.to_owned(),
        size: candidate.size,
        root: candidate.root,
        note: candidate.note.clone(),
        previous: previous.as_ref().map(LatestCheckpoint::head),
        proof,
    });
    if let Some(previous) = previous {
        log.previous.push_front(previous);
        log.previous.truncate(COSIGNED_HISTORY);
    }
    log.latest = Some(LatestCheckpoint {
        size: candidate.size,
        root: candidate.root,
        note: candidate.note,
        cosignatures: candidate.cosignatures,
        adopted_at: now,
    });
}

/// The decision for a validly signed checkpoint smaller than the latest adopted one: a
/// checkpoint of the history gains its cosignatures, one of a size in the history with
/// another root is a conflict, anything older is ignored.
fn consider_older<P>(
    outputs: &mut VecDeque<CheckpointEvent<P>>,
    log: &mut LogState<P>,
    origin: String,
    candidate: Candidate,
) -> Relay {
    let Some(held) = log.previous.iter_mut().find(|p| p.size == candidate.size) else {
        return Relay::Ignore(IgnoreReason::Older);
    };
    if held.root == candidate.root {
        return if held.cosignatures.merge(candidate.cosignatures) {
            Relay::Accept
        } else {
            Relay::Ignore(IgnoreReason::Duplicate)
        };
    }
    log.conflicts += 1;
    outputs.push_back(CheckpointEvent::Conflict {
        origin,
        ours: held.note.clone(),
        theirs: candidate.note,
        kind: ConflictKind::SameSize,
    });
    Relay::Accept
}

/// `note` (whose signature by `verifier` was verified) reduced to that signature: the
/// form the book keeps, to which it adds the cosignatures it counts.
fn log_signed(note: &mut Note, verifier: &Verifier) -> Vec<u8> {
    // The log's line verified, so at least one line is kept and this cannot fail.
    let _ =
        note.retain_signatures(|s| s.name() == verifier.name() && s.key_id() == verifier.key_id());
    note.to_bytes()
}

/// Whether a consistency proof that failed to verify proves that the log signed two
/// incompatible trees: it reproduces the newer signed root, so its hashes are the newer
/// tree's (finding others would break SHA-256), and the root it derives for the older
/// size differs from the older signed one.
///
/// When the older size is a power of two, RFC 9162 omits that subtree from the proof
/// ("If first is an exact power of 2, then prepend first_hash to the consistency_path
/// array"): without the server's `old_subtree` the derived older root is ours by
/// construction and a failure proves nothing (design: "the proof must carry that subtree
/// hash explicitly"); with it, the path must reproduce the newer root from that subtree.
fn proves_fork(
    base: TreeHead,
    candidate: &Candidate,
    proof: &[Hash],
    old_subtree: Option<Hash>,
) -> bool {
    let start = match (base.size, old_subtree) {
        (0, _) => return false,
        (size, Some(subtree)) if size.is_power_of_two() => subtree,
        (size, None) if size.is_power_of_two() => return false,
        _ => base.root,
    };
    matches!(
        consistency_proof_roots(base.size, candidate.size, proof, &start),
        Ok((old, new)) if new == candidate.root && old != base.root
    )
}

fn fetch_due<P>(fetch: &Fetch<P>) -> Timestamp {
    match fetch {
        Fetch::InFlight { deadline, .. } => *deadline,
        Fetch::Idle { retry_at } => *retry_at,
    }
}

/// Picks the server to ask: the candidate's sender if it serves the log and was not asked
/// yet, else a random server not asked yet, else a random server.
fn choose_server<P: Clone + Ord>(
    peers: &BTreeMap<P, PeerState>,
    rng: &mut SplitMix64,
    origin: &str,
    source: Option<&P>,
    tried: &BTreeSet<P>,
) -> Option<P> {
    if let Some(source) = source
        && !tried.contains(source)
        && peers.get(source).is_some_and(|s| s.serves.contains(origin))
    {
        return Some(source.clone());
    }
    let servers: Vec<&P> = peers
        .iter()
        .filter(|(_, state)| state.serves.contains(origin))
        .map(|(peer, _)| peer)
        .collect();
    let untried: Vec<&P> = servers
        .iter()
        .copied()
        .filter(|peer| !tried.contains(*peer))
        .collect();
    let pool = if untried.is_empty() { servers } else { untried };
    if pool.is_empty() {
        return None;
    }
    pool.get(rng.below(pool.len())).map(|peer| (*peer).clone())
}

/// The origin on a note's first line, if it is non-empty UTF-8. Only used to find the
/// key: `checkpoint::open` checks the whole note afterwards.
fn origin_line(note: &[u8]) -> Option<&str> {
    let end = note.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(note.get(..end)?).ok()?;
    (!line.is_empty()).then_some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::CosignatureSigner;
    use crate::federation::domain_record::{KeyWindow, WitnessKey};
    use crate::note::KeyName;
    use crate::testing::TestLog;
    use proptest::prelude::*;

    const ORIGIN: &str = "log.org-a.example";
    const OTHER: &str = "log.org-b.example";

    fn t(millis: u64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    /// Anti-entropy is rare here so that it does not interleave with the proof timers
    /// the tests step through; the anti-entropy tests set their own interval.
    fn config() -> CheckpointBookConfig {
        CheckpointBookConfig {
            seed: 7,
            anti_entropy_interval: Duration::from_secs(3600),
            ..CheckpointBookConfig::default()
        }
    }

    fn book_with(log: &TestLog) -> CheckpointBook<u32> {
        let mut book = CheckpointBook::new(config(), t(0));
        book.set_log(log.origin().to_owned(), log.verifier(), true)
            .unwrap();
        book
    }

    fn drain(book: &mut CheckpointBook<u32>) -> Vec<CheckpointEvent<u32>> {
        std::iter::from_fn(|| book.poll_output()).collect()
    }

    /// The single proof request among `events`.
    fn fetch_of(events: &[CheckpointEvent<u32>]) -> (RequestId, u32, u64, u64) {
        let fetches: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                CheckpointEvent::FetchConsistency {
                    request_id,
                    peer,
                    first,
                    last,
                    ..
                } => Some((*request_id, *peer, *first, *last)),
                _ => None,
            })
            .collect();
        assert_eq!(fetches.len(), 1, "{events:?}");
        fetches[0]
    }

    /// A book following `log` at size `size`, with peers 1..=servers connected and
    /// serving it, peer 9 connected but serving nothing.
    fn adopted_at(log: &mut TestLog, size: u64, servers: u32) -> CheckpointBook<u32> {
        let mut book = book_with(log);
        for peer in 1..=servers {
            book.peer_connected(peer).unwrap();
            book.peer_serves(&peer, [log.origin()]);
        }
        book.peer_connected(9).unwrap();
        assert_eq!(
            book.handle_checkpoint(t(1), Some(9), &log.note(size)),
            Relay::Accept
        );
        drain(&mut book);
        book
    }

    #[test]
    fn first_checkpoint_is_adopted() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = book_with(&log);
        let note = log.note(5);
        assert_eq!(book.handle_checkpoint(t(10), Some(3), &note), Relay::Accept);
        let latest = book.latest(ORIGIN).unwrap();
        assert_eq!((latest.size, latest.root), (5, log.root(5)));
        assert_eq!((&latest.note, latest.adopted_at), (&note, t(10)));
        assert_eq!(
            drain(&mut book),
            vec![CheckpointEvent::Adopted {
                origin: ORIGIN.into(),
                size: 5,
                root: log.root(5),
                note,
                previous: None,
                proof: Vec::new(),
            }]
        );
    }

    #[test]
    fn duplicate_and_older_are_ignored() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 0);
        assert_eq!(
            book.handle_checkpoint(t(2), Some(4), &log.note(5)),
            Relay::Ignore(IgnoreReason::Duplicate)
        );
        assert_eq!(
            book.handle_checkpoint(t(2), Some(4), &log.note(3)),
            Relay::Ignore(IgnoreReason::Older)
        );
        assert!(drain(&mut book).is_empty());
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
    }

    /// A witness of `domain` (seed `seed`) and a roster holding it.
    fn witness(domain: &str, seed: u8) -> (CosignatureSigner, WitnessRoster) {
        let signer = CosignatureSigner::from_seed(
            KeyName::new(format!("witness.{domain}")).unwrap(),
            &[seed; 32],
        );
        let mut roster = WitnessRoster::new();
        roster.insert(
            &TrustDomain::parse(domain).unwrap(),
            [&WitnessKey {
                verifier: signer.verifier(),
                window: KeyWindow::open_from(0),
            }],
        );
        (signer, roster)
    }

    /// `note` with a cosignature by `signer` at Unix second `time`.
    fn cosign(note: &[u8], signer: &CosignatureSigner, time: u64) -> Vec<u8> {
        let mut note = Note::parse(note).unwrap();
        note.add_signature(signer.sign(note.text(), time).unwrap())
            .unwrap();
        note.to_bytes()
    }

    #[test]
    fn cosignatures_are_collected_relayed_once_and_served() {
        let mut log = TestLog::new(ORIGIN, 1);
        let (wa, mut roster) = witness("org-b.example", 11);
        let (wb, _) = witness("org-c.example", 12);
        roster.insert(
            &TrustDomain::parse("org-c.example").unwrap(),
            [&WitnessKey {
                verifier: wb.verifier(),
                window: KeyWindow::open_from(0),
            }],
        );
        let mut book = adopted_at(&mut log, 5, 0);
        book.set_witnesses(roster);
        let by_a = cosign(&log.note(5), &wa, 1);
        assert_eq!(book.handle_checkpoint(t(2), Some(4), &by_a), Relay::Accept);
        assert_eq!(
            book.handle_checkpoint(t(2), Some(4), &by_a),
            Relay::Ignore(IgnoreReason::Duplicate),
            "nothing new the second time"
        );
        // Both cosignatures in one note: only b's is new.
        let by_both = cosign(&by_a, &wb, 2);
        assert_eq!(
            book.handle_checkpoint(t(3), Some(4), &by_both),
            Relay::Accept
        );
        assert!(drain(&mut book).is_empty(), "cosignatures adopt nothing");
        let latest = book.latest(ORIGIN).unwrap();
        assert_eq!(latest.cosignatures.len(), 2);
        assert_eq!(
            latest.note,
            log.note(5),
            "the log-signed note is kept apart"
        );
        // What is served verifies as the log's checkpoint and carries both.
        let served = latest.served_note();
        let note = Note::parse(&served).unwrap();
        assert_eq!(note.signatures().len(), 3);
        checkpoint::open(&served, ORIGIN, &log.verifier()).unwrap();
    }

    #[test]
    fn a_cosignature_that_does_not_verify_rejects_the_note() {
        let mut log = TestLog::new(ORIGIN, 1);
        let (wa, roster) = witness("org-b.example", 11);
        let mut book = adopted_at(&mut log, 5, 0);
        book.set_witnesses(roster);
        // A's cosignature of size 4 pasted onto size 5.
        let other_text = Note::parse(&log.note(4)).unwrap().text().to_owned();
        let mut note = Note::parse(&log.note(5)).unwrap();
        note.add_signature(wa.sign(&other_text, 1).unwrap())
            .unwrap();
        assert!(matches!(
            book.handle_checkpoint(t(2), Some(4), &note.to_bytes()),
            Relay::Reject(RejectReason::BadCosignature(_))
        ));
        assert!(book.latest(ORIGIN).unwrap().cosignatures.is_empty());
    }

    #[test]
    fn late_cosignatures_of_an_older_checkpoint_count_and_make_it_served() {
        let mut log = TestLog::new(ORIGIN, 1);
        let (wa, roster) = witness("org-b.example", 11);
        let mut book = adopted_at(&mut log, 5, 0);
        book.set_witnesses(roster);
        // The book moves on to 8 (its own log: no proof needed) before 5's cosignature
        // arrives.
        assert_eq!(
            book.handle_checkpoint(t(2), None, &log.note(8)),
            Relay::Accept
        );
        assert_eq!(
            book.handle_checkpoint(t(3), Some(4), &cosign(&log.note(5), &wa, 1)),
            Relay::Accept
        );
        assert_eq!(book.latest(ORIGIN).unwrap().size, 8);
        assert_eq!(book.cosigned(ORIGIN).unwrap().size, 5, "more cosignatures");
        // Once 8 is cosigned as well, the newer wins the tie.
        assert_eq!(
            book.handle_checkpoint(t(4), Some(4), &cosign(&log.note(8), &wa, 2)),
            Relay::Accept
        );
        assert_eq!(book.cosigned(ORIGIN).unwrap().size, 8);
        // Older than the history: ignored.
        assert_eq!(
            book.handle_checkpoint(t(5), Some(4), &cosign(&log.note(2), &wa, 3)),
            Relay::Ignore(IgnoreReason::Older)
        );
    }

    #[test]
    fn a_history_checkpoint_of_another_root_is_a_conflict() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 2);
        let mut book = adopted_at(&mut log, 5, 0);
        assert_eq!(
            book.handle_checkpoint(t(2), None, &log.note(8)),
            Relay::Accept
        );
        drain(&mut book);
        assert_eq!(
            book.handle_checkpoint(t(3), Some(4), &fork.note(5)),
            Relay::Accept
        );
        assert!(matches!(
            drain(&mut book).as_slice(),
            [CheckpointEvent::Conflict { kind: ConflictKind::SameSize, ours, theirs, .. }]
                if *ours == log.note(5) && *theirs == fork.note(5)
        ));
    }

    #[test]
    fn anti_entropy_carries_cosignatures() {
        let mut log = TestLog::new(ORIGIN, 1);
        let (wa, roster) = witness("org-b.example", 11);
        let mut book = adopted_at(&mut log, 5, 0);
        book.peer_connected(1).unwrap();
        book.set_witnesses(roster);
        let head = Some(TreeHead {
            size: 5,
            root: log.root(5),
        });
        let summary = |cosignatures| Summary {
            entries: vec![SummaryEntry {
                origin: ORIGIN.into(),
                head,
                cosignatures,
            }],
        };
        // The peer holds more cosignatures: nothing to answer, and we pull.
        assert!(book.handle_summary(t(2), &1, &summary(1)).is_empty());
        assert!(matches!(
            drain(&mut book).as_slice(),
            [CheckpointEvent::SendSummary { peer: 1, .. }]
        ));
        // We hold one the peer lacks: our cosigned note is the answer.
        book.handle_checkpoint(t(3), Some(4), &cosign(&log.note(5), &wa, 1));
        let answer = book.handle_summary(t(4), &1, &summary(0));
        assert_eq!(answer, vec![book.latest(ORIGIN).unwrap().served_note()]);
        assert_eq!(Note::parse(&answer[0]).unwrap().signatures().len(), 2);
    }

    #[test]
    fn a_restored_checkpoint_is_held_to_its_history() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 2);
        let mut book = book_with(&log);
        book.peer_connected(1).unwrap();
        book.peer_serves(&1, [ORIGIN]);
        assert_eq!(book.restore(t(1), &log.note(5)), Ok(()));
        assert!(drain(&mut book).is_empty(), "restoring outputs nothing");
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
        // A second restore does not replace what is held.
        assert_eq!(book.restore(t(1), &log.note(7)), Ok(()));
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
        // Not trust on first use any more: a fork of that size is a conflict, a bigger
        // checkpoint waits for its proof.
        assert_eq!(
            book.handle_checkpoint(t(2), Some(1), &fork.note(5)),
            Relay::Accept
        );
        assert!(matches!(
            drain(&mut book).as_slice(),
            [CheckpointEvent::Conflict {
                kind: ConflictKind::SameSize,
                ..
            }]
        ));
        book.handle_checkpoint(t(3), Some(1), &log.note(9));
        assert_eq!(fetch_of(&drain(&mut book)).2, 5);
        // A note that is not the log's is refused.
        let impostor = TestLog::new(ORIGIN, 2).note(5);
        assert!(matches!(
            book.restore(t(4), &impostor),
            Err(Relay::Reject(RejectReason::Open { .. }))
        ));
    }

    #[test]
    fn bad_signature_and_garbage_are_rejected() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut impostor = TestLog::new(ORIGIN, 2);
        let mut book = book_with(&log);
        assert!(matches!(
            book.handle_checkpoint(t(1), Some(1), &impostor.note(5)),
            Relay::Reject(RejectReason::Open { ref origin, .. }) if origin == ORIGIN
        ));
        // A signature line that names the right key but does not verify.
        let mut tampered = log.note(5);
        let at = tampered.len() - 10;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        assert!(matches!(
            book.handle_checkpoint(t(1), Some(1), &tampered),
            Relay::Reject(RejectReason::Open { .. })
        ));
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), b"no newline at all"),
            Relay::Reject(RejectReason::NoOrigin)
        );
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), &vec![b'a'; 20_000]),
            Relay::Reject(RejectReason::TooLarge {
                size: 20_000,
                max: 16 * 1024
            })
        );
        assert!(book.latest(ORIGIN).is_none());
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn unknown_and_unfollowed_logs_are_ignored() {
        let log = TestLog::new(ORIGIN, 1);
        let mut other = TestLog::new(OTHER, 2);
        let mut book = book_with(&log);
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), &other.note(3)),
            Relay::Ignore(IgnoreReason::UnknownLog)
        );
        book.set_log(OTHER, other.verifier(), false).unwrap();
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), &other.note(3)),
            Relay::Ignore(IgnoreReason::Unfollowed)
        );
        assert!(book.latest(OTHER).is_none());
        // Following it later takes checkpoints in.
        book.set_log(OTHER, other.verifier(), true).unwrap();
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), &other.note(3)),
            Relay::Accept
        );
        // A log never changes key in place; removing it forgets it.
        assert_eq!(
            book.set_log(ORIGIN, other.verifier(), true),
            Err(SetLogError::KeyChanged {
                origin: ORIGIN.into()
            })
        );
        assert!(book.remove_log(OTHER));
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), &other.note(4)),
            Relay::Ignore(IgnoreReason::UnknownLog)
        );
    }

    #[test]
    fn same_size_different_root_is_a_conflict_not_adopted() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 3);
        let mut book = adopted_at(&mut log, 5, 0);
        let theirs = fork.note(5);
        assert_eq!(
            book.handle_checkpoint(t(2), Some(4), &theirs),
            Relay::Accept
        );
        assert_eq!(
            drain(&mut book),
            vec![CheckpointEvent::Conflict {
                origin: ORIGIN.into(),
                ours: log.note(5),
                theirs,
                kind: ConflictKind::SameSize,
            }]
        );
        assert_eq!(book.latest(ORIGIN).unwrap().root, log.root(5));
        assert_eq!(book.logs().next().unwrap().conflicts, 1);
    }

    #[test]
    fn newer_is_adopted_only_after_a_valid_proof() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 2);
        // Peer 2 sent it and serves the log: it is asked first.
        assert_eq!(
            book.handle_checkpoint(t(2), Some(2), &log.note(9)),
            Relay::Accept
        );
        let events = drain(&mut book);
        let (id, peer, first, last) = fetch_of(&events);
        assert_eq!((peer, first, last), (2, 5, 9));
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5, "not before the proof");
        assert_eq!(book.logs().next().unwrap().pending_size, Some(9));
        // The same candidate again is a duplicate; a smaller newer one is relayed only.
        assert_eq!(
            book.handle_checkpoint(t(2), Some(1), &log.note(9)),
            Relay::Ignore(IgnoreReason::Duplicate)
        );
        assert_eq!(
            book.handle_checkpoint(t(2), Some(1), &log.note(7)),
            Relay::Accept
        );
        assert!(drain(&mut book).is_empty());
        // An answer from another peer, or to another request, changes nothing.
        book.handle_consistency_proof(t(3), &1, id, &log.proof(5, 9), None);
        book.handle_consistency_proof(t(3), &2, RequestId(id.0 + 100), &log.proof(5, 9), None);
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
        book.handle_consistency_proof(t(3), &2, id, &log.proof(5, 9), None);
        let latest = book.latest(ORIGIN).unwrap();
        assert_eq!(
            (latest.size, latest.root, latest.adopted_at),
            (9, log.root(9), t(3))
        );
        assert!(matches!(
            drain(&mut book).as_slice(),
            [CheckpointEvent::Adopted { size: 9, .. }]
        ));
        assert_eq!(book.pending_fetches(), 0);
    }

    #[test]
    fn a_bigger_candidate_replaces_the_pending_one() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 1);
        book.handle_checkpoint(t(2), Some(1), &log.note(9));
        let (old_id, ..) = fetch_of(&drain(&mut book));
        book.handle_checkpoint(t(3), Some(1), &log.note(12));
        let (new_id, peer, first, last) = fetch_of(&drain(&mut book));
        assert_eq!((peer, first, last), (1, 5, 12));
        // The stale answer is ignored, without blame.
        book.handle_consistency_proof(t(4), &1, old_id, &log.proof(5, 9), None);
        assert!(drain(&mut book).is_empty());
        book.handle_consistency_proof(t(4), &1, new_id, &log.proof(5, 12), None);
        assert_eq!(book.latest(ORIGIN).unwrap().size, 12);
    }

    #[test]
    fn sender_that_does_not_serve_is_not_asked() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 0);
        // Peer 9 sends it but serves nothing; nobody serves the log yet.
        book.handle_checkpoint(t(2), Some(9), &log.note(9));
        assert!(drain(&mut book).is_empty());
        assert_eq!(
            book.poll_timeout(),
            Some(t(2).saturating_add(config().proof_fetch_timeout))
        );
        // A server appears: the candidate is retried at once.
        book.peer_connected(4).unwrap();
        book.peer_serves(&4, [ORIGIN]);
        assert_eq!(book.poll_timeout(), Some(Timestamp::EPOCH));
        book.handle_timeout(t(3));
        let (_, peer, first, last) = fetch_of(&drain(&mut book));
        assert_eq!((peer, first, last), (4, 5, 9));
    }

    #[test]
    fn bad_proof_is_misbehaviour_and_another_server_is_asked() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 3);
        book.handle_checkpoint(t(2), Some(2), &log.note(9));
        let (id, peer, ..) = fetch_of(&drain(&mut book));
        assert_eq!(peer, 2);
        let mut garbage = log.proof(5, 9);
        garbage[0][0] ^= 1;
        book.handle_consistency_proof(t(3), &2, id, &garbage, None);
        let events = drain(&mut book);
        assert!(matches!(
            &events[0],
            CheckpointEvent::Misbehaved {
                peer: 2,
                reason: Misbehavior::InvalidConsistencyProof {
                    first: 5,
                    last: 9,
                    ..
                }
            }
        ));
        let (id, retry_peer, ..) = fetch_of(&events);
        assert_ne!(retry_peer, 2, "an untried server is preferred");
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
        book.handle_consistency_proof(t(4), &retry_peer, id, &log.proof(5, 9), None);
        assert_eq!(book.latest(ORIGIN).unwrap().size, 9);
    }

    #[test]
    fn timeouts_retry_other_servers_then_give_up() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 3);
        let timeout = config().proof_fetch_timeout;
        book.handle_checkpoint(t(2), Some(9), &log.note(9));
        let mut asked = vec![fetch_of(&drain(&mut book)).1];
        let mut now = t(2);
        for _ in 1..config().max_fetch_attempts {
            now = book.poll_timeout().unwrap();
            assert_eq!(now, t(2).saturating_add(timeout * asked.len() as u32));
            book.handle_timeout(now);
            asked.push(fetch_of(&drain(&mut book)).1);
        }
        asked.sort_unstable();
        assert_eq!(asked, vec![1, 2, 3], "each server asked once");
        book.handle_timeout(now.saturating_add(timeout));
        assert_eq!(
            drain(&mut book),
            vec![CheckpointEvent::GaveUp {
                origin: ORIGIN.into(),
                size: 9,
                reason: GiveUpReason::AttemptsExhausted { attempts: 3 },
            }]
        );
        assert_eq!(book.pending_fetches(), 0);
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
        // Seen again, it is fetched again.
        book.handle_checkpoint(now, Some(9), &log.note(9));
        fetch_of(&drain(&mut book));
    }

    #[test]
    fn failures_and_disconnects_retry_at_once() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 2);
        book.handle_checkpoint(t(2), Some(1), &log.note(9));
        let (id, peer, ..) = fetch_of(&drain(&mut book));
        assert_eq!(peer, 1);
        book.handle_fetch_failed(t(3), &1, id);
        let (id, peer, ..) = fetch_of(&drain(&mut book));
        assert_eq!(peer, 2);
        book.peer_disconnected(&2);
        assert_eq!(book.poll_timeout(), Some(Timestamp::EPOCH));
        book.handle_timeout(t(4));
        let (_, peer, ..) = fetch_of(&drain(&mut book));
        assert_eq!(peer, 1, "the only server left");
        // The answer of the disconnected peer is stale now.
        book.handle_consistency_proof(t(5), &2, id, &log.proof(5, 9), None);
        assert_eq!(book.latest(ORIGIN).unwrap().size, 5);
    }

    #[test]
    fn a_proof_of_a_forked_tree_is_a_conflict_not_misbehaviour() {
        // We adopted size 3 of the honest history; the log then signed size 6 of a tree
        // whose first three leaves differ, and a server proves it faithfully.
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 1);
        let mut book = adopted_at(&mut log, 3, 1);
        let theirs = fork.note(6);
        book.handle_checkpoint(t(2), Some(1), &theirs);
        let (id, ..) = fetch_of(&drain(&mut book));
        let proof = fork.proof(3, 6);
        book.handle_consistency_proof(t(3), &1, id, &proof, None);
        assert_eq!(
            drain(&mut book),
            vec![CheckpointEvent::Conflict {
                origin: ORIGIN.into(),
                ours: log.note(3),
                theirs,
                kind: ConflictKind::Inconsistent {
                    proof,
                    old_subtree: None,
                },
            }]
        );
        assert_eq!(book.latest(ORIGIN).unwrap().size, 3);
        assert_eq!(book.pending_fetches(), 0);
    }

    #[test]
    fn a_failed_proof_from_a_power_of_two_size_proves_nothing() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 1);
        let mut book = adopted_at(&mut log, 4, 1);
        book.handle_checkpoint(t(2), Some(1), &fork.note(6));
        let (id, ..) = fetch_of(&drain(&mut book));
        book.handle_consistency_proof(t(3), &1, id, &fork.proof(4, 6), None);
        assert!(matches!(
            drain(&mut book).first(),
            Some(CheckpointEvent::Misbehaved { peer: 1, .. })
        ));
    }

    #[test]
    fn a_forked_proof_from_a_power_of_two_size_with_its_subtree_is_evidence() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 1);
        let mut book = adopted_at(&mut log, 4, 1);
        let theirs = fork.note(6);
        book.handle_checkpoint(t(2), Some(1), &theirs);
        let (id, ..) = fetch_of(&drain(&mut book));
        let proof = fork.proof(4, 6);
        book.handle_consistency_proof(t(3), &1, id, &proof, Some(fork.root(4)));
        let events = drain(&mut book);
        let [
            CheckpointEvent::Conflict {
                ours,
                theirs: got,
                kind:
                    ConflictKind::Inconsistent {
                        proof: got_proof,
                        old_subtree,
                    },
                ..
            },
        ] = events.as_slice()
        else {
            panic!("{events:?}");
        };
        assert_eq!(
            (got, got_proof, *old_subtree),
            (&theirs, &proof, Some(fork.root(4)))
        );
        // What the node builds from it convicts the log offline.
        let evidence = crate::evidence::Evidence {
            origin: ORIGIN.into(),
            log_key: log.verifier(),
            older: ours.clone(),
            newer: theirs,
            proof,
            old_subtree: *old_subtree,
        };
        assert!(evidence.verify().is_ok());
    }

    #[test]
    fn an_honest_proof_verifies_whatever_subtree_comes_with_it_and_a_lie_proves_nothing() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 4, 1);
        book.handle_checkpoint(t(2), Some(1), &log.note(6));
        let (id, ..) = fetch_of(&drain(&mut book));
        // The proof from 4 does not use the subtree: a wrong one changes nothing.
        book.handle_consistency_proof(t(3), &1, id, &log.proof(4, 6), Some([9; 32]));
        assert_eq!(book.latest(ORIGIN).unwrap().size, 6);

        // A garbage proof with a made-up subtree reproduces no signed root.
        book.handle_checkpoint(t(4), Some(1), &log.note(8));
        drain(&mut book);
        let mut book2 = adopted_at(&mut log, 4, 1);
        book2.handle_checkpoint(t(4), Some(1), &log.note(8));
        let (id, ..) = fetch_of(&drain(&mut book2));
        book2.handle_consistency_proof(t(5), &1, id, &[[7; 32]; 2], Some([8; 32]));
        assert!(matches!(
            drain(&mut book2).as_slice(),
            [CheckpointEvent::Misbehaved { peer: 1, .. }, ..]
        ));
    }

    #[test]
    fn own_checkpoints_are_adopted_without_proof() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 1);
        // A peer's candidate is pending when our sequencer publishes past it.
        book.handle_checkpoint(t(2), Some(1), &log.note(9));
        drain(&mut book);
        assert_eq!(
            book.handle_checkpoint(t(3), None, &log.note(10)),
            Relay::Accept
        );
        assert_eq!(book.latest(ORIGIN).unwrap().size, 10);
        assert_eq!(book.pending_fetches(), 0, "covered by the adopted one");
        // With a bigger candidate pending, the request restarts from the new latest.
        book.handle_checkpoint(t(4), Some(1), &log.note(20));
        drain(&mut book);
        book.handle_checkpoint(t(5), None, &log.note(15));
        let (id, _, first, last) = fetch_of(&drain(&mut book));
        assert_eq!((first, last), (15, 20));
        book.handle_consistency_proof(t(6), &1, id, &log.proof(15, 20), None);
        assert_eq!(book.latest(ORIGIN).unwrap().size, 20);
    }

    #[test]
    fn pending_fetches_are_bounded() {
        let mut a = TestLog::new(ORIGIN, 1);
        let mut b = TestLog::new(OTHER, 2);
        let mut book = CheckpointBook::new(
            CheckpointBookConfig {
                max_pending_fetches: 1,
                ..config()
            },
            t(0),
        );
        book.set_log(ORIGIN, a.verifier(), true).unwrap();
        book.set_log(OTHER, b.verifier(), true).unwrap();
        for note in [a.note(2), b.note(2), a.note(5)] {
            book.handle_checkpoint(t(1), Some(1), &note);
        }
        assert_eq!(
            book.handle_checkpoint(t(1), Some(1), &b.note(5)),
            Relay::Accept
        );
        assert!(drain(&mut book).contains(&CheckpointEvent::GaveUp {
            origin: OTHER.into(),
            size: 5,
            reason: GiveUpReason::TooManyPendingFetches { limit: 1 },
        }));
        assert_eq!(book.pending_fetches(), 1);
    }

    #[test]
    fn set_log_limits() {
        let log = TestLog::new(ORIGIN, 1);
        let mut book: CheckpointBook<u32> = CheckpointBook::new(
            CheckpointBookConfig {
                max_logs: 2,
                max_followed_logs: 1,
                ..config()
            },
            t(0),
        );
        book.set_log("a", log.verifier(), true).unwrap();
        assert_eq!(
            book.set_log("b", log.verifier(), true),
            Err(SetLogError::TooManyFollowed { limit: 1 })
        );
        book.set_log("b", log.verifier(), false).unwrap();
        assert_eq!(
            book.set_log("c", log.verifier(), false),
            Err(SetLogError::TooManyLogs { limit: 2 })
        );
        assert!(matches!(
            book.set_log("x\ny", log.verifier(), false),
            Err(SetLogError::InvalidOrigin(_))
        ));
        book.set_log("a", log.verifier(), false).unwrap();
        book.set_log("b", log.verifier(), true).unwrap();
        assert_eq!(book.summary().entries.len(), 1);
    }

    /// Runs anti-entropy rounds until `rounds` summaries went out; returns their peers.
    fn summaries_sent(book: &mut CheckpointBook<u32>, rounds: usize) -> Vec<u32> {
        let mut peers = Vec::new();
        let mut now = t(0);
        while peers.len() < rounds {
            now = book.poll_timeout().unwrap().max(now);
            book.handle_timeout(now);
            for event in drain(book) {
                if let CheckpointEvent::SendSummary { peer, summary } = event {
                    assert_eq!(summary, book.summary());
                    peers.push(peer);
                }
            }
        }
        peers
    }

    #[test]
    fn pull_from_asks_a_connected_peer_at_once() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 0);
        drain(&mut book);
        book.pull_from(&7);
        assert!(drain(&mut book).is_empty(), "not connected");
        book.peer_connected(7).unwrap();
        book.pull_from(&7);
        assert_eq!(
            drain(&mut book),
            vec![CheckpointEvent::SendSummary {
                peer: 7,
                summary: book.summary()
            }]
        );
    }

    #[test]
    fn anti_entropy_asks_random_connected_peers_only() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut book = adopted_at(&mut log, 5, 0);
        for peer in [1, 2, 3, 4] {
            book.peer_connected(peer).unwrap();
        }
        book.peer_disconnected(&9);
        book.peer_disconnected(&3);
        let peers = summaries_sent(&mut book, 60);
        let distinct: BTreeSet<u32> = peers.iter().copied().collect();
        assert_eq!(distinct, BTreeSet::from([1, 2, 4]));
        // The rounds are spread around the interval.
        let interval = config().anti_entropy_interval;
        let start = t(0);
        let mut book = book_with(&log);
        book.peer_connected(1).unwrap();
        let mut last = start;
        for _ in 0..20 {
            let next = book.poll_timeout().unwrap();
            let gap = next.saturating_duration_since(last);
            assert!(gap >= interval / 2 && gap < interval * 3 / 2, "{gap:?}");
            book.handle_timeout(next);
            drain(&mut book);
            last = next;
        }
        // Without peers, nothing is sent.
        book.peer_disconnected(&1);
        book.handle_timeout(book.poll_timeout().unwrap());
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn summary_answer_is_bounded_and_pulls_back() {
        let origins: Vec<String> = (0..10).map(|i| format!("log{i}.example")).collect();
        let mut logs: Vec<TestLog> = origins
            .iter()
            .enumerate()
            .map(|(i, o)| TestLog::new(o, i as u8 + 1))
            .collect();
        let mut book = CheckpointBook::new(
            CheckpointBookConfig {
                max_checkpoints_per_answer: 4,
                ..config()
            },
            t(0),
        );
        for log in &logs {
            book.set_log(log.origin().to_owned(), log.verifier(), true)
                .unwrap();
        }
        for log in &mut logs {
            assert_eq!(
                book.handle_checkpoint(t(1), None, &log.note(10)),
                Relay::Accept
            );
        }
        drain(&mut book);
        book.peer_connected(1).unwrap();
        // The peer lacks all ten: four come back, and different ones in later rounds.
        let lacking = Summary {
            entries: origins
                .iter()
                .map(|o| SummaryEntry {
                    origin: o.clone(),
                    head: None,
                    cosignatures: 0,
                })
                .collect(),
        };
        let mut seen = BTreeSet::new();
        for round in 0..10 {
            let answer = book.handle_summary(t(2 + round), &1, &lacking);
            assert_eq!(answer.len(), 4);
            seen.extend(answer);
        }
        assert_eq!(seen.len(), 10, "every log is eventually sent");
        assert!(drain(&mut book).is_empty(), "the peer has nothing newer");

        // Newer on our side for log0, same for log1, newer on theirs for log2, a log we
        // do not know: only log0 is answered, and our summary goes back for log2.
        let summary = Summary {
            entries: vec![
                SummaryEntry {
                    origin: origins[0].clone(),
                    head: Some(TreeHead {
                        size: 4,
                        root: logs[0].root(4),
                    }),
                    cosignatures: 0,
                },
                SummaryEntry {
                    origin: origins[1].clone(),
                    head: Some(TreeHead {
                        size: 10,
                        root: logs[1].root(10),
                    }),
                    cosignatures: 0,
                },
                SummaryEntry {
                    origin: origins[2].clone(),
                    head: Some(TreeHead {
                        size: 12,
                        root: logs[2].root(12),
                    }),
                    cosignatures: 0,
                },
                SummaryEntry {
                    origin: "unknown.example".into(),
                    head: None,
                    cosignatures: 0,
                },
            ],
        };
        let answer = book.handle_summary(t(100), &1, &summary);
        assert_eq!(answer, vec![logs[0].note(10)]);
        assert_eq!(
            drain(&mut book),
            vec![CheckpointEvent::SendSummary {
                peer: 1,
                summary: book.summary()
            }]
        );
        // At most once per interval per peer; and never to a peer not connected.
        book.handle_summary(t(200), &1, &summary);
        assert!(drain(&mut book).is_empty());
        book.handle_summary(t(200), &2, &summary);
        assert!(drain(&mut book).is_empty());
        let later = t(100).saturating_add(config().anti_entropy_interval);
        book.handle_summary(later, &1, &summary);
        assert_eq!(drain(&mut book).len(), 1);
    }

    #[test]
    fn summary_with_a_different_root_exchanges_both_notes() {
        let mut log = TestLog::new(ORIGIN, 1);
        let mut fork = TestLog::forked(ORIGIN, 1, 2);
        let mut book = adopted_at(&mut log, 5, 0);
        book.peer_connected(1).unwrap();
        let summary = Summary {
            entries: vec![SummaryEntry {
                origin: ORIGIN.into(),
                head: Some(TreeHead {
                    size: 5,
                    root: fork.root(5),
                }),
                cosignatures: 0,
            }],
        };
        assert_eq!(book.handle_summary(t(2), &1, &summary), vec![log.note(5)]);
        assert!(matches!(
            drain(&mut book).as_slice(),
            [CheckpointEvent::SendSummary { peer: 1, .. }]
        ));
    }

    #[test]
    fn splitmix64_matches_the_reference() {
        // First outputs of Vigna's splitmix64.c seeded with 0.
        let mut rng = SplitMix64(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
        for n in [1, 2, 3, 1000] {
            assert!((0..100).all(|_| rng.below(n) < n));
        }
    }

    // ---- Follow policy ----------------------------------------------------------------

    fn domains(n: usize) -> Vec<TrustDomain> {
        (0..n)
            .map(|i| TrustDomain::parse(&format!("org-{i}.example")).unwrap())
            .collect()
    }

    #[test]
    fn follow_policy_rules() {
        let all = domains(100);
        let mut policy = FollowPolicy::new(all[0].clone());
        policy
            .configured_origins
            .insert("log.org-50.example".into());
        let key = all[0].as_str().as_bytes();
        // Own domain and configured origins always.
        assert!(policy.follows("log.org-0.example", &all[0], key, &all));
        assert!(policy.follows("log.org-50.example", &all[50], key, &all));
        // A small federation follows everything.
        let small = &all[..32];
        assert!(small[1..].iter().all(|d| policy.follows(
            &format!("log.{}", d.as_str()),
            d,
            key,
            small
        )));
        assert_eq!(policy.sampled_domains(key, small).len(), 31);
        // In a big one, exactly the sample, which never includes the own domain.
        let sample = policy.sampled_domains(key, &all);
        assert_eq!(sample.len(), policy.witness_sample);
        assert!(!sample.contains(&&all[0]));
        for d in &all[1..] {
            let follows = policy.follows("log.x", d, key, &all);
            assert_eq!(follows, sample.contains(&d), "{d:?}");
        }
        // A domain outside the federation is not followed (unless own or configured).
        let stranger = TrustDomain::parse("stranger.example").unwrap();
        assert!(!policy.follows("log.stranger", &stranger, key, &all));
        // Deterministic, and different keys sample differently.
        assert_eq!(policy.sampled_domains(key, &all), sample);
        assert_ne!(policy.sampled_domains(b"another node", &all), sample);
    }

    #[test]
    fn follow_sample_spreads_load() {
        // 200 domains, each sampling 8 others: every domain is followed by some, none by
        // far more than the mean of 8.
        let all = domains(200);
        let mut followers = vec![0usize; all.len()];
        for own in &all {
            let policy = FollowPolicy::new(own.clone());
            for d in policy.sampled_domains(own.as_str().as_bytes(), &all) {
                let i = all.iter().position(|x| x == d).unwrap();
                followers[i] += 1;
            }
        }
        assert_eq!(followers.iter().sum::<usize>(), 200 * 8);
        assert!(followers.iter().all(|&n| n <= 24), "{followers:?}");
    }

    proptest! {
        /// Rendezvous hashing: a domain joining changes a node's sample by at most that
        /// domain.
        #[test]
        fn follow_sample_is_stable(
            key in proptest::collection::vec(any::<u8>(), 0..16),
            n in 33usize..80,
        ) {
            let all = domains(n + 1);
            let policy = FollowPolicy::new(all[0].clone());
            let before: BTreeSet<_> = policy.sampled_domains(&key, &all[..n]).into_iter().collect();
            let after: BTreeSet<_> = policy.sampled_domains(&key, &all).into_iter().collect();
            let joined = &all[n];
            prop_assert!(after.iter().all(|d| before.contains(d) || *d == joined));
            prop_assert!(before.difference(&after).count() <= 1);
        }
    }

    // ---- Two nodes with a virtual clock --------------------------------------------

    /// A message in flight between the two simulated nodes.
    enum Message {
        Summary(Summary),
        Notes(Vec<Vec<u8>>),
        ProofRequest {
            id: RequestId,
            origin: String,
            first: u64,
            last: u64,
        },
        Proof {
            id: RequestId,
            proof: Vec<Hash>,
        },
    }

    /// Two nodes, each the authority of one log, with no gossip at all: only anti-entropy
    /// and proof fetching move checkpoints, over links with 30 ms latency.
    struct TwoNodes {
        books: [CheckpointBook<u32>; 2],
        logs: [TestLog; 2],
        /// (delivery time, sequence, destination, source, message).
        wire: BTreeMap<(Timestamp, u64), (usize, usize, Message)>,
        seq: u64,
        now: Timestamp,
    }

    const LATENCY: Duration = Duration::from_millis(30);

    impl TwoNodes {
        fn new(seed: u64) -> Self {
            let logs = [TestLog::new(ORIGIN, 1), TestLog::new(OTHER, 2)];
            let books = [0usize, 1].map(|i| {
                let mut book = CheckpointBook::new(
                    CheckpointBookConfig {
                        seed: seed + i as u64,
                        anti_entropy_interval: Duration::from_secs(10),
                        ..config()
                    },
                    t(0),
                );
                for log in &logs {
                    book.set_log(log.origin().to_owned(), log.verifier(), true)
                        .unwrap();
                }
                let other = 1 - i as u32;
                book.peer_connected(other).unwrap();
                book.peer_serves(&other, [logs[other as usize].origin()]);
                book
            });
            TwoNodes {
                books,
                logs,
                wire: BTreeMap::new(),
                seq: 0,
                now: t(0),
            }
        }

        fn send(&mut self, from: usize, to: usize, message: Message) {
            self.seq += 1;
            self.wire.insert(
                (self.now.saturating_add(LATENCY), self.seq),
                (to, from, message),
            );
        }

        /// The authority `node` publishes its log at `size`.
        fn publish(&mut self, node: usize, size: u64) {
            let note = self.logs[node].note(size);
            assert_eq!(
                self.books[node].handle_checkpoint(self.now, None, &note),
                Relay::Accept
            );
            self.flush(node);
        }

        fn flush(&mut self, node: usize) {
            while let Some(event) = self.books[node].poll_output() {
                let peer = 1 - node;
                match event {
                    CheckpointEvent::SendSummary { summary, .. } => {
                        self.send(node, peer, Message::Summary(summary))
                    }
                    CheckpointEvent::FetchConsistency {
                        request_id,
                        origin,
                        first,
                        last,
                        ..
                    } => self.send(
                        node,
                        peer,
                        Message::ProofRequest {
                            id: request_id,
                            origin,
                            first,
                            last,
                        },
                    ),
                    CheckpointEvent::Adopted { .. } => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
        }

        fn deliver(&mut self, to: usize, from: usize, message: Message) {
            let now = self.now;
            let peer = from as u32;
            match message {
                Message::Summary(summary) => {
                    let notes = self.books[to].handle_summary(now, &peer, &summary);
                    self.send(to, from, Message::Notes(notes));
                }
                Message::Notes(notes) => {
                    for note in notes {
                        self.books[to].handle_checkpoint(now, Some(peer), &note);
                    }
                }
                Message::ProofRequest {
                    id,
                    origin,
                    first,
                    last,
                } => {
                    assert_eq!(origin, self.logs[to].origin(), "asked a server of the log");
                    let proof = self.logs[to].proof(first, last);
                    self.send(to, from, Message::Proof { id, proof });
                }
                Message::Proof { id, proof } => {
                    self.books[to].handle_consistency_proof(now, &peer, id, &proof, None)
                }
            }
            self.flush(to);
        }

        /// Advances to the next message or timer and handles it.
        fn step(&mut self) {
            let next_message = self.wire.keys().next().map(|(at, _)| *at);
            let timers = self.books.iter().filter_map(CheckpointBook::poll_timeout);
            let next = timers.chain(next_message).min().unwrap();
            self.now = self.now.max(next);
            if next_message == Some(next)
                && let Some((_, (to, from, message))) = self.wire.pop_first()
            {
                self.deliver(to, from, message);
                return;
            }
            for node in 0..2 {
                if self.books[node]
                    .poll_timeout()
                    .is_some_and(|at| at <= self.now)
                {
                    self.books[node].handle_timeout(self.now);
                    self.flush(node);
                }
            }
        }

        fn converged(&self) -> bool {
            [ORIGIN, OTHER].iter().all(|origin| {
                let a = self.books[0].latest(origin).map(LatestCheckpoint::head);
                a.is_some() && a == self.books[1].latest(origin).map(LatestCheckpoint::head)
            })
        }

        fn run_until_converged(&mut self, limit: Timestamp) {
            while !self.converged() {
                assert!(self.now < limit, "no convergence by {limit:?}");
                self.step();
            }
        }
    }

    #[test]
    fn two_nodes_converge_by_anti_entropy() {
        for seed in 0..5 {
            let mut sim = TwoNodes::new(seed);
            sim.publish(0, 3);
            sim.publish(1, 7);
            sim.run_until_converged(t(60_000));
            let first = sim.now;
            // Both logs grow; proofs are now needed to adopt, and still they converge.
            sim.publish(0, 40);
            sim.publish(1, 9);
            sim.publish(1, 100);
            sim.run_until_converged(first.saturating_add(Duration::from_secs(60)));
            assert_eq!(sim.books[1].latest(ORIGIN).unwrap().size, 40);
            assert_eq!(sim.books[0].latest(OTHER).unwrap().size, 100);
            assert_eq!(
                sim.books[0].latest(OTHER).unwrap().root,
                sim.logs[1].root(100)
            );
        }
    }

    #[test]
    fn two_node_runs_are_deterministic() {
        let run = |seed| {
            let mut sim = TwoNodes::new(seed);
            sim.publish(0, 3);
            sim.publish(1, 7);
            sim.run_until_converged(t(60_000));
            sim.publish(0, 30);
            sim.run_until_converged(t(120_000));
            sim.now
        };
        assert_eq!(run(42), run(42));
    }

    // ---- Property: adopted sizes never decrease ------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        /// A checkpoint of the honest (false) or forked (true) history from a peer.
        Gossip {
            forked: bool,
            size: u64,
            peer: u32,
        },
        /// Our own sequencer publishes (honest history).
        Own {
            size: u64,
        },
        /// The oldest outstanding request is answered: 0 valid from the peer's history,
        /// 1 garbage, 2 failure.
        Answer {
            mode: u8,
        },
        Advance {
            millis: u64,
        },
        Disconnect {
            peer: u32,
        },
        Connect {
            peer: u32,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (any::<bool>(), 0u64..64, 1u32..5)
                .prop_map(|(forked, size, peer)| Op::Gossip { forked, size, peer }),
            1 => (0u64..64).prop_map(|size| Op::Own { size }),
            3 => (0u8..3).prop_map(|mode| Op::Answer { mode }),
            2 => (0u64..8_000).prop_map(|millis| Op::Advance { millis }),
            1 => (1u32..5).prop_map(|peer| Op::Disconnect { peer }),
            1 => (1u32..5).prop_map(|peer| Op::Connect { peer }),
        ]
    }

    /// Connects `peer`, a server of the log [`ORIGIN`].
    fn serve(book: &mut CheckpointBook<u32>, peer: u32) {
        book.peer_connected(peer).unwrap();
        book.peer_serves(&peer, [ORIGIN]);
    }

    /// Signed notes of both histories at every size below 64, signed once for all cases
    /// (signing dominates the property test's run time otherwise).
    fn history_notes() -> &'static [Vec<Vec<u8>>; 2] {
        static NOTES: std::sync::OnceLock<[Vec<Vec<u8>>; 2]> = std::sync::OnceLock::new();
        NOTES.get_or_init(|| {
            let mut honest = TestLog::new(ORIGIN, 1);
            let mut forked = TestLog::forked(ORIGIN, 1, 20);
            [
                (0..64).map(|size| honest.note(size)).collect(),
                (0..64).map(|size| forked.note(size)).collect(),
            ]
        })
    }

    proptest! {
        // Each case verifies dozens of Ed25519 signatures, slow in debug builds.
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever peers send and however requests fare, the adopted size never
        /// decreases, and every adoption extends the previous one within one history.
        #[test]
        fn adopted_sizes_never_decrease(ops in proptest::collection::vec(op(), 1..80)) {
            let mut honest = TestLog::new(ORIGIN, 1);
            let mut forked = TestLog::forked(ORIGIN, 1, 20);
            honest.grow_to(64);
            forked.grow_to(64);
            let mut book = book_with(&honest);
            // Peers 1 and 2 serve the honest history, 3 and 4 the forked one.
            for peer in 1..5 {
                serve(&mut book, peer);
            }
            let mut outstanding: VecDeque<(RequestId, u32, u64, u64)> = VecDeque::new();
            let mut now = t(0);
            let mut last: Option<TreeHead> = None;
            for op in ops {
                // Our own sequencer is trusted without a proof (its consistency is the
                // sequencer's rule), so only the size rule holds across its adoptions.
                let own = matches!(op, Op::Own { .. });
                match op {
                    Op::Gossip { forked: f, size, peer } => {
                        let note = &history_notes()[usize::from(f)][size as usize];
                        book.handle_checkpoint(now, Some(peer), note);
                    }
                    Op::Own { size } => {
                        book.handle_checkpoint(now, None, &history_notes()[0][size as usize]);
                    }
                    Op::Answer { mode } => {
                        if let Some((id, peer, first, last)) = outstanding.pop_front() {
                            match mode {
                                0 => {
                                    let tree = if peer <= 2 { &mut honest } else { &mut forked };
                                    let proof = tree.proof(first, last);
                                    // As servers do: the older subtree when the RFC omits it.
                                    let subtree = first.is_power_of_two().then(|| tree.root(first));
                                    book.handle_consistency_proof(now, &peer, id, &proof, subtree);
                                }
                                1 => book.handle_consistency_proof(now, &peer, id, &[[7; 32]; 3], Some([7; 32])),
                                _ => book.handle_fetch_failed(now, &peer, id),
                            }
                        }
                    }
                    Op::Advance { millis } => {
                        now = now.saturating_add(Duration::from_millis(millis));
                        book.handle_timeout(now);
                    }
                    Op::Disconnect { peer } => book.peer_disconnected(&peer),
                    Op::Connect { peer } => serve(&mut book, peer),
                }
                while let Some(event) = book.poll_output() {
                    match event {
                        CheckpointEvent::FetchConsistency { request_id, peer, first, last, .. } => {
                            prop_assert!(first < last);
                            outstanding.push_back((request_id, peer, first, last));
                        }
                        CheckpointEvent::Adopted { size, root, .. } => {
                            let head = TreeHead { size, root };
                            let latest = book.latest(ORIGIN).map(LatestCheckpoint::head);
                            prop_assert_eq!(latest, Some(head));
                            if let Some(prev) = last {
                                prop_assert!(size > prev.size, "{prev:?} -> {head:?}");
                                // Both heads belong to one history.
                                let one_history = own
                                    || [&mut honest, &mut forked].into_iter().any(|tree| {
                                        tree.root(prev.size) == prev.root
                                            && tree.root(size) == root
                                    });
                                prop_assert!(one_history, "{prev:?} -> {head:?}");
                            }
                            last = Some(head);
                        }
                        _ => {}
                    }
                }
                prop_assert_eq!(book.latest(ORIGIN).map(LatestCheckpoint::head), last);
                prop_assert!(book.pending_fetches() <= 1);
            }
        }

        /// Zero false positives: an honest log's checkpoints arriving in any order,
        /// duplicated, late or never, with or without witness cosignatures, with proofs that are honest, garbage or lost, from
        /// peers that come and go, never make a conflict (so never evidence).
        #[test]
        fn an_honest_log_never_conflicts(ops in proptest::collection::vec(op(), 1..120)) {
            let mut honest = TestLog::new(ORIGIN, 1);
            honest.grow_to(64);
            let mut book = book_with(&honest);
            for peer in 1..5 {
                serve(&mut book, peer);
            }
            // Two witness domains; the `forked` flag here means "cosigned by the witness
            // of the peer's parity".
            let (wa, mut roster) = witness("org-b.example", 11);
            let (wb, _) = witness("org-c.example", 12);
            roster.insert(&TrustDomain::parse("org-c.example").unwrap(), [&WitnessKey {
                verifier: wb.verifier(),
                window: KeyWindow::open_from(0),
            }]);
            book.set_witnesses(roster);
            let mut outstanding: VecDeque<(RequestId, u32, u64, u64)> = VecDeque::new();
            let mut now = t(0);
            for op in ops {
                match op {
                    Op::Gossip { forked: cosigned, size, peer } => {
                        let note = &history_notes()[0][size as usize];
                        let note = if cosigned {
                            cosign(note, if peer % 2 == 0 { &wa } else { &wb }, now.as_unix_seconds())
                        } else {
                            note.clone()
                        };
                        let relay = book.handle_checkpoint(now, Some(peer), &note);
                        prop_assert!(!matches!(relay, Relay::Reject(_)), "{relay:?}");
                    }
                    Op::Own { size } => {
                        book.handle_checkpoint(now, None, &history_notes()[0][size as usize]);
                    }
                    Op::Answer { mode } => {
                        // Answers come back in another order than they were asked for.
                        let next = if mode == 0 { outstanding.pop_back() } else { outstanding.pop_front() };
                        if let Some((id, peer, first, last)) = next {
                            match mode {
                                0 => {
                                    let proof = honest.proof(first, last);
                                    let subtree = first.is_power_of_two().then(|| honest.root(first));
                                    book.handle_consistency_proof(now, &peer, id, &proof, subtree);
                                }
                                1 => book.handle_consistency_proof(now, &peer, id, &[[7; 32]; 3], Some([7; 32])),
                                _ => book.handle_fetch_failed(now, &peer, id),
                            }
                        }
                    }
                    Op::Advance { millis } => {
                        now = now.saturating_add(Duration::from_millis(millis));
                        book.handle_timeout(now);
                    }
                    Op::Disconnect { peer } => book.peer_disconnected(&peer),
                    Op::Connect { peer } => serve(&mut book, peer),
                }
                while let Some(event) = book.poll_output() {
                    match event {
                        CheckpointEvent::Conflict { .. } => {
                            prop_assert!(false, "an honest log was found in conflict: {event:?}");
                        }
                        CheckpointEvent::FetchConsistency { request_id, peer, first, last, .. } => {
                            outstanding.push_back((request_id, peer, first, last));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

//! The peer book: which connected peer speaks for which SPIFFE ID, what each may send,
//! how much, and which peers are banned.
//!
//! Design ("Identity"): libp2p keys are separate from SPIFFE identities. A peer is
//! **bound** to a SPIFFE ID by a verified node record
//! ([`crate::federation::node_record`]) until that record expires. Objects that
//! authenticate themselves — domain records, checkpoints, cosignatures, evidence — are
//! accepted from any peer, bound or not, so that a newly federated domain's records
//! reach nodes before any of its nodes can be bound; everything else needs a bound peer.
//! Both classes are rate-limited per peer with a token bucket.
//!
//! Misbehaviour lowers a peer's **score** by the weight of the [`Offence`]; the score
//! decays back towards 0 (it halves every [`PeerBookConfig::score_half_life`]). When it
//! reaches [`PeerBookConfig::ban_score`] the peer is banned: the book emits
//! [`PeerAction::Disconnect`] and refuses it until the ban ends; a peer banned again soon
//! after is banned twice as long, up to [`PeerBookConfig::max_ban_duration`].
//!
//! The book follows the state machine contract of [`crate::machine`]: time is an
//! argument of every call, nothing reads a clock or draws randomness, outputs are
//! drained with [`PeerBook::poll_output`], and [`PeerBook::handle_timeout`] is due at
//! [`PeerBook::poll_timeout`]. Its memory is bounded: at most
//! [`PeerBookConfig::max_peers`] peers (connected ones, and disconnected ones remembered
//! so that reconnecting does not clear a score — the least recently seen is forgotten
//! first) and [`PeerBookConfig::max_bans`] bans. The peer type is generic, so the node
//! uses libp2p `PeerId`s and the simulator integers.
//!
//! Driver rules: call [`PeerBook::connected`] when the first connection to a peer opens
//! and [`PeerBook::disconnected`] when its last one closes; [`PeerBook::admit`] every
//! unsolicited message (gossip, requests) before decoding it further; [`PeerBook::bind`]
//! with each node record that verified; [`PeerBook::penalize`] for what a message turned
//! out to be. Responses to this node's own requests are not admitted (they were asked
//! for), but their content is penalized like anything else.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::time::Duration;

use crate::federation::node_record::{NodeRecordError, VerifiedNodeRecord};
use crate::federation::registry::{BundleSource, RecordRejected};
use crate::machine::Timestamp;
use crate::mesh::wire::WireError;
use crate::spiffe::{SpiffeId, TrustDomain};

/// Which rule admits a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageClass {
    /// An object that authenticates itself by its own signatures — a domain record, a
    /// checkpoint, a cosignature, equivocation evidence — accepted from any peer, rate
    /// limited by [`PeerBookConfig::self_authenticating`].
    SelfAuthenticating,
    /// Anything else (requests, hellos of a bound peer, …): only from a peer bound to a
    /// SPIFFE ID, rate limited by [`PeerBookConfig::needs_bound_peer`].
    NeedsBoundPeer,
    /// A provenance lookup: only from a bound peer, rate limited by
    /// [`PeerBookConfig::lookups`]. A node asks on behalf of its consumers, so a busy one
    /// asks often: a lookup over the rate is refused, but not held against the peer.
    Lookup,
}

/// What [`PeerBook::admit`] decided about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Admission {
    /// Process it.
    Accept,
    /// Drop it: the peer exceeded its rate for this class (an [`Offence::RateLimited`],
    /// already recorded).
    RateLimited,
    /// Drop it: the message needs a bound peer and this one is not bound (an
    /// [`Offence::Unbound`], already recorded).
    Unbound,
    /// Drop it: the peer is banned (a [`PeerAction::Disconnect`] is or was emitted).
    Banned,
    /// Drop it: the peer was not known and the book is full of connected peers (a
    /// [`PeerAction::Refuse`] is emitted).
    TooManyPeers,
}

/// A peer's misbehaviour, with the weight it subtracts from the peer's score.
///
/// With the default [`PeerBookConfig::ban_score`] of −100, the weights say how many
/// offences of a kind within a score half-life ban a peer: weights are low for what an
/// honest peer can cause by a race or a skewed clock, high for what only a broken or
/// malicious peer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Offence {
    /// A message that does not decode or breaks a format rule. Weight 10: a buggy or
    /// incompatible peer is dropped after ten.
    Malformed,
    /// A message larger than its bound. Weight 20: it cost bandwidth before it was
    /// refused, and no conforming peer sends one.
    Oversized,
    /// A signature that does not verify with the key it claims (the transport guarantees
    /// integrity, so this is never line noise). Weight 50.
    BadSignature,
    /// A node or domain record that fails verification for a reason an honest peer can
    /// hit — an expired record or SVID, clock skew, a bundle rotation not yet seen
    /// here. Weight 20.
    InvalidRecord,
    /// A message that needs a bound peer from an unbound one: its node record may still
    /// be in flight. Weight 5.
    Unbound,
    /// One message over the rate limit. Weight 1: a short overshoot costs little, a
    /// flood of a hundred messages within a half-life bans.
    RateLimited,
    /// A Merkle proof that does not verify against the checkpoints it claims to join.
    /// Weight 50.
    BadProof,
    /// A genuine domain record this node refuses: older than the accepted one (a
    /// replay), or breaking a rule of the domain's chain — an origin of another domain,
    /// a log removed or re-keyed, `issuedAt` going back. Weight 5: a lagging honest peer
    /// may relay one that it accepted under an older view; a peer that keeps sending them
    /// is banned after twenty within a half-life.
    RefusedRecord,
    /// Something only a malicious peer sends: a node record of another peer replayed, an
    /// SVID of another workload signing for the node, "evidence" that proves nothing.
    /// Weight 100: banned at once.
    Forged,
}

impl Offence {
    /// Every offence, for tables and tests.
    pub const ALL: [Offence; 9] = [
        Offence::Malformed,
        Offence::Oversized,
        Offence::BadSignature,
        Offence::InvalidRecord,
        Offence::Unbound,
        Offence::RateLimited,
        Offence::BadProof,
        Offence::RefusedRecord,
        Offence::Forged,
    ];

    /// What the offence subtracts from the peer's score (see each variant).
    pub const fn weight(self) -> i64 {
        match self {
            Offence::Malformed => 10,
            Offence::Oversized => 20,
            Offence::BadSignature => 50,
            Offence::InvalidRecord => 20,
            Offence::Unbound => 5,
            Offence::RateLimited => 1,
            Offence::BadProof => 50,
            Offence::RefusedRecord => 5,
            Offence::Forged => 100,
        }
    }
}

/// The offence a refused node record is, or `None` when refusing it is no fault of the
/// peer's: a record of a trust domain not (yet) federated here.
///
/// One mapping for the node and the simulator alike.
pub fn node_record_offence(error: &NodeRecordError) -> Option<Offence> {
    match error {
        NodeRecordError::PayloadType { .. }
        | NodeRecordError::SignatureCount { .. }
        | NodeRecordError::Payload(_) => Some(Offence::Malformed),
        // A record for another peer id, or signed by another workload's SVID, was made
        // or replayed on purpose.
        NodeRecordError::WrongPeer { .. } | NodeRecordError::SpiffeIdMismatch { .. } => {
            Some(Offence::Forged)
        }
        NodeRecordError::Signature(_) => Some(Offence::BadSignature),
        // Clocks, rotations and bundle updates in flight.
        NodeRecordError::IssuedInFuture { .. }
        | NodeRecordError::Expired { .. }
        | NodeRecordError::Svid(_)
        | NodeRecordError::OutlivesSvid { .. } => Some(Offence::InvalidRecord),
        NodeRecordError::UnknownTrustDomain { .. } => None,
    }
}

/// The offence a refused domain record is, or `None` when refusing it is no fault of
/// the sender's.
///
/// * Forged or malformed records ([`RecordRejected::blames_sender`]) are what no honest
///   node relays, since every node validates before relaying.
/// * A record that does not verify under the accepted record's bundle although it is the
///   very next one cannot be made to verify by walking the chain: the next record must be
///   signed under the accepted bundle. An honest peer never relays it. A record further
///   ahead may be genuine (this node missed a rotation), and a first record may be signed
///   under a bundle newer than the configured bootstrap one, so those are no offence: the
///   driver walks the domain's chain from the sender instead.
/// * Genuine but refused records (a replay of an older one, a rule of the chain broken
///   by the authority itself) are [`Offence::RefusedRecord`].
/// * A conflicting record is evidence of a forked domain, relayed as such; records of
///   unknown or revoked domains and records dated ahead are no offence.
///
/// One mapping for the node and the simulator alike.
pub fn domain_record_offence(rejected: &RecordRejected) -> Option<Offence> {
    match rejected {
        RecordRejected::Malformed(_) => Some(Offence::Malformed),
        RecordRejected::SignerNotAuthority { .. } => Some(Offence::InvalidRecord),
        RecordRejected::Verification {
            sequence,
            under,
            source,
            ..
        } => {
            let next_to_accepted = matches!(under, BundleSource::Record(accepted)
                if accepted.checked_add(1) == Some(*sequence));
            (source.blames_sender() || next_to_accepted).then_some(Offence::InvalidRecord)
        }
        RecordRejected::Rollback { .. }
        | RecordRejected::IssuedAtRegressed { .. }
        | RecordRejected::OriginClaimed { .. }
        | RecordRejected::LogRemoved { .. }
        | RecordRejected::LogKeyChanged { .. }
        | RecordRejected::LogWindowChanged { .. } => Some(Offence::RefusedRecord),
        RecordRejected::Conflicting { .. }
        | RecordRejected::UnknownDomain { .. }
        | RecordRejected::Revoked { .. }
        | RecordRejected::IssuedInFuture { .. } => None,
    }
}

/// The offence bytes that are not a valid mesh message are: [`Offence::Oversized`] for a
/// message over its bound, [`Offence::Malformed`] for anything else. One mapping for the
/// node and the simulator alike.
pub fn wire_offence(error: &WireError) -> Offence {
    match error {
        WireError::TooLarge { .. } => Offence::Oversized,
        _ => Offence::Malformed,
    }
}

/// A token bucket's parameters: `burst` messages at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// The bucket's capacity, in messages (at least 1).
    pub burst: u32,
    /// Messages per second added back (0: the burst is all a peer ever gets).
    pub per_second: u32,
}

/// The peer book's limits. Every bound is finite; see [`PeerBookConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerBookConfig {
    /// The most peers tracked, connected or remembered after disconnecting.
    pub max_peers: usize,
    /// The most bans remembered (active ones and recent ones, for escalation).
    pub max_bans: usize,
    /// The rate of self-authenticating messages per peer.
    pub self_authenticating: RateLimit,
    /// The rate of messages that need a bound peer, per peer.
    pub needs_bound_peer: RateLimit,
    /// The rate of provenance lookups, per peer.
    pub lookups: RateLimit,
    /// The time in which a score halves back towards 0.
    pub score_half_life: Duration,
    /// A peer whose score reaches this (negative) value is banned.
    pub ban_score: i64,
    /// How long a first ban lasts; each ban within `max_ban_duration` of the end of the
    /// previous one lasts twice as long as that one.
    pub ban_duration: Duration,
    /// The longest ban, and how long a past ban counts towards escalation.
    pub max_ban_duration: Duration,
}

impl Default for PeerBookConfig {
    /// The defaults:
    ///
    /// - `max_peers` 1024, `max_bans` 1024: well above libp2p's usual connection limits,
    ///   so remembered peers are only forgotten under churn; a few hundred bytes each.
    /// - `self_authenticating`: burst 256, 64/s. A domain record chain, a catch-up of
    ///   checkpoints and cosignatures across many logs arrive in bursts; each costs a
    ///   signature check, which this keeps below a few milliseconds per second per peer.
    /// - `needs_bound_peer`: burst 64, 16/s. Requests (proofs, anti-entropy) cost the
    ///   responder more than gossip does.
    /// - `lookups`: burst 512, 256/s. A node forwards its consumers' lookups; the log's
    ///   server answers a repeated one from its cache and a new one with a store read and
    ///   a signature check (well under a millisecond), so this bounds a peer to a few
    ///   percent of a core.
    /// - `score_half_life` 5 min, `ban_score` −100: see [`Offence`] for the weights.
    /// - `ban_duration` 10 min, doubling for repeat offenders, `max_ban_duration` 24 h.
    fn default() -> Self {
        PeerBookConfig {
            max_peers: 1024,
            max_bans: 1024,
            self_authenticating: RateLimit {
                burst: 256,
                per_second: 64,
            },
            needs_bound_peer: RateLimit {
                burst: 64,
                per_second: 16,
            },
            lookups: RateLimit {
                burst: 512,
                per_second: 256,
            },
            score_half_life: Duration::from_secs(5 * 60),
            ban_score: -100,
            ban_duration: Duration::from_secs(10 * 60),
            max_ban_duration: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Why a [`PeerBookConfig`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PeerBookConfigError {
    /// `max_peers` or `max_bans` is 0.
    #[error("the peer book must track at least one peer and remember at least one ban")]
    ZeroCapacity,
    /// A rate limit with a burst of 0 would refuse every message.
    #[error("a rate limit's burst must be at least 1")]
    ZeroBurst,
    /// A half-life under a millisecond (the unit of time here).
    #[error("the score half-life must be at least 1 ms")]
    ZeroHalfLife,
    /// A ban score of 0 or more would ban peers that did nothing.
    #[error("the ban score must be negative, not {0}")]
    BanScoreNotNegative(i64),
    /// A ban of no time, or a longest ban shorter than the first.
    #[error("the ban duration must be at least 1 ms and at most max_ban_duration")]
    BanDuration,
}

impl PeerBookConfig {
    /// Checks the configuration's values.
    pub fn validate(&self) -> Result<(), PeerBookConfigError> {
        if self.max_peers == 0 || self.max_bans == 0 {
            return Err(PeerBookConfigError::ZeroCapacity);
        }
        if self.self_authenticating.burst == 0
            || self.needs_bound_peer.burst == 0
            || self.lookups.burst == 0
        {
            return Err(PeerBookConfigError::ZeroBurst);
        }
        if millis(self.score_half_life) == 0 {
            return Err(PeerBookConfigError::ZeroHalfLife);
        }
        if self.ban_score >= 0 {
            return Err(PeerBookConfigError::BanScoreNotNegative(self.ban_score));
        }
        if millis(self.ban_duration) == 0 || self.max_ban_duration < self.ban_duration {
            return Err(PeerBookConfigError::BanDuration);
        }
        Ok(())
    }
}

/// A peer's binding to a SPIFFE ID, from a verified node record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The SPIFFE ID the peer speaks for.
    pub spiffe_id: SpiffeId,
    /// When the record was issued, Unix seconds (a newer record replaces an older one).
    pub issued_at: u64,
    /// When the binding ends, Unix seconds (exclusive).
    pub expires_at: u64,
}

impl From<&VerifiedNodeRecord> for Binding {
    fn from(record: &VerifiedNodeRecord) -> Binding {
        Binding {
            spiffe_id: record.spiffe_id().clone(),
            issued_at: record.issued_at(),
            expires_at: record.expires_at(),
        }
    }
}

impl Binding {
    /// When the binding ends.
    fn expiry(&self) -> Timestamp {
        Timestamp::from_unix_seconds(self.expires_at)
    }
}

/// What [`PeerBook::bind`] did with a binding.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindOutcome {
    /// The peer is now bound (it was not).
    Bound,
    /// A newer record replaced the peer's binding.
    Replaced {
        /// The SPIFFE ID it was bound to.
        previous: SpiffeId,
    },
    /// The same record again: nothing changed.
    Unchanged,
    /// Ignored: the peer holds a binding from a newer record (or another record issued
    /// the same second, which came first).
    Stale,
    /// Ignored: the binding has already expired.
    Expired,
    /// Ignored: the peer is banned.
    Banned,
    /// Ignored: the peer is not connected.
    NotConnected,
}

/// What the book asks the driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAction<P> {
    /// Close every connection to `peer` and refuse it until `until`.
    Disconnect {
        /// The banned peer.
        peer: P,
        /// When the ban ends.
        until: Timestamp,
        /// The offence that brought its score to the ban threshold.
        reason: Offence,
    },
    /// Close the new connection to `peer`: the book is full of connected peers. Not a
    /// ban; it may try again.
    Refuse {
        /// The peer refused.
        peer: P,
    },
    /// `peer`'s node record expired: it is unbound until it sends a new one (the driver
    /// may ask it for its hello again).
    BindingExpired {
        /// The peer.
        peer: P,
        /// The SPIFFE ID it was bound to.
        spiffe_id: SpiffeId,
    },
}

/// One peer, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus<P> {
    /// The peer.
    pub peer: P,
    /// Whether it is connected.
    pub connected: bool,
    /// The SPIFFE ID it is bound to, if any.
    pub spiffe_id: Option<SpiffeId>,
    /// Its score (0 is neutral; offences lower it).
    pub score: i64,
    /// When its ban ends, if it is banned.
    pub banned_until: Option<Timestamp>,
}

/// A token bucket in thousandths of a message, so refills are exact in integers.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    millitokens: u64,
    at: Timestamp,
}

impl Bucket {
    fn full(limit: RateLimit, now: Timestamp) -> Bucket {
        Bucket {
            millitokens: u64::from(limit.burst) * 1000,
            at: now,
        }
    }

    /// Refills up to `now` and takes one message if there is one.
    fn take(&mut self, limit: RateLimit, now: Timestamp) -> bool {
        let elapsed = now
            .as_unix_millis()
            .saturating_sub(self.at.as_unix_millis());
        // `per_second` messages per 1000 ms = `per_second` millitokens per ms.
        let refill = elapsed.saturating_mul(u64::from(limit.per_second));
        self.millitokens = self
            .millitokens
            .saturating_add(refill)
            .min(u64::from(limit.burst) * 1000);
        self.at = self.at.max(now);
        if self.millitokens >= 1000 {
            self.millitokens -= 1000;
            true
        } else {
            false
        }
    }
}

/// A score (≤ 0) that halves every half-life since `since`.
#[derive(Debug, Clone, Copy)]
struct Score {
    value: i64,
    /// The start of the current half-life period.
    since: Timestamp,
}

impl Score {
    fn new(now: Timestamp) -> Score {
        Score {
            value: 0,
            since: now,
        }
    }

    /// The score at `now`: halved (rounding towards 0) once per whole half-life elapsed.
    /// Whole periods keep the result independent of how often the score is looked at.
    fn decayed(self, now: Timestamp, half_life_ms: u64) -> Score {
        if self.value == 0 {
            return Score::new(now.max(self.since));
        }
        let elapsed = now
            .as_unix_millis()
            .saturating_sub(self.since.as_unix_millis());
        let periods = elapsed / half_life_ms;
        if periods == 0 {
            return self;
        }
        let value = if periods >= 63 {
            0
        } else {
            self.value / (1i64 << periods)
        };
        Score {
            value,
            since: Timestamp::from_unix_millis(
                self.since
                    .as_unix_millis()
                    .saturating_add(periods.saturating_mul(half_life_ms)),
            ),
        }
    }
}

/// What the book knows of one peer.
#[derive(Debug, Clone)]
struct PeerState {
    connected: bool,
    /// When it was last connected, sent something or disconnected.
    last_seen: Timestamp,
    binding: Option<Binding>,
    score: Score,
    self_authenticating: Bucket,
    needs_bound_peer: Bucket,
    lookups: Bucket,
}

/// A ban, kept after it ends for escalation.
#[derive(Debug, Clone, Copy)]
struct Ban {
    until: Timestamp,
    reason: Offence,
    /// How many bans in a row (each within `max_ban_duration` of the previous end).
    strikes: u32,
}

/// Which kind of action is queued for a peer (one of each at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ActionKind {
    Disconnect,
    Refuse,
    BindingExpired,
}

/// The peer book. See the module documentation.
#[derive(Debug, Clone)]
pub struct PeerBook<P: Clone + Ord + Debug> {
    config: PeerBookConfig,
    peers: BTreeMap<P, PeerState>,
    /// Disconnected peers by when they were last seen: the eviction order.
    disconnected: BTreeSet<(Timestamp, P)>,
    bans: BTreeMap<P, Ban>,
    outputs: VecDeque<PeerAction<P>>,
    /// What `outputs` holds, so that each peer has at most one action of each kind queued.
    queued: BTreeSet<(P, ActionKind)>,
    /// The latest time any input carried (ban ends before it are not timers any more).
    latest: Timestamp,
}

impl<P: Clone + Ord + Debug> PeerBook<P> {
    /// An empty book.
    pub fn new(config: PeerBookConfig) -> Result<PeerBook<P>, PeerBookConfigError> {
        config.validate()?;
        Ok(PeerBook {
            config,
            peers: BTreeMap::new(),
            disconnected: BTreeSet::new(),
            bans: BTreeMap::new(),
            outputs: VecDeque::new(),
            queued: BTreeSet::new(),
            latest: Timestamp::EPOCH,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PeerBookConfig {
        &self.config
    }

    /// A peer connected (its first connection opened). Returns whether it is accepted; a
    /// banned peer gets [`PeerAction::Disconnect`] again, and a peer that does not fit
    /// (every tracked peer is connected) gets [`PeerAction::Refuse`].
    pub fn connected(&mut self, now: Timestamp, peer: &P) -> bool {
        self.observe(now);
        if let Some(ban) = self.active_ban(now, peer) {
            self.push(PeerAction::Disconnect {
                peer: peer.clone(),
                until: ban.until,
                reason: ban.reason,
            });
            return false;
        }
        self.track_connected(now, peer).is_some()
    }

    /// A peer disconnected (its last connection closed). Its binding ends (a node record
    /// is verified per connection); its score and rate buckets are remembered.
    pub fn disconnected(&mut self, now: Timestamp, peer: &P) {
        self.observe(now);
        if let Some(state) = self.peers.get_mut(peer)
            && state.connected
        {
            state.connected = false;
            state.binding = None;
            state.last_seen = state.last_seen.max(now);
            self.disconnected.insert((state.last_seen, peer.clone()));
        }
    }

    /// Decides whether to process a message of `class` from `peer`, and records an
    /// unbound or rate-limited message as an offence. A peer the book does not know is
    /// taken as connected (the message proves a connection).
    pub fn admit(&mut self, now: Timestamp, peer: &P, class: MessageClass) -> Admission {
        self.observe(now);
        if self.active_ban(now, peer).is_some() {
            return Admission::Banned;
        }
        let config = self.config.clone();
        let Some(state) = self.track_connected(now, peer) else {
            return Admission::TooManyPeers;
        };
        let expired = state
            .binding
            .take_if(|b| b.expiry() <= now)
            .map(|b| b.spiffe_id);
        let (bound, allowed) = match class {
            MessageClass::SelfAuthenticating => (
                true,
                state
                    .self_authenticating
                    .take(config.self_authenticating, now),
            ),
            MessageClass::NeedsBoundPeer => {
                let bound = state.binding.is_some();
                // An unbound peer's message is refused without spending a token.
                let allowed = bound && state.needs_bound_peer.take(config.needs_bound_peer, now);
                (bound, allowed)
            }
            MessageClass::Lookup => {
                let bound = state.binding.is_some();
                let allowed = bound && state.lookups.take(config.lookups, now);
                (bound, allowed)
            }
        };
        if let Some(spiffe_id) = expired {
            self.push(PeerAction::BindingExpired {
                peer: peer.clone(),
                spiffe_id,
            });
        }
        if !bound {
            self.penalize(now, peer, Offence::Unbound);
            Admission::Unbound
        } else if !allowed {
            // A lookup over the rate is a busy peer, not a hostile one: refused, not held
            // against it.
            if class != MessageClass::Lookup {
                self.penalize(now, peer, Offence::RateLimited);
            }
            Admission::RateLimited
        } else {
            Admission::Accept
        }
    }

    /// Binds a connected peer to the SPIFFE ID of a node record verified on its
    /// connection (build the [`Binding`] from the [`VerifiedNodeRecord`]). A record issued
    /// later replaces the current binding; an older one is ignored.
    pub fn bind(&mut self, now: Timestamp, peer: &P, binding: Binding) -> BindOutcome {
        self.observe(now);
        if self.active_ban(now, peer).is_some() {
            return BindOutcome::Banned;
        }
        if binding.expiry() <= now {
            return BindOutcome::Expired;
        }
        let Some(state) = self.peers.get_mut(peer).filter(|s| s.connected) else {
            return BindOutcome::NotConnected;
        };
        state.last_seen = state.last_seen.max(now);
        // An expired binding is as good as none.
        let current = state.binding.take_if(|b| b.expiry() > now);
        let outcome = match current {
            None => BindOutcome::Bound,
            Some(current) if current == binding || binding.issued_at <= current.issued_at => {
                let same = current == binding;
                state.binding = Some(current);
                return if same {
                    BindOutcome::Unchanged
                } else {
                    BindOutcome::Stale
                };
            }
            Some(current) => BindOutcome::Replaced {
                previous: current.spiffe_id,
            },
        };
        state.binding = Some(binding);
        outcome
    }

    /// Records an offence of `peer`: lowers its score, and bans it (emitting
    /// [`PeerAction::Disconnect`]) if the score reaches the ban threshold. Returns whether
    /// the peer is banned now. Offences of a banned peer do not extend its ban.
    pub fn penalize(&mut self, now: Timestamp, peer: &P, offence: Offence) -> bool {
        self.observe(now);
        if self.active_ban(now, peer).is_some() {
            return true;
        }
        let half_life = millis(self.config.score_half_life);
        let ban_score = self.config.ban_score;
        // A peer the book has no room for is judged on this offence alone.
        let mut untracked = Score::new(now);
        let score = match self.track(now, peer) {
            Some(state) => &mut state.score,
            None => &mut untracked,
        };
        *score = score.decayed(now, half_life);
        score.value = score.value.saturating_sub(offence.weight());
        if score.value > ban_score {
            return false;
        }
        // Banned: a clean slate for when the ban ends.
        *score = Score::new(now);
        if let Some(state) = self.peers.get_mut(peer) {
            state.binding = None;
        }
        self.ban(now, peer, offence);
        true
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, now: Timestamp, peer: &P) -> bool {
        self.active_ban(now, peer).is_some()
    }

    /// The SPIFFE ID `peer` is bound to. Bindings are removed when they expire in
    /// [`PeerBook::handle_timeout`] (and by [`PeerBook::admit`]).
    pub fn bound_id(&self, peer: &P) -> Option<&SpiffeId> {
        self.peers.get(peer)?.binding.as_ref().map(|b| &b.spiffe_id)
    }

    /// The connected peers bound to a SPIFFE ID of `trust_domain`, in peer order.
    pub fn peers_bound_to<'a>(
        &'a self,
        trust_domain: &'a TrustDomain,
    ) -> impl Iterator<Item = &'a P> + 'a {
        self.peers.iter().filter_map(move |(peer, state)| {
            state
                .binding
                .as_ref()
                .filter(|b| b.spiffe_id.member_of(trust_domain))
                .map(|_| peer)
        })
    }

    /// `peer`'s score at `now` (0 for a peer the book does not know).
    pub fn score(&self, now: Timestamp, peer: &P) -> i64 {
        self.peers.get(peer).map_or(0, |s| {
            s.score
                .decayed(now, millis(self.config.score_half_life))
                .value
        })
    }

    /// How many peers are tracked (connected or remembered).
    pub fn tracked_peers(&self) -> usize {
        self.peers.len()
    }

    /// How many bans are remembered (active or recent).
    pub fn remembered_bans(&self) -> usize {
        self.bans.len()
    }

    /// Every tracked peer and every banned one, in peer order, as of `now`.
    pub fn snapshot(&self, now: Timestamp) -> Vec<PeerStatus<P>> {
        let half_life = millis(self.config.score_half_life);
        let mut out: Vec<PeerStatus<P>> = self
            .peers
            .iter()
            .map(|(peer, state)| PeerStatus {
                peer: peer.clone(),
                connected: state.connected,
                spiffe_id: state
                    .binding
                    .as_ref()
                    .filter(|b| b.expiry() > now)
                    .map(|b| b.spiffe_id.clone()),
                score: state.score.decayed(now, half_life).value,
                banned_until: self.active_ban(now, peer).map(|b| b.until),
            })
            .collect();
        for (peer, ban) in &self.bans {
            if ban.until > now && !self.peers.contains_key(peer) {
                out.push(PeerStatus {
                    peer: peer.clone(),
                    connected: false,
                    spiffe_id: None,
                    score: 0,
                    banned_until: Some(ban.until),
                });
            }
        }
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }

    /// Lets time pass up to `now`: bindings whose record expired are removed (each with
    /// [`PeerAction::BindingExpired`]), and bans that no longer count for escalation are
    /// forgotten.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.observe(now);
        let mut expired = Vec::new();
        for (peer, state) in &mut self.peers {
            if let Some(binding) = state.binding.take_if(|b| b.expiry() <= now) {
                expired.push((peer.clone(), binding.spiffe_id));
            }
        }
        for (peer, spiffe_id) in expired {
            self.push(PeerAction::BindingExpired { peer, spiffe_id });
        }
        let memory = self.config.max_ban_duration;
        self.bans
            .retain(|_, ban| ban.until.saturating_add(memory) > now);
    }

    /// When [`PeerBook::handle_timeout`] is next due: the earliest binding expiry or end
    /// of a ban still in force at the latest time seen. O(peers + bans).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let expiries = self
            .peers
            .values()
            .filter_map(|s| s.binding.as_ref().map(Binding::expiry));
        let ban_ends = self
            .bans
            .values()
            .map(|b| b.until)
            .filter(|until| *until > self.latest);
        expiries.chain(ban_ends).min()
    }

    /// The next action for the driver, or `None` when there is none. Drain after every
    /// call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<PeerAction<P>> {
        let action = self.outputs.pop_front()?;
        self.queued.remove(&action_key(&action));
        Some(action)
    }

    fn observe(&mut self, now: Timestamp) {
        self.latest = self.latest.max(now);
    }

    fn active_ban(&self, now: Timestamp, peer: &P) -> Option<&Ban> {
        self.bans.get(peer).filter(|ban| now < ban.until)
    }

    /// The peer's state, inserted if new (making room by forgetting the least recently
    /// seen disconnected peer), or `None` when every tracked peer is connected.
    fn track(&mut self, now: Timestamp, peer: &P) -> Option<&mut PeerState> {
        if !self.peers.contains_key(peer) {
            if self.peers.len() >= self.config.max_peers {
                let (_, oldest) = self.disconnected.pop_first()?;
                self.peers.remove(&oldest);
            }
            let state = PeerState {
                connected: false,
                last_seen: now,
                binding: None,
                score: Score::new(now),
                self_authenticating: Bucket::full(self.config.self_authenticating, now),
                needs_bound_peer: Bucket::full(self.config.needs_bound_peer, now),
                lookups: Bucket::full(self.config.lookups, now),
            };
            self.peers.insert(peer.clone(), state);
            self.disconnected.insert((now, peer.clone()));
        }
        self.peers.get_mut(peer)
    }

    /// [`PeerBook::track`], then marks the peer connected; a peer that does not fit gets
    /// [`PeerAction::Refuse`].
    fn track_connected(&mut self, now: Timestamp, peer: &P) -> Option<&mut PeerState> {
        let Some(state) = self.track(now, peer) else {
            self.push(PeerAction::Refuse { peer: peer.clone() });
            return None;
        };
        let was = (state.connected, state.last_seen);
        state.connected = true;
        state.last_seen = state.last_seen.max(now);
        if !was.0 {
            self.disconnected.remove(&(was.1, peer.clone()));
        }
        self.peers.get_mut(peer)
    }

    /// Bans `peer` from `now`, escalating for a repeat offender.
    fn ban(&mut self, now: Timestamp, peer: &P, reason: Offence) {
        let memory = self.config.max_ban_duration;
        let strikes = match self.bans.get(peer) {
            Some(previous) if previous.until.saturating_add(memory) > now => {
                previous.strikes.saturating_add(1)
            }
            _ => 1,
        };
        let doubling = 1u32.checked_shl(strikes - 1).unwrap_or(u32::MAX);
        let duration = self
            .config
            .ban_duration
            .saturating_mul(doubling)
            .min(self.config.max_ban_duration);
        let until = now.saturating_add(duration);
        if !self.bans.contains_key(peer) && self.bans.len() >= self.config.max_bans {
            // Forget the ban that ends first: the least harm in forgetting.
            if let Some(first) = self
                .bans
                .iter()
                .min_by_key(|(_, b)| b.until)
                .map(|(p, _)| p.clone())
            {
                self.bans.remove(&first);
            }
        }
        self.bans.insert(
            peer.clone(),
            Ban {
                until,
                reason,
                strikes,
            },
        );
        self.push(PeerAction::Disconnect {
            peer: peer.clone(),
            until,
            reason,
        });
    }

    /// Queues an action, or replaces the one of its kind already queued for the peer (the
    /// queue is thus bounded by three per peer the driver is told about between drains).
    fn push(&mut self, action: PeerAction<P>) {
        let key = action_key(&action);
        if self.queued.insert(key.clone()) {
            self.outputs.push_back(action);
        } else if let Some(queued) = self.outputs.iter_mut().find(|a| action_key(a) == key) {
            // The newer action supersedes (a later ban end, another SPIFFE ID).
            *queued = action;
        }
    }
}

/// Who an action is for and its kind: at most one of each is queued.
fn action_key<P: Clone>(action: &PeerAction<P>) -> (P, ActionKind) {
    match action {
        PeerAction::Disconnect { peer, .. } => (peer.clone(), ActionKind::Disconnect),
        PeerAction::Refuse { peer } => (peer.clone(), ActionKind::Refuse),
        PeerAction::BindingExpired { peer, .. } => (peer.clone(), ActionKind::BindingExpired),
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::domain_record::DomainRecordError;
    use crate::spiffe::x509::X509SvidError;
    use proptest::prelude::*;

    const T0: u64 = 1_795_564_800;

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_unix_seconds(T0 + seconds)
    }

    fn book() -> PeerBook<u32> {
        PeerBook::new(PeerBookConfig::default()).unwrap()
    }

    fn id(s: &str) -> SpiffeId {
        SpiffeId::parse(s).unwrap()
    }

    fn binding(spiffe_id: &str, issued: u64, expires: u64) -> Binding {
        Binding {
            spiffe_id: id(spiffe_id),
            issued_at: T0 + issued,
            expires_at: T0 + expires,
        }
    }

    fn drain(book: &mut PeerBook<u32>) -> Vec<PeerAction<u32>> {
        std::iter::from_fn(|| book.poll_output()).collect()
    }

    const A_NODE: &str = "spiffe://org-a.example/provmesh/node/n1";

    #[test]
    fn self_authenticating_messages_need_no_binding_others_do() {
        let mut book = book();
        assert!(book.connected(at(0), &1));
        assert_eq!(
            book.admit(at(0), &1, MessageClass::SelfAuthenticating),
            Admission::Accept
        );
        assert_eq!(book.score(at(0), &1), 0);
        assert_eq!(
            book.admit(at(0), &1, MessageClass::NeedsBoundPeer),
            Admission::Unbound
        );
        assert_eq!(book.score(at(0), &1), -Offence::Unbound.weight());
        assert_eq!(
            book.bind(at(1), &1, binding(A_NODE, 0, 600)),
            BindOutcome::Bound
        );
        assert_eq!(book.bound_id(&1), Some(&id(A_NODE)));
        assert_eq!(
            book.admit(at(1), &1, MessageClass::NeedsBoundPeer),
            Admission::Accept
        );
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn bindings_follow_the_newest_record_and_are_looked_up_by_domain() {
        let mut book = book();
        let org_a = TrustDomain::parse("org-a.example").unwrap();
        let org_b = TrustDomain::parse("org-b.example").unwrap();
        for peer in [1, 2, 3] {
            assert!(book.connected(at(0), &peer));
        }
        assert_eq!(
            book.bind(at(0), &1, binding(A_NODE, 10, 600)),
            BindOutcome::Bound
        );
        assert_eq!(
            book.bind(at(0), &2, binding("spiffe://org-b.example/n", 0, 600)),
            BindOutcome::Bound
        );
        assert_eq!(
            book.bind(at(0), &3, binding("spiffe://org-a.example/n3", 0, 600)),
            BindOutcome::Bound
        );
        assert_eq!(book.peers_bound_to(&org_a).collect::<Vec<_>>(), [&1, &3]);
        assert_eq!(book.peers_bound_to(&org_b).collect::<Vec<_>>(), [&2]);
        // The same record again, an older one, another one of the same second: ignored.
        assert_eq!(
            book.bind(at(1), &1, binding(A_NODE, 10, 600)),
            BindOutcome::Unchanged
        );
        assert_eq!(
            book.bind(at(1), &1, binding(A_NODE, 5, 900)),
            BindOutcome::Stale
        );
        assert_eq!(
            book.bind(at(1), &1, binding("spiffe://org-a.example/other", 10, 900)),
            BindOutcome::Stale
        );
        assert_eq!(book.bound_id(&1), Some(&id(A_NODE)));
        // A newer one replaces it, whatever it names.
        assert_eq!(
            book.bind(at(2), &1, binding("spiffe://org-b.example/moved", 11, 900)),
            BindOutcome::Replaced {
                previous: id(A_NODE)
            }
        );
        assert_eq!(book.peers_bound_to(&org_a).collect::<Vec<_>>(), [&3]);
        // Expired, unknown and disconnected peers are not bound.
        assert_eq!(
            book.bind(at(700), &3, binding(A_NODE, 0, 600)),
            BindOutcome::Expired
        );
        assert_eq!(
            book.bind(at(2), &9, binding(A_NODE, 0, 600)),
            BindOutcome::NotConnected
        );
        book.disconnected(at(3), &2);
        assert_eq!(book.bound_id(&2), None);
        assert_eq!(
            book.bind(at(3), &2, binding(A_NODE, 3, 600)),
            BindOutcome::NotConnected
        );
    }

    #[test]
    fn expired_bindings_are_removed_at_their_timeout() {
        let mut book = book();
        assert!(book.connected(at(0), &1));
        assert!(book.connected(at(0), &2));
        book.bind(at(0), &1, binding(A_NODE, 0, 600));
        book.bind(at(0), &2, binding(A_NODE, 0, 900));
        assert_eq!(book.poll_timeout(), Some(at(600)));
        book.handle_timeout(at(599));
        assert_eq!(book.bound_id(&1), Some(&id(A_NODE)));
        book.handle_timeout(at(600));
        assert_eq!(book.bound_id(&1), None);
        assert_eq!(
            drain(&mut book),
            [PeerAction::BindingExpired {
                peer: 1,
                spiffe_id: id(A_NODE)
            }]
        );
        assert_eq!(book.poll_timeout(), Some(at(900)));
        assert_eq!(
            book.admit(at(600), &1, MessageClass::NeedsBoundPeer),
            Admission::Unbound
        );
        // Enforced on admission even when the timer is late.
        assert_eq!(
            book.admit(at(900), &2, MessageClass::NeedsBoundPeer),
            Admission::Unbound
        );
        assert_eq!(
            drain(&mut book),
            [PeerAction::BindingExpired {
                peer: 2,
                spiffe_id: id(A_NODE)
            }]
        );
        assert_eq!(book.poll_timeout(), None);
    }

    #[test]
    fn each_class_has_its_own_token_bucket() {
        let config = PeerBookConfig {
            self_authenticating: RateLimit {
                burst: 3,
                per_second: 2,
            },
            needs_bound_peer: RateLimit {
                burst: 1,
                per_second: 1,
            },
            ..PeerBookConfig::default()
        };
        let mut book = PeerBook::new(config).unwrap();
        assert!(book.connected(at(0), &1));
        book.bind(at(0), &1, binding(A_NODE, 0, 600));
        let t = at(0);
        for _ in 0..3 {
            assert_eq!(
                book.admit(t, &1, MessageClass::SelfAuthenticating),
                Admission::Accept
            );
        }
        assert_eq!(
            book.admit(t, &1, MessageClass::SelfAuthenticating),
            Admission::RateLimited
        );
        assert_eq!(book.score(t, &1), -Offence::RateLimited.weight());
        // The other bucket is untouched.
        assert_eq!(
            book.admit(t, &1, MessageClass::NeedsBoundPeer),
            Admission::Accept
        );
        assert_eq!(
            book.admit(t, &1, MessageClass::NeedsBoundPeer),
            Admission::RateLimited
        );
        // 2 per second: one more after 500 ms, not before.
        let later = Timestamp::from_unix_millis(t.as_unix_millis() + 499);
        assert_eq!(
            book.admit(later, &1, MessageClass::SelfAuthenticating),
            Admission::RateLimited
        );
        let later = Timestamp::from_unix_millis(t.as_unix_millis() + 500);
        assert_eq!(
            book.admit(later, &1, MessageClass::SelfAuthenticating),
            Admission::Accept
        );
        // Never more than the burst, however long the pause.
        let much_later = at(3600);
        let accepted = (0..10)
            .filter(|_| {
                book.admit(much_later, &1, MessageClass::SelfAuthenticating) == Admission::Accept
            })
            .count();
        assert_eq!(accepted, 3);
    }

    #[test]
    fn lookups_over_the_rate_are_refused_without_an_offence() {
        let config = PeerBookConfig {
            lookups: RateLimit {
                burst: 2,
                per_second: 1,
            },
            ..PeerBookConfig::default()
        };
        let mut book = PeerBook::new(config).unwrap();
        assert!(book.connected(at(0), &1));
        // Unbound: refused, and an offence like any request.
        assert_eq!(
            book.admit(at(0), &1, MessageClass::Lookup),
            Admission::Unbound
        );
        let unbound_score = book.score(at(0), &1);
        book.bind(at(0), &1, binding(A_NODE, 0, 600));
        for _ in 0..2 {
            assert_eq!(
                book.admit(at(0), &1, MessageClass::Lookup),
                Admission::Accept
            );
        }
        for _ in 0..1000 {
            assert_eq!(
                book.admit(at(0), &1, MessageClass::Lookup),
                Admission::RateLimited
            );
        }
        assert_eq!(
            book.score(at(0), &1),
            unbound_score,
            "a busy peer is not punished"
        );
        assert!(!book.is_banned(at(0), &1));
        // Requests of the other class are untouched by the lookups' bucket.
        assert_eq!(
            book.admit(at(0), &1, MessageClass::NeedsBoundPeer),
            Admission::Accept
        );
    }

    #[test]
    fn scores_decay_by_halves_towards_zero() {
        let mut book = book();
        assert!(book.connected(at(0), &1));
        assert!(!book.penalize(at(0), &1, Offence::BadSignature));
        assert!(!book.penalize(at(0), &1, Offence::Malformed));
        assert_eq!(book.score(at(0), &1), -60);
        assert_eq!(book.score(at(299), &1), -60);
        assert_eq!(book.score(at(300), &1), -30);
        assert_eq!(book.score(at(600), &1), -15);
        assert_eq!(book.score(at(900), &1), -7);
        assert_eq!(book.score(at(3000), &1), 0);
        // Decay is the same however often it is looked at.
        assert!(!book.penalize(at(450), &1, Offence::Unbound));
        assert_eq!(book.score(at(450), &1), -35);
        assert_eq!(book.score(at(600), &1), -17);
        // Reconnecting does not reset a score.
        book.disconnected(at(600), &1);
        assert!(book.connected(at(600), &1));
        assert_eq!(book.score(at(600), &1), -17);
    }

    #[test]
    fn a_banned_peer_is_disconnected_and_refused_until_the_ban_ends() {
        let mut book = book();
        assert!(book.connected(at(0), &1));
        book.bind(at(0), &1, binding(A_NODE, 0, 3600));
        assert!(book.penalize(at(10), &1, Offence::Forged));
        let until = at(10 + 600);
        assert_eq!(
            drain(&mut book),
            [PeerAction::Disconnect {
                peer: 1,
                until,
                reason: Offence::Forged
            }]
        );
        assert!(book.is_banned(at(10), &1));
        assert_eq!(book.bound_id(&1), None);
        for class in [
            MessageClass::SelfAuthenticating,
            MessageClass::NeedsBoundPeer,
        ] {
            assert_eq!(book.admit(at(11), &1, class), Admission::Banned);
        }
        assert_eq!(
            book.bind(at(11), &1, binding(A_NODE, 11, 3600)),
            BindOutcome::Banned
        );
        book.disconnected(at(12), &1);
        assert!(!book.connected(at(13), &1));
        assert_eq!(
            drain(&mut book),
            [PeerAction::Disconnect {
                peer: 1,
                until,
                reason: Offence::Forged
            }]
        );
        assert_eq!(book.poll_timeout(), Some(until));
        let status = book.snapshot(at(13));
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].banned_until, Some(until));
        // The ban ends: a clean slate.
        book.handle_timeout(until);
        assert_eq!(book.poll_timeout(), None);
        assert!(!book.is_banned(until, &1));
        assert!(book.connected(until, &1));
        assert_eq!(book.score(until, &1), 0);
        assert_eq!(
            book.admit(until, &1, MessageClass::SelfAuthenticating),
            Admission::Accept
        );
    }

    #[test]
    fn accumulated_offences_ban_and_repeat_offenders_are_banned_longer() {
        let mut book = book();
        assert!(book.connected(at(0), &1));
        for _ in 0..9 {
            assert!(!book.penalize(at(0), &1, Offence::Malformed));
        }
        assert!(book.penalize(at(0), &1, Offence::Malformed));
        let first = drain(&mut book);
        assert_eq!(
            first,
            [PeerAction::Disconnect {
                peer: 1,
                until: at(600),
                reason: Offence::Malformed
            }]
        );
        // Banned again right after the first ban: twice as long, then four times.
        assert!(book.penalize(at(600), &1, Offence::Forged));
        assert!(book.is_banned(at(600 + 1199), &1));
        assert!(!book.is_banned(at(600 + 1200), &1));
        assert!(book.penalize(at(1800), &1, Offence::Forged));
        assert!(book.is_banned(at(1800 + 2399), &1));
        // Undrained, the queue holds one Disconnect for the peer: the latest ban's.
        assert_eq!(
            drain(&mut book),
            [PeerAction::Disconnect {
                peer: 1,
                until: at(1800 + 2400),
                reason: Offence::Forged
            }]
        );
        // Doubling on, capped at the longest ban (24 h).
        let mut t = 4200;
        let mut durations = Vec::new();
        for _ in 0..8 {
            assert!(book.penalize(at(t), &1, Offence::Forged));
            let until = match drain(&mut book).pop() {
                Some(PeerAction::Disconnect { until, .. }) => until,
                other => panic!("{other:?}"),
            };
            durations.push(until.as_unix_seconds() - T0 - t);
            t = until.as_unix_seconds() - T0;
        }
        assert_eq!(
            durations,
            [4800, 9600, 19_200, 38_400, 76_800, 86_400, 86_400, 86_400]
        );
        assert_eq!(
            book.poll_timeout(),
            Some(at(t)),
            "the last ban is the only timer"
        );
        // A ban long forgotten does not count.
        book.handle_timeout(at(t + 86_400));
        assert_eq!(book.remembered_bans(), 0);
        assert!(book.penalize(at(t + 86_400), &1, Offence::Forged));
        assert!(!book.is_banned(at(t + 86_400 + 600), &1));
        // Offences of a banned peer do not extend its ban.
        assert!(book.penalize(at(t + 86_400 + 1), &1, Offence::Forged));
        assert!(!book.is_banned(at(t + 86_400 + 600), &1));
    }

    #[test]
    fn the_book_forgets_the_least_recently_seen_disconnected_peer_first() {
        let config = PeerBookConfig {
            max_peers: 3,
            ..PeerBookConfig::default()
        };
        let mut book = PeerBook::new(config).unwrap();
        for peer in [1, 2, 3] {
            assert!(book.connected(at(0), &peer));
            book.penalize(at(0), &peer, Offence::Malformed);
        }
        book.disconnected(at(5), &2);
        book.disconnected(at(6), &1);
        assert!(book.connected(at(7), &4));
        assert_eq!(book.tracked_peers(), 3);
        assert_eq!(book.score(at(7), &2), 0, "2 was forgotten");
        assert_eq!(book.score(at(7), &1), -10, "1 is remembered");
        assert!(book.connected(at(8), &5));
        assert_eq!(book.score(at(8), &1), 0, "then 1");
        // Every tracked peer connected: a new one is refused, not tracked.
        assert!(!book.connected(at(9), &6));
        assert_eq!(drain(&mut book), [PeerAction::Refuse { peer: 6 }]);
        assert_eq!(
            book.admit(at(9), &6, MessageClass::SelfAuthenticating),
            Admission::TooManyPeers
        );
        assert_eq!(book.tracked_peers(), 3);
        // An untracked peer's offence is judged alone: a forgery still bans.
        assert!(!book.penalize(at(9), &6, Offence::BadSignature));
        assert!(book.penalize(at(9), &6, Offence::Forged));
        assert!(book.is_banned(at(9), &6));
        assert_eq!(book.tracked_peers(), 3);
        let snapshot = book.snapshot(at(9));
        assert_eq!(
            snapshot.iter().map(|s| s.peer).collect::<Vec<_>>(),
            [3, 4, 5, 6]
        );
        assert!(snapshot[..3].iter().all(|s| s.connected));
        assert_eq!(snapshot[3].banned_until, Some(at(609)));
    }

    #[test]
    fn bans_are_remembered_within_a_bound() {
        let config = PeerBookConfig {
            max_bans: 2,
            ..PeerBookConfig::default()
        };
        let mut book = PeerBook::new(config).unwrap();
        for (peer, t) in [(1, 0), (2, 1), (3, 2)] {
            assert!(book.penalize(at(t), &peer, Offence::Forged));
        }
        assert_eq!(book.remembered_bans(), 2);
        assert!(
            !book.is_banned(at(3), &1),
            "the ban ending first was forgotten"
        );
        assert!(book.is_banned(at(3), &2));
        assert!(book.is_banned(at(3), &3));
    }

    #[test]
    fn node_record_errors_map_to_offences() {
        use crate::spiffe::x509::{SvidSignatureError, X509SvidError};
        let cases = [
            (
                NodeRecordError::WrongPeer {
                    record: "a".into(),
                    connection: "b".into(),
                },
                Some(Offence::Forged),
            ),
            (
                NodeRecordError::Signature(SvidSignatureError::BadSignature),
                Some(Offence::BadSignature),
            ),
            (
                NodeRecordError::Expired {
                    expires_at: 1,
                    now: 2,
                },
                Some(Offence::InvalidRecord),
            ),
            (
                NodeRecordError::Svid(X509SvidError::EmptyChain),
                Some(Offence::InvalidRecord),
            ),
            (
                NodeRecordError::SignatureCount { count: 0 },
                Some(Offence::Malformed),
            ),
            (
                NodeRecordError::UnknownTrustDomain {
                    trust_domain: TrustDomain::parse("new.example").unwrap(),
                },
                None,
            ),
        ];
        for (error, offence) in cases {
            assert_eq!(node_record_offence(&error), offence, "{error}");
        }
    }

    #[test]
    fn configurations_without_bounds_are_refused() {
        let d = PeerBookConfig::default;
        let bad = [
            PeerBookConfig {
                max_peers: 0,
                ..d()
            },
            PeerBookConfig { max_bans: 0, ..d() },
            PeerBookConfig {
                needs_bound_peer: RateLimit {
                    burst: 0,
                    per_second: 1,
                },
                ..d()
            },
            PeerBookConfig {
                score_half_life: Duration::ZERO,
                ..d()
            },
            PeerBookConfig {
                ban_score: 0,
                ..d()
            },
            PeerBookConfig {
                ban_duration: Duration::ZERO,
                ..d()
            },
            PeerBookConfig {
                max_ban_duration: Duration::from_secs(1),
                ..d()
            },
        ];
        for config in bad {
            assert!(PeerBook::<u32>::new(config.clone()).is_err(), "{config:?}");
        }
        assert!(PeerBook::<u32>::new(d()).is_ok());
        // Every offence weighs something, and only forgery bans at once.
        for offence in Offence::ALL {
            assert!(offence.weight() > 0);
            assert_eq!(
                offence.weight() >= -d().ban_score,
                offence == Offence::Forged
            );
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Connect(u32),
        Disconnect(u32),
        Admit(u32, bool),
        Penalize(u32, usize),
        Bind(u32, u64, u64),
        Advance(u64),
        Timeout,
        Drain,
    }

    fn op() -> impl Strategy<Value = Op> {
        let peer = 0..24u32;
        prop_oneof![
            peer.clone().prop_map(Op::Connect),
            peer.clone().prop_map(Op::Disconnect),
            (peer.clone(), any::<bool>()).prop_map(|(p, c)| Op::Admit(p, c)),
            (peer.clone(), 0..Offence::ALL.len()).prop_map(|(p, o)| Op::Penalize(p, o)),
            (peer, 0..600u64, 1..1200u64).prop_map(|(p, i, d)| Op::Bind(p, i, d)),
            (0..120_000u64).prop_map(Op::Advance),
            Just(Op::Timeout),
            Just(Op::Drain),
        ]
    }

    proptest! {
        /// Whatever happens, the book stays within its bounds, a banned peer is never
        /// admitted, bound nor accepted on connection, and a banned peer connecting is
        /// told to disconnect.
        #[test]
        fn the_book_is_bounded_and_never_admits_a_banned_peer(ops in proptest::collection::vec(op(), 0..400)) {
            let config = PeerBookConfig {
                max_peers: 6,
                max_bans: 4,
                self_authenticating: RateLimit { burst: 4, per_second: 2 },
                needs_bound_peer: RateLimit { burst: 2, per_second: 1 },
                score_half_life: Duration::from_secs(60),
                ban_duration: Duration::from_secs(30),
                max_ban_duration: Duration::from_secs(240),
                ..PeerBookConfig::default()
            };
            let mut book: PeerBook<u32> = PeerBook::new(config.clone()).unwrap();
            let mut now = at(0);
            for op in ops {
                match op {
                    Op::Connect(p) => {
                        let banned = book.is_banned(now, &p);
                        let accepted = book.connected(now, &p);
                        prop_assert!(!(banned && accepted));
                        if banned {
                            let outputs = drain(&mut book);
                            let told = outputs.iter().any(|a| {
                                matches!(a, PeerAction::Disconnect { peer, until, .. } if *peer == p && *until > now)
                            });
                            prop_assert!(told);
                        }
                    }
                    Op::Disconnect(p) => book.disconnected(now, &p),
                    Op::Admit(p, self_auth) => {
                        let class = if self_auth { MessageClass::SelfAuthenticating } else { MessageClass::NeedsBoundPeer };
                        let banned = book.is_banned(now, &p);
                        let admission = book.admit(now, &p, class);
                        if banned {
                            prop_assert_eq!(admission, Admission::Banned);
                        }
                        if admission == Admission::Accept {
                            prop_assert!(!book.is_banned(now, &p));
                            if !self_auth {
                                prop_assert!(book.bound_id(&p).is_some());
                            }
                        }
                    }
                    Op::Penalize(p, o) => {
                        let banned = book.penalize(now, &p, Offence::ALL[o]);
                        prop_assert_eq!(banned, book.is_banned(now, &p));
                    }
                    Op::Bind(p, issued, duration) => {
                        let banned = book.is_banned(now, &p);
                        let issued_at = now.as_unix_seconds().saturating_sub(issued);
                        let outcome = book.bind(now, &p, Binding {
                            spiffe_id: id(A_NODE),
                            issued_at,
                            expires_at: issued_at + duration,
                        });
                        if banned {
                            prop_assert_eq!(outcome, BindOutcome::Banned);
                        }
                    }
                    Op::Advance(ms) => now = Timestamp::from_unix_millis(now.as_unix_millis() + ms),
                    Op::Timeout => {
                        book.handle_timeout(now);
                        if let Some(next) = book.poll_timeout() {
                            prop_assert!(next > now, "a timer at or before now survived handle_timeout");
                        }
                    }
                    Op::Drain => { drain(&mut book); }
                }
                prop_assert!(book.tracked_peers() <= config.max_peers);
                prop_assert!(book.remembered_bans() <= config.max_bans);
                prop_assert!(book.outputs.len() <= 3 * 24);
                for status in book.snapshot(now) {
                    prop_assert!(status.score > config.ban_score);
                    prop_assert!(status.score <= 0);
                    if status.banned_until.is_some() {
                        prop_assert!(status.spiffe_id.is_none());
                    }
                }
            }
        }
    }

    #[test]
    fn oversized_messages_are_their_own_offence() {
        let too_large = vec![0u8; crate::mesh::wire::MAX_REQUEST_BYTES + 1];
        let error = crate::mesh::wire::decode_request(&too_large).unwrap_err();
        assert_eq!(wire_offence(&error), Offence::Oversized);
        let error = crate::mesh::wire::decode_request(&[0xff, 0xff]).unwrap_err();
        assert_eq!(wire_offence(&error), Offence::Malformed);
    }

    #[test]
    fn refused_domain_records_score_the_sender_as_the_rule_says() {
        let td = TrustDomain::parse("org-a.example").unwrap();
        let unverifiable = |sequence, under| RecordRejected::Verification {
            trust_domain: td.clone(),
            sequence,
            under,
            source: DomainRecordError::Svid(X509SvidError::Untrusted {
                position: 0,
                trust_domain: td.to_string(),
            }),
        };
        // The record after the accepted one must verify under the accepted bundle.
        assert_eq!(
            domain_record_offence(&unverifiable(4, BundleSource::Record(3))),
            Some(Offence::InvalidRecord)
        );
        // Further ahead, this node may have missed a rotation: no offence, walk the chain.
        assert_eq!(
            domain_record_offence(&unverifiable(5, BundleSource::Record(3))),
            None
        );
        // Nothing accepted yet: the bootstrap bundle may be older than the record's.
        assert_eq!(
            domain_record_offence(&unverifiable(1, BundleSource::Bootstrap)),
            None
        );
        let replay = RecordRejected::Rollback {
            trust_domain: td.clone(),
            sequence: 1,
            accepted: 3,
        };
        assert_eq!(domain_record_offence(&replay), Some(Offence::RefusedRecord));
        let claimed = RecordRejected::OriginClaimed {
            trust_domain: td.clone(),
            sequence: 4,
            origin: "log.org-b.example".to_owned(),
            owner: TrustDomain::parse("org-b.example").unwrap(),
        };
        assert_eq!(
            domain_record_offence(&claimed),
            Some(Offence::RefusedRecord)
        );
        let not_authority = RecordRejected::SignerNotAuthority {
            trust_domain: td.clone(),
            sequence: 4,
            signer: "spiffe://org-a.example/ci/build".to_owned(),
            expected: "spiffe://org-a.example/provmesh/authority".to_owned(),
        };
        assert_eq!(
            domain_record_offence(&not_authority),
            Some(Offence::InvalidRecord)
        );
        assert_eq!(
            domain_record_offence(&RecordRejected::UnknownDomain { trust_domain: td }),
            None
        );
    }
}

//! The mesh task: the one owner of the libp2p swarm and of the protocol machines it
//! feeds — the domain registry, the peer book and the checkpoint book of
//! `provmesh_protocol` — in the loop of `provmesh_protocol::machine`: every input (a
//! swarm event, a command, a timer, an identity change) goes into a machine, then the
//! machines' outputs are drained and performed.
//!
//! What this task decides itself is transport: which connection to send a request on,
//! when to dial, how a gossip verdict is reported to gossipsub. Whether a record, a node
//! record or a checkpoint is acceptable, what is relayed, when to pull and whom to
//! penalise are the machines' answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad};
use provmesh_protocol::evidence::{self, Evidence, Judgement, MAX_EVIDENCE_PER_LOG, Proven};
use provmesh_protocol::federation::domain_record::{SignedDomainRecord, domain_record_entry};
use provmesh_protocol::federation::node_record::{NodeRecord, SignedNodeRecord};
use provmesh_protocol::federation::registry::{
    Accepted, DomainRegistry, DomainState, RecordRejected,
};
use provmesh_protocol::machine::Timestamp;
use provmesh_protocol::merkle::Hash;
use provmesh_protocol::mesh::checkpoints::{
    CheckpointBook, CheckpointEvent, ConflictKind, FollowPolicy, Relay, RequestId,
};
use provmesh_protocol::mesh::cosignatures::WitnessRoster;
use provmesh_protocol::mesh::peers::{
    Admission, Binding, MessageClass, Offence, PeerAction, PeerBook, domain_record_offence,
    node_record_offence, wire_offence,
};
use provmesh_protocol::mesh::wire::{self, Gossip, Hello, Request, Response, Summary};
use provmesh_protocol::proto::provmesh::v1 as pb;
use provmesh_protocol::spiffe::{TrustBundle, TrustDomain};
use provmesh_protocol::witness::{AddCheckpoint, Refusal};
use tokio::sync::{mpsc, watch};

use super::handle::Command;
use super::publisher::RecordPublisher;
use super::store::MeshStore;
use super::transport::{MeshBehaviour, MeshEvent};
use crate::clock;
use crate::identity::svid_signer::SvidSigner;
use crate::identity::{Identity, NodeSvid};
use crate::log::LogHandle;
use crate::shutdown::Shutdown;
use crate::witness::AddError;

/// How often the task wakes at least: timers of the machines, the own log's checkpoint.
const TICK: Duration = Duration::from_millis(200);
/// How long a provenance lookup waits for the logs it asked.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);
/// Provenance lookups in flight at once; more are answered empty at once.
const MAX_LOOKUPS: usize = 256;

/// A provenance lookup waiting for answers.
struct LookupQuery {
    /// Logs asked and not answered yet.
    waiting: BTreeMap<String, crate::provenance::RemoteAnswer>,
    /// What came back.
    answers: crate::provenance::RemoteAnswers,
    reply: tokio::sync::oneshot::Sender<crate::provenance::RemoteAnswers>,
    deadline: Timestamp,
}

/// How often the checkpoints adopted since the last save are stored (in one transaction).
const CHECKPOINT_SAVE_INTERVAL: Duration = Duration::from_secs(2);

/// What an outbound request was for.
#[derive(Debug)]
enum Pending {
    Hello,
    Summary,
    Consistency(RequestId),
    /// The chain of this domain; one such request is in flight per domain at most.
    RecordChain(TrustDomain),
    /// A provenance lookup's question to the server of `origin`.
    Lookup {
        query: u64,
        origin: String,
    },
    /// A proof for the domain's witness, from the size it cosigned last to `note`'s.
    WitnessProof {
        origin: String,
        note: Vec<u8>,
        witness_size: u64,
    },
}

/// Everything the mesh task owns.
pub(crate) struct MeshTask {
    pub(crate) swarm: Swarm<MeshBehaviour>,
    pub(crate) registry: DomainRegistry,
    pub(crate) peers: PeerBook<PeerId>,
    pub(crate) checkpoints: CheckpointBook<PeerId>,
    pub(crate) follow: FollowPolicy,
    pub(crate) store: MeshStore,
    pub(crate) identity: Identity,
    pub(crate) log: Option<LogHandle>,
    pub(crate) publisher: Option<RecordPublisher>,
    pub(crate) commands: mpsc::Receiver<Command>,
    /// The sender side of `commands`, for the task's own spawned work.
    pub(crate) self_commands: mpsc::Sender<Command>,
    pub(crate) bundles: watch::Sender<Arc<BTreeMap<TrustDomain, TrustBundle>>>,
    /// The logs this domain's witness cosigns (see `sync_logs`), for the witness.
    pub(crate) logs: watch::Sender<Arc<BTreeMap<String, provmesh_protocol::note::Verifier>>>,
    /// The domain's witness, on the authority once attached.
    witness: Option<crate::witness::WitnessHandle>,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) node_record_lifetime: Duration,
    pub(crate) max_clock_skew_secs: u64,
    /// The current signed node record, JSON.
    pub(crate) node_record: Vec<u8>,
    /// When it must be re-issued.
    pub(crate) node_record_renew_at: Timestamp,
    pending: HashMap<OutboundRequestId, Pending>,
    /// Peers with a connection open.
    connected: BTreeMap<PeerId, usize>,
    /// Topics this node subscribed to.
    subscribed: BTreeMap<String, IdentTopic>,
    /// Size of the own log's checkpoint last fed in (authority).
    own_checkpoint_size: Option<u64>,
    /// Domains whose record chain was asked for and not answered yet: every record of a
    /// batch that this node cannot verify yet would otherwise ask again.
    chain_requests: std::collections::BTreeSet<TrustDomain>,
    /// The ids of the verified equivocation evidence held (stored forever).
    evidence_ids: std::collections::BTreeSet<[u8; 32]>,
    /// The logs proven to have equivocated, with how many evidence documents are held.
    evidence_per_log: BTreeMap<String, usize>,
    /// Their number, on `/metrics` (`provmesh_mesh_equivocating_logs`).
    equivocating_gauge: prometheus_client::metrics::gauge::Gauge,
    /// Which domains' nodes this authority serves its log's records to.
    read_scope: provmesh_protocol::provenance::ReadScope,
    /// Checkpoints adopted since the last save, by origin (one per log at most).
    unsaved_checkpoints: BTreeMap<String, Vec<u8>>,
    /// When they are saved next.
    next_checkpoint_save: Timestamp,
    /// The federation's witness keys, as last set in the checkpoint book.
    roster: WitnessRoster,
    /// Provenance lookups in flight, by query number.
    lookups: HashMap<u64, LookupQuery>,
    next_lookup: u64,
}

/// Why the mesh task failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshTaskError {
    /// The node record could not be signed.
    #[error("cannot sign the node record: {0}")]
    NodeRecord(String),
}

impl MeshTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<MeshBehaviour>,
        registry: DomainRegistry,
        peers: PeerBook<PeerId>,
        checkpoints: CheckpointBook<PeerId>,
        follow: FollowPolicy,
        store: MeshStore,
        identity: Identity,
        log: Option<LogHandle>,
        publisher: Option<RecordPublisher>,
        commands: mpsc::Receiver<Command>,
        self_commands: mpsc::Sender<Command>,
        bundles: watch::Sender<Arc<BTreeMap<TrustDomain, TrustBundle>>>,
        logs: watch::Sender<Arc<BTreeMap<String, provmesh_protocol::note::Verifier>>>,
        listen_addrs: Vec<Multiaddr>,
        node_record_lifetime: Duration,
        max_clock_skew_secs: u64,
    ) -> Result<MeshTask, MeshTaskError> {
        let mut task = MeshTask {
            swarm,
            registry,
            peers,
            checkpoints,
            follow,
            witness: None,
            store,
            identity,
            log,
            publisher,
            commands,
            self_commands,
            bundles,
            logs,
            listen_addrs,
            node_record_lifetime,
            max_clock_skew_secs,
            node_record: Vec::new(),
            node_record_renew_at: Timestamp::EPOCH,
            pending: HashMap::new(),
            connected: BTreeMap::new(),
            subscribed: BTreeMap::new(),
            own_checkpoint_size: None,
            chain_requests: std::collections::BTreeSet::new(),
            evidence_ids: std::collections::BTreeSet::new(),
            evidence_per_log: BTreeMap::new(),
            equivocating_gauge: prometheus_client::metrics::gauge::Gauge::default(),
            read_scope: provmesh_protocol::provenance::ReadScope::everyone(),
            unsaved_checkpoints: BTreeMap::new(),
            next_checkpoint_save: Timestamp::EPOCH,
            roster: WitnessRoster::new(),
            lookups: HashMap::new(),
            next_lookup: 0,
        };
        task.restore_evidence();
        task.reissue_node_record(clock::now())?;
        task.subscribe(wire::DOMAIN_RECORDS_TOPIC.to_owned());
        task.subscribe(wire::EVIDENCE_TOPIC.to_owned());
        task.sync_logs();
        task.restore_checkpoints();
        task.publish_bundles();
        Ok(task)
    }

    /// Runs until `shutdown`.
    pub(crate) async fn run(mut self, shutdown: Shutdown) -> Result<(), MeshTaskError> {
        let mut svid_updates = self.identity.svid_updates();
        let mut bundle_updates = self.identity.bundle_updates();
        // The own log's checkpoints (authority): gossiped as soon as they are durable.
        let mut own_checkpoints = self.log.as_ref().map(LogHandle::checkpoint_updates);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if let Some(publisher) = &mut self.publisher {
            publisher.wake();
        }
        loop {
            tokio::select! {
                () = shutdown.triggered() => {
                    self.save_checkpoints();
                    return Ok(());
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(command) = self.commands.recv() => self.on_command(command),
                Ok(()) = svid_updates.changed() => {
                    // A rotated SVID signs a new node record at once (peers hold records
                    // that must not outlive the SVID that signed them).
                    self.reissue_node_record(clock::now())?;
                    self.send_hello_to_all();
                }
                Ok(()) = bundle_updates.changed() => {
                    if let Some(publisher) = &mut self.publisher {
                        publisher.wake();
                    }
                }
                Ok(()) = async {
                    match own_checkpoints.as_mut() {
                        Some(updates) => updates.changed().await,
                        None => std::future::pending().await,
                    }
                } => self.feed_own_checkpoint(clock::now()),
                _ = tick.tick() => self.on_tick()?,
            }
            self.drain();
        }
    }

    fn on_tick(&mut self) -> Result<(), MeshTaskError> {
        let now = clock::now();
        self.expire_lookups(now);
        if now >= self.next_checkpoint_save {
            self.save_checkpoints();
            self.next_checkpoint_save = now.saturating_add(CHECKPOINT_SAVE_INTERVAL);
        }
        if now >= self.node_record_renew_at {
            self.reissue_node_record(now)?;
            self.send_hello_to_all();
        }
        self.peers.handle_timeout(now);
        self.checkpoints.handle_timeout(now);
        self.feed_own_checkpoint(now);
        self.publish_own_record(now);
        Ok(())
    }

    // ---- Own objects ------------------------------------------------------------------

    /// Signs a node record for the current SVID, living `node_record_lifetime` but never
    /// beyond the SVID; it is renewed at half its life.
    fn reissue_node_record(&mut self, now: Timestamp) -> Result<(), MeshTaskError> {
        let svid: Arc<NodeSvid> = self.identity.svid();
        let issued = now.as_unix_seconds();
        let svid_end = clock::timestamp_of(svid.not_after).as_unix_seconds();
        let expires = issued
            .saturating_add(self.node_record_lifetime.as_secs())
            .min(svid_end);
        let addresses = self.listen_addrs.iter().map(ToString::to_string).collect();
        let record = NodeRecord::new(
            self.swarm.local_peer_id().to_string(),
            svid.spiffe_id.clone(),
            addresses,
            issued,
            expires,
        )
        .map_err(|e| MeshTaskError::NodeRecord(e.to_string()))?;
        let signer =
            SvidSigner::new(&svid).map_err(|e| MeshTaskError::NodeRecord(e.to_string()))?;
        let signed = SignedNodeRecord::sign(&record, &signer, svid.chain_der.clone())
            .map_err(|e| MeshTaskError::NodeRecord(e.to_string()))?;
        self.node_record = signed.to_json();
        let half = expires.saturating_sub(issued) / 2;
        self.node_record_renew_at = Timestamp::from_unix_seconds(issued + half.max(1));
        Ok(())
    }

    fn hello(&self) -> Hello {
        Hello {
            node_record: self.node_record.clone(),
            serves_origins: self
                .log
                .as_ref()
                .map(|log| vec![log.origin().to_owned()])
                .unwrap_or_default(),
        }
    }

    fn send_hello_to_all(&mut self) {
        let peers: Vec<PeerId> = self.connected.keys().copied().collect();
        for peer in peers {
            self.send_request(peer, &Request::Hello(self.hello()), Pending::Hello);
        }
    }

    /// Feeds the own log's newest checkpoint (authority) into the checkpoint book, which
    /// publishes it when it is new.
    fn feed_own_checkpoint(&mut self, now: Timestamp) {
        let Some(log) = &self.log else { return };
        let Some(latest) = log.latest_checkpoint() else {
            return;
        };
        if self.own_checkpoint_size == Some(latest.size) {
            return;
        }
        let origin = log.origin().to_owned();
        let note = latest.note.clone();
        if self.checkpoints.handle_checkpoint(now, None, &note) == Relay::Accept {
            self.publish(wire::log_topic(&origin), Gossip::Checkpoint(note));
        }
        // Done only once the book holds it: the book learns the own log from the own
        // domain record, which is accepted only after the log holds it, so the log's
        // first checkpoint can come before the book knows the log; it is fed again then.
        if self
            .checkpoints
            .latest(&origin)
            .is_some_and(|held| held.size >= latest.size)
        {
            self.own_checkpoint_size = Some(latest.size);
        }
    }

    /// Authority: publishes a new domain record when its keys or bundle changed — signed
    /// with the SVID, appended to the own log first, then accepted locally and gossiped.
    fn publish_own_record(&mut self, now: Timestamp) {
        let Some(publisher) = &mut self.publisher else {
            return;
        };
        let own = self.identity.trust_domain().clone();
        let previous = self.registry.domain(&own).and_then(|d| d.record());
        let Some(signed) = publisher.poll(now, previous, &self.identity, &self.listen_addrs) else {
            return;
        };
        let Some(log) = self.log.clone() else { return };
        // The record goes into the domain's own log before anyone else sees it, so that
        // witnesses can detect a domain showing different records to different peers.
        let entry = match domain_record_entry(&signed) {
            Ok(entry) => entry,
            Err(e) => {
                tracing::error!(error = %e, "cannot make the domain record's log entry");
                return;
            }
        };
        let commands = self.self_commands.clone();
        tokio::spawn(async move {
            let outcome = match log.append_admitted(entry).await {
                Ok(_) => Some(Box::new(signed)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot log the domain record");
                    None
                }
            };
            let _ = commands.send(Command::RecordLogged(outcome)).await;
        });
        publisher.mark_in_flight();
    }

    // ---- Commands ---------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::ListEvidence(reply) => {
                let _ = reply.send(self.list_evidence());
            }
            Command::Lookup { sha256, reply } => self.start_lookup(sha256, reply),
            Command::Respond { channel, response } => self.respond(channel, &response),
            Command::DomainKeys(reply) => {
                let _ = reply.send(self.domain_keys());
            }
            Command::Standing(origin, reply) => {
                let _ = reply.send(self.standing(&origin));
            }
            Command::Checkpoint(origin, reply) => {
                let _ = reply.send(self.served_checkpoint(&origin));
            }
            Command::AttachWitness(witness) => {
                self.witness = Some(witness);
                // Logs adopted before the witness was attached get cosigned from their
                // latest checkpoint on.
                for (origin, _) in self.logs.borrow().iter() {
                    if let Some(latest) = self.checkpoints.latest(origin) {
                        self.feed_witness(origin.clone(), latest.note.clone(), 0, Vec::new());
                    }
                }
            }
            Command::Cosigned { origin, note } => {
                let now = clock::now();
                match self.checkpoints.handle_checkpoint(now, None, &note) {
                    Relay::Accept => {
                        self.publish(wire::log_topic(&origin), Gossip::Checkpoint(note));
                    }
                    Relay::Reject(reason) => {
                        tracing::error!(%reason, "the witness's cosigned checkpoint is refused");
                    }
                    Relay::Ignore(_) => {}
                }
            }
            Command::WitnessBehind {
                origin,
                note,
                size,
                witness_size,
            } => {
                if witness_size == size {
                    // It cosigned this size already (before a restart of this node, whose
                    // book starts afresh): the same checkpoint is cosigned again; another
                    // root of that size would have been refused as a fork.
                    self.feed_witness(origin, note, size, Vec::new());
                    return;
                }
                if witness_size > size {
                    // The witness is ahead (it cosigned a checkpoint pushed to it over
                    // HTTP); the book catching up feeds it again.
                    return;
                }
                let Some(server) = self.checkpoints.proof_server(&origin) else {
                    tracing::debug!(%origin, "no server connected to prove to the witness");
                    return;
                };
                self.send_request(
                    server,
                    &Request::Consistency {
                        origin: origin.clone(),
                        first_size: witness_size,
                        last_size: size,
                    },
                    Pending::WitnessProof {
                        origin,
                        note,
                        witness_size,
                    },
                );
            }
            Command::Evidence(evidence) => match evidence.verify() {
                Ok(proven) => {
                    let json = evidence.to_json();
                    self.record_evidence(&proven, json, true);
                }
                Err(e) => tracing::warn!(error = %e, "submitted evidence does not verify"),
            },
            Command::RecordLogged(outcome) => {
                if let Some(publisher) = &mut self.publisher {
                    publisher.logged();
                }
                if let Some(signed) = outcome {
                    self.accept_record(clock::now(), None, *signed, true);
                }
            }
        }
    }

    /// Hands a checkpoint of a witnessed log to the domain's witness (C2SP
    /// `add-checkpoint` semantics: `old_size` is what the book adopted before, `proof`
    /// the consistency proof it verified from there). The cosigned note comes back as a
    /// command, and so does a 409 from a witness that cosigned another size last.
    fn feed_witness(&self, origin: String, note: Vec<u8>, old_size: u64, proof: Vec<Hash>) {
        let Some(witness) = self.witness.clone() else {
            return;
        };
        let commands = self.self_commands.clone();
        // Not witnessed any more (the records changed meanwhile): nothing to feed.
        let Some(verifier) = self.logs.borrow().get(&origin).cloned() else {
            return;
        };
        let Ok(signed) = provmesh_protocol::checkpoint::open(&note, &origin, &verifier) else {
            return;
        };
        let size = signed.checkpoint.size();
        let request = AddCheckpoint {
            old_size,
            proof,
            checkpoint: note.clone(),
        };
        tokio::spawn(async move {
            let command = match witness.add_checkpoint(request.to_bytes()).await {
                Ok(lines) => {
                    let mut cosigned = note;
                    cosigned.extend_from_slice(lines.as_bytes());
                    Command::Cosigned {
                        origin,
                        note: cosigned,
                    }
                }
                Err(AddError::Refused(Refusal::OldSizeMismatch { witness_size, .. })) => {
                    Command::WitnessBehind {
                        origin,
                        note,
                        size,
                        witness_size,
                    }
                }
                Err(e) => {
                    tracing::warn!(%origin, size, error = %e, "the witness did not cosign");
                    return;
                }
            };
            let _ = commands.send(command).await;
        });
    }

    /// `MeshService.GetCosignedCheckpoint`: the cosigned checkpoint of `origin`.
    fn served_checkpoint(&self, origin: &str) -> Option<pb::GetCosignedCheckpointResponse> {
        let served = self.checkpoints.cosigned(origin)?;
        Some(pb::GetCosignedCheckpointResponse {
            checkpoint: served.served_note(),
            size: served.size,
            root_hash: served.root.to_vec(),
            cosignatures: served
                .cosignatures
                .iter()
                .map(|c| pb::CosignatureItem {
                    trust_domain: c.trust_domain.to_string(),
                    timestamp: c.timestamp,
                    line: c.line.to_line(),
                })
                .collect(),
            latest_size: self.checkpoints.latest(origin).map_or(0, |l| l.size),
        })
    }

    fn status(&self) -> pb::MeshStatus {
        let now = clock::now();
        let svid = self.identity.svid();
        let domains = self
            .registry
            .domains()
            .map(|state| {
                let record = state.record();
                pb::DomainStatus {
                    trust_domain: state.trust_domain().to_string(),
                    has_record: record.is_some(),
                    record_sequence: record.map_or(0, |r| r.sequence()),
                    spiffe_sequence: record
                        .and_then(|r| r.bundle().sequence())
                        .unwrap_or_default(),
                    issued_at: record.map_or(0, |r| r.record().issued_at),
                    revoked: state.is_revoked(),
                    authority_id: state.authority_id().to_string(),
                    chain_length: state.chain().count() as u64,
                }
            })
            .collect();
        let owners: BTreeMap<String, String> = self
            .registry
            .log_origins()
            .map(|(td, origin)| (origin.as_str().to_owned(), td.to_string()))
            .collect();
        let logs = self
            .checkpoints
            .logs()
            .map(|log| pb::LogStatus {
                origin: log.origin.to_owned(),
                trust_domain: owners.get(log.origin).cloned().unwrap_or_default(),
                followed: log.followed,
                size: log.latest.map_or(0, |l| l.size),
                root_hash: log.latest.map(|l| l.root.to_vec()).unwrap_or_default(),
                adopted_at_unix_ms: log.latest.map_or(0, |l| l.adopted_at.as_unix_millis()),
                equivocating: self.evidence_per_log.contains_key(log.origin),
                cosigned_size: self.checkpoints.cosigned(log.origin).map_or(0, |c| c.size),
                cosigned_by: self
                    .checkpoints
                    .cosigned(log.origin)
                    .map(|c| c.cosignatures.domains().map(ToString::to_string).collect())
                    .unwrap_or_default(),
            })
            .collect();
        let peers = self
            .peers
            .snapshot(now)
            .into_iter()
            .filter(|p| p.connected)
            .map(|p| pb::PeerStatus {
                peer_id: p.peer.to_string(),
                spiffe_id: p.spiffe_id.map(|id| id.to_string()).unwrap_or_default(),
                score: p.score as f64,
                banned: p.banned_until.is_some(),
            })
            .collect();
        pb::MeshStatus {
            trust_domain: self.identity.trust_domain().to_string(),
            spiffe_id: svid.spiffe_id.to_string(),
            peer_id: self.swarm.local_peer_id().to_string(),
            listen_addresses: self.listen_addrs.iter().map(ToString::to_string).collect(),
            domains,
            logs,
            peers,
        }
    }

    // ---- Domain records ---------------------------------------------------------------

    /// Accepts a signed record from `from` (None: this node's own publisher). Returns the
    /// gossip verdict.
    fn accept_record(
        &mut self,
        now: Timestamp,
        from: Option<PeerId>,
        signed: SignedDomainRecord,
        publish: bool,
    ) -> MessageAcceptance {
        match self.registry.accept(now, signed.clone()) {
            Ok(Accepted::New {
                trust_domain,
                sequence,
                revoked,
            }) => {
                // Stored before it is relayed (the store's contract): a record this node
                // could not keep is used now but not passed on; anti-entropy brings it
                // back after a restart.
                let stored =
                    self.store
                        .put_record(trust_domain.as_str(), sequence, &signed.to_json());
                if let Err(e) = &stored {
                    tracing::error!(error = %e, "cannot store an accepted domain record");
                }
                if revoked {
                    tracing::warn!(%trust_domain, sequence, "domain revoked itself");
                } else {
                    tracing::info!(%trust_domain, sequence, "accepted domain record");
                }
                self.sync_logs();
                self.feed_own_checkpoint(now);
                self.publish_bundles();
                if stored.is_err() {
                    return MessageAcceptance::Ignore;
                }
                if publish {
                    self.publish(
                        wire::DOMAIN_RECORDS_TOPIC.to_owned(),
                        Gossip::DomainRecord(signed.to_json()),
                    );
                }
                MessageAcceptance::Accept
            }
            Ok(_) => MessageAcceptance::Ignore,
            Err(rejected) => {
                tracing::warn!(peer = ?from, reason = %rejected, "domain record rejected");
                let Some(peer) = from else {
                    return MessageAcceptance::Ignore;
                };
                if let Some(offence) = domain_record_offence(&rejected) {
                    self.penalize(now, &peer, offence);
                    return MessageAcceptance::Reject;
                }
                // A record this node cannot verify yet (signed under a bundle it has not
                // accepted): walk the domain's chain from the sequence it holds.
                if let RecordRejected::Verification { trust_domain, .. } = &rejected
                    && self.chain_requests.insert(trust_domain.clone())
                {
                    let after = self
                        .registry
                        .domain(trust_domain)
                        .and_then(DomainState::sequence)
                        .unwrap_or(0);
                    let request = Request::RecordChain {
                        trust_domain: trust_domain.clone(),
                        after_sequence: after,
                    };
                    self.send_request(peer, &request, Pending::RecordChain(trust_domain.clone()));
                }
                MessageAcceptance::Ignore
            }
        }
    }

    fn accept_record_bytes(
        &mut self,
        now: Timestamp,
        from: PeerId,
        bytes: &[u8],
    ) -> MessageAcceptance {
        match SignedDomainRecord::from_json(bytes) {
            Ok(signed) => self.accept_record(now, Some(from), signed, false),
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "malformed domain record");
                self.penalize(now, &from, Offence::Malformed);
                MessageAcceptance::Reject
            }
        }
    }

    /// Accepts the records `peer` answered with, oldest first, up to the first that
    /// scores it down.
    fn accept_records(&mut self, now: Timestamp, peer: PeerId, records: Vec<Vec<u8>>) {
        for record in records {
            if self.accept_record_bytes(now, peer, &record) == MessageAcceptance::Reject {
                break;
            }
        }
    }

    /// Replaces the served bundle set after an acceptance.
    fn publish_bundles(&mut self) {
        let bundles: BTreeMap<TrustDomain, TrustBundle> = self
            .registry
            .domains()
            .filter(|state| !state.is_revoked())
            .map(|state| (state.trust_domain().clone(), state.trust_bundle().clone()))
            .collect();
        let _ = self.bundles.send(Arc::new(bundles));
    }

    /// Brings the checkpoint book and the topic subscriptions in line with the accepted
    /// records: every accepted log is known, followed as the follow policy says.
    fn sync_logs(&mut self) {
        let domains: Vec<TrustDomain> = self
            .registry
            .domains()
            .map(|state| state.trust_domain().clone())
            .collect();
        // Keyed by the trust domain, so every node of a domain follows what its witness
        // cosigns (the follow policy's advice).
        let node_key = self.identity.trust_domain().as_str().as_bytes().to_vec();
        let logs: Vec<(String, TrustDomain, provmesh_protocol::note::Verifier)> = self
            .registry
            .log_origins()
            .filter_map(|(td, origin)| {
                let (_, verifier) = self.registry.log_verifier(origin.as_str())?;
                Some((origin.as_str().to_owned(), td.clone(), verifier.clone()))
            })
            .collect();
        // The logs this domain's witness cosigns: those of the domains the follow policy
        // samples for the domain (all others in a small federation), not its own.
        let sampled = self.follow.sampled_domains(&node_key, &domains);
        let witnessed: BTreeMap<String, provmesh_protocol::note::Verifier> = logs
            .iter()
            .filter(|(_, td, _)| sampled.contains(&td))
            .map(|(origin, _, verifier)| (origin.clone(), verifier.clone()))
            .collect();
        let mut roster = WitnessRoster::new();
        for state in self.registry.domains().filter(|state| !state.is_revoked()) {
            let td = state.trust_domain();
            roster.insert(td, self.registry.witness_keys(td));
        }
        self.checkpoints.set_witnesses(roster.clone());
        self.roster = roster;
        self.logs.send_if_modified(|current| {
            let changed = **current != witnessed;
            if changed {
                *current = Arc::new(witnessed);
            }
            changed
        });
        for (origin, td, verifier) in logs {
            let followed = self.follow.follows(&origin, &td, &node_key, &domains);
            if let Err(e) = self.checkpoints.set_log(origin.clone(), verifier, followed) {
                tracing::warn!(%origin, error = %e, "cannot track log");
                continue;
            }
            if followed {
                self.subscribe(wire::log_topic(&origin));
            }
        }
    }

    fn subscribe(&mut self, topic: String) {
        if self.subscribed.contains_key(&topic) {
            return;
        }
        let ident = IdentTopic::new(topic.clone());
        match self.swarm.behaviour_mut().gossipsub.subscribe(&ident) {
            Ok(_) => {
                self.subscribed.insert(topic, ident);
            }
            Err(e) => tracing::warn!(%topic, error = %e, "cannot subscribe"),
        }
    }

    fn publish(&mut self, topic: String, message: Gossip) {
        let bytes = wire::encode_gossip(&message);
        if let Err(e) = self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(IdentTopic::new(topic.clone()), bytes)
        {
            // No peer in the topic yet: anti-entropy delivers it later.
            tracing::debug!(%topic, error = %e, "gossip not published");
        }
    }

    // ---- Equivocation evidence --------------------------------------------------------

    /// Reports the number of equivocating logs on this gauge from now on.
    /// Restricts which federated domains' nodes get the own log's records (`Lookup`).
    pub(crate) fn set_read_scope(&mut self, scope: provmesh_protocol::provenance::ReadScope) {
        self.read_scope = scope;
    }

    pub(crate) fn set_equivocating_gauge(
        &mut self,
        gauge: prometheus_client::metrics::gauge::Gauge,
    ) {
        self.equivocating_gauge = gauge;
        self.update_equivocating_gauge();
    }

    fn update_equivocating_gauge(&self) {
        self.equivocating_gauge
            .set(i64::try_from(self.evidence_per_log.len()).unwrap_or(i64::MAX));
    }

    /// Reloads the evidence held before a restart.
    fn restore_evidence(&mut self) {
        let documents = match self.store.evidence() {
            Ok(documents) => documents,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the stored evidence");
                return;
            }
        };
        for json in documents {
            match Evidence::from_json(&json).and_then(|e| e.verify()) {
                Ok(proven) => {
                    self.evidence_ids.insert(proven.id);
                    *self.evidence_per_log.entry(proven.origin).or_default() += 1;
                }
                Err(e) => tracing::error!(error = %e, "stored evidence unreadable"),
            }
        }
        self.update_equivocating_gauge();
    }

    /// The evidence held, read back from the store and verified again.
    /// Restores the latest checkpoint stored of each log the node follows (see
    /// [`MeshStore`]): a log is held to the history it showed before the restart.
    fn restore_checkpoints(&mut self) {
        let notes = self.store.checkpoints().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the stored checkpoints");
            Vec::new()
        });
        let now = clock::now();
        for note in notes {
            if let Err(verdict) = self.checkpoints.restore(now, &note) {
                // A log no longer followed or whose key changed: it starts afresh.
                tracing::debug!(?verdict, "stored checkpoint not restored");
            }
        }
    }

    /// Stores the checkpoints adopted since the last save, in one transaction.
    fn save_checkpoints(&mut self) {
        if self.unsaved_checkpoints.is_empty() {
            return;
        }
        let saved = self.store.put_checkpoints(
            self.unsaved_checkpoints
                .iter()
                .map(|(origin, note)| (origin.as_str(), note.as_slice())),
        );
        match saved {
            Ok(()) => self.unsaved_checkpoints.clear(),
            // Kept for the next attempt; newer adoptions replace them.
            Err(e) => tracing::error!(error = %e, "cannot store the adopted checkpoints"),
        }
    }

    /// The evidence documents a peer whose summary listed `theirs` lacks
    /// ([`evidence::lacking`]).
    fn evidence_lacking(&self, theirs: &[[u8; 32]]) -> Vec<Vec<u8>> {
        let theirs = theirs.iter().copied().collect();
        evidence::lacking(&self.evidence_ids, &theirs)
            .iter()
            .filter_map(|id| match self.store.evidence_by_id(id) {
                Ok(document) => document,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stored evidence");
                    None
                }
            })
            .collect()
    }

    fn list_evidence(&self) -> pb::ListEvidenceResponse {
        let documents = self.store.evidence().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read the stored evidence");
            Vec::new()
        });
        let evidence = documents
            .into_iter()
            .filter_map(|document| {
                let proven = Evidence::from_json(&document)
                    .and_then(|e| e.verify())
                    .ok()?;
                Some(pb::EvidenceItem {
                    id: hex::encode(proven.id),
                    origin: proven.origin,
                    kind: match proven.kind {
                        provmesh_protocol::evidence::EquivocationKind::SameSize => "same-size",
                        _ => "inconsistent",
                    }
                    .to_owned(),
                    older_size: proven.older_size,
                    newer_size: proven.newer_size,
                    document,
                })
            })
            .collect();
        pb::ListEvidenceResponse { evidence }
    }

    /// Takes verified evidence (`json`, proving `proven`): stores it, marks its log
    /// equivocating and, when `publish` (this node found it), gossips it. Returns whether
    /// it was new. A log is convicted by one document; a few are kept per log, so that a
    /// peer re-wrapping one equivocation cannot fill every node's disk.
    fn record_evidence(&mut self, proven: &Proven, json: Vec<u8>, publish: bool) -> bool {
        let held = self
            .evidence_per_log
            .get(&proven.origin)
            .copied()
            .unwrap_or(0);
        if self.evidence_ids.contains(&proven.id) || held >= MAX_EVIDENCE_PER_LOG {
            return false;
        }
        if let Err(e) = self.store.put_evidence(&proven.id, &json) {
            tracing::error!(error = %e, "cannot store equivocation evidence");
            return false;
        }
        self.evidence_ids.insert(proven.id);
        *self
            .evidence_per_log
            .entry(proven.origin.clone())
            .or_default() += 1;
        self.update_equivocating_gauge();
        tracing::error!(
            origin = %proven.origin,
            id = %hex::encode(proven.id),
            "the log equivocated: verified evidence stored"
        );
        if publish {
            self.publish(wire::EVIDENCE_TOPIC.to_owned(), Gossip::Evidence(json));
        }
        true
    }

    /// The checkpoint book found two checkpoints of one log that cannot both be true:
    /// they become evidence (verified like any received evidence) and are gossiped.
    fn on_conflict(&mut self, origin: String, ours: Vec<u8>, theirs: Vec<u8>, kind: ConflictKind) {
        let Some((_, key)) = self.registry.log_verifier(&origin) else {
            return;
        };
        let (proof, old_subtree) = match kind {
            ConflictKind::SameSize => (Vec::new(), None),
            ConflictKind::Inconsistent { proof, old_subtree } => (proof, old_subtree),
        };
        let evidence = Evidence {
            origin: origin.clone(),
            log_key: key.clone(),
            older: ours,
            newer: theirs,
            proof,
            old_subtree,
        };
        match evidence.verify() {
            Ok(proven) => {
                let json = evidence.to_json();
                self.record_evidence(&proven, json, true);
            }
            Err(e) => tracing::warn!(%origin, error = %e, "conflicting checkpoints not provable"),
        }
    }

    /// Evidence gossiped by `from`: accepted (and relayed) only when it proves that a log
    /// this node knows, under that log's key, equivocated.
    fn accept_evidence_bytes(
        &mut self,
        now: Timestamp,
        from: PeerId,
        json: Vec<u8>,
    ) -> MessageAcceptance {
        let evidence = match Evidence::from_json(&json) {
            Ok(evidence) => evidence,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "malformed evidence");
                self.penalize(now, &from, Offence::Malformed);
                return MessageAcceptance::Reject;
            }
        };
        let key = self
            .registry
            .log_verifier(&evidence.origin)
            .map(|(_, key)| key);
        match evidence::judge(&evidence, key) {
            Judgement::Proven(proven) if self.record_evidence(&proven, json, false) => {
                MessageAcceptance::Accept
            }
            Judgement::Proven(_) | Judgement::Unjudged => MessageAcceptance::Ignore,
            Judgement::Refuted(reason) => {
                tracing::warn!(peer = %from, origin = %evidence.origin, %reason, "evidence rejected");
                self.penalize(now, &from, Offence::Forged);
                MessageAcceptance::Reject
            }
            _ => MessageAcceptance::Ignore,
        }
    }

    // ---- Swarm events -----------------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<MeshEvent>) {
        let now = clock::now();
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if !self.peers.connected(now, &peer_id) {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                *self.connected.entry(peer_id).or_default() += 1;
                if self.connected[&peer_id] == 1 {
                    if let Err(e) = self.checkpoints.peer_connected(peer_id) {
                        tracing::debug!(peer = %peer_id, error = %e, "not tracked for anti-entropy");
                    }
                    self.send_request(peer_id, &Request::Hello(self.hello()), Pending::Hello);
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, .. } => {
                if let Some(count) = self.connected.get_mut(&peer_id) {
                    *count -= 1;
                    if *count == 0 {
                        self.connected.remove(&peer_id);
                        self.peers.disconnected(now, &peer_id);
                        self.checkpoints.peer_disconnected(&peer_id);
                    }
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!(%address, "mesh listening");
            }
            SwarmEvent::Behaviour(MeshEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let verdict = self.on_gossip(now, propagation_source, &message);
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
            }
            SwarmEvent::Behaviour(MeshEvent::Rpc(event)) => self.on_rpc(now, event),
            SwarmEvent::Behaviour(MeshEvent::Identify(event)) => self.on_identify(*event),
            SwarmEvent::Behaviour(MeshEvent::Kad(kad::Event::RoutingUpdated { peer, .. }))
                if !self.connected.contains_key(&peer) && !self.peers.is_banned(now, &peer) =>
            {
                let _ = self.swarm.dial(peer);
            }
            _ => {}
        }
    }

    /// Peers that speak provmesh's identify protocol tell us where they listen; Kademlia
    /// learns those addresses so peer discovery reaches them.
    fn on_identify(&mut self, event: identify::Event) {
        let identify::Event::Received { peer_id, info, .. } = event else {
            return;
        };
        if info.protocol_version != super::transport::IDENTIFY_PROTOCOL {
            return;
        }
        for address in info.listen_addrs {
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer_id, address);
        }
    }

    fn on_gossip(
        &mut self,
        now: Timestamp,
        from: PeerId,
        message: &gossipsub::Message,
    ) -> MessageAcceptance {
        match self
            .peers
            .admit(now, &from, MessageClass::SelfAuthenticating)
        {
            Admission::Accept => {}
            _ => return MessageAcceptance::Ignore,
        }
        let gossip = match wire::decode_gossip(message.topic.as_str(), &message.data) {
            Ok(gossip) => gossip,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "malformed gossip");
                self.penalize(now, &from, wire_offence(&e));
                return MessageAcceptance::Reject;
            }
        };
        match gossip {
            Gossip::DomainRecord(bytes) => self.accept_record_bytes(now, from, &bytes),
            Gossip::Evidence(bytes) => self.accept_evidence_bytes(now, from, bytes),
            Gossip::Checkpoint(note) => {
                match self.checkpoints.handle_checkpoint(now, Some(from), &note) {
                    Relay::Accept => MessageAcceptance::Accept,
                    Relay::Ignore(_) => MessageAcceptance::Ignore,
                    Relay::Reject(reason) => {
                        tracing::warn!(peer = %from, %reason, "checkpoint rejected");
                        self.penalize(now, &from, Offence::BadSignature);
                        MessageAcceptance::Reject
                    }
                }
            }
            _ => MessageAcceptance::Ignore,
        }
    }

    fn penalize(&mut self, now: Timestamp, peer: &PeerId, offence: Offence) {
        self.peers.penalize(now, peer, offence);
    }

    fn send_request(&mut self, peer: PeerId, request: &Request, pending: Pending) {
        let bytes = wire::encode_request(request);
        tracing::trace!(%peer, ?pending, bytes = bytes.len(), "mesh request sent");
        let id = self.swarm.behaviour_mut().rpc.send_request(&peer, bytes);
        self.pending.insert(id, pending);
    }

    fn respond(&mut self, channel: ResponseChannel<Vec<u8>>, response: &Response) {
        let bytes = wire::encode_response(response);
        tracing::trace!(bytes = bytes.len(), "mesh response sent");
        let _ = self.swarm.behaviour_mut().rpc.send_response(channel, bytes);
    }

    fn on_rpc(&mut self, now: Timestamp, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(now, peer, &request, channel),
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(pending) = self.pending.remove(&request_id) else {
                    return;
                };
                self.on_response(now, peer, pending, &response);
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                match self.pending.remove(&request_id) {
                    Some(Pending::Consistency(id)) => {
                        self.checkpoints.handle_fetch_failed(now, &peer, id);
                    }
                    Some(Pending::RecordChain(trust_domain)) => {
                        self.chain_requests.remove(&trust_domain);
                    }
                    Some(Pending::Lookup { query, origin }) => {
                        self.lookup_answered(query, &origin, None);
                    }
                    _ => {}
                }
                tracing::debug!(%peer, %error, "mesh request failed");
            }
            _ => {}
        }
    }

    /// Verifies a node record from `peer` and binds it; false (and the peer penalised)
    /// when it does not verify.
    fn bind(&mut self, now: Timestamp, peer: PeerId, hello: &Hello) -> bool {
        let signed = match SignedNodeRecord::from_json(&hello.node_record) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed node record");
                self.penalize(now, &peer, Offence::Malformed);
                return false;
            }
        };
        let registry = &self.registry;
        let verified = signed.verify(
            &peer.to_string(),
            |td| registry.trust_bundle(td),
            now,
            self.max_clock_skew_secs,
        );
        match verified {
            Ok(verified) => {
                self.peers.bind(now, &peer, Binding::from(&verified));
                self.checkpoints
                    .peer_serves(&peer, hello.serves_origins.iter().map(String::as_str));
                tracing::debug!(%peer, spiffe_id = %verified.spiffe_id(), "peer bound");
                true
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "node record rejected");
                if let Some(offence) = node_record_offence(&e) {
                    self.penalize(now, &peer, offence);
                }
                false
            }
        }
    }

    fn on_request(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        bytes: &[u8],
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let request = match wire::decode_request(bytes) {
            Ok(request) => request,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed mesh request");
                self.penalize(now, &peer, wire_offence(&e));
                self.respond(channel, &Response::Refused(format!("malformed: {e}")));
                return;
            }
        };
        if let Request::Hello(hello) = &request {
            // A node record authenticates itself, so an unbound peer may send one; but
            // each costs a chain validation, so it is rate-limited like gossip.
            match self
                .peers
                .admit(now, &peer, MessageClass::SelfAuthenticating)
            {
                Admission::Accept => {}
                refusal => {
                    self.respond(channel, &Response::Refused(format!("{refusal:?}")));
                    return;
                }
            }
            let bound = self.bind(now, peer, hello);
            let response = if bound {
                Response::Hello(self.hello())
            } else {
                Response::Refused("node record not accepted".to_owned())
            };
            self.respond(channel, &response);
            return;
        }
        let class = if matches!(request, Request::Lookup { .. }) {
            MessageClass::Lookup
        } else {
            MessageClass::NeedsBoundPeer
        };
        match self.peers.admit(now, &peer, class) {
            Admission::Accept => {}
            refusal => {
                tracing::debug!(%peer, ?refusal, "mesh request refused");
                self.respond(channel, &Response::Refused(format!("{refusal:?}")));
                return;
            }
        }
        let response = match request {
            Request::Summary(summary) => {
                let checkpoints = self.checkpoints.handle_summary(now, &peer, &summary.logs);
                let domain_records = self.records_lacking(&summary.domains);
                let evidence = self.evidence_lacking(&summary.evidence_ids);
                Response::Summary {
                    checkpoints,
                    domain_records,
                    evidence,
                }
            }
            Request::Consistency {
                origin,
                first_size,
                last_size,
            } => self.consistency(&origin, first_size, last_size),
            Request::RecordChain {
                trust_domain,
                after_sequence,
            } => Response::RecordChain(
                self.registry
                    .chain_after(&trust_domain, after_sequence)
                    .take(wire::MAX_ANSWER_ITEMS)
                    .map(SignedDomainRecord::to_json)
                    .collect(),
            ),
            Request::Lookup { sha256 } => {
                self.serve_lookup(&peer, sha256, channel);
                return;
            }
            _ => Response::Refused("unexpected request".to_owned()),
        };
        self.respond(channel, &response);
    }

    // ---- Provenance lookups -----------------------------------------------------------

    /// Asks the server of every log the node does not hold (its domain's authority) for
    /// the records of `sha256`, with the keys of its domain to check them with.
    fn start_lookup(
        &mut self,
        sha256: [u8; 32],
        reply: tokio::sync::oneshot::Sender<crate::provenance::RemoteAnswers>,
    ) {
        let mut answers = crate::provenance::RemoteAnswers {
            answers: Vec::new(),
            witnesses: self.roster.clone(),
            max_skew_secs: self.max_clock_skew_secs,
        };
        if self.lookups.len() >= MAX_LOOKUPS {
            tracing::warn!("too many provenance lookups in flight; answered without asking");
            let _ = reply.send(answers);
            return;
        }
        let own = self.log.as_ref().map(|log| log.origin().to_owned());
        let logs: Vec<provmesh_protocol::provenance::DomainKeys> = self
            .domain_keys()
            .into_iter()
            .filter(|keys| own.as_deref() != Some(keys.origin.as_str()))
            .collect();
        let query = self.next_lookup;
        self.next_lookup += 1;
        let mut waiting = BTreeMap::new();
        for keys in logs {
            let origin = keys.origin.clone();
            let Some(server) = self.checkpoints.proof_server(&origin) else {
                tracing::debug!(%origin, "no server of the log connected; not asked");
                continue;
            };
            self.send_request(
                server,
                &Request::Lookup { sha256 },
                Pending::Lookup {
                    query,
                    origin: origin.clone(),
                },
            );
            waiting.insert(
                origin.clone(),
                crate::provenance::RemoteAnswer {
                    keys,
                    equivocating: self.evidence_per_log.contains_key(&origin),
                    records: Vec::new(),
                },
            );
        }
        if waiting.is_empty() {
            let _ = reply.send(answers);
            return;
        }
        answers.answers.reserve(waiting.len());
        self.lookups.insert(
            query,
            LookupQuery {
                waiting,
                answers,
                reply,
                deadline: clock::now().saturating_add(LOOKUP_TIMEOUT),
            },
        );
    }

    /// An answer (or failure, `records: None`) of the server of `origin` to lookup
    /// `query`; the lookup is answered once every log asked has answered.
    fn lookup_answered(
        &mut self,
        query: u64,
        origin: &str,
        records: Option<Vec<wire::FoundRecord>>,
    ) {
        let Some(lookup) = self.lookups.get_mut(&query) else {
            return;
        };
        if let Some(mut answer) = lookup.waiting.remove(origin)
            && let Some(records) = records
        {
            answer.records = records;
            lookup.answers.answers.push(answer);
        }
        if lookup.waiting.is_empty()
            && let Some(done) = self.lookups.remove(&query)
        {
            let _ = done.reply.send(done.answers);
        }
    }

    /// Answers the lookups whose time is up with what came back.
    fn expire_lookups(&mut self, now: Timestamp) {
        let expired: Vec<u64> = self
            .lookups
            .iter()
            .filter(|(_, l)| now >= l.deadline)
            .map(|(q, _)| *q)
            .collect();
        for query in expired {
            if let Some(done) = self.lookups.remove(&query) {
                tracing::debug!(unanswered = ?done.waiting.keys().collect::<Vec<_>>(), "provenance lookup timed out");
                let _ = done.reply.send(done.answers);
            }
        }
    }

    /// The keys of every log of the accepted, unrevoked domains (the own one included),
    /// from their domain records.
    fn domain_keys(&self) -> Vec<provmesh_protocol::provenance::DomainKeys> {
        self.registry
            .log_origins()
            .filter(|(td, _)| self.registry.domain(td).is_some_and(|d| !d.is_revoked()))
            .filter_map(|(td, origin)| {
                let (_, log_key) = self.registry.log_verifier(origin.as_str())?;
                Some(provmesh_protocol::provenance::DomainKeys {
                    trust_domain: td.clone(),
                    origin: origin.as_str().to_owned(),
                    log_key: log_key.clone(),
                    roots: self.registry.code_signing_roots(td).to_vec(),
                    ct_keys: self.registry.ct_keys(td).to_vec(),
                })
            })
            .collect()
    }

    /// What the mesh knows of the log `origin`: the checkpoint it serves, with the
    /// domains that cosigned it, and whether evidence convicts the log.
    fn standing(&self, origin: &str) -> crate::provenance::LogStanding {
        let cosigned = self.checkpoints.cosigned(origin).map(|c| {
            (
                Arc::new(provmesh_protocol::log::SignedCheckpointNote {
                    size: c.size,
                    root_hash: c.root,
                    note: c.served_note(),
                }),
                c.cosignatures.domains().cloned().collect(),
            )
        });
        crate::provenance::LogStanding {
            cosigned,
            equivocating: self.evidence_per_log.contains_key(origin),
        }
    }

    /// Serves a peer's lookup from the own log (authority), off the task: reading the
    /// store and checking the records is blocking work. A peer of a domain outside the
    /// read scope is refused.
    fn serve_lookup(&mut self, peer: &PeerId, sha256: [u8; 32], channel: ResponseChannel<Vec<u8>>) {
        let Some(log) = self.log.clone() else {
            self.respond(
                channel,
                &Response::Refused("this node serves no log".to_owned()),
            );
            return;
        };
        let requester = self
            .peers
            .bound_id(peer)
            .map(|id| id.trust_domain().clone());
        if !self
            .read_scope
            .permits(self.identity.trust_domain(), requester.as_ref())
        {
            tracing::debug!(%peer, ?requester, "lookup refused: outside the read scope");
            let refusal = format!(
                "the records of {} are not served to {}: outside its read scope",
                self.identity.trust_domain(),
                requester.map_or_else(|| "an unbound peer".to_owned(), |td| td.to_string())
            );
            self.respond(channel, &Response::Refused(refusal));
            return;
        }
        let standing = self.standing(log.origin());
        let commands = self.self_commands.clone();
        tokio::task::spawn_blocking(move || {
            let response = match crate::provenance::cached_local_records(&log, &sha256, &standing) {
                Ok(records) => Response::Lookup(
                    records
                        .iter()
                        .map(crate::provenance::LocalRecord::found)
                        .collect(),
                ),
                Err(e) => Response::Refused(e.to_string()),
            };
            let _ = commands.blocking_send(Command::Respond { channel, response });
        });
    }

    /// Records a peer with summary `theirs` lacks: for each domain, those after its
    /// sequence (all of them for a domain it did not list), oldest first, bounded.
    fn records_lacking(&self, theirs: &[(TrustDomain, u64)]) -> Vec<Vec<u8>> {
        let known: BTreeMap<&TrustDomain, u64> = theirs.iter().map(|(td, s)| (td, *s)).collect();
        let mut records = Vec::new();
        for state in self.registry.domains() {
            let td = state.trust_domain();
            let after = known.get(td).copied().unwrap_or(0);
            for signed in self.registry.chain_after(td, after) {
                if records.len() >= wire::MAX_ANSWER_ITEMS {
                    return records;
                }
                records.push(signed.to_json());
            }
        }
        records
    }

    fn consistency(&self, origin: &str, first: u64, last: u64) -> Response {
        let Some(log) = self.log.as_ref().filter(|log| log.origin() == origin) else {
            return Response::Refused(format!("{origin} is not served here"));
        };
        let proof = match log.consistency_proof(first, last) {
            Ok(proof) => proof,
            Err(e) => return Response::Refused(e.to_string()),
        };
        // RFC 9162 leaves the older root out of a proof from a power-of-two size; a
        // follower holding another root of that size needs it to prove a fork.
        let old_subtree = if first.is_power_of_two() && first < last {
            match log.tree_root(first) {
                Ok(root) => Some(root),
                Err(e) => return Response::Refused(e.to_string()),
            }
        } else {
            None
        };
        Response::Consistency { proof, old_subtree }
    }

    fn on_response(&mut self, now: Timestamp, peer: PeerId, pending: Pending, bytes: &[u8]) {
        if let Pending::RecordChain(trust_domain) = &pending {
            self.chain_requests.remove(trust_domain);
        }
        let response = match wire::decode_response(bytes) {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "malformed mesh response");
                self.penalize(now, &peer, wire_offence(&e));
                if let Pending::Consistency(id) = pending {
                    self.checkpoints.handle_fetch_failed(now, &peer, id);
                }
                return;
            }
        };
        match (pending, response) {
            (Pending::Hello, Response::Hello(hello)) => {
                // The peer answers with its own record only once it bound this node, so
                // it now takes requests: exchange what both hold at once.
                if self.bind(now, peer, &hello) {
                    self.checkpoints.pull_from(&peer);
                }
            }
            (
                Pending::Summary,
                Response::Summary {
                    checkpoints,
                    domain_records,
                    evidence,
                },
            ) => {
                let followed_before = self.subscribed.len();
                self.accept_records(now, peer, domain_records);
                // After the records: evidence is judged against the logs they list.
                for document in evidence {
                    self.accept_evidence_bytes(now, peer, document);
                }
                for note in checkpoints {
                    if let Relay::Reject(reason) =
                        self.checkpoints.handle_checkpoint(now, Some(peer), &note)
                    {
                        tracing::warn!(%peer, %reason, "checkpoint rejected");
                        self.penalize(now, &peer, Offence::BadSignature);
                    }
                }
                // The records made this node follow logs it listed no checkpoint of:
                // ask again for those now rather than at the next round.
                if self.subscribed.len() > followed_before {
                    self.checkpoints.pull_from(&peer);
                }
            }
            (Pending::Consistency(id), Response::Consistency { proof, old_subtree }) => {
                self.checkpoints
                    .handle_consistency_proof(now, &peer, id, &proof, old_subtree);
            }
            (Pending::Consistency(id), _) => {
                self.checkpoints.handle_fetch_failed(now, &peer, id);
            }
            (
                Pending::WitnessProof {
                    origin,
                    note,
                    witness_size,
                },
                Response::Consistency { proof, .. },
            ) => self.feed_witness(origin, note, witness_size, proof),
            (Pending::Lookup { query, origin }, Response::Lookup(records)) => {
                self.lookup_answered(query, &origin, Some(records));
            }
            (Pending::Lookup { query, origin }, other) => {
                // The answer goes without this log's records: say why.
                let reason = match &other {
                    Response::Refused(reason) => reason.clone(),
                    _ => "a response of the wrong kind".to_owned(),
                };
                tracing::warn!(%peer, %origin, %reason, "a lookup was not answered for this log");
                self.lookup_answered(query, &origin, None);
            }
            (Pending::RecordChain(_), Response::RecordChain(records)) => {
                let followed_before = self.subscribed.len();
                self.accept_records(now, peer, records);
                if self.subscribed.len() > followed_before {
                    self.checkpoints.pull_from(&peer);
                }
            }
            (_, Response::Refused(reason)) => {
                tracing::debug!(%peer, %reason, "mesh request refused by peer");
            }
            (pending, _) => {
                tracing::warn!(%peer, ?pending, "mesh response of the wrong kind");
                self.penalize(now, &peer, Offence::Malformed);
            }
        }
    }

    // ---- Machine outputs --------------------------------------------------------------

    fn drain(&mut self) {
        while let Some(event) = self.checkpoints.poll_output() {
            match event {
                CheckpointEvent::Adopted {
                    origin,
                    size,
                    note,
                    previous,
                    proof,
                    ..
                } => {
                    tracing::debug!(%origin, size, "checkpoint adopted");
                    self.unsaved_checkpoints
                        .insert(origin.clone(), note.clone());
                    if self.logs.borrow().contains_key(&origin) {
                        let old_size = previous.map_or(0, |p| p.size);
                        self.feed_witness(origin, note, old_size, proof);
                    }
                }
                CheckpointEvent::FetchConsistency {
                    request_id,
                    peer,
                    origin,
                    first,
                    last,
                } => self.send_request(
                    peer,
                    &Request::Consistency {
                        origin,
                        first_size: first,
                        last_size: last,
                    },
                    Pending::Consistency(request_id),
                ),
                CheckpointEvent::Conflict {
                    origin,
                    ours,
                    theirs,
                    kind,
                } => self.on_conflict(origin, ours, theirs, kind),
                CheckpointEvent::Misbehaved { peer, reason } => {
                    tracing::warn!(%peer, %reason, "peer misbehaved");
                    self.penalize(clock::now(), &peer, Offence::BadProof);
                }
                CheckpointEvent::GaveUp {
                    origin,
                    size,
                    reason,
                } => tracing::warn!(%origin, size, ?reason, "gave up on a checkpoint"),
                CheckpointEvent::SendSummary { peer, summary } => {
                    let request = Request::Summary(Summary {
                        logs: summary,
                        domains: self.registry.summary(),
                        evidence_ids: self
                            .evidence_ids
                            .iter()
                            .take(evidence::MAX_EVIDENCE_IDS)
                            .copied()
                            .collect(),
                    });
                    self.send_request(peer, &request, Pending::Summary);
                }
            }
        }
        while let Some(action) = self.peers.poll_output() {
            match action {
                PeerAction::Disconnect {
                    peer,
                    until,
                    reason,
                } => {
                    tracing::warn!(%peer, ?reason, until = until.as_unix_seconds(), "peer banned");
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                PeerAction::Refuse { peer, .. } => {
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
                _ => {}
            }
        }
    }
}

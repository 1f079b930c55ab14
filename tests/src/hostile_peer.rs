//! A hostile mesh peer driven from the test process: the exact libp2p swarm a node runs
//! (`provmesh_node::mesh::transport::build_swarm`: gossipsub with validation,
//! request-response on `wire::MESH_PROTOCOL`, Kademlia, identify), with none of the
//! node's rules, so a test can make it send what no honest node sends — forged or stale
//! domain records, garbage, oversized messages, requests without a binding — and answer
//! the victim's requests as it likes.
//!
//! The swarm runs on its own Tokio runtime, owned by [`HostilePeer`]; the test thread
//! talks to it through a channel and blocks on each answer within a bound, so the tests
//! stay synchronous like the rest of this crate. It never listens: the victim cannot
//! pass its address on, so it cannot reach other nodes of the federation.
//!
//! What it does on its own, for the victim:
//! - answers a `Hello` with the hello set by [`HostilePeer::bind`] (so the victim binds it
//!   too), or refuses it while it has none (an unbound peer);
//! - answers every anti-entropy `Summary` with the response set by
//!   [`HostilePeer::answer_summaries_with`] (empty by default), and counts them;
//! - refuses every other request, and judges no gossip (reported `Ignore`: never relayed).
//!
//! The functions panic on failure: they are test scaffolding.

// Test scaffolding: a failed step fails the calling test (see the module header).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, PublishError};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identity};
use provmesh_node::mesh::transport::{MeshBehaviour, MeshEvent, build_swarm};
use provmesh_protocol::federation::domain_record::SignedDomainRecord;
use provmesh_protocol::federation::node_record::{NodeRecord, SignedNodeRecord};
use provmesh_protocol::mesh::wire::{self, Hello, Request, Response};
use provmesh_protocol::spiffe::TrustDomain;
use tokio::sync::{mpsc, oneshot};

use crate::federation::{IssuedSvid, unix_now};

/// gossipsub's heartbeat in the hostile swarm: short, so its mesh forms quickly.
const HEARTBEAT: Duration = Duration::from_millis(100);
/// How often pending publishes are retried.
const RETRY_EVERY: Duration = Duration::from_millis(50);
/// Lifetime of the hostile peer's node record (well within its SVID's).
const NODE_RECORD_LIFETIME: Duration = Duration::from_secs(600);

/// A command from the test thread to the swarm task.
enum Command {
    Dial {
        address: Multiaddr,
        peer: PeerId,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Request {
        peer: PeerId,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    Publish {
        topic: String,
        data: Vec<u8>,
        until: Instant,
        reply: oneshot::Sender<Result<(), String>>,
    },
    SetHello(Hello),
    SetSummaryAnswer(Response),
}

/// What the swarm task saw, read by the test thread.
#[derive(Debug, Default)]
struct Observed {
    /// Peers with a connection open.
    connected: BTreeSet<PeerId>,
    /// Anti-entropy `Summary` requests answered.
    summaries_answered: usize,
}

/// The hostile peer: its swarm on its own runtime. Dropping it closes every connection.
pub struct HostilePeer {
    peer_id: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    observed: Arc<Mutex<Observed>>,
    // Last: dropped after the channel, which ends the swarm task first.
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for HostilePeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostilePeer")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl HostilePeer {
    /// A new peer with a fresh Ed25519 key; it is not connected to anyone.
    pub fn new() -> HostilePeer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let key = identity::Keypair::generate_ed25519();
        let peer_id = key.public().to_peer_id();
        let swarm = {
            let _context = runtime.enter();
            // Nobody reads the hostile peer's byte counters.
            let mut metrics = prometheus_client::registry::Registry::default();
            build_swarm(key, HEARTBEAT, &mut metrics).unwrap()
        };
        let (commands, receiver) = mpsc::unbounded_channel();
        let observed = Arc::new(Mutex::new(Observed::default()));
        let task = SwarmTask {
            swarm,
            hello: None,
            summary_answer: Response::Summary {
                checkpoints: Vec::new(),
                domain_records: Vec::new(),
                evidence: Vec::new(),
            },
            dials: Vec::new(),
            requests: HashMap::new(),
            publishes: Vec::new(),
            observed: Arc::clone(&observed),
        };
        runtime.spawn(task.run(receiver));
        HostilePeer {
            peer_id,
            commands,
            observed,
            runtime,
        }
    }

    /// Its libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Dials `address` (ending in `/p2p/<peer id>`) and waits up to `within` for the
    /// connection; returns the peer dialled.
    pub fn connect(&self, address: &str, within: Duration) -> PeerId {
        let address: Multiaddr = address.parse().unwrap();
        let Some(Protocol::P2p(peer)) = address.iter().last() else {
            panic!("{address} does not end in /p2p/<peer id>");
        };
        self.call(
            |reply| Command::Dial {
                address: address.clone(),
                peer,
                reply,
            },
            within,
        )
        .unwrap_or_else(|e| panic!("cannot connect to {address}: {e}"));
        peer
    }

    /// Whether a connection to `peer` is open.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.observed().connected.contains(peer)
    }

    /// Waits up to `within` for every connection to `peer` to close; returns whether they
    /// did.
    pub fn wait_disconnected(&self, peer: &PeerId, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.is_connected(peer) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(RETRY_EVERY);
        }
        true
    }

    /// Sends `bytes` as a request to `peer` and waits up to `within` for the response's
    /// bytes, or the failure (the stream reset, the connection closed, a timeout).
    pub fn request_bytes(
        &self,
        peer: &PeerId,
        bytes: Vec<u8>,
        within: Duration,
    ) -> Result<Vec<u8>, String> {
        let peer = *peer;
        self.call(
            |reply| Command::Request {
                peer,
                bytes: bytes.clone(),
                reply,
            },
            within,
        )
    }

    /// Sends `request` to `peer` and decodes the response, within `within`.
    ///
    /// # Panics
    ///
    /// If the request fails or the response does not decode.
    pub fn request(&self, peer: &PeerId, request: &Request, within: Duration) -> Response {
        let bytes = self
            .request_bytes(peer, wire::encode_request(request), within)
            .unwrap_or_else(|e| panic!("{request:?} to {peer} failed: {e}"));
        wire::decode_response(&bytes).unwrap()
    }

    /// Binds to `peer` as `svid`'s SPIFFE ID: sends a `Hello` with a node record signed
    /// by the SVID, expects the peer's `Hello` back, and answers the peer's own `Hello`s
    /// with it from now on.
    pub fn bind(&self, peer: &PeerId, svid: &IssuedSvid, within: Duration) {
        let hello = Hello {
            node_record: self.node_record(svid),
            serves_origins: Vec::new(),
        };
        self.commands
            .send(Command::SetHello(hello.clone()))
            .unwrap();
        match self.request(peer, &Request::Hello(hello), within) {
            Response::Hello(_) => {}
            other => panic!("{peer} did not bind the hostile peer: {other:?}"),
        }
    }

    /// A node record binding this peer id to `svid`'s SPIFFE ID, signed by the SVID,
    /// JSON.
    pub fn node_record(&self, svid: &IssuedSvid) -> Vec<u8> {
        let issued = unix_now();
        let record = NodeRecord::new(
            self.peer_id.to_string(),
            svid.spiffe_id().clone(),
            Vec::new(),
            issued,
            issued + NODE_RECORD_LIFETIME.as_secs(),
        )
        .unwrap();
        SignedNodeRecord::sign(&record, &svid.signer(), svid.svid.chain_der.clone())
            .unwrap()
            .to_json()
    }

    /// The signed records of `trust_domain` that `peer` serves after `after_sequence`,
    /// oldest first (this peer must be bound to ask).
    pub fn record_chain(
        &self,
        peer: &PeerId,
        trust_domain: &str,
        after_sequence: u64,
        within: Duration,
    ) -> Vec<SignedDomainRecord> {
        let request = Request::RecordChain {
            trust_domain: TrustDomain::parse(trust_domain).unwrap(),
            after_sequence,
        };
        match self.request(peer, &request, within) {
            Response::RecordChain(records) => records
                .iter()
                .map(|json| SignedDomainRecord::from_json(json).unwrap())
                .collect(),
            other => panic!("{peer} served no record chain of {trust_domain}: {other:?}"),
        }
    }

    /// Subscribes to `topic` and publishes `data` on it as raw gossip bytes, retrying
    /// until a peer subscribed to the topic is known (gossipsub refuses to publish to
    /// nobody) or `within` has passed.
    ///
    /// # Panics
    ///
    /// If it could not be published within `within`.
    pub fn publish(&self, topic: &str, data: Vec<u8>, within: Duration) {
        let until = Instant::now() + within;
        self.call(
            |reply| Command::Publish {
                topic: topic.to_owned(),
                data: data.clone(),
                until,
                reply,
            },
            within + Duration::from_secs(1),
        )
        .unwrap_or_else(|e| panic!("cannot publish on {topic}: {e}"));
    }

    /// From now on every anti-entropy `Summary` request is answered with `response`.
    pub fn answer_summaries_with(&self, response: Response) {
        self.commands
            .send(Command::SetSummaryAnswer(response))
            .unwrap();
    }

    /// How many `Summary` requests it has answered.
    pub fn summaries_answered(&self) -> usize {
        self.observed().summaries_answered
    }

    fn observed(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends the command `make` builds around a reply channel and waits up to `within`
    /// for the reply.
    fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
        within: Duration,
    ) -> Result<T, String> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).unwrap();
        self.runtime
            .block_on(async { tokio::time::timeout(within, answer).await })
            .map_err(|_| format!("no answer within {within:?}"))?
            .map_err(|_| "the hostile swarm task ended".to_owned())?
    }
}

impl Default for HostilePeer {
    fn default() -> Self {
        HostilePeer::new()
    }
}

/// A publish waiting for a subscribed peer.
struct PendingPublish {
    topic: IdentTopic,
    data: Vec<u8>,
    until: Instant,
    reply: oneshot::Sender<Result<(), String>>,
}

/// The task owning the swarm.
struct SwarmTask {
    swarm: Swarm<MeshBehaviour>,
    hello: Option<Hello>,
    summary_answer: Response,
    dials: Vec<(PeerId, oneshot::Sender<Result<(), String>>)>,
    requests: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>>,
    publishes: Vec<PendingPublish>,
    observed: Arc<Mutex<Observed>>,
}

impl SwarmTask {
    /// Runs until the [`HostilePeer`] is dropped.
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut retry = tokio::time::interval(RETRY_EVERY);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => return,
                },
                event = self.swarm.select_next_some() => self.on_event(event),
                _ = retry.tick() => self.retry_publishes(),
            }
        }
    }

    fn observed(&self) -> std::sync::MutexGuard<'_, Observed> {
        self.observed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial {
                address,
                peer,
                reply,
            } => {
                if self.swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                } else if let Err(e) = self.swarm.dial(address) {
                    let _ = reply.send(Err(e.to_string()));
                } else {
                    self.dials.push((peer, reply));
                }
            }
            Command::Request { peer, bytes, reply } => {
                let id = self.swarm.behaviour_mut().rpc.send_request(&peer, bytes);
                self.requests.insert(id, reply);
            }
            Command::Publish {
                topic,
                data,
                until,
                reply,
            } => {
                let topic = IdentTopic::new(topic);
                if let Err(e) = self.swarm.behaviour_mut().gossipsub.subscribe(&topic) {
                    let _ = reply.send(Err(e.to_string()));
                    return;
                }
                self.publishes.push(PendingPublish {
                    topic,
                    data,
                    until,
                    reply,
                });
                self.retry_publishes();
            }
            Command::SetHello(hello) => self.hello = Some(hello),
            Command::SetSummaryAnswer(response) => self.summary_answer = response,
        }
    }

    fn retry_publishes(&mut self) {
        for pending in std::mem::take(&mut self.publishes) {
            let result = self
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(pending.topic.clone(), pending.data.clone());
            match result {
                Ok(_) => {
                    let _ = pending.reply.send(Ok(()));
                }
                // Nobody subscribed to the topic is known yet: the victim's subscriptions
                // arrive shortly after the connection opens.
                Err(PublishError::NoPeersSubscribedToTopic) if Instant::now() < pending.until => {
                    self.publishes.push(pending);
                }
                Err(e) => {
                    let _ = pending.reply.send(Err(e.to_string()));
                }
            }
        }
    }

    fn on_event(&mut self, event: SwarmEvent<MeshEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                self.observed().connected.insert(peer_id);
                let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dials)
                    .into_iter()
                    .partition(|(peer, _)| *peer == peer_id);
                self.dials = waiting;
                for (_, reply) in ready {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                self.observed().connected.remove(&peer_id);
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer_id),
                error,
                ..
            } => {
                let (failed, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.dials)
                    .into_iter()
                    .partition(|(peer, _)| *peer == peer_id);
                self.dials = waiting;
                for (_, reply) in failed {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            SwarmEvent::Behaviour(MeshEvent::Rpc(event)) => self.on_rpc(event),
            SwarmEvent::Behaviour(MeshEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                ..
            })) => {
                // Judged by nobody here and never relayed.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
            }
            _ => {}
        }
    }

    fn on_rpc(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = match wire::decode_request(&request) {
                    Ok(Request::Hello(_)) => match &self.hello {
                        Some(hello) => Response::Hello(hello.clone()),
                        None => Response::Refused("no node record here".to_owned()),
                    },
                    Ok(Request::Summary(_)) => {
                        self.observed().summaries_answered += 1;
                        self.summary_answer.clone()
                    }
                    Ok(_) => Response::Refused("not served here".to_owned()),
                    Err(e) => Response::Refused(format!("malformed: {e}")),
                };
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .rpc
                    .send_response(channel, wire::encode_response(&response));
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(reply) = self.requests.remove(&request_id) {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            _ => {}
        }
    }
}

//! [`MeshHandle`]: how the rest of the node talks to the task that owns the swarm — a
//! bounded command channel with a one-shot reply per command (the shape of rust-libp2p's
//! file-sharing example).

use std::collections::BTreeMap;
use std::sync::Arc;

use provmesh_protocol::federation::domain_record::SignedDomainRecord;
use provmesh_protocol::proto::provmesh::v1 as pb;
use provmesh_protocol::spiffe::{TrustBundle, TrustDomain};
use tokio::sync::{mpsc, oneshot, watch};

/// How many commands may wait for the mesh task; more wait in `send` (back-pressure).
pub const COMMAND_QUEUE: usize = 64;

/// The accepted SPIFFE bundles by trust domain, replaced wholesale when one changes.
pub type AcceptedBundles = watch::Receiver<Arc<BTreeMap<TrustDomain, TrustBundle>>>;

/// The logs of every accepted domain, `origin → verifier key`, replaced wholesale when
/// one is added: what the domain's witness witnesses.
pub type FederatedLogs = watch::Receiver<Arc<BTreeMap<String, provmesh_protocol::note::Verifier>>>;

/// A command for the mesh task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Report the node's view of the mesh.
    Status(oneshot::Sender<pb::MeshStatus>),
    /// List the evidence held.
    ListEvidence(oneshot::Sender<pb::ListEvidenceResponse>),
    /// `MeshService.GetCosignedCheckpoint`: `None` when no checkpoint of the origin is held.
    Checkpoint(
        String,
        oneshot::Sender<Option<pb::GetCosignedCheckpointResponse>>,
    ),
    /// The keys of the accepted domains' logs.
    DomainKeys(oneshot::Sender<Vec<provmesh_protocol::provenance::DomainKeys>>),
    /// What the mesh knows of a log, for provenance answers.
    Standing(String, oneshot::Sender<crate::provenance::LogStanding>),
    /// The domain's witness (on the authority), to cosign the checkpoints of the logs
    /// it witnesses as the mesh adopts them.
    AttachWitness(crate::witness::WitnessHandle),
    /// A provenance lookup: ask the log of every other domain (and the own one, from a
    /// plain node) for the records of an artifact.
    Lookup {
        /// The artifact's SHA-256 digest.
        sha256: [u8; 32],
        /// Where the answers go.
        reply: oneshot::Sender<crate::provenance::RemoteAnswers>,
    },
    /// An answer computed off the task, to send on a request's channel.
    Respond {
        /// The request's channel.
        channel: libp2p::request_response::ResponseChannel<Vec<u8>>,
        /// The answer.
        response: provmesh_protocol::mesh::wire::Response,
    },
    /// The witness cosigned: the checkpoint of `origin` with its cosignature, to collect
    /// and gossip.
    Cosigned {
        /// The log.
        origin: String,
        /// The note with the cosignature line.
        note: Vec<u8>,
    },
    /// The witness refused a checkpoint because it cosigned another size last (409): it
    /// needs a consistency proof from that size.
    WitnessBehind {
        /// The log.
        origin: String,
        /// The checkpoint (log-signed) to cosign.
        note: Vec<u8>,
        /// Its size.
        size: u64,
        /// The size the witness cosigned last.
        witness_size: u64,
    },
    /// The authority's new domain record was appended to its log (`None`: it failed).
    RecordLogged(Option<Box<SignedDomainRecord>>),
    /// Equivocation evidence found outside the mesh task (the witness was shown a second
    /// tree of a size it cosigned).
    Evidence(Box<provmesh_protocol::evidence::Evidence>),
}

/// A cloneable handle on the running mesh task.
#[derive(Debug, Clone)]
pub struct MeshHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) bundles: AcceptedBundles,
    pub(crate) logs: FederatedLogs,
}

/// The mesh task has stopped (the node is shutting down).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the mesh task has stopped")]
pub struct MeshStopped;

impl MeshHandle {
    /// The node, the trust domains it accepted, the logs it knows and its peers.
    pub async fn status(&self) -> Result<pb::MeshStatus, MeshStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Status(reply))
            .await
            .map_err(|_| MeshStopped)?;
        answer.await.map_err(|_| MeshStopped)
    }

    /// The verified equivocation evidence the node holds.
    pub async fn evidence(&self) -> Result<pb::ListEvidenceResponse, MeshStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::ListEvidence(reply))
            .await
            .map_err(|_| MeshStopped)?;
        answer.await.map_err(|_| MeshStopped)
    }

    /// The cosigned checkpoint of `origin` this node serves, or `None` when it holds none.
    pub async fn checkpoint(
        &self,
        origin: String,
    ) -> Result<Option<pb::GetCosignedCheckpointResponse>, MeshStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Checkpoint(origin, reply))
            .await
            .map_err(|_| MeshStopped)?;
        answer.await.map_err(|_| MeshStopped)
    }

    /// Asks the other domains' logs, through their authorities, for the records of the
    /// artifact `sha256`; answers within a few seconds with what came back, unchecked,
    /// with each domain's keys to check it with.
    pub async fn lookup(
        &self,
        sha256: [u8; 32],
    ) -> Result<crate::provenance::RemoteAnswers, MeshStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Lookup { sha256, reply })
            .await
            .map_err(|_| MeshStopped)?;
        answer.await.map_err(|_| MeshStopped)
    }

    /// The keys of every log of the accepted, unrevoked domains, from their domain
    /// records.
    pub async fn domain_keys(
        &self,
    ) -> Result<Vec<provmesh_protocol::provenance::DomainKeys>, MeshStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::DomainKeys(reply))
            .await
            .map_err(|_| MeshStopped)?;
        answer.await.map_err(|_| MeshStopped)
    }

    /// What the mesh knows of the log `origin`: its cosigned checkpoint with the
    /// cosigning domains, and whether it is proven to have equivocated.
    pub async fn standing(
        &self,
        origin: String,
    ) -> Result<crate::provenance::LogStanding, MeshStopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Standing(origin, reply))
            .await
            .map_err(|_| MeshStopped)?;
        answer.await.map_err(|_| MeshStopped)
    }

    /// Lets the mesh hand the checkpoints of the logs this domain witnesses to the
    /// domain's witness as it adopts them (on the authority).
    pub async fn attach_witness(
        &self,
        witness: crate::witness::WitnessHandle,
    ) -> Result<(), MeshStopped> {
        self.commands
            .send(Command::AttachWitness(witness))
            .await
            .map_err(|_| MeshStopped)
    }

    /// Hands evidence found elsewhere in the node to the mesh, which verifies, stores and
    /// gossips it. Never waits: with the command queue full the evidence is dropped (and
    /// said so), which the next conflict or an anti-entropy round repairs.
    pub fn submit_evidence(
        &self,
        evidence: provmesh_protocol::evidence::Evidence,
    ) -> Result<(), MeshStopped> {
        self.commands
            .try_send(Command::Evidence(Box::new(evidence)))
            .map_err(|_| MeshStopped)
    }

    /// The accepted SPIFFE bundles, followed live.
    pub fn bundles(&self) -> AcceptedBundles {
        self.bundles.clone()
    }

    /// The logs of the accepted domains, followed live.
    pub fn logs(&self) -> FederatedLogs {
        self.logs.clone()
    }
}

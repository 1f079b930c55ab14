//! The domain's witness, on the authority: the owner of the sans-IO witness
//! (`provmesh_protocol::witness`), its store and the domain's witness key.
//!
//! * [`store`]: the latest cosigned checkpoint per log, durable.
//! * [`http`]: `POST /add-checkpoint` (C2SP tlog-witness) over [`WitnessHandle`].
//!
//! One thread owns the witness: requests reach it over a bounded channel (a full channel
//! is "overloaded", answered 503, never an unbounded queue) and are taken in batches — all
//! requests waiting, up to [`MAX_BATCH`]. Each is checked and applied in turn by the
//! witness machine (so the check and the update are atomic), the batch's new states are
//! written in one durable transaction (group commit), and only then are the cosignatures
//! made and the answers sent.
//!
//! The witnessed logs are the logs of every accepted domain (followed live from the
//! mesh) and the logs configured in `[[authority.witness.logs]]`.

pub mod http;
pub mod store;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use provmesh_protocol::cosignature::CosignatureSigner;
use provmesh_protocol::evidence::Evidence;
use provmesh_protocol::note::Verifier;
use provmesh_protocol::witness::{AddCheckpoint, Cosigned, Refusal, Update, Witness};
use tokio::sync::{mpsc, oneshot};

use crate::mesh::{FederatedLogs, MeshHandle};
use store::{WitnessStore, WitnessStoreError};

/// How many requests may wait for the witness; more are refused as overloaded.
pub const COMMAND_QUEUE: usize = 4096;
/// The most requests checked and persisted together.
pub const MAX_BATCH: usize = 512;

/// Why a checkpoint was not cosigned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// The witness refused it, with the spec's status.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Too many requests are waiting.
    #[error("the witness is overloaded; retry later")]
    Overloaded,
    /// The witness has stopped.
    #[error("the witness has stopped")]
    Stopped,
    /// The new state could not be stored; nothing was cosigned.
    #[error("cannot store the witness state: {0}")]
    Store(String),
    /// The cosignature could not be made.
    #[error("cannot cosign: {0}")]
    Sign(String),
}

type Reply = oneshot::Sender<Result<String, AddError>>;

/// A request for the witness thread.
#[derive(Debug)]
struct Command {
    body: Vec<u8>,
    reply: Reply,
}

/// A cloneable handle on the running witness.
#[derive(Debug, Clone)]
pub struct WitnessHandle {
    commands: mpsc::Sender<Command>,
}

impl WitnessHandle {
    /// Submits an `add-checkpoint` request body; the answer is the cosignature lines.
    pub async fn add_checkpoint(&self, body: Vec<u8>) -> Result<String, AddError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .try_send(Command { body, reply })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => AddError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => AddError::Stopped,
            })?;
        answer.await.map_err(|_| AddError::Stopped)?
    }
}

/// What the witness witnesses: logs configured by origin and key, and, when the node is
/// in the mesh, the accepted domains' logs, followed live; the mesh also takes the
/// evidence of a log that shows the witness a second tree of a size it cosigned.
pub struct WitnessedLogs {
    /// `[[authority.witness.logs]]`.
    pub configured: Vec<(String, Verifier)>,
    /// The mesh.
    pub mesh: Option<MeshHandle>,
}

/// Opens the witness's store in `dir` and starts the thread that owns the witness,
/// signing with `signer`. The thread ends when every handle is dropped.
pub fn start(
    dir: &Path,
    signer: CosignatureSigner,
    logs: WitnessedLogs,
) -> Result<WitnessHandle, WitnessStoreError> {
    let store = WitnessStore::open(dir)?;
    let stored: BTreeMap<String, Cosigned> = store.all()?.into_iter().collect();
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let mut owner = WitnessOwner {
        witness: Witness::new(),
        store,
        stored,
        signer,
        configured: logs.configured,
        federated: logs.mesh.as_ref().map(MeshHandle::logs),
        mesh: logs.mesh,
        keys: BTreeMap::new(),
    };
    owner.sync_logs();
    std::thread::Builder::new()
        .name("witness".to_owned())
        .spawn(move || owner.run(commands_rx))
        .map_err(|e| WitnessStoreError::Redb {
            path: dir.to_owned(),
            message: format!("cannot start the witness thread: {e}"),
        })?;
    Ok(WitnessHandle {
        commands: commands_tx,
    })
}

/// Everything the witness thread owns.
struct WitnessOwner {
    witness: Witness,
    store: WitnessStore,
    /// What the store holds, so that a log witnessed again resumes from its state.
    stored: BTreeMap<String, Cosigned>,
    signer: CosignatureSigner,
    configured: Vec<(String, Verifier)>,
    federated: Option<FederatedLogs>,
    /// Where evidence goes.
    mesh: Option<MeshHandle>,
    /// The trusted keys of each witnessed log, to make evidence with.
    keys: BTreeMap<String, Vec<Verifier>>,
}

impl WitnessOwner {
    fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = commands.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match commands.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            if self
                .federated
                .as_ref()
                .is_some_and(|logs| logs.has_changed().unwrap_or(false))
            {
                self.sync_logs();
            }
            self.process(&mut batch);
        }
    }

    /// Witnesses the configured and federated logs, and no other; a log new to the
    /// witness resumes from its stored state. A configured origin keeps its configured
    /// keys: a federated domain whose record lists the same origin (the registry gives an
    /// origin to the first domain that claims it) must not be able to have its own key
    /// trusted for a log the operator named.
    fn sync_logs(&mut self) {
        let mut logs: BTreeMap<String, Vec<Verifier>> = BTreeMap::new();
        for (origin, key) in &self.configured {
            logs.entry(origin.clone()).or_default().push(key.clone());
        }
        if let Some(federated) = &mut self.federated {
            for (origin, key) in federated.borrow_and_update().iter() {
                if self
                    .configured
                    .iter()
                    .any(|(configured, _)| configured == origin)
                {
                    tracing::warn!(%origin, "a federated domain lists a log configured in [[authority.witness.logs]]; its key is not trusted for it");
                    continue;
                }
                logs.entry(origin.clone()).or_default().push(key.clone());
            }
        }
        // A revoked or dropped log is no longer witnessed (its state stays stored).
        let gone: Vec<String> = self
            .witness
            .origins()
            .filter(|origin| !logs.contains_key(*origin))
            .map(str::to_owned)
            .collect();
        for origin in gone {
            self.witness.remove_log(&origin);
        }
        self.keys = logs.clone();
        for (origin, keys) in logs {
            let new = !self.witness.origins().any(|o| o == origin);
            if let Err(e) = self.witness.set_log(&origin, keys) {
                tracing::warn!(%origin, error = %e, "cannot witness this log");
                continue;
            }
            if new && let Some(cosigned) = self.stored.get(&origin) {
                self.witness.restore(&origin, cosigned.clone());
            }
        }
    }

    /// Checks and applies every request of the batch, persists the new states at once,
    /// then cosigns and answers.
    fn process(&mut self, batch: &mut Vec<Command>) {
        let mut accepted: Vec<(Reply, Update)> = Vec::with_capacity(batch.len());
        for Command { body, reply } in batch.drain(..) {
            let outcome = AddCheckpoint::parse(&body)
                .map_err(Refusal::from)
                .and_then(|request| self.witness.add_checkpoint(&request));
            match outcome {
                Ok(update) => accepted.push((reply, update)),
                Err(refusal) => {
                    if let Refusal::RootMismatch {
                        origin,
                        cosigned,
                        conflicting,
                        ..
                    } = &refusal
                    {
                        self.report_fork(origin, &cosigned.note, conflicting);
                    }
                    let _ = reply.send(Err(AddError::Refused(refusal)));
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        // Only the newest state of each log needs writing: later updates of a batch
        // extend earlier ones.
        let mut newest: BTreeMap<&str, &Cosigned> = BTreeMap::new();
        for (_, update) in &accepted {
            newest.insert(update.origin.as_str(), &update.cosigned);
        }
        if let Err(e) = self.store.put(newest.iter().map(|(o, c)| (*o, *c))) {
            tracing::error!(error = %e, "cannot store the witness state; nothing cosigned");
            // Back to what is stored: a state never cosigned is neither reported (409)
            // nor built on.
            for origin in newest.keys() {
                self.witness
                    .reset(origin, self.stored.get(*origin).cloned());
            }
            for (reply, _) in accepted {
                let _ = reply.send(Err(AddError::Store(e.to_string())));
            }
            return;
        }
        for (origin, cosigned) in newest {
            self.stored.insert(origin.to_owned(), cosigned.clone());
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for (reply, update) in accepted {
            let answer = update
                .cosign(&self.signer, timestamp)
                .map_err(|e| AddError::Sign(e.to_string()));
            let _ = reply.send(answer);
        }
    }
}

impl WitnessOwner {
    /// A log showed this witness a second tree of a size it cosigned: the two signed
    /// checkpoints are evidence, handed to the mesh to store and gossip.
    fn report_fork(&self, origin: &str, cosigned: &[u8], conflicting: &[u8]) {
        let keys = self.keys.get(origin).map(Vec::as_slice).unwrap_or_default();
        let evidence = keys.iter().find_map(|key| {
            let evidence = Evidence {
                origin: origin.to_owned(),
                log_key: key.clone(),
                older: cosigned.to_vec(),
                newer: conflicting.to_vec(),
                proof: Vec::new(),
                old_subtree: None,
            };
            evidence.verify().is_ok().then_some(evidence)
        });
        let Some(evidence) = evidence else {
            return;
        };
        tracing::error!(
            %origin,
            "add-checkpoint: the log signed another tree of a size this witness cosigned"
        );
        if let Some(mesh) = &self.mesh
            && mesh.submit_evidence(evidence).is_err()
        {
            tracing::warn!(%origin, "the mesh cannot take the evidence now");
        }
    }
}

/// The configured logs of `[[authority.witness.logs]]`.
pub fn configured_logs(config: &crate::config::WitnessConfig) -> Vec<(String, Verifier)> {
    config
        .logs
        .iter()
        .map(|log| (log.origin.clone(), log.key.clone()))
        .collect()
}

//! `provmesh.v1.MeshService`: what this node knows of the mesh — the federated trust
//! domains and their accepted record sequences, the logs and their latest checkpoints,
//! the connected peers, the evidence held, the cosigned checkpoint of each log. A handler
//! only forwards to the mesh task.

use tonic::{Request, Response, Status};

use provmesh_protocol::provenance::DomainKeys;
use provmesh_protocol::spiffe::TrustDomain;

use super::v1::{
    ExportTrustedRootRequest, ExportTrustedRootResponse, GetCosignedCheckpointRequest,
    GetCosignedCheckpointResponse, GetStatusRequest, ListEvidenceRequest, ListEvidenceResponse,
    MeshStatus, mesh_service_server,
};
use crate::mesh::MeshHandle;

/// The `provmesh.v1.MeshService` implementation over the running mesh task.
#[derive(Debug, Clone)]
pub struct MeshGrpc {
    mesh: MeshHandle,
}

impl MeshGrpc {
    /// The service over `mesh`.
    pub fn new(mesh: MeshHandle) -> Self {
        Self { mesh }
    }
}

/// The most domains one `ExportTrustedRoot` may name.
pub const MAX_EXPORTED_DOMAINS: usize = 64;

#[tonic::async_trait]
impl mesh_service_server::MeshService for MeshGrpc {
    async fn export_trusted_root(
        &self,
        request: Request<ExportTrustedRootRequest>,
    ) -> Result<Response<ExportTrustedRootResponse>, Status> {
        let names = request.into_inner().trust_domains;
        if names.len() > MAX_EXPORTED_DOMAINS {
            return Err(Status::invalid_argument(format!(
                "{} trust domains asked for; at most {MAX_EXPORTED_DOMAINS}",
                names.len()
            )));
        }
        let wanted = names
            .iter()
            .map(|name| {
                TrustDomain::parse(name).map_err(|e| {
                    Status::invalid_argument(format!(
                        "{:?} is not a trust domain: {e}",
                        name.chars().take(80).collect::<String>()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let accepted = self
            .mesh
            .domain_keys()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let keys = if wanted.is_empty() {
            accepted
        } else {
            let mut keys: Vec<DomainKeys> = Vec::new();
            for td in &wanted {
                if keys.iter().any(|k| &k.trust_domain == td) {
                    continue; // named twice
                }
                let before = keys.len();
                keys.extend(accepted.iter().filter(|k| &k.trust_domain == td).cloned());
                if keys.len() == before {
                    return Err(Status::not_found(format!(
                        "{td} is not a trust domain this node accepted (unknown, not yet accepted, or revoked)"
                    )));
                }
            }
            keys
        };
        if keys.is_empty() {
            return Err(Status::not_found("this node has accepted no domain yet"));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let root = provmesh_protocol::provenance::trusted_root_of(&keys, now)
            .map_err(|e| Status::internal(e.to_string()))?;
        let config = provmesh_protocol::sigstore_trust::client_trust_config(&root)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ExportTrustedRootResponse {
            trusted_root: serde_json::to_vec_pretty(&root)
                .map_err(|e| Status::internal(e.to_string()))?,
            client_trust_config: serde_json::to_vec_pretty(&config)
                .map_err(|e| Status::internal(e.to_string()))?,
            trust_domains: keys.iter().fold(Vec::new(), |mut names, k| {
                let name = k.trust_domain.to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
                names
            }),
            log_origins: keys.into_iter().map(|k| k.origin).collect(),
        }))
    }

    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<MeshStatus>, Status> {
        self.mesh
            .status()
            .await
            .map(Response::new)
            .map_err(|e| Status::unavailable(e.to_string()))
    }

    async fn list_evidence(
        &self,
        _request: Request<ListEvidenceRequest>,
    ) -> Result<Response<ListEvidenceResponse>, Status> {
        self.mesh
            .evidence()
            .await
            .map(Response::new)
            .map_err(|e| Status::unavailable(e.to_string()))
    }

    async fn get_cosigned_checkpoint(
        &self,
        request: Request<GetCosignedCheckpointRequest>,
    ) -> Result<Response<GetCosignedCheckpointResponse>, Status> {
        let origin = request.into_inner().origin;
        // Origins are one line of at most a key name's length; anything else names no log.
        if origin.is_empty() || origin.len() > 1024 || origin.chars().any(char::is_control) {
            return Err(Status::invalid_argument(
                "origin must be a non-empty log origin (one line)",
            ));
        }
        match self.mesh.checkpoint(origin.clone()).await {
            Ok(Some(answer)) => Ok(Response::new(answer)),
            Ok(None) => Err(Status::not_found(format!(
                "no checkpoint of {origin} is held here"
            ))),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}

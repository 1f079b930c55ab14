//! `provmesh.v1.MeshService`: what this node knows of the mesh — the federated trust
//! domains and their accepted record sequences, the logs and their latest checkpoints,
//! the connected peers, the evidence held, the cosigned checkpoint of each log. A handler
//! only forwards to the mesh task.

use tonic::{Request, Response, Status};

use super::v1::{
    GetCosignedCheckpointRequest, GetCosignedCheckpointResponse, GetStatusRequest,
    ListEvidenceRequest, ListEvidenceResponse, MeshStatus, mesh_service_server,
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

#[tonic::async_trait]
impl mesh_service_server::MeshService for MeshGrpc {
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

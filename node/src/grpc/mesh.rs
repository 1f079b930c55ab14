//! `provmesh.v1.MeshService`: what this node knows of the mesh — the federated trust
//! domains and their accepted record sequences, the logs and their latest checkpoints,
//! the connected peers. A handler only forwards to the mesh task.

use tonic::{Request, Response, Status};

use super::v1::{
    GetStatusRequest, ListEvidenceRequest, ListEvidenceResponse, MeshStatus, mesh_service_server,
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
}

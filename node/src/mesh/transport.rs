//! The libp2p side of the mesh: the node's peer key, the composed network behaviour, the
//! request-response codec and the swarm built from them.
//!
//! Transport only: TCP and QUIC, Noise, yamux; gossipsub (validated — nothing is relayed
//! before the protocol core accepted it), request-response on
//! [`wire::MESH_PROTOCOL`], Kademlia for peer discovery, identify for addresses. Every
//! message is bounded here at the byte level (gossipsub's transmit size, the codec's read
//! limits) and then decoded and judged by `provmesh_protocol::mesh`.

use std::io;
use std::path::Path;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, Swarm, gossipsub, identify, identity, kad, noise, request_response};
use libp2p::{tcp, yamux};
use provmesh_protocol::mesh::wire;

use crate::keyfile::{KeyFileError, write_new_private};

/// The identify protocol version: peers of another protocol family are not provmesh.
pub const IDENTIFY_PROTOCOL: &str = "/provmesh/1.0.0";
/// The Kademlia protocol name, separate from the public IPFS DHT.
pub const KAD_PROTOCOL: &str = "/provmesh/kad/1.0.0";
/// How long a request may take before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Request-response streams one connection may carry at once.
pub const MAX_CONCURRENT_STREAMS: usize = 32;
/// A connection with nothing to do is closed after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// The composed behaviour of a provmesh node.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "MeshEvent")]
pub struct MeshBehaviour {
    /// Checkpoints and domain records.
    pub gossipsub: gossipsub::Behaviour,
    /// Hello, anti-entropy, proofs and record chains.
    pub rpc: request_response::Behaviour<MeshCodec>,
    /// Peer discovery.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Listen addresses and protocols of peers.
    pub identify: identify::Behaviour,
}

/// What the behaviours report to the node's event loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum MeshEvent {
    /// A gossip message, subscription change or slow peer.
    Gossipsub(gossipsub::Event),
    /// A request, a response or a failure.
    Rpc(request_response::Event<Vec<u8>, Vec<u8>>),
    /// A routing update or query result.
    Kad(kad::Event),
    /// A peer's addresses and protocols.
    Identify(Box<identify::Event>),
}

impl From<gossipsub::Event> for MeshEvent {
    fn from(event: gossipsub::Event) -> Self {
        MeshEvent::Gossipsub(event)
    }
}

impl From<request_response::Event<Vec<u8>, Vec<u8>>> for MeshEvent {
    fn from(event: request_response::Event<Vec<u8>, Vec<u8>>) -> Self {
        MeshEvent::Rpc(event)
    }
}

impl From<kad::Event> for MeshEvent {
    fn from(event: kad::Event) -> Self {
        MeshEvent::Kad(event)
    }
}

impl From<identify::Event> for MeshEvent {
    fn from(event: identify::Event) -> Self {
        MeshEvent::Identify(Box::new(event))
    }
}

/// Raw, bounded request and response bytes; one message per stream, which the writer
/// closes after it. Decoding and validation happen in the protocol core.
#[derive(Debug, Clone, Copy, Default)]
pub struct MeshCodec;

/// Reads the stream to its end, but at most `max + 1` bytes: a message longer than `max`
/// comes back cut at `max + 1` bytes, so that the protocol core refuses it as too large
/// (`wire::WireError::TooLarge`) and the node knows which peer sent it — a codec error
/// would end the stream before the node learns of it.
async fn read_at_most<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    io.take(limit).read_to_end(&mut bytes).await?;
    Ok(bytes)
}

async fn write_all_and_close<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> io::Result<()> {
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for MeshCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_at_most(io, wire::MAX_REQUEST_BYTES).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_at_most(io, wire::MAX_RESPONSE_BYTES).await?;
        // Every encoded response has at least its kind's tag: a stream closed with
        // nothing on it is a peer that did not answer (it refused to read the request,
        // or failed), a failed request rather than a malformed answer.
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the stream without a response",
            ));
        }
        Ok(bytes)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all_and_close(io, &request).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all_and_close(io, &response).await
    }
}

/// Why the swarm could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer key file could not be read or created.
    #[error("the mesh peer key: {0}")]
    Key(#[from] KeyFileError),
    /// libp2p refused the configuration.
    #[error("cannot build the libp2p swarm: {0}")]
    Build(String),
}

/// The node's libp2p key in `path` (Ed25519, libp2p's protobuf encoding, mode 0600),
/// created on first start so the peer id survives restarts.
pub fn load_or_create_peer_key(path: &Path) -> Result<identity::Keypair, KeyFileError> {
    let invalid = |reason: String| KeyFileError::Invalid {
        path: path.to_owned(),
        what: "libp2p Ed25519 key",
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            identity::Keypair::from_protobuf_encoding(&bytes).map_err(|e| invalid(e.to_string()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = identity::Keypair::generate_ed25519();
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|e| invalid(e.to_string()))?;
            write_new_private(path, &bytes)?;
            Ok(key)
        }
        Err(source) => Err(KeyFileError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The gossipsub settings: signed messages (the author is the libp2p peer, authenticated
/// by Noise), content-addressed message ids (the same checkpoint from two peers is one
/// message), validation by the core before relay, and the mesh's size bound.
fn gossipsub_config(heartbeat: Duration) -> Result<gossipsub::Config, TransportError> {
    gossipsub::ConfigBuilder::default()
        .heartbeat_interval(heartbeat)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(wire::MAX_GOSSIP_MESSAGE_BYTES + 1024)
        .message_id_fn(|message: &gossipsub::Message| {
            use sha2::Digest as _;
            let mut hasher = sha2::Sha256::new();
            hasher.update(message.topic.as_str().as_bytes());
            hasher.update([0]);
            hasher.update(&message.data);
            gossipsub::MessageId::from(hasher.finalize()[..20].to_vec())
        })
        .build()
        .map_err(|e| TransportError::Build(e.to_string()))
}

/// Builds the swarm of `key`. `heartbeat` is gossipsub's heartbeat interval. The bytes
/// every connection sends and receives are counted in `metrics`
/// (`libp2p_bandwidth_bytes_total`, by protocol stack and direction).
pub fn build_swarm(
    key: identity::Keypair,
    heartbeat: Duration,
    metrics: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<MeshBehaviour>, TransportError> {
    let build = |e: &dyn std::fmt::Display| TransportError::Build(e.to_string());
    let gossip_config = gossipsub_config(heartbeat)?;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| build(&e))?
        .with_bandwidth_metrics(metrics)
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(key.clone()),
                gossip_config,
            )?;
            let rpc = request_response::Behaviour::with_codec(
                MeshCodec,
                [(
                    StreamProtocol::new(wire::MESH_PROTOCOL),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS),
            );
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad::Config::new(StreamProtocol::new(KAD_PROTOCOL)),
            );
            kad.set_mode(Some(kad::Mode::Server));
            let identify = identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.to_owned(),
                key.public(),
            ));
            Ok(MeshBehaviour {
                gossipsub,
                rpc,
                kad,
                identify,
            })
        })
        .map_err(|e| build(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

//! # provmesh-protocol — the sans-IO core of provmesh
//!
//! Everything provmesh says on the wire or writes to a file is parsed, produced and
//! verified here, and every protocol decision is a state machine here. The crate does
//! no I/O by construction: it opens no sockets, reads no clock and owns no random
//! number generator. Time and randomness are arguments; storage is reached through
//! narrow traits whose durability contract is written on them. The daemon
//! (`provmesh-node`) and the simulator (`provmesh-sim`) drive the same code.
//!
//! | module | owns |
//! | --- | --- |
//! | [`merkle`] | RFC 6962 / RFC 9162 hashing, stored-hash trees, inclusion and consistency proofs, C2SP tlog-tiles |
//! | [`note`] | C2SP signed notes: parse, sign, verify (Ed25519, ECDSA P-256, cosignature keys) |
//! | [`admission`] | Kubernetes admission: the images an AdmissionReview's object runs, image references, the review's answer |
//! | [`policy`] | provenance policies: the TOML format, and the verdict on an artifact's verified records |
//! | [`provenance`] | provenance records: a log entry opened and checked (signer, subjects, statement, builder), and its bundle |
//! | [`index`] | the provenance index: what a verified record is indexed under, search queries and their matching, identity monitoring |
//! | [`checkpoint`] | C2SP tlog-checkpoint bodies |
//! | [`cosignature`] | C2SP tlog-cosignature/v1 |
//! | [`dsse`] | DSSE v1 envelopes and PAE |
//! | [`intoto`] | in-toto Statement v1 |
//! | [`slsa`] | SLSA Provenance v1 predicate |
//! | [`sigstore`] | Sigstore bundle v0.3 and TrustedRoot documents |
//! | [`sigstore_bundle`] | Sigstore bundles built from a signature or DSSE envelope and the domain log's entry, written as JSON every stock verifier reads |
//! | [`sigstore_trust`] | Sigstore TrustedRoot and ClientTrustConfig documents built from the domains' log, CT and CA keys |
//! | [`spiffe`] | SPIFFE IDs, trust domains and SPIFFE trust bundle documents |
//! | [`ca`] | the code-signing CA: Fulcio-profile leaves with one embedded RFC 6962 SCT, the CT log key, the code-signing root |
//! | [`log`] | the domain transparency log: entry kinds, admission, the sequencer state machine |
//! | [`proto`] | `provmesh.v1` protobuf messages (generated from `protocol/proto/`) |
//! | [`machine`] | the contract every protocol state machine follows |
//! | [`testing`] | a log for tests, benches and the simulator: a key and a tree that can fork (not supported API) |
//! | [`verify`] | offline verification of Sigstore bundles against a TrustedRoot and an identity policy |
//! | [`evidence`] | equivocation evidence: the self-contained document proving a log signed two checkpoints that cannot both be true |
//! | [`witness`] | the witness: C2SP tlog-witness `add-checkpoint`, its checks and status codes, the cosigned state |

pub mod admission;
pub mod ca;
pub mod checkpoint;
pub mod cosignature;
pub mod dsse;
pub mod evidence;
pub mod federation;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod index;
pub mod intoto;
pub mod log;
pub mod machine;
pub mod merkle;
pub mod mesh;
pub mod note;
mod pkix;
pub mod policy;
pub mod proto;
pub mod provenance;
pub mod sigstore;
pub mod sigstore_bundle;
pub mod sigstore_trust;
pub mod slsa;
pub mod spiffe;
pub mod testing;
pub mod verify;
pub mod witness;

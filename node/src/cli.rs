//! The `provmesh` command line: argument parsing (clap derive) and one function per
//! subcommand. This is the only module that prints to stdout or chooses exit codes.
//!
//! Exit codes: 0 success, 1 failure (invalid configuration, a node that failed or did
//! not shut down cleanly), 2 usage error (from clap).

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{self, Config, ConfigError, LogFilter, LogFormat};
use crate::run::{self, Listeners, RunError};
use crate::shutdown::StopSignals;
use crate::telemetry::logs::{self, LogOverrides};

/// provmesh: a federated provenance mesh for software supply chains.
#[derive(Debug, Parser)]
#[command(name = "provmesh", version, propagate_version = true)]
#[non_exhaustive]
pub struct Cli {
    /// Log output format; overrides `[log] format`.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter in RUST_LOG syntax (e.g. `debug` or `info,provmesh_node=trace`);
    /// overrides RUST_LOG, which overrides `[log] level`.
    #[arg(long, global = true, value_name = "FILTER", value_parser = parse_log_filter)]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// The whole mission on this machine: three trust domains on loopback (an authority
    /// and two nodes each, real processes, dev identities), a build in each signing and
    /// attesting an artifact, consumers in other domains looking them up, one domain's
    /// log equivocating and every node convicting it. Narrated as it happens; then serves
    /// until Ctrl-C (or, with --exit, stops: exit status 1 if a step failed).
    Demo(crate::demo::DemoArgs),
    /// Start a node and run it until SIGINT or SIGTERM.
    Run(RunArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Work with a domain transparency log's store.
    #[command(subcommand)]
    Log(LogCommand),
    /// Measure a running system under load.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Issue SPIFFE SVIDs to workloads from the embedded dev CA of the configured trust
    /// domain (identity.source = "dev"; with SPIRE, its agent issues).
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Verify a Sigstore bundle for FILE offline: log key and checkpoint, signed entry
    /// timestamp, inclusion proof, certificate chain at the integrated time, embedded SCT,
    /// signer identity and issuer, and the artifact's signature (or DSSE subject). Exits 0
    /// when everything holds, 1 with the reason otherwise.
    Verify(VerifyArgs),
    /// Sign FILE as a build: obtain a short-lived certificate for the build's SPIFFE ID
    /// from the domain's CA, sign the file with a key that exists only for this command,
    /// record the signature in the domain log (hashedrekord 0.0.1), and write the
    /// Sigstore bundle (v0.3) to FILE.sigstore.json once it verifies.
    Sign(SignArgs),
    /// Attest FILE as a build: sign an in-toto Statement v1 about it (subject: the
    /// file's name and SHA-256) in a DSSE envelope, record it in the domain log (dsse
    /// 0.0.1), and write the bundle to FILE.intoto.sigstore.json once it verifies. The
    /// predicate comes from --predicate-type and --predicate, or, with --slsa, is SLSA
    /// Provenance v1 built from --builder-id, --build-type and --external-parameters.
    Attest(AttestArgs),
    /// Who vouches for an artifact: ask a node for every record of DIGEST (or of FILE's
    /// SHA-256) — signatures and attestations, each with its Sigstore bundle — and the
    /// verdict under a policy. Exit status 0 when the verdict is "allowed", 1 when
    /// "denied", 2 when the lookup failed.
    Lookup(LookupArgs),
    /// Search a node's provenance index: the records matching every filter given (by
    /// signer, builder, predicate type, subject, trust domain, time), newest first; with
    /// --watch, stream them as they are indexed, until interrupted. The authority indexes
    /// its domain's log. Each record was verified when it was indexed; `provmesh lookup`
    /// on a subject digest returns it with its bundle and a verdict.
    Search(SearchArgs),
    /// The domain's trust for verifiers (Sigstore trusted_root.json / ClientTrustConfig).
    #[command(subcommand)]
    TrustRoot(TrustRootCommand),
    /// Inspect the mesh through a node.
    #[command(subcommand)]
    Mesh(MeshCommand),
    /// Manage the keys of this domain's authority.
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// Check equivocation evidence: proof that a log signed two checkpoints that cannot
    /// both be true.
    #[command(subcommand)]
    Evidence(EvidenceCommand),
    /// Print the version.
    Version,
}

/// Arguments of `provmesh lookup`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct LookupArgs {
    /// The artifact: `sha256:<64 hex>` (or 64 hex digits), or a file to hash.
    #[arg(value_name = "DIGEST|FILE")]
    pub artifact: String,
    /// The node's gRPC address (HOST:PORT or http://HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub node: String,
    /// A policy file (TOML, docs/policy.md). Default: the empty policy, which denies only
    /// records of logs proven to equivocate.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// How to print the answer.
    #[arg(long, value_enum, default_value = "table")]
    pub output: LookupOutput,
    /// Also write each record's Sigstore bundle to DIR as <log>-<index>.sigstore.json.
    #[arg(long, value_name = "DIR")]
    pub bundles: Option<PathBuf>,
}

/// Arguments of `provmesh search`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct SearchArgs {
    /// The signer's SPIFFE ID; a trailing `*` makes it a prefix
    /// (`spiffe://org-a.example/ci/*`).
    #[arg(long, value_name = "SPIFFE_ID")]
    pub signer: Option<String>,
    /// The SLSA builder id (`runDetails.builder.id`); a trailing `*` makes it a prefix.
    #[arg(long, value_name = "ID")]
    pub builder: Option<String>,
    /// The predicate type, e.g. https://slsa.dev/provenance/v1.
    #[arg(long, value_name = "URI")]
    pub predicate_type: Option<String>,
    /// A subject's name, exact.
    #[arg(long, value_name = "NAME")]
    pub subject: Option<String>,
    /// A subject's digest, sha256:<64 hex>.
    #[arg(long, value_name = "DIGEST")]
    pub digest: Option<String>,
    /// The trust domain whose log holds the record.
    #[arg(long, value_name = "TRUST_DOMAIN")]
    pub trust_domain: Option<String>,
    /// Integrated at or after this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = crate::search::parse_time)]
    pub since: Option<i64>,
    /// Integrated before this time (RFC 3339 or Unix seconds).
    #[arg(long, value_name = "TIME", value_parser = crate::search::parse_time)]
    pub until: Option<i64>,
    /// The most records to print.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// Go on from a previous search's `more: --page-token …`.
    #[arg(long, value_name = "TOKEN", conflicts_with = "watch")]
    pub page_token: Option<String>,
    /// Stream matching records as they are indexed instead, until interrupted (one
    /// table row or JSON line each).
    #[arg(long)]
    pub watch: bool,
    /// With --watch: first the records indexed after this cursor (a record's `cursor`).
    #[arg(long, value_name = "CURSOR", requires = "watch")]
    pub after: Option<String>,
    /// The node's gRPC address (HOST:PORT or http://HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub node: String,
    /// How to print the records (JSON: one document; with --watch, one line per record).
    #[arg(long, value_enum, default_value = "table")]
    pub output: LookupOutput,
}

/// The output formats of `provmesh lookup` and `provmesh search`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LookupOutput {
    /// Readable tables.
    Table,
    /// One JSON document, bundles and statements embedded.
    Json,
}

/// `provmesh authority …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum AuthorityCommand {
    /// Retire the domain's witness key (kept under <data_dir>/witness/retired/) and make
    /// a new one. Run it while the authority is stopped; at its next start the authority
    /// publishes a domain record carrying the new key and the old one with its validity
    /// closed, and every node of the federation follows.
    RotateWitnessKey {
        /// The authority's configuration file.
        #[arg(long, short, value_name = "FILE", env = "PROVMESH_CONFIG")]
        config: PathBuf,
    },
}

/// `provmesh evidence …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum EvidenceCommand {
    /// Verify an evidence document offline: both checkpoints are signed by the log key
    /// for its origin, and they have one size and different roots, or the proof in it
    /// reproduces the newer root while deriving another older root. Exits 0 when the log
    /// is proven to have equivocated, 1 otherwise (with the reason).
    Verify(EvidenceVerifyArgs),
    /// List the verified equivocation evidence a running node holds (id, log, how, sizes).
    List(EvidenceListArgs),
    /// Write one evidence document a running node holds to a file, to check it with
    /// `provmesh evidence verify` or hand it to anyone.
    Get(EvidenceGetArgs),
}

/// Arguments of `provmesh evidence list`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct EvidenceListArgs {
    /// The node's gRPC address (HOST:PORT or http://HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub node: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `provmesh evidence get`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct EvidenceGetArgs {
    /// The evidence id, or a prefix of it that names one document (as `list` prints).
    #[arg(value_name = "ID")]
    pub id: String,
    /// The node's gRPC address (HOST:PORT or http://HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub node: String,
    /// Where to write the document; `-` for standard output.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

/// Arguments of `provmesh evidence verify`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct EvidenceVerifyArgs {
    /// The evidence document (JSON), or `-` for standard input.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The log's verifier key as you know it (e.g. from its domain record or trusted
    /// root). The document must name this key; without it, the key in the document is
    /// trusted, which proves only that *that* key equivocated.
    #[arg(long, value_name = "VKEY")]
    pub log_key: Option<String>,
}

/// `provmesh mesh …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum MeshCommand {
    /// Print what a running node knows of the mesh: the federated trust domains with
    /// their accepted record sequences, the logs with their latest checkpoints, and its
    /// peers.
    Status(MeshStatusArgs),
    /// Print the checkpoint a running node serves for a log: the log's signature and up
    /// to 15 witness cosignatures (C2SP tlog-cosignature/v1), and who cosigned it.
    Checkpoint(MeshCheckpointArgs),
}

/// Arguments of `provmesh mesh checkpoint`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct MeshCheckpointArgs {
    /// The log's origin, e.g. log.org-a.example.
    pub origin: String,
    /// The node's gRPC address (HOST:PORT or http://HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub node: String,
    /// Write the cosigned note (exactly as served) to FILE instead of printing a report.
    #[arg(long, value_name = "FILE", conflicts_with = "json")]
    pub out: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `provmesh mesh status`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct MeshStatusArgs {
    /// The node's gRPC address (HOST:PORT or http://HOST:PORT).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
    pub node: String,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// How `provmesh sign` and `provmesh attest` reach the CA and the log, and prove the
/// build's identity.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct SignerArgs {
    /// The authority's base URL (its HTTP API), e.g. http://127.0.0.1:8080. Default:
    /// node.authority_url of --config, or http://<http.listen> when --config is the
    /// authority's own configuration.
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
    /// A node configuration: its identity source (dev CA or SPIRE agent) issues the
    /// identity token when no token is given, and it names the authority.
    #[arg(long, short, value_name = "FILE", env = "PROVMESH_CONFIG")]
    pub config: Option<PathBuf>,
    /// The identity token: a JWT-SVID for audience "sigstore". Other local users can see
    /// command lines; prefer --identity-token-file.
    #[arg(long, value_name = "TOKEN", conflicts_with = "identity_token_file")]
    pub identity_token: Option<String>,
    /// A file holding the identity token (e.g. from `spire-agent api fetch jwt` or
    /// `provmesh identity jwt`); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub identity_token_file: Option<PathBuf>,
    /// The SPIFFE ID to sign as: the one asked of the identity source of --config, and
    /// the one the certificate must name.
    #[arg(long, value_name = "ID")]
    pub spiffe_id: Option<String>,
    /// Check the bundle against this ClientTrustConfig or trusted_root.json instead of
    /// the trusted root the authority serves.
    #[arg(long, value_name = "FILE")]
    pub trust_config: Option<PathBuf>,
}

/// Arguments of `provmesh sign`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct SignArgs {
    /// The file to sign.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the bundle (default: FILE.sigstore.json).
    #[arg(long, value_name = "OUT")]
    pub bundle: Option<PathBuf>,
    /// The CA, the log and the identity.
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// Arguments of `provmesh attest`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct AttestArgs {
    /// The file the attestation is about (the Statement's subject).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Where to write the bundle (default: FILE.intoto.sigstore.json).
    #[arg(long, value_name = "OUT")]
    pub bundle: Option<PathBuf>,
    /// The predicate's type, a URI, e.g. https://slsa.dev/provenance/v1.
    #[arg(
        long,
        value_name = "URI",
        requires = "predicate",
        required_unless_present = "slsa",
        conflicts_with = "slsa"
    )]
    pub predicate_type: Option<String>,
    /// The predicate: a file holding one JSON object.
    #[arg(long, value_name = "PREDICATE.json", requires = "predicate_type")]
    pub predicate: Option<PathBuf>,
    /// Build the predicate as SLSA Provenance v1 (https://slsa.dev/provenance/v1) from
    /// --builder-id, --build-type and --external-parameters.
    #[arg(long, requires_all = ["builder_id", "build_type", "external_parameters"])]
    pub slsa: bool,
    /// SLSA runDetails.builder.id: the URI of the build platform.
    #[arg(long, value_name = "URI", requires = "slsa")]
    pub builder_id: Option<String>,
    /// SLSA buildDefinition.buildType: the URI of the build's template.
    #[arg(long, value_name = "URI", requires = "slsa")]
    pub build_type: Option<String>,
    /// SLSA buildDefinition.externalParameters: a JSON object, e.g.
    /// '{"repository":"https://git.example/app","ref":"refs/heads/main"}'.
    #[arg(long, value_name = "JSON", requires = "slsa")]
    pub external_parameters: Option<String>,
    /// SLSA buildDefinition.internalParameters: a JSON object.
    #[arg(long, value_name = "JSON", requires = "slsa")]
    pub internal_parameters: Option<String>,
    /// SLSA runDetails.metadata.invocationId.
    #[arg(long, value_name = "ID", requires = "slsa")]
    pub invocation_id: Option<String>,
    /// SLSA runDetails.metadata.startedOn, RFC 3339 UTC (e.g. 2025-01-02T03:04:05Z).
    #[arg(long, value_name = "TIME", requires = "slsa")]
    pub started_on: Option<String>,
    /// SLSA runDetails.metadata.finishedOn, RFC 3339 UTC.
    #[arg(long, value_name = "TIME", requires = "slsa")]
    pub finished_on: Option<String>,
    /// The CA, the log and the identity.
    #[command(flatten)]
    pub signer: SignerArgs,
}

/// `provmesh trust-root …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum TrustRootCommand {
    /// Write the Sigstore trusted_root.json (or, with --client-config, the
    /// ClientTrustConfig sigstore-python takes with --trust-config) of the domain: its
    /// log key, CT key and code-signing CA. From a running authority (--authority) or
    /// from the authority's files (--config).
    Export(TrustRootExportArgs),
}

/// Arguments of `provmesh trust-root export`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct TrustRootExportArgs {
    /// The authority's configuration: read its keys from its data directory.
    #[arg(
        long,
        short,
        value_name = "FILE",
        conflicts_with_all = ["authority", "node"],
        required_unless_present_any = ["authority", "node"]
    )]
    pub config: Option<PathBuf>,
    /// A running authority's base URL: ask it (GET /api/v2/provmesh/trustedRoot).
    #[arg(long, value_name = "URL", conflicts_with = "node")]
    pub authority: Option<String>,
    /// A node of the mesh (gRPC HOST:PORT): the trust of the federated domains it
    /// accepted, from their domain records (MeshService.ExportTrustedRoot).
    #[arg(long, value_name = "ADDR")]
    pub node: Option<String>,
    /// The trust domains to cover (default: the authority's own; with --node, every
    /// domain the node accepted). An authority exports only its own domain.
    #[arg(long = "domain", value_name = "TRUST-DOMAIN")]
    pub domains: Vec<String>,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Write a ClientTrustConfig instead of a bare trusted root.
    #[arg(long)]
    pub client_config: bool,
}

/// Arguments of `provmesh run`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct RunArgs {
    /// The configuration file (see `provmesh config default`).
    #[arg(long, short, value_name = "FILE", env = "PROVMESH_CONFIG")]
    pub config: PathBuf,
    /// Once the node is ready, write its bound addresses and pid to this file as JSON,
    /// e.g. {"pid": 42, "metrics": "127.0.0.1:9464"}. Removed again on exit.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// After restoring the authority's log from a backup: the newest checkpoint the log
    /// published before (a signed note file, e.g. fetched from a mirror or witness). The
    /// log serves reads but refuses to sign until its store contains that tree.
    #[arg(long, value_name = "FILE")]
    pub published_checkpoint: Option<PathBuf>,
}

/// Arguments of `provmesh verify`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct VerifyArgs {
    /// The artifact (for a DSSE attestation: the file its in-toto subject names).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The bundle (default: FILE.sigstore.json).
    #[arg(long, value_name = "BUNDLE")]
    pub bundle: Option<PathBuf>,
    /// The signer identity the certificate must carry, e.g. spiffe://org-a.example/ci/build.
    #[arg(long, value_name = "SPIFFE-ID")]
    pub identity: String,
    /// The issuer the certificate must name (default: spiffe://<trust domain of --identity>).
    #[arg(long, value_name = "ISSUER")]
    pub issuer: Option<String>,
    /// A Sigstore ClientTrustConfig or trusted_root.json with the domains' logs, CT keys
    /// and code-signing CAs.
    #[arg(long, value_name = "FILE")]
    pub trust_config: PathBuf,
}

/// `provmesh identity …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum IdentityCommand {
    /// Issue an X.509-SVID and write svid.pem (certificate chain), svid.key (PKCS#8
    /// private key, mode 0600), bundle.pem (the trust domain's X.509 authorities) and
    /// bundle.json (its SPIFFE bundle) into DIR, replacing earlier ones.
    Issue(IdentityIssueArgs),
    /// Issue a JWT-SVID (with `iss` and `iat`, as Sigstore clients expect) and print it.
    Jwt(IdentityJwtArgs),
}

/// Arguments of `provmesh identity issue`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct IdentityIssueArgs {
    /// The node's configuration file: its trust domain and data directory name the CA.
    #[arg(long, short, value_name = "FILE", env = "PROVMESH_CONFIG")]
    pub config: PathBuf,
    /// The SPIFFE ID to issue for, e.g. spiffe://org-a.example/ci/build.
    #[arg(long, value_name = "ID")]
    pub spiffe_id: String,
    /// The directory to write the files into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Lifetime of the SVID, e.g. 30m (at most the dev CA's maximum, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_svid_validity)]
    pub validity: Option<Duration>,
}

/// Arguments of `provmesh identity jwt`.
#[derive(Debug, Args)]
#[non_exhaustive]
pub struct IdentityJwtArgs {
    /// The node's configuration file: its trust domain and data directory name the CA.
    #[arg(long, short, value_name = "FILE", env = "PROVMESH_CONFIG")]
    pub config: PathBuf,
    /// The SPIFFE ID to issue for (the token's `sub`).
    #[arg(long, value_name = "ID")]
    pub spiffe_id: String,
    /// The audience (`aud`), e.g. sigstore; repeat for several.
    #[arg(long, value_name = "AUD", required = true)]
    pub audience: Vec<String>,
    /// Lifetime of the token, e.g. 10m (default 5m; at most the dev CA's maximum, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_svid_validity)]
    pub validity: Option<Duration>,
}

/// `provmesh log …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum LogCommand {
    /// Re-verify a whole log store offline: recompute every stored Merkle hash from the
    /// entries, check the indexes, and check every signed checkpoint against the tree and
    /// the log key. Exits 0 when the store is sound, 1 otherwise. Stop the node first.
    Fsck {
        /// The node's data directory (or its `log/` directory, or the `log.redb` file).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

/// `provmesh bench …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum BenchCommand {
    /// Hammer a domain transparency log over its HTTP write API with concurrent writers of
    /// signed hashedrekord entries; report appends/s and integration latency. Without
    /// --url it starts its own log (quotas off) and stops it afterwards.
    Log(crate::bench::log::BenchLogArgs),
    /// Verify one in-process bundle offline in a loop and report verifications/s beside
    /// the floor of its bare signature checks (certificate, SCT, SET, checkpoint,
    /// artifact) measured in the same run.
    Verify(crate::bench::verify::BenchVerifyArgs),
    /// Start a federation of real nodes on loopback (--domains, each an authority and
    /// plain nodes) and report its traffic at rest and how long a new checkpoint takes to
    /// reach every node (p50/p99).
    Mesh(crate::bench::mesh::BenchMeshArgs),
    /// Drive the node's witness in process with prepared checkpoints of many logs and
    /// report cosigned checkpoints/s (signature and consistency proof verified, state
    /// stored durably, cosignature made) and latency.
    Witness(crate::bench::witness::BenchWitnessArgs),
    /// Start an authority with signed artifacts and drive its gRPC provenance lookups
    /// with concurrent clients over HTTP/2: lookups/s saturated, and latency (p50/p99)
    /// paced at --rate.
    Lookup(crate::bench::lookup::BenchLookupArgs),
}

/// `provmesh config …`.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum ConfigCommand {
    /// Validate a configuration file; on error name the bad key or value and exit 1.
    Check {
        /// The configuration file; `-` reads standard input.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a complete, commented default configuration.
    Default,
}

fn parse_svid_validity(s: &str) -> Result<Duration, config::DurationError> {
    config::parse_duration(s)
}

fn parse_log_filter(s: &str) -> Result<String, config::LogFilterError> {
    LogFilter::parse(s).map(|f| f.as_str().to_owned())
}

/// Runs the parsed command line and returns the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    let overrides = LogOverrides::new(cli.log_level, cli.log_format);
    match cli.command {
        Command::Run(args) => cmd_run(&args, &overrides),
        Command::Config(ConfigCommand::Check { file }) => cmd_config_check(&file),
        Command::Config(ConfigCommand::Default) => {
            print!("{}", config::default_toml());
            ExitCode::SUCCESS
        }
        Command::Log(LogCommand::Fsck { data }) => cmd_log_fsck(&data),
        Command::Identity(IdentityCommand::Issue(args)) => cmd_identity_issue(&args),
        Command::Identity(IdentityCommand::Jwt(args)) => cmd_identity_jwt(&args),
        Command::Verify(args) => cmd_verify(&args),
        Command::Sign(args) => cmd_sign(&args),
        Command::Attest(args) => cmd_attest(&args),
        Command::TrustRoot(TrustRootCommand::Export(args)) => cmd_trust_root_export(&args),
        Command::Bench(BenchCommand::Log(args)) => cmd_bench_log(&args),
        Command::Bench(BenchCommand::Verify(args)) => cmd_bench_verify(&args),
        Command::Bench(BenchCommand::Mesh(args)) => cmd_bench_mesh(&args),
        Command::Bench(BenchCommand::Witness(args)) => cmd_bench_witness(&args),
        Command::Bench(BenchCommand::Lookup(args)) => cmd_bench_lookup(&args),
        Command::Lookup(args) => cmd_lookup(&args),
        Command::Demo(args) => cmd_demo(&args),
        Command::Search(args) => cmd_search(&args),
        Command::Mesh(MeshCommand::Status(args)) => cmd_mesh_status(&args),
        Command::Mesh(MeshCommand::Checkpoint(args)) => cmd_mesh_checkpoint(&args),
        Command::Evidence(EvidenceCommand::Verify(args)) => cmd_evidence_verify(&args),
        Command::Evidence(EvidenceCommand::List(args)) => cmd_evidence_list(&args),
        Command::Evidence(EvidenceCommand::Get(args)) => cmd_evidence_get(&args),
        Command::Authority(AuthorityCommand::RotateWitnessKey { config }) => {
            cmd_rotate_witness_key(&config)
        }
        Command::Version => {
            println!("provmesh {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

fn cmd_identity_issue(args: &IdentityIssueArgs) -> ExitCode {
    match identity_issue(args) {
        Ok(id) => {
            println!(
                "issued {id}: wrote {}, {}, {} and {} in {}",
                IDENTITY_SVID_FILE,
                IDENTITY_KEY_FILE,
                IDENTITY_BUNDLE_PEM_FILE,
                IDENTITY_BUNDLE_JSON_FILE,
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_identity_jwt(args: &IdentityJwtArgs) -> ExitCode {
    match identity_jwt(args) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `provmesh identity issue` output files: the names `spire-agent api fetch x509 -write`
/// uses (`svid.0.pem`, `svid.0.key`, `bundle.0.pem`) without the per-SVID index, since one
/// SVID is issued, and the bundle's SPIFFE JWKS form beside them.
const IDENTITY_SVID_FILE: &str = "svid.pem";
/// See [`IDENTITY_SVID_FILE`].
const IDENTITY_KEY_FILE: &str = "svid.key";
/// See [`IDENTITY_SVID_FILE`].
const IDENTITY_BUNDLE_PEM_FILE: &str = "bundle.pem";
/// See [`IDENTITY_SVID_FILE`].
const IDENTITY_BUNDLE_JSON_FILE: &str = "bundle.json";

/// The dev CA of `config_path`'s trust domain and the requested SPIFFE ID, refusing a
/// `spire` configuration and an ID of another trust domain.
fn identity_dev_ca(
    config_path: &Path,
    spiffe_id: &str,
) -> Result<(crate::identity::DevCa, provmesh_protocol::spiffe::SpiffeId), String> {
    use crate::config::IdentitySourceKind;
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    if config.identity.source == IdentitySourceKind::Spire {
        return Err(format!(
            "{} sets identity.source = \"spire\": the SPIRE agent issues SVIDs for that trust \
             domain (e.g. `spire-agent api fetch x509 -write DIR`, `spire-agent api fetch jwt \
             -audience AUD`); provmesh identity issues only from the dev CA",
            config_path.display()
        ));
    }
    let id = provmesh_protocol::spiffe::SpiffeId::parse(spiffe_id)
        .map_err(|e| format!("--spiffe-id {spiffe_id}: {e}"))?;
    if !id.member_of(&config.node.trust_domain) {
        return Err(format!(
            "--spiffe-id {id} is in trust domain {}, but {} is for trust domain {}; its dev CA \
             issues only SPIFFE IDs of its own trust domain",
            id.trust_domain(),
            config_path.display(),
            config.node.trust_domain
        ));
    }
    let ca = crate::identity::source::open_dev_ca(&config, crate::identity::DevCaConfig::default())
        .map_err(|e| e.to_string())?;
    Ok((ca, id))
}

fn identity_issue(args: &IdentityIssueArgs) -> Result<String, String> {
    use crate::identity::SubjectKey;
    let (ca, id) = identity_dev_ca(&args.config, &args.spiffe_id)?;
    let validity = args.validity.unwrap_or(ca.config().max_svid_validity);
    let svid = ca
        .issue_x509_svid(
            &id,
            SubjectKey::Generate,
            validity,
            std::time::SystemTime::now(),
        )
        .map_err(|e| format!("cannot issue an X.509-SVID for {id}: {e}"))?;
    let key = svid
        .private_key_pkcs8
        .as_deref()
        .ok_or("the dev CA returned no private key")?;
    let chain: String = svid
        .chain_der
        .iter()
        .map(|der| pem_block("CERTIFICATE", der))
        .collect();
    let bundle = ca.trust_bundle();
    let authorities: String = bundle
        .x509_authorities()
        .map(|der| pem_block("CERTIFICATE", der))
        .collect();
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    // The key first: a reader that finds a new certificate finds its key too.
    replace_file(
        &args.out,
        IDENTITY_KEY_FILE,
        pem_block("PRIVATE KEY", key).as_bytes(),
        0o600,
    )?;
    replace_file(&args.out, IDENTITY_SVID_FILE, chain.as_bytes(), 0o644)?;
    replace_file(
        &args.out,
        IDENTITY_BUNDLE_PEM_FILE,
        authorities.as_bytes(),
        0o644,
    )?;
    let mut json = bundle.to_json();
    json.push(b'\n');
    replace_file(&args.out, IDENTITY_BUNDLE_JSON_FILE, &json, 0o644)?;
    Ok(id.to_string())
}

fn identity_jwt(args: &IdentityJwtArgs) -> Result<String, String> {
    let (ca, id) = identity_dev_ca(&args.config, &args.spiffe_id)?;
    let validity = args
        .validity
        .unwrap_or(crate::identity::source::DEFAULT_JWT_SVID_VALIDITY);
    ca.issue_jwt_svid(&id, &args.audience, validity, std::time::SystemTime::now())
        .map_err(|e| format!("cannot issue a JWT-SVID for {id}: {e}"))
}

/// A PEM block (RFC 7468 §2: base64 lines of 64 characters between the encapsulation
/// boundaries).
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Writes `dir/name` whole or not at all: a new file with `mode` beside it, synced, then
/// renamed over the old one, so a reader never sees half a key or certificate.
fn replace_file(dir: &Path, name: &str, contents: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write as _;
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let _ = std::fs::remove_file(&temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        format!("cannot write {}: {e}", path.display())
    })
}

/// A bench's report: a table (`Display`) or one JSON object.
trait BenchReport: std::fmt::Display {
    fn to_json(&self) -> String;
}

impl BenchReport for crate::bench::log::BenchReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
}

impl BenchReport for crate::bench::verify::VerifyReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
}

impl BenchReport for crate::bench::mesh::MeshBenchReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
}

impl BenchReport for crate::bench::lookup::LookupBenchReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
}

impl BenchReport for crate::bench::witness::WitnessBenchReport {
    fn to_json(&self) -> String {
        self.to_json()
    }
}

/// Prints a bench's outcome: the report on stdout (`json`: one JSON object), or the
/// error on stderr with exit status 1.
fn print_bench<R: BenchReport, E: std::fmt::Display>(json: bool, result: Result<R, E>) -> ExitCode {
    match result {
        Ok(report) if json => {
            println!("{}", report.to_json());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime of an async bench (`multi_thread`: workers on every core, else one
/// thread); `None` when it cannot start, which is said on stderr.
fn bench_runtime(multi_thread: bool) -> Option<tokio::runtime::Runtime> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("error: cannot start the tokio runtime: {e}"))
        .ok()
}

fn cmd_bench_log(args: &crate::bench::log::BenchLogArgs) -> ExitCode {
    let Some(runtime) = bench_runtime(true) else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(crate::bench::log::run(args, &mut std::io::stderr()));
    runtime.shutdown_timeout(Duration::from_secs(1));
    print_bench(args.json, result)
}

fn cmd_bench_witness(args: &crate::bench::witness::BenchWitnessArgs) -> ExitCode {
    let Some(runtime) = bench_runtime(true) else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(crate::bench::witness::run(args, &mut std::io::stderr()));
    runtime.shutdown_timeout(Duration::from_secs(1));
    print_bench(args.json, result)
}

fn cmd_bench_mesh(args: &crate::bench::mesh::BenchMeshArgs) -> ExitCode {
    let Some(runtime) = bench_runtime(false) else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(crate::bench::mesh::run(args, &mut std::io::stderr()));
    runtime.shutdown_timeout(Duration::from_secs(1));
    print_bench(args.json, result)
}

fn cmd_bench_lookup(args: &crate::bench::lookup::BenchLookupArgs) -> ExitCode {
    let Some(runtime) = bench_runtime(false) else {
        return ExitCode::FAILURE;
    };
    let result = runtime.block_on(crate::bench::lookup::run(args, &mut std::io::stderr()));
    runtime.shutdown_timeout(Duration::from_secs(1));
    print_bench(args.json, result)
}

fn cmd_demo(args: &crate::demo::DemoArgs) -> ExitCode {
    let Some(runtime) = bench_runtime(false) else {
        return ExitCode::from(2);
    };
    let result = runtime.block_on(crate::demo::run(args, &mut std::io::stdout()));
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(steps) if steps.iter().all(|s| s.ok) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn cmd_bench_verify(args: &crate::bench::verify::BenchVerifyArgs) -> ExitCode {
    print_bench(args.json, crate::bench::verify::run(args))
}

fn cmd_verify(args: &VerifyArgs) -> ExitCode {
    match verify(args) {
        Ok(verified) => {
            println!(
                "OK: {} signed by {} (issuer {}), logged at index {} at {}",
                args.file.display(),
                verified.identity,
                verified.issuer,
                verified.log_index,
                verified.integrated_time
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("FAIL: {}: {reason}", args.file.display());
            ExitCode::FAILURE
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<provmesh_protocol::verify::VerifiedBundle, String> {
    use provmesh_protocol::sigstore::{DEFAULT_MAX_TRUSTED_ROOT_LEN, parse_trusted_root};
    use provmesh_protocol::verify::{Artifact, IdentityPolicy, verify_bundle};
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let bundle_path = args.bundle.clone().unwrap_or_else(|| {
        let mut name = args.file.as_os_str().to_owned();
        name.push(".sigstore.json");
        PathBuf::from(name)
    });
    let bundle = read(&bundle_path)?;
    let artifact = read(&args.file)?;
    let trust = read(&args.trust_config)?;
    // A ClientTrustConfig wraps the trusted root; a trusted_root.json is one.
    let trust_value: serde_json::Value = serde_json::from_slice(&trust)
        .map_err(|e| format!("{}: not JSON: {e}", args.trust_config.display()))?;
    let root_json = match trust_value.get("trustedRoot") {
        Some(root) => serde_json::to_vec(root).map_err(|e| e.to_string())?,
        None => trust,
    };
    let (root, _) = parse_trusted_root(&root_json, DEFAULT_MAX_TRUSTED_ROOT_LEN)
        .map_err(|e| format!("{}: {e}", args.trust_config.display()))?;
    let issuer = match &args.issuer {
        Some(issuer) => issuer.clone(),
        None => {
            let id = provmesh_protocol::spiffe::SpiffeId::parse(&args.identity)
                .map_err(|e| format!("--identity {}: {e} (give --issuer)", args.identity))?;
            format!("spiffe://{}", id.trust_domain())
        }
    };
    let policy = IdentityPolicy {
        identity: args.identity.clone(),
        issuer,
    };
    verify_bundle(&bundle, Artifact::Bytes(&artifact), &policy, &root).map_err(|e| e.to_string())
}

fn cmd_rotate_witness_key(path: &std::path::Path) -> ExitCode {
    use crate::mesh::publisher::{rotate_witness_key, witness_dir};
    let result = Config::load(path)
        .map_err(|e| e.to_string())
        .and_then(|config| {
            if !config.authority.enabled {
                return Err(format!(
                    "{} is not an authority's configuration (authority.enabled = false)",
                    path.display()
                ));
            }
            let now = crate::clock::now().as_unix_seconds();
            rotate_witness_key(
                &witness_dir(&config.node.data_dir),
                &config.node.trust_domain,
                now,
            )
            .map_err(|e| e.to_string())
        });
    match result {
        Ok(verifier) => {
            println!("new witness key: {}", verifier.to_vkey());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_evidence_verify(args: &EvidenceVerifyArgs) -> ExitCode {
    use provmesh_protocol::evidence::{EquivocationKind, Evidence, MAX_EVIDENCE_BYTES};
    let verdict = || -> Result<String, String> {
        let bytes = if args.file.as_os_str() == "-" {
            crate::bounded::read_at_most(std::io::stdin().lock(), MAX_EVIDENCE_BYTES)
                .map_err(|e| format!("standard input: {e}"))?
        } else {
            crate::bounded::read_file_at_most(&args.file, MAX_EVIDENCE_BYTES)
                .map_err(|e| format!("{}: {e}", args.file.display()))?
        }
        .ok_or_else(|| format!("larger than {MAX_EVIDENCE_BYTES} bytes: not evidence"))?;
        let evidence = Evidence::from_json(&bytes).map_err(|e| e.to_string())?;
        if let Some(expected) = &args.log_key {
            let expected = provmesh_protocol::note::Verifier::from_vkey(expected)
                .map_err(|e| format!("--log-key: {e}"))?;
            if expected != evidence.log_key {
                return Err(format!(
                    "the evidence is about the key {}, not {}",
                    evidence.log_key.to_vkey(),
                    expected.to_vkey()
                ));
            }
        }
        let proven = evidence.verify().map_err(|e| e.to_string())?;
        let how = match proven.kind {
            EquivocationKind::SameSize => format!(
                "two checkpoints of size {} with different roots",
                proven.older_size
            ),
            _ => format!(
                "a checkpoint of size {} and one of size {} whose tree does not extend it",
                proven.older_size, proven.newer_size
            ),
        };
        let trust = if args.log_key.is_some() {
            ""
        } else {
            " (key taken from the document: pass --log-key to check it is the log's)"
        };
        Ok(format!(
            "PROVEN: {} equivocated: {how}, both signed by {}{trust}",
            proven.origin,
            evidence.log_key.to_vkey()
        ))
    };
    match verdict() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("NOT PROVEN: {reason}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_evidence_list(args: &EvidenceListArgs) -> ExitCode {
    use crate::mesh::status;
    print_from_node(
        ask_node(status::fetch_evidence(&args.node)),
        args.json,
        status::evidence_to_json,
        status::render_evidence,
    )
}

fn cmd_evidence_get(args: &EvidenceGetArgs) -> ExitCode {
    use crate::mesh::status;
    let outcome = ask_node(status::fetch_evidence(&args.node))
        .and_then(|list| {
            let mut matching = list
                .evidence
                .into_iter()
                .filter(|item| item.id.starts_with(&args.id.to_ascii_lowercase()));
            match (matching.next(), matching.next()) {
                (Some(item), None) => Ok(item),
                (None, _) => Err(format!("the node holds no evidence {}", args.id)),
                (Some(_), Some(_)) => Err(format!("{} names more than one document", args.id)),
            }
        })
        .and_then(|item| {
            if args.out.as_os_str() == "-" {
                use std::io::Write as _;
                std::io::stdout()
                    .write_all(&item.document)
                    .map_err(|e| e.to_string())
            } else {
                std::fs::write(&args.out, &item.document)
                    .map_err(|e| format!("{}: {e}", args.out.display()))
            }
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_mesh_status(args: &MeshStatusArgs) -> ExitCode {
    use crate::mesh::status;
    print_from_node(
        ask_node(status::fetch(&args.node)),
        args.json,
        status::to_json,
        status::render,
    )
}

fn cmd_lookup(args: &LookupArgs) -> ExitCode {
    use crate::lookup;
    let answer = lookup::digest_of(&args.artifact).and_then(|digest| {
        let policy = match &args.policy {
            Some(path) => lookup::read_policy(path)?,
            None => String::new(),
        };
        ask_node(lookup::fetch(&args.node, &digest, &policy))
    });
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &args.bundles {
        match lookup::write_bundles(&answer, dir) {
            Ok(paths) => {
                for path in paths {
                    eprintln!("wrote {}", path.display());
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    match args.output {
        LookupOutput::Json => println!("{:#}", lookup::to_json(&answer)),
        LookupOutput::Table => print!("{}", lookup::render(&answer)),
    }
    if answer.verdict.is_some_and(|v| v.allowed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn cmd_search(args: &SearchArgs) -> ExitCode {
    use crate::search;
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    let filter = crate::grpc::v1::RecordFilter {
        signer: text(&args.signer),
        builder_id: text(&args.builder),
        predicate_type: text(&args.predicate_type),
        subject_name: text(&args.subject),
        subject_digest: text(&args.digest),
        trust_domain: text(&args.trust_domain),
        integrated_after: args.since.unwrap_or(0),
        integrated_before: args.until.unwrap_or(0),
    };
    if args.watch {
        let json = args.output == LookupOutput::Json;
        if !json {
            println!("{}", search::HEADER.join("  "));
        }
        let watched = ask_node(search::watch(
            &args.node,
            filter,
            text(&args.after),
            |record| {
                if json {
                    println!("{}", search::record_json(record));
                } else {
                    println!("{}", search::row(record).join("  "));
                }
            },
        ));
        return match watched {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    print_from_node(
        ask_node(search::fetch(
            &args.node,
            filter,
            args.limit as usize,
            text(&args.page_token),
        )),
        args.output == LookupOutput::Json,
        search::to_json,
        search::render,
    )
}

fn cmd_mesh_checkpoint(args: &MeshCheckpointArgs) -> ExitCode {
    use crate::mesh::status;
    let answer = ask_node(status::fetch_checkpoint(&args.node, &args.origin));
    let Some(out) = &args.out else {
        return print_from_node(
            answer,
            args.json,
            status::checkpoint_to_json,
            status::render_checkpoint,
        );
    };
    match answer.and_then(|a| {
        std::fs::write(out, &a.checkpoint).map_err(|e| format!("{}: {e}", out.display()))
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one gRPC call to a node, reading an error as text.
fn ask_node<T, E: std::fmt::Display>(
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    block_on(call).and_then(|answer| answer.map_err(|e| e.to_string()))
}

/// Prints a node's answer, as a table or (`json`) as JSON, or the error, with the exit
/// status to match.
fn print_from_node<T>(
    answer: Result<T, String>,
    json: bool,
    to_json: fn(&T) -> serde_json::Value,
    render: fn(&T) -> String,
) -> ExitCode {
    match answer {
        Ok(answer) if json => {
            println!("{:#}", to_json(&answer));
            ExitCode::SUCCESS
        }
        Ok(answer) => {
            print!("{}", render(&answer));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `future` to completion on a runtime for one command.
fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let output = runtime.block_on(future);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(output)
}

/// The signing options of `provmesh sign` and `provmesh attest`.
fn sign_options(args: &SignerArgs) -> Result<crate::signing::SignOptions, String> {
    use crate::signing::{SignOptions, TokenError, TokenSource};
    // The configuration is read only when it is used: a token flag and --authority
    // leave nothing for it to supply (it may come from $PROVMESH_CONFIG).
    let has_token = args.identity_token.is_some() || args.identity_token_file.is_some();
    let config = match &args.config {
        Some(path) if !has_token || args.authority.is_none() => {
            Some(Config::load(path).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let spiffe_id = args
        .spiffe_id
        .as_deref()
        .map(|id| {
            provmesh_protocol::spiffe::SpiffeId::parse(id)
                .map_err(|e| format!("--spiffe-id {id}: {e}"))
        })
        .transpose()?;
    let token = match (&args.identity_token, &args.identity_token_file, &config) {
        (Some(token), _, _) => TokenSource::Literal(token.clone()),
        (None, Some(path), _) => TokenSource::File(path.clone()),
        (None, None, Some(config)) => TokenSource::Node {
            config: Box::new(config.clone()),
            spiffe_id: spiffe_id.clone(),
        },
        (None, None, None) => return Err(TokenError::NoSource.to_string()),
    };
    let authority = match (&args.authority, &config) {
        (Some(url), _) => url.clone(),
        (None, Some(config)) => crate::signing::authority::default_authority_url(config)
            .ok_or_else(|| {
                format!(
                    "{} names no authority (node.authority_url) and is not an authority's \
                 configuration with its HTTP API on a fixed port; give --authority URL",
                    args.config.as_deref().unwrap_or(Path::new("")).display()
                )
            })?,
        (None, None) => {
            return Err(
                "no authority: give --authority URL (the authority's HTTP API, e.g. \
                        http://127.0.0.1:8080) or --config FILE"
                    .to_owned(),
            );
        }
    };
    let mut options = SignOptions::new(authority, token);
    options.trust_config = args.trust_config.clone();
    options.expected_identity = spiffe_id;
    Ok(options)
}

fn report_signed(
    verb: &str,
    file: &Path,
    result: Result<crate::signing::Signed, String>,
) -> ExitCode {
    match result {
        Ok(signed) => {
            println!(
                "{verb} {} as {}: wrote {} ({} entry {} in the domain log, integrated at {})",
                file.display(),
                signed.identity,
                signed.bundle_path.display(),
                signed.kind,
                signed.log_index,
                signed.integrated_time
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_sign(args: &SignArgs) -> ExitCode {
    use crate::signing::sign::default_bundle_path;
    let bundle = args
        .bundle
        .clone()
        .unwrap_or_else(|| default_bundle_path(&args.file, ".sigstore.json"));
    let result = sign_options(&args.signer).and_then(|options| {
        block_on(crate::signing::sign_file(&options, &args.file, &bundle))?
            .map_err(|e| e.to_string())
    });
    report_signed("signed", &args.file, result)
}

fn cmd_attest(args: &AttestArgs) -> ExitCode {
    use crate::signing::sign::default_bundle_path;
    use crate::signing::{Predicate, SlsaParameters};
    // Not FILE.sigstore.json: a build that signs and attests the same file keeps both.
    let bundle = args
        .bundle
        .clone()
        .unwrap_or_else(|| default_bundle_path(&args.file, ".intoto.sigstore.json"));
    let predicate = match (&args.predicate_type, &args.predicate) {
        (Some(predicate_type), Some(path)) => Predicate::File {
            predicate_type: predicate_type.clone(),
            path: path.clone(),
        },
        _ => {
            // clap requires all three with --slsa.
            let mut parameters = SlsaParameters::new(
                args.builder_id.clone().unwrap_or_default(),
                args.build_type.clone().unwrap_or_default(),
                args.external_parameters.clone().unwrap_or_default(),
            );
            parameters.internal_parameters = args.internal_parameters.clone();
            parameters.invocation_id = args.invocation_id.clone();
            parameters.started_on = args.started_on.clone();
            parameters.finished_on = args.finished_on.clone();
            Predicate::Slsa(parameters)
        }
    };
    let result = sign_options(&args.signer).and_then(|options| {
        block_on(crate::signing::attest_file(
            &options, &args.file, &predicate, &bundle,
        ))?
        .map_err(|e| e.to_string())
    });
    report_signed("attested", &args.file, result)
}

fn cmd_trust_root_export(args: &TrustRootExportArgs) -> ExitCode {
    match trust_root_export(args) {
        Ok(exported) => {
            println!(
                "wrote the {} of {} to {}",
                match exported.format {
                    crate::signing::TrustFormat::ClientTrustConfig => "ClientTrustConfig",
                    _ => "trusted root",
                },
                exported
                    .trust_domains
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                exported.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn trust_root_export(args: &TrustRootExportArgs) -> Result<crate::signing::Exported, String> {
    use crate::signing::{TrustFormat, TrustSource, export};
    let domains = args
        .domains
        .iter()
        .map(|d| {
            provmesh_protocol::spiffe::TrustDomain::parse(d)
                .map_err(|e| format!("--domain {d}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let format = if args.client_config {
        TrustFormat::ClientTrustConfig
    } else {
        TrustFormat::TrustedRoot
    };
    let config = args
        .config
        .as_deref()
        .map(Config::load)
        .transpose()
        .map_err(|e| e.to_string())?;
    let source = match (&config, &args.config, &args.authority, &args.node) {
        (Some(config), Some(path), _, _) => TrustSource::Files { path, config },
        (_, _, Some(url), _) => TrustSource::Authority(url),
        (_, _, _, Some(address)) => TrustSource::Node(address),
        // clap requires one of --config, --authority and --node.
        _ => return Err("give --config FILE, --authority URL or --node ADDR".to_owned()),
    };
    block_on(export(source, &domains, format, &args.out))?.map_err(|e| e.to_string())
}

fn cmd_log_fsck(data: &Path) -> ExitCode {
    let store = if data.is_file() {
        data.to_owned()
    } else if data.join(crate::log::STORE_FILE).is_file() {
        data.join(crate::log::STORE_FILE)
    } else {
        crate::log::log_dir(data).join(crate::log::STORE_FILE)
    };
    if !store.is_file() {
        eprintln!("error: no log store at {}", store.display());
        return ExitCode::FAILURE;
    }
    let mut progress = std::io::stderr();
    match crate::log::fsck::fsck(&store, &mut progress) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_config_check(file: &Path) -> ExitCode {
    let loaded = if file == Path::new("-") {
        let mut text = String::new();
        match std::io::stdin().read_to_string(&mut text) {
            Ok(_) => Config::parse(&text),
            Err(source) => Err(ConfigError::Read {
                path: file.to_owned(),
                source,
            }),
        }
    } else {
        Config::load(file)
    };
    match loaded {
        Ok(config) => {
            println!(
                "ok: {} is a valid provmesh configuration (trust domain {})",
                if file == Path::new("-") {
                    "<stdin>".to_owned()
                } else {
                    file.display().to_string()
                },
                config.node.trust_domain
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_run(args: &RunArgs, overrides: &LogOverrides) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(e) => {
            // Logging is configured by the file that failed; report it plainly.
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logs::init(&config.log, overrides) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    let mut options = run::StartOptions::default();
    if let Some(path) = &args.published_checkpoint {
        match std::fs::read(path) {
            Ok(note) => options.published_checkpoint = Some(note),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read --published-checkpoint");
                return ExitCode::FAILURE;
            }
        }
    }
    let result = runtime.block_on(run_node(&config, options, args.ready_file.as_deref()));
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    // Tasks were drained or aborted already; do not wait on stray blocking work.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "node failed");
            ExitCode::FAILURE
        }
    }
}

/// Starts the node, waits for SIGINT/SIGTERM, shuts down. A second signal during
/// shutdown stops waiting for tasks.
async fn run_node(
    config: &Config,
    options: run::StartOptions,
    ready_file: Option<&Path>,
) -> Result<(), RunError> {
    let mut signals = StopSignals::install().map_err(RunError::Signals)?;
    let listeners = Listeners::bind(config).await?;
    let node = run::start_with(config, listeners, options).await?;
    if let Some(path) = ready_file {
        run::write_ready_file(path, node.addrs())?;
    }
    tracing::info!("ready");

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let (forced_tx, forced_rx) = tokio::sync::oneshot::channel();
    let signal_task = tokio::spawn(async move {
        let _ = stop_tx.send(signals.recv().await);
        let _ = forced_tx.send(signals.recv().await);
    });
    let stop = async move {
        match stop_rx.await {
            Ok(signal) => format!("{signal} received"),
            Err(_) => "signal listener stopped".to_owned(),
        }
    };
    let result = tokio::select! {
        result = node.run_until(stop) => result,
        Ok(signal) = forced_rx => Err(RunError::Forced { signal }),
    };
    signal_task.abort();
    result
}

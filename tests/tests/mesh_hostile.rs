//! A hostile peer against a real node: each test starts a federation of two trust
//! domains, each only an authority (`provmesh run` processes on loopback with ephemeral
//! ports and dev identities, `provmesh_tests::federation`), and attacks the authority of
//! org-b — the victim — from a libp2p peer driven by the test itself
//! (`provmesh_tests::hostile_peer`, the node's own swarm without its rules).
//!
//! The attacks ("Must show" of the federation issue):
//! 1. a node of org-b publishes a record of org-a signed with org-b's authority SVID;
//! 2. org-a's real authority SVID signs org-a's next record listing org-b's log origin;
//! 3. org-a's older record is replayed after org-a published a newer one (in an answer to
//!    the victim's anti-entropy request: gossipsub would drop bytes it has already seen);
//! 4. a workload SVID of org-a (not its authority) signs org-a's next record;
//! 5. an authority SVID of a fresh dev CA claiming org-a signs org-a's next record, whose
//!    chain does not reach the bundle of the record accepted before;
//! 6. a peer that never sent a valid node record sends `Summary` and `RecordChain`;
//! 7. garbage and oversized gossip, a garbage request, and a request over
//!    `wire::MAX_REQUEST_BYTES`.
//!
//! For each, the victim must refuse the message (`provmesh mesh status --json`: every
//! domain's record sequence unchanged), log why (its output, at info with
//! `provmesh_node::mesh=debug`), score the sender down by at least the offence's weight
//! (`provmesh_protocol::mesh::peers::Offence`; the sender's `peers` entry, or a ban),
//! leave the honest peer's score alone, and keep answering status.

// Test code: a failed step fails the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use provmesh_protocol::federation::domain_record::{DomainRecord, SignedDomainRecord};
use provmesh_protocol::mesh::checkpoints::{Summary as CheckpointSummary, SummaryEntry, TreeHead};
use provmesh_protocol::mesh::peers::Offence;
use provmesh_protocol::mesh::wire::{self, Gossip, Request, Response, Summary};
use provmesh_protocol::spiffe::TrustDomain;
use provmesh_tests::federation::{
    self, IssuedSvid, NodeFiles, first_mesh_address, peer_entry, sequence_of, tail, unix_now,
};
use provmesh_tests::hostile_peer::HostilePeer;
use provmesh_tests::node_process::NodeProcess;

const BIN: &str = env!("CARGO_BIN_EXE_provmesh-under-test");
/// The domain whose records the hostile peer forges or replays.
const A: &str = "org-a.example";
/// The victim's domain.
const B: &str = "org-b.example";
/// The bound on a start, a stop, a command or a request.
const DEADLINE: Duration = Duration::from_secs(30);
/// The bound on the victim reacting to an attack (a log line): it judges each message
/// as it arrives, in milliseconds.
const REACTION: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// The SPIFFE ID the hostile peer binds with: a node of the victim's own domain, so that
/// it is a bound peer allowed to request (only case 6 stays unbound).
const HOSTILE_NODE_ID: &str = "spiffe://org-b.example/provmesh/node/hostile";

fn bin() -> &'static Path {
    Path::new(BIN)
}

/// The victim's status, and how much it had logged, before an attack.
struct Before {
    status: serde_json::Value,
    output_len: usize,
}

/// Two domains, each only an authority; org-b's is the victim.
struct Federation {
    a: NodeFiles,
    a_process: NodeProcess,
    victim_process: NodeProcess,
    /// SVIDs issued for the test, by SPIFFE ID.
    svids: BTreeMap<String, IssuedSvid>,
    /// Last: removed once the processes above are killed (fields drop in order).
    root: tempfile::TempDir,
}

impl Federation {
    /// Makes both dev CAs, issues the hostile node's SVID and each of `extra` (SPIFFE IDs
    /// of org-a or org-b) from its domain's CA, starts the victim, then org-a's authority
    /// bootstrapping to it (so that org-a finds the victim again after a restart), and
    /// waits until the victim holds both domains' records.
    fn start(extra: &[&str]) -> Federation {
        let root = tempfile::tempdir().unwrap();
        let a = NodeFiles::new(root.path(), "org-a-authority");
        let victim = NodeFiles::new(root.path(), "org-b-authority");
        let bundles: BTreeMap<&str, PathBuf> = [
            (A, federation::make_dev_ca(bin(), &a, A, DEADLINE)),
            (B, federation::make_dev_ca(bin(), &victim, B, DEADLINE)),
        ]
        .into();
        let mut svids = BTreeMap::new();
        for (n, id) in std::iter::once(&HOSTILE_NODE_ID).chain(extra).enumerate() {
            let config = if id.starts_with(&format!("spiffe://{A}/")) {
                &a.config
            } else {
                &victim.config
            };
            let out = root.path().join(format!("svid-{n}"));
            federation::issue_svid(bin(), config, id, &out, DEADLINE);
            svids.insert((*id).to_owned(), IssuedSvid::load(&out, id));
        }

        federation::write_config(&victim, B, None, &[], &bundles);
        let victim_process = federation::start(bin(), &victim, DEADLINE);
        federation::write_config(
            &a,
            A,
            None,
            &[first_mesh_address(&victim_process)],
            &bundles,
        );
        let a_process = federation::start(bin(), &a, DEADLINE);
        let federation = Federation {
            a,
            a_process,
            victim_process,
            svids,
            root,
        };
        federation.wait_for_record(A, 1);
        federation.wait_for_record(B, 1);
        federation
    }

    fn svid(&self, spiffe_id: &str) -> &IssuedSvid {
        &self.svids[spiffe_id]
    }

    /// The victim's `provmesh mesh status --json`.
    fn status(&self) -> serde_json::Value {
        federation::status(bin(), &self.victim_process, self.root.path(), DEADLINE)
    }

    /// The victim's status and output length now, before an attack.
    fn before(&self) -> Before {
        // The output first: a line logged in between is searched again, never skipped.
        let output_len = self.victim_process.output().len();
        Before {
            status: self.status(),
            output_len,
        }
    }

    fn victim_address(&self) -> String {
        first_mesh_address(&self.victim_process)
    }

    fn a_peer_id(&self) -> String {
        peer_id_of(&first_mesh_address(&self.a_process))
    }

    /// Waits until the victim holds `domain`'s record `sequence` or a later one.
    fn wait_for_record(&self, domain: &str, sequence: u64) {
        let started = Instant::now();
        loop {
            let status = self.status();
            if sequence_of(&status, domain) >= sequence {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "the victim has no record {sequence} of {domain} after {DEADLINE:?}:\n\
                 {status:#}\n-- victim:\n{}\n-- org-a:\n{}",
                tail(&self.victim_process.output(), 40),
                tail(&self.a_process.output(), 40),
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// A hostile peer connected to the victim, bound as [`HOSTILE_NODE_ID`].
    fn bound_hostile_peer(&self) -> (HostilePeer, PeerId) {
        let hostile = HostilePeer::new();
        let victim = hostile.connect(&self.victim_address(), DEADLINE);
        hostile.bind(&victim, self.svid(HOSTILE_NODE_ID), DEADLINE);
        (hostile, victim)
    }

    /// Waits up to [`REACTION`] for a line of the victim's output, from the line holding
    /// its byte `since` on, that holds every one of `needles`; returns it.
    fn wait_for_line(&self, since: usize, needles: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let output = self.victim_process.output();
            // From the start of the line `since` falls in: a line boundary is a character
            // boundary, and a line half written at `since` is searched whole.
            let start = output.as_bytes()[..since.min(output.len())]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |newline| newline + 1);
            if let Some(line) = output[start..]
                .lines()
                .find(|line| needles.iter().all(|n| line.contains(n)))
            {
                return line.to_owned();
            }
            assert!(
                started.elapsed() < REACTION,
                "no line with {needles:?} in the victim's output after {REACTION:?}:\n{}",
                tail(&output, 60)
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// Checks what a refused message from `hostile` must leave behind, `before` being the
    /// victim's state from before it was sent: a new line of the victim's output naming the
    /// sender and holding every one of `needles` (at `level`), every domain's record
    /// sequence unchanged, the sender's score down by at least `offence`'s weight (or the
    /// sender banned), the honest org-a authority not scored down, and the victim still
    /// answering. Returns the victim's state after, the `before` of a next attack.
    fn assert_refused(
        &self,
        hostile: &HostilePeer,
        before: &Before,
        level: &str,
        needles: &[&str],
        offence: Offence,
    ) -> Before {
        let hostile_id = hostile.peer_id().to_string();
        let mut all: Vec<&str> = vec![level, &hostile_id];
        all.extend_from_slice(needles);
        let line = self.wait_for_line(before.output_len, &all);
        eprintln!("victim logged: {line}");

        // The victim answers, and nothing it accepted changed.
        let after = self.before();
        let (before, after_status) = (&before.status, &after.status);
        for domain in [A, B] {
            assert_eq!(
                sequence_of(after_status, domain),
                sequence_of(before, domain),
                "the record sequence of {domain} changed: {after_status:#}"
            );
        }

        // The sender is scored down, or banned (and then disconnected: the status lists
        // connected peers only).
        let score_before = peer_entry(before, &hostile_id).map_or(0.0, score);
        match peer_entry(after_status, &hostile_id) {
            Some(entry) if entry["banned"] == true => {}
            Some(entry) => {
                let weight = offence.weight() as f64;
                assert!(
                    score(entry) <= score_before - weight,
                    "the hostile peer's score went from {score_before} to {} ({offence:?} \
                     weighs {weight}):\n{after_status:#}",
                    score(entry)
                );
            }
            None => {
                self.wait_for_line(0, &["peer banned", &hostile_id]);
                let victim: PeerId = peer_id_of(&self.victim_address()).parse().unwrap();
                assert!(
                    hostile.wait_disconnected(&victim, REACTION),
                    "the victim banned the hostile peer but did not disconnect it"
                );
            }
        }
        if let Some(honest) = peer_entry(after_status, &self.a_peer_id()) {
            assert!(
                score(honest) >= 0.0 && honest["banned"] == false,
                "the honest org-a authority was scored down: {after_status:#}"
            );
        }
        assert!(
            !self.victim_process.output().contains("panicked"),
            "the victim panicked:\n{}",
            tail(&self.victim_process.output(), 60)
        );
        after
    }
}

fn score(peer: &serde_json::Value) -> f64 {
    peer["score"].as_f64().unwrap()
}

/// The peer id a multiaddr ends in (`…/p2p/<peer id>`).
fn peer_id_of(address: &str) -> String {
    address.rsplit('/').next().unwrap().to_owned()
}

/// The record the victim currently holds for `domain`, fetched by the bound `hostile`.
fn current_record(hostile: &HostilePeer, victim: &PeerId, domain: &str) -> SignedDomainRecord {
    hostile
        .record_chain(victim, domain, 0, DEADLINE)
        .pop()
        .unwrap_or_else(|| panic!("the victim serves no record of {domain}"))
}

/// The record right after `current`: its payload with the next sequence, issued now.
fn next_record(current: &SignedDomainRecord) -> DomainRecord {
    let mut record = current.unverified_record().unwrap();
    record.record_sequence += 1;
    record.issued_at = record.issued_at.max(unix_now());
    record
}

/// `record` signed with `svid`, as the signed record's JSON.
fn signed_by(record: &DomainRecord, svid: &IssuedSvid) -> Vec<u8> {
    SignedDomainRecord::sign(record, &svid.signer(), &svid.svid.chain_der)
        .unwrap()
        .to_json()
}

/// Publishes the signed record `json` on the domain-records topic.
fn publish_record(hostile: &HostilePeer, json: Vec<u8>) {
    hostile.publish(
        wire::DOMAIN_RECORDS_TOPIC,
        wire::encode_gossip(&Gossip::DomainRecord(json)),
        DEADLINE,
    );
}

/// Case 1: "a node of domain B can never publish or alter A's record".
#[test]
fn a_record_of_org_a_signed_by_org_bs_authority_is_rejected() {
    assert_next_record_signed_by_refused(&format!("spiffe://{B}/provmesh/authority"));
}

/// Signs org-a's next record with an SVID of `signer` (not org-a's authority) and checks
/// that the victim refuses it as not signed by the authority, scoring `InvalidRecord`.
fn assert_next_record_signed_by_refused(signer: &str) {
    let federation = Federation::start(&[signer]);
    let (hostile, victim) = federation.bound_hostile_peer();
    let forged = next_record(&current_record(&hostile, &victim, A));
    let before = federation.before();

    publish_record(&hostile, signed_by(&forged, federation.svid(signer)));

    federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[
            "domain record rejected",
            &format!(
                "record {} of {A} is signed by {signer}, not by the authority \
                 spiffe://{A}/provmesh/authority",
                forged.record_sequence
            ),
        ],
        Offence::InvalidRecord,
    );
}

/// Case 2: "An origin belongs to one domain: a record listing another domain's origin is
/// rejected", even when the domain's own authority signs it.
#[test]
fn a_record_claiming_another_domains_log_origin_is_rejected() {
    let a_authority = format!("spiffe://{A}/provmesh/authority");
    let federation = Federation::start(&[&a_authority]);
    let (hostile, victim) = federation.bound_hostile_peer();
    let mut claiming = next_record(&current_record(&hostile, &victim, A));
    let b_log = current_record(&hostile, &victim, B)
        .unverified_record()
        .unwrap()
        .logs
        .into_iter()
        .find(|log| log.origin.as_str() == format!("log.{B}"))
        .expect("org-b's record lists its log");
    claiming.logs.push(b_log);
    let before = federation.before();

    publish_record(
        &hostile,
        signed_by(&claiming, federation.svid(&a_authority)),
    );

    federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[
            "domain record rejected",
            &format!(
                "record {} of {A} lists the origin log.{B}, which belongs to {B}",
                claiming.record_sequence
            ),
        ],
        Offence::RefusedRecord,
    );
}

/// Case 3: no rollback. org-a rotates its witness key and publishes record 2; then the
/// hostile peer answers the victim's anti-entropy `Summary` with org-a's genuine record 1.
/// (A replay by gossip of bytes the victim has seen is dropped by gossipsub's duplicate
/// cache before the node sees it; an answer is always judged.)
#[test]
fn a_replayed_older_record_is_rejected() {
    let mut federation = Federation::start(&[]);

    // org-a publishes a newer record: stop, rotate the witness key, restart.
    assert!(federation.a_process.terminate(DEADLINE).success());
    federation::rotate_witness_key(bin(), &federation.a, DEADLINE);
    federation.a_process = federation::start(bin(), &federation.a, DEADLINE);
    federation.wait_for_record(A, 2);

    let (hostile, victim) = federation.bound_hostile_peer();
    let chain = hostile.record_chain(&victim, A, 0, DEADLINE);
    let old = chain
        .iter()
        .find(|r| r.unverified_record().unwrap().record_sequence == 1)
        .expect("the victim serves org-a's record 1");
    let before = federation.before();
    assert_eq!(sequence_of(&before.status, A), 2);

    hostile.answer_summaries_with(Response::Summary {
        checkpoints: Vec::new(),
        domain_records: vec![old.to_json()],
        evidence: Vec::new(),
    });
    // Claiming a newer checkpoint of org-a's log makes the victim pull from the hostile
    // peer at once (push-pull) instead of at a random anti-entropy round.
    let claim = Request::Summary(Summary {
        logs: CheckpointSummary {
            entries: vec![SummaryEntry {
                origin: format!("log.{A}"),
                head: Some(TreeHead {
                    size: 1_000_000,
                    root: [7; 32],
                }),
                cosignatures: 0,
            }],
        },
        domains: vec![(TrustDomain::parse(A).unwrap(), 2)],
        evidence_ids: Vec::new(),
    });
    let answer = hostile.request(&victim, &claim, DEADLINE);
    assert!(matches!(answer, Response::Summary { .. }), "{answer:?}");

    federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[
            "domain record rejected",
            &format!("record 1 of {A} is not newer than the accepted record 2"),
        ],
        Offence::RefusedRecord,
    );
    assert!(hostile.summaries_answered() >= 1);
}

/// Case 4: a record is accepted only if "its SPIFFE ID is the domain's authority ID" — a
/// workload SVID of the same domain, under the same bundle, does not do.
#[test]
fn a_record_signed_by_a_workload_of_the_domain_is_rejected() {
    assert_next_record_signed_by_refused(&format!("spiffe://{A}/ci/build"));
}

/// Case 5: the record right after the accepted one must verify under the accepted
/// record's bundle; an authority SVID from another CA claiming the domain does not chain
/// to it. (A record further ahead could be genuine and is no offence; the very next one
/// cannot.)
#[test]
fn a_next_record_not_chaining_to_the_accepted_bundle_is_rejected() {
    let federation = Federation::start(&[]);
    // A fresh dev CA of its own claiming org-a, never federated anywhere.
    let rogue = NodeFiles::new(federation.root.path(), "rogue-org-a");
    federation::write_config(&rogue, A, None, &[], &BTreeMap::new());
    let rogue_authority = format!("spiffe://{A}/provmesh/authority");
    let out = federation.root.path().join("rogue-svid");
    federation::issue_svid(bin(), &rogue.config, &rogue_authority, &out, DEADLINE);
    let rogue_svid = IssuedSvid::load(&out, &rogue_authority);

    let (hostile, victim) = federation.bound_hostile_peer();
    let current = current_record(&hostile, &victim, A);
    let accepted = current.unverified_record().unwrap().record_sequence;
    let forged = next_record(&current);
    let before = federation.before();

    publish_record(&hostile, signed_by(&forged, &rogue_svid));

    federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[
            "domain record rejected",
            &format!(
                "record {} of {A} does not verify under Record({accepted})",
                forged.record_sequence
            ),
            &format!("an X.509 authority of the {A} bundle"),
        ],
        Offence::InvalidRecord,
    );
}

/// Case 6: requests need a bound peer; an unbound peer's are refused and scored
/// `Unbound` (a peer that never sends a node record cannot make the victim work for it).
#[test]
fn requests_from_an_unbound_peer_are_refused() {
    let federation = Federation::start(&[]);
    let hostile = HostilePeer::new();
    let victim = hostile.connect(&federation.victim_address(), DEADLINE);
    let hostile_id = hostile.peer_id().to_string();
    let before = federation.before();

    let summary = hostile.request(&victim, &Request::Summary(Summary::default()), DEADLINE);
    assert!(
        matches!(&summary, Response::Refused(reason) if reason.contains("Unbound")),
        "{summary:?}"
    );
    let after_summary = federation.assert_refused(
        &hostile,
        &before,
        "DEBUG",
        &["mesh request refused", "Unbound"],
        Offence::Unbound,
    );

    let chain = Request::RecordChain {
        trust_domain: TrustDomain::parse(A).unwrap(),
        after_sequence: 0,
    };
    let answer = hostile.request(&victim, &chain, DEADLINE);
    assert!(
        matches!(&answer, Response::Refused(reason) if reason.contains("Unbound")),
        "{answer:?}"
    );
    federation.assert_refused(
        &hostile,
        &after_summary,
        "DEBUG",
        &["mesh request refused", "Unbound"],
        Offence::Unbound,
    );
    let refusals = federation
        .victim_process
        .output()
        .lines()
        .filter(|l| {
            l.contains("mesh request refused")
                && l.contains("Unbound")
                && l.contains(hostile_id.as_str())
        })
        .count();
    assert_eq!(refusals, 2, "one refusal per request");
}

/// Case 7: gossip that does not decode, gossip over its bounds (a checkpoint over
/// `wire::MAX_CHECKPOINT_NOTE_BYTES` in its log's topic, a message over
/// `wire::MAX_GOSSIP_MESSAGE_BYTES`), a domain record that is not one, and a request that
/// does not decode. No binding: gossip is taken from any peer, and a request is decoded
/// before its sender's binding is looked at.
#[test]
fn malformed_and_oversized_gossip_and_garbage_requests_are_rejected() {
    let federation = Federation::start(&[]);
    let hostile = HostilePeer::new();
    let victim = hostile.connect(&federation.victim_address(), DEADLINE);
    let log_topic = wire::log_topic(&format!("log.{A}"));

    // Not a protobuf gossip message at all.
    let before = federation.before();
    hostile.publish(
        wire::DOMAIN_RECORDS_TOPIC,
        b"\xff\xff\xff\xff not a gossip message".to_vec(),
        DEADLINE,
    );
    let before = federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &["malformed gossip", "does not decode"],
        Offence::Malformed,
    );

    // A well-framed gossip message whose domain record is not a signed record.
    hostile.publish(
        wire::DOMAIN_RECORDS_TOPIC,
        wire::encode_gossip(&Gossip::DomainRecord(b"{\"not\":\"a record\"}".to_vec())),
        DEADLINE,
    );
    let before = federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &["malformed domain record"],
        Offence::Malformed,
    );

    // A "checkpoint" of org-a's log one byte over the checkpoint bound, in that log's
    // topic (which the victim follows), well under gossipsub's own transmit limit.
    let mut note = format!("log.{A}\n1000000\n").into_bytes();
    note.resize(wire::MAX_CHECKPOINT_NOTE_BYTES + 1, b'A');
    hostile.publish(
        &log_topic,
        wire::encode_gossip(&Gossip::Checkpoint(note)),
        DEADLINE,
    );
    let before = federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[
            "malformed gossip",
            &format!("at most {} are accepted", wire::MAX_CHECKPOINT_NOTE_BYTES),
        ],
        Offence::Oversized,
    );
    assert!(
        before.status["logs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["size"].as_u64() != Some(1_000_000)),
        "the oversized checkpoint was adopted: {:#}",
        before.status
    );

    // A gossip message over the gossip bound (gossipsub itself lets up to 1 KiB more
    // through, so the node's own bound decides).
    hostile.publish(
        wire::DOMAIN_RECORDS_TOPIC,
        wire::encode_gossip(&Gossip::DomainRecord(vec![
            b'{';
            wire::MAX_GOSSIP_MESSAGE_BYTES
        ])),
        DEADLINE,
    );
    let before = federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[
            "malformed gossip",
            &format!("at most {} are accepted", wire::MAX_GOSSIP_MESSAGE_BYTES),
        ],
        Offence::Oversized,
    );

    // A request that does not decode: answered `Refused`, and scored.
    let answer = hostile
        .request_bytes(
            &victim,
            b"\xff\xff\xff\xff not a request".to_vec(),
            DEADLINE,
        )
        .expect("the victim answers a garbage request");
    let answer = wire::decode_response(&answer).unwrap();
    assert!(
        matches!(&answer, Response::Refused(reason) if reason.starts_with("malformed")),
        "{answer:?}"
    );
    federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &["malformed mesh request"],
        Offence::Malformed,
    );
}

/// Case 7, requests: the codec reads a request over `wire::MAX_REQUEST_BYTES` only up to
/// one byte past the bound, and the core refuses it as too large before decoding it; it
/// is logged, answered with the reason, and scored like oversized gossip
/// (`Offence::Oversized`), so a peer cannot make the victim read megabytes for free.
#[test]
fn an_oversized_request_is_refused_and_scored() {
    let federation = Federation::start(&[]);
    let (hostile, victim) = federation.bound_hostile_peer();
    let before = federation.before();

    let oversized = vec![0u8; wire::MAX_REQUEST_BYTES + 1];
    let answer = hostile
        .request_bytes(&victim, oversized, DEADLINE)
        .expect("the victim answers an oversized request");
    let answer = wire::decode_response(&answer).unwrap();
    assert!(
        matches!(&answer, Response::Refused(reason)
            if reason.contains(&wire::MAX_REQUEST_BYTES.to_string())),
        "{answer:?}"
    );

    federation.assert_refused(
        &hostile,
        &before,
        "WARN",
        &[&wire::MAX_REQUEST_BYTES.to_string()],
        Offence::Oversized,
    );
}

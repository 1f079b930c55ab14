//! Pins the bytes of every SPIFFE test vector (tests/vectors/spiffe/, see SOURCES.md
//! there): a changed, added or removed vector file fails this test.

// Helpers outside #[test] functions unwrap too; a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// SHA-256 of each vector file, by path relative to tests/vectors/spiffe.
const PINNED: &[(&str, &str)] = &[
    (
        "go-spiffe/jwks_missing_kid.json",
        "6636665c43bbb99612df067ebd981b7bb45c4d84585b26190fe5b692d38a2778",
    ),
    (
        "go-spiffe/jwks_valid_1.json",
        "e3081fb9d8de92b3752967b7e717565d531b54b65cbcd9a49474fcc6ef0f2904",
    ),
    (
        "go-spiffe/jwks_valid_2.json",
        "8e92238f352c61b1a3e4e3228fea7d3def5597e4ee26077fdd457587b68233ee",
    ),
    (
        "go-spiffe/spiffebundle_missing_kid.json",
        "580dc46f9f19b9fb4d93080b07d66070a933ba1ca77a3e627d063f774cd699f6",
    ),
    (
        "go-spiffe/spiffebundle_multiple_x509.json",
        "6a00682747937715cf3e94731dc590a42c66ef8e044aca1d73c16bdb91d9e9e6",
    ),
    (
        "go-spiffe/spiffebundle_no_keys.json",
        "40ad0de1754edd3f33e77742a849e63fe5282f74d5a286a3a861d4de3de81c3f",
    ),
    (
        "go-spiffe/spiffebundle_valid_1.json",
        "01b25d98c128cc4e4e8c53d0d86803512e7326f8183240c84b55c36799ec4b9c",
    ),
    (
        "go-spiffe/spiffebundle_valid_2.json",
        "bbd40739699af24a2872d14959720184527e7f96e273066ea978d4e7ccdb75c7",
    ),
    (
        "go-spiffe/spiffebundle_valid_with_wit.json",
        "26269dde78d748af11ae60d484479f4480fba6eba04fad6c55705feab98a6a71",
    ),
    (
        "id_vectors.json",
        "2b5e686c43297adfd84150dd588a2603c3e88f2fe5b97c091fbaf9b8d9a52122",
    ),
    (
        "spec/appendix_a_bundle_1_verbatim.txt",
        "53e14bb1fa48112f750227379b7b12fa158610bfcb5c0f1d738fa9a6668c8e96",
    ),
    (
        "spec/appendix_a_bundle_2_verbatim.txt",
        "e0e8c635a0978fe5a2eba1621c359275a624eaf37ee0644b1420b62303fdc91e",
    ),
    (
        "spire/spire_cli_cert1_jwks.json",
        "ead3e395386fc2ab6a40341bacdd4f3c85a3de36fda8e0a4edde553492a411fb",
    ),
    (
        "spire/spire_cli_cert2_jwks.json",
        "2409337c32589224657a7205b0269e05694657ec4f7f2f5b2e9f65169c04bb89",
    ),
    (
        "spire/spire_cli_other_domain_jwks.json",
        "b123c1562993a1b88c899ec9b07cdd096616f8c2e468d9d4a1c7a3496129a6d5",
    ),
];

/// Files in the directory that are not vectors.
const NOT_VECTORS: &[&str] = &["SOURCES.md", "gen_id_vectors.py"];

fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, root, out);
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .replace('\\', "/");
            if !NOT_VECTORS.contains(&rel.as_str()) {
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
}

#[test]
fn vector_files_are_pinned() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/spiffe");
    let mut files = BTreeMap::new();
    walk(&root, &root, &mut files);
    let found: Vec<&str> = files.keys().map(String::as_str).collect();
    let pinned: Vec<&str> = PINNED.iter().map(|(p, _)| *p).collect();
    assert_eq!(found, pinned, "vector files added or removed");
    for (path, digest) in PINNED {
        assert_eq!(
            hex::encode(Sha256::digest(&files[*path])),
            *digest,
            "{path} changed"
        );
    }
}

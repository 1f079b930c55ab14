//! Every configuration file shipped under `deploy/` (examples, Kubernetes base and
//! overlays) is a valid provmesh configuration: the same parser and checks as
//! `provmesh run --config` apply, and each says what its file name and place promise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use provmesh_node::config::{Config, IdentitySourceKind};

fn toml_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "toml") {
            found.push(path);
        }
    }
}

#[test]
fn every_shipped_configuration_is_valid() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let mut files = Vec::new();
    toml_files(&deploy, &mut files);
    assert!(files.len() >= 10, "{files:?}");
    for file in &files {
        let config = Config::load(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let kubernetes = file.components().any(|c| c.as_os_str() == "kubernetes");
        // An authority's file runs the authority; a node's does not.
        assert_eq!(
            config.authority.enabled,
            name.contains("authority") || name == "dev.toml",
            "{}",
            file.display()
        );
        if kubernetes || name.starts_with("production") {
            assert_eq!(
                config.identity.source,
                IdentitySourceKind::Spire,
                "{}",
                file.display()
            );
        }
        // A domain's overlay names its own domain.
        if let Some(overlay) = file
            .parent()
            .filter(|_| file.components().any(|c| c.as_os_str() == "overlays"))
            .and_then(|p| p.file_name())
        {
            assert_eq!(
                config.node.trust_domain.to_string(),
                format!("{}.example", overlay.to_string_lossy()),
                "{}",
                file.display()
            );
            assert_eq!(config.federation.domains.len(), 2, "{}", file.display());
        }
    }
}

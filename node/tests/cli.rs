//! The `provmesh` command line: help for every subcommand, `version`, and
//! `config check` / `config default` against good and bad files.

// Test code: helpers outside #[test] fns may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{run, run_with_stdin, stderr, stdout, write_file};

#[test]
fn help_works_for_every_subcommand() {
    for args in [
        &["--help"][..],
        &["help"],
        &["run", "--help"],
        &["config", "--help"],
        &["config", "check", "--help"],
        &["config", "default", "--help"],
        &["version", "--help"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("Usage: provmesh"),
            "{args:?}: {}",
            stdout(&out)
        );
    }
}

#[test]
fn no_subcommand_is_a_usage_error() {
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn version_prints_the_crate_version() {
    for args in [&["version"][..], &["--version"]] {
        let out = run(args);
        assert!(out.status.success());
        assert_eq!(
            stdout(&out).trim(),
            format!("provmesh {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn default_config_is_accepted_by_config_check() {
    let default = run(&["config", "default"]);
    assert!(default.status.success(), "{}", stderr(&default));
    let check = run_with_stdin(&["config", "check", "-"], &default.stdout);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(stdout(&check).starts_with("ok:"), "{}", stdout(&check));

    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "default.toml", &stdout(&default));
    let check = run(&["config", "check", file.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stderr(&check));
}

/// Runs `config check` on `text` and returns stderr, asserting a non-zero exit.
fn check_fails(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "provmesh.toml", text);
    let out = run(&["config", "check", file.to_str().unwrap()]);
    assert!(!out.status.success(), "accepted:\n{text}");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("provmesh.toml"), "file not named: {err}");
    err
}

const NODE: &str = "[node]\ntrust_domain = \"org-a.example\"\n";

#[test]
fn unknown_key_is_named_with_its_table_and_line() {
    let err = check_fails(&format!(
        "{NODE}\n[metrics]\nenabled = true\nlisten_address = \"127.0.0.1:1\"\n"
    ));
    assert!(err.contains("`metrics.listen_address`"), "{err}");
    assert!(err.contains("unknown field `listen_address`"), "{err}");
    assert!(err.contains("line 6"), "{err}");
}

#[test]
fn unknown_table_is_named() {
    let err = check_fails(&format!("{NODE}\n[gossip]\nfanout = 3\n"));
    assert!(err.contains("`gossip`"), "{err}");
    assert!(err.contains("unknown field `gossip`"), "{err}");
}

#[test]
fn bad_socket_address_names_the_key_and_value() {
    let err = check_fails(&format!("{NODE}[metrics]\nlisten = \"127.0.0.1:99999\"\n"));
    assert!(err.contains("`metrics.listen`"), "{err}");
    assert!(err.contains("127.0.0.1:99999"), "{err}");
}

#[test]
fn bad_trust_domain_names_the_key_and_value() {
    for bad in ["Org-A.example", "spiffe://org-a.example/x", "org a", ""] {
        let err = check_fails(&format!("[node]\ntrust_domain = {bad:?}\n"));
        assert!(err.contains("`node.trust_domain`"), "{bad:?}: {err}");
        assert!(err.contains("invalid trust domain"), "{bad:?}: {err}");
    }
}

#[test]
fn bad_duration_names_the_key() {
    for bad in ["\"0s\"", "\"ten seconds\"", "10"] {
        let err = check_fails(&format!("{NODE}[shutdown]\ngrace_period = {bad}\n"));
        assert!(err.contains("`shutdown.grace_period`"), "{bad}: {err}");
    }
}

#[test]
fn missing_trust_domain_is_an_error() {
    let err = check_fails("[node]\ndata_dir = \"/tmp/x\"\n");
    assert!(err.contains("missing field `trust_domain`"), "{err}");
}

#[test]
fn unreadable_file_is_an_error() {
    let out = run(&["config", "check", "/nonexistent/provmesh.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/provmesh.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_with_invalid_config_fails_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(
        dir.path(),
        "bad.toml",
        &format!("{NODE}[metrics]\nport = 1\n"),
    );
    let out = run(&["run", "--config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("`metrics.port`"), "{}", stderr(&out));
}

#[test]
fn bad_log_level_flag_is_a_usage_error() {
    let out = run(&["--log-level", "info,[[[", "version"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--log-level"), "{}", stderr(&out));
}

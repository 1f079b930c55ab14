//! The pinned sigstore-python CLI (`sigstore`) that `scripts/setup-verifiers` installs in
//! a venv, `$PROVMESH_VENV` (default `~/.cache/provmesh/venv`): finding it, with the
//! policy for when it is missing, and the commands the interop tests run with it.
//!
//! Missing CLI policy: the project's test command always sets the venv up, so a test that
//! needs the CLI fails, saying to run `scripts/setup-verifiers`, unless
//! `PROVMESH_SKIP_INTEROP=1`, which skips what needs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::command::describe;

/// The variable naming the venv (default `$HOME/.cache/provmesh/venv`).
pub const VENV_VAR: &str = "PROVMESH_VENV";

/// The variable that, set to `1`, skips what needs sigstore-python when it is missing.
pub const SKIP_VAR: &str = "PROVMESH_SKIP_INTEROP";

/// The `sigstore` CLI of the pinned venv.
#[derive(Debug, Clone)]
pub struct SigstorePython {
    cli: PathBuf,
}

impl SigstorePython {
    /// The CLI of the venv, or `None` when it is missing and `PROVMESH_SKIP_INTEROP=1`
    /// (said on standard error, so the skip shows in the test's output).
    ///
    /// # Panics
    ///
    /// When the CLI is missing and the skip is not asked for, or when neither
    /// `PROVMESH_VENV` nor `HOME` is set.
    #[track_caller]
    pub fn find() -> Option<Self> {
        let venv = match std::env::var_os(VENV_VAR) {
            Some(v) => PathBuf::from(v),
            None => PathBuf::from(
                std::env::var_os("HOME")
                    .unwrap_or_else(|| panic!("neither {VENV_VAR} nor HOME is set")),
            )
            .join(".cache/provmesh/venv"),
        };
        let cli = venv.join("bin/sigstore");
        if cli.exists() {
            return Some(SigstorePython { cli });
        }
        if std::env::var_os(SKIP_VAR).is_some_and(|v| v == "1") {
            eprintln!(
                "sigstore-python skipped: not installed at {} ({SKIP_VAR}=1)",
                cli.display()
            );
            return None;
        }
        panic!(
            "sigstore-python is not installed at {}: run scripts/setup-verifiers (or set \
             {VENV_VAR}), or set {SKIP_VAR}=1 to skip what needs it",
            cli.display()
        );
    }

    /// `sigstore --trust-config <trust_config>` (a global option, before the
    /// subcommand), to which the caller adds the subcommand.
    pub fn command(&self, trust_config: &Path) -> Command {
        let mut command = Command::new(&self.cli);
        command
            // rich wraps its messages at the terminal width; keep them on one line.
            .env("COLUMNS", "1000")
            // The tests' services are on loopback: never through a proxy of the environment.
            .env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1")
            .arg("--trust-config")
            .arg(trust_config);
        command
    }

    /// `sigstore --trust-config <trust_config> verify identity --offline --bundle <bundle>
    /// --cert-identity <identity> --cert-oidc-issuer <issuer> <artifact>`.
    pub fn verify_identity_command(&self, check: &VerifyIdentity<'_>) -> Command {
        let mut command = self.command(check.trust_config);
        command
            .args(["verify", "identity", "--offline", "--bundle"])
            .arg(check.bundle)
            .args(["--cert-identity", check.identity])
            .args(["--cert-oidc-issuer", check.issuer])
            .arg(check.artifact);
        command
    }

    /// Asserts that `verify identity` accepts the bundle for the artifact: exit status
    /// 0, and the CLI's `OK: ` line.
    ///
    /// # Panics
    ///
    /// When it does not (that is the assertion), or when the CLI cannot be run.
    #[track_caller]
    pub fn assert_accepts(&self, check: &VerifyIdentity<'_>) {
        let output = self.verify_identity(check);
        assert!(
            output.status.success() && String::from_utf8_lossy(&output.stderr).contains("OK: "),
            "sigstore-python refused {}:\n{}",
            check.bundle.display(),
            describe(&output)
        );
    }

    /// Asserts that `verify identity` refuses the bundle for the artifact and identity,
    /// saying `reason` on standard error.
    ///
    /// # Panics
    ///
    /// When it does not (that is the assertion), or when the CLI cannot be run.
    #[track_caller]
    pub fn assert_refuses(&self, check: &VerifyIdentity<'_>, reason: &str) {
        let output = self.verify_identity(check);
        assert!(
            !output.status.success(),
            "sigstore-python accepted {} for {} and {}:\n{}",
            check.bundle.display(),
            check.identity,
            check.artifact.display(),
            describe(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(reason),
            "sigstore-python refused {}, but not because of {reason:?}:\n{}",
            check.bundle.display(),
            describe(&output)
        );
    }

    /// Runs [`SigstorePython::verify_identity_command`] to completion (no bound: an
    /// offline verification does not wait on anything) and returns its output.
    fn verify_identity(&self, check: &VerifyIdentity<'_>) -> Output {
        self.verify_identity_command(check)
            .output()
            .unwrap_or_else(|e| panic!("the sigstore CLI {} does not run: {e}", self.cli.display()))
    }
}

/// One offline `sigstore verify identity`: is `bundle` a valid signature over
/// `artifact` by `identity`, certified for `issuer`, under `trust_config`?
#[derive(Debug, Clone, Copy)]
pub struct VerifyIdentity<'a> {
    /// The ClientTrustConfig (`--trust-config`).
    pub trust_config: &'a Path,
    /// The Sigstore bundle (`--bundle`).
    pub bundle: &'a Path,
    /// The identity the certificate must name (`--cert-identity`).
    pub identity: &'a str,
    /// The OIDC issuer the certificate must name (`--cert-oidc-issuer`).
    pub issuer: &'a str,
    /// The signed file.
    pub artifact: &'a Path,
}

//! A `provmesh run` process of an end-to-end test: the configuration of an authority on
//! loopback, the process started from a configuration file with `--ready-file`, waited for
//! within a bound, its bound HTTP address read from the ready file, stopped with SIGTERM
//! or SIGKILL, and killed on drop if still running, so that a failing test leaves no
//! process behind.
//!
//! The binary is the test's `provmesh-under-test` (`env!("CARGO_BIN_EXE_provmesh-under-test")`),
//! passed in: Cargo names a package's binaries to its integration tests only, not to this
//! library. The functions panic on failure: they are test scaffolding.

// Test scaffolding: a failed step fails the calling test (see the module header).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::command::wait_with_deadline;

/// How often the start looks for the ready file.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// The configuration of an authority for a test (dev identity, code-signing CA, domain
/// log) of `trust_domain`, its data in `data_dir`: only the HTTP API listens, on an
/// ephemeral loopback port ([`NodeProcess::http`] tells which), with no metrics listener
/// and no gRPC; a 5 s shutdown grace period. `authority_log` is the body of the
/// `[authority.log]` table (TOML lines, each ending in a newline).
pub fn authority_config(trust_domain: &str, data_dir: &Path, authority_log: &str) -> String {
    format!(
        "[node]\n\
         trust_domain = \"{trust_domain}\"\n\
         data_dir = {data}\n\n\
         [log]\n\
         level = \"info\"\n\n\
         [metrics]\n\
         enabled = false\n\n\
         [shutdown]\n\
         grace_period = \"5s\"\n\n\
         [http]\n\
         listen = \"127.0.0.1:0\"\n\n\
         [grpc]\n\
         listen = \"127.0.0.1:0\"\n\n\
         [identity]\n\
         source = \"dev\"\n\n\
         [mesh]\n\
         enabled = false\n\n\
         [authority]\n\
         enabled = true\n\n\
         [authority.log]\n\
         {authority_log}",
        data = toml_path(data_dir),
    )
}

/// `path` as a TOML basic string (Rust's `Debug` escapes of a string are valid TOML
/// escapes for the characters a test path holds).
pub fn toml_path(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `bin` as a command whose behaviour the test runner's environment cannot change:
/// `RUST_LOG` (what the node logs) and `PROVMESH_CONFIG` (which configuration it reads)
/// are cleared.
pub fn provmesh_command(bin: &Path) -> Command {
    let mut command = Command::new(bin);
    command.env_remove("RUST_LOG").env_remove("PROVMESH_CONFIG");
    command
}

/// A running `provmesh run` process; killed (SIGKILL) on drop if still running.
#[derive(Debug)]
pub struct NodeProcess {
    child: Child,
    http: SocketAddr,
    ready: serde_json::Value,
    output: PathBuf,
}

impl NodeProcess {
    /// Starts `bin run --config <config> --ready-file <dir>/ready.json`, its standard
    /// error in `dir/<name>.log`, and waits up to `within` for the ready file.
    ///
    /// A ready file left by an earlier process in `dir` is removed first, so that a
    /// restart on the same directory waits for the new process. The node writes the file
    /// atomically once its listeners are bound (`provmesh_node::run::write_ready_file`),
    /// so a file that is there is whole.
    ///
    /// # Panics
    ///
    /// If the process does not start, exits before it is ready, is not ready within
    /// `within`, or its ready file names no HTTP address.
    pub fn start(bin: &Path, config: &Path, dir: &Path, name: &str, within: Duration) -> Self {
        let ready = dir.join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let output = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&output).unwrap();
        let child = provmesh_command(bin)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--ready-file")
            .arg(&ready)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn provmesh-under-test run");
        let mut node = NodeProcess {
            child,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            ready: serde_json::Value::Null,
            output,
        };
        let deadline = Instant::now() + within;
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let json: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("the ready file is not JSON ({e}): {text}"));
                node.http = json["http"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or_else(|| panic!("no http address in the ready file: {text}"));
                node.ready = json;
                return node;
            }
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!(
                    "the node ({name}) exited before it was ready ({status}):\n{}",
                    node.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no ready file from the node ({name}) within {within:?}:\n{}",
                node.output()
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// The ready file's document: every bound address (`grpc`, `mesh`, …).
    pub fn ready(&self) -> &serde_json::Value {
        &self.ready
    }

    /// Where the node serves its HTTP API.
    pub fn http(&self) -> SocketAddr {
        self.http
    }

    /// The base URL of the node's HTTP API (`http://IP:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Everything the node has written to standard error so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and wait up to `within` for the exit (killed and failed beyond).
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        wait_with_deadline(&mut self.child, "the node after SIGTERM", within)
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

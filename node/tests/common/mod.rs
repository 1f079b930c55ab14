//! Helpers shared by the integration tests: running the built `provmesh` binary and
//! checking how it exited, writing configuration files, a raw HTTP/1.1 GET, and deadlines
//! so a test always ends.

#![allow(dead_code)]
// each test binary uses a different subset
// Test support: a failed setup step should fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub(crate) mod authority;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any single wait in a test may take before the test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// A `Command` for the built binary, with RUST_LOG cleared so the environment of the
/// test runner cannot change what the node logs.
pub(crate) fn provmesh() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_provmesh"));
    cmd.env_remove("RUST_LOG").env_remove("PROVMESH_CONFIG");
    cmd
}

/// Runs the binary with `args` and `stdin`, returning its output.
pub(crate) fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = provmesh()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn provmesh");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait for provmesh")
}

/// Runs the binary with `args`, returning its output.
pub(crate) fn run(args: &[&str]) -> Output {
    provmesh().args(args).output().expect("run provmesh")
}

/// Standard error as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts that the command exited with `code` and that its standard error says each of
/// `expected`.
#[track_caller]
pub(crate) fn assert_exit(output: &Output, code: i32, expected: &[&str]) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    for part in expected {
        assert!(stderr.contains(part), "expected {part:?} in:\n{stderr}");
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// A configuration for a node in `dir` with metrics on a free loopback port, followed
/// by `extra` TOML.
pub(crate) fn node_config(dir: &Path, extra: &str) -> String {
    format!(
        "[node]\ntrust_domain = \"org-a.example\"\ndata_dir = {:?}\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n\n[shutdown]\ngrace_period = \"5s\"\n\n[mesh]\nenabled = false\n{extra}",
        dir.join("data").display().to_string()
    )
}

/// A running `provmesh run` process, killed on drop so a failing test never leaves it
/// behind.
pub(crate) struct NodeProcess {
    pub(crate) child: Child,
}

impl NodeProcess {
    /// Starts `provmesh <global> run --config <config> --ready-file <ready>`.
    pub(crate) fn start(global: &[&str], config: &Path, ready: &Path) -> Self {
        let child = provmesh()
            .args(global)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--ready-file")
            .arg(ready)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn provmesh run");
        Self { child }
    }

    /// Sends `signal` (e.g. "TERM") with kill(1).
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `limit` for the process to exit; kills it and panics otherwise.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("provmesh did not exit within {limit:?}; killed it");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the (exited) process wrote to stderr.
    pub(crate) fn stderr(&mut self) -> String {
        let mut text = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut text);
        }
        text
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

/// Waits for the ready file and returns it parsed; panics after [`DEADLINE`], or
/// earlier if the node exits.
pub(crate) fn wait_ready(node: &mut NodeProcess, ready: &Path) -> serde_json::Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(ready) {
            return serde_json::from_str(&text).expect("ready file is JSON");
        }
        if let Some(status) = node.child.try_wait().expect("try_wait") {
            panic!(
                "provmesh exited before it was ready ({status}):\n{}",
                node.stderr()
            );
        }
        assert!(
            Instant::now() < deadline,
            "no ready file within {DEADLINE:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A plain HTTP/1.1 GET; returns the status code and the body.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, DEADLINE).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("response has a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    (status, head.to_owned(), body.to_owned())
}

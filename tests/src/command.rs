//! Child processes of the end-to-end tests, always within a bound: waiting for one to
//! exit (killed and failed beyond the bound), running a command with its output in files,
//! and describing what a command printed for an assertion message; and one HTTP request
//! to a node, bounded too ([`http`]).
//!
//! The functions panic on failure: they are test scaffolding, and a failed step must fail
//! the test that called it, loudly.

// Test scaffolding: a failed step fails the calling test (see the module header).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// How often a wait looks at the child again.
const POLL_EVERY: Duration = Duration::from_millis(10);

/// What a finished command printed (lossy UTF-8).
#[derive(Debug)]
pub struct Ran {
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Ran {
    /// The exit status and both outputs, for an assertion message.
    pub fn describe(&self) -> String {
        format_run(&self.status, &self.stdout, &self.stderr)
    }
}

/// The exit status and both outputs of `output`, for an assertion message.
pub fn describe(output: &Output) -> String {
    format_run(
        &output.status,
        &String::from_utf8_lossy(&output.stdout),
        &String::from_utf8_lossy(&output.stderr),
    )
}

fn format_run(status: &ExitStatus, stdout: &str, stderr: &str) -> String {
    format!("exit status {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
}

/// Waits up to `limit` for `child` to exit and returns its status; beyond it, kills and
/// reaps the child and panics, naming it `what`.
pub fn wait_with_deadline(child: &mut Child, what: &str, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {limit:?}; killed it");
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Runs `command` to completion within `limit` (killed and failed beyond), with no
/// standard input and its output going to `dir/<name>.stdout` and `dir/<name>.stderr`: a
/// pipe nobody reads while waiting could fill up and stall it.
pub fn run_within(mut command: Command, dir: &Path, name: &str, limit: Duration) -> Ran {
    let stdout_path = dir.join(format!("{name}.stdout"));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
    let status = wait_with_deadline(&mut child, name, limit);
    Ran {
        status,
        stdout: std::fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
    }
}

/// How long [`http`] waits for an answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// `method path` with `body` to `address` (HTTP/1.0, so the server closes the
/// connection): the status code and the response body.
pub fn http(method: &str, address: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

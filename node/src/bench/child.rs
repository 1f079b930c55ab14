//! The benches' own nodes: `provmesh run` child processes of this very executable, each
//! started from a configuration file with `--ready-file` and waited for within a bound,
//! stopped with SIGTERM (and its exit reported), killed on drop if still running; and
//! the work directory they live in, removed afterwards unless the caller keeps it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a child may take to write its ready file.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a child may take to exit after SIGTERM (the benches' nodes have shorter
/// grace periods).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a child's output quoted when it fails.
const OUTPUT_TAIL_LINES: usize = 30;

/// Why a bench's node could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChildError {
    /// A file or directory could not be written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The process could not be started, or it failed before it was ready.
    #[error("{name}: {reason}")]
    Start {
        /// The node's name in the bench.
        name: String,
        /// What went wrong, with the node's last output.
        reason: String,
    },
}

/// A directory for a bench's files: kept when the user named it, else a fresh temporary
/// one removed on drop.
#[derive(Debug)]
pub struct WorkDir {
    /// Where it is.
    pub path: PathBuf,
    remove: bool,
}

impl WorkDir {
    /// `path`, created if missing, kept afterwards.
    pub fn keep(path: &Path) -> Result<WorkDir, ChildError> {
        std::fs::create_dir_all(path).map_err(|source| ChildError::File {
            path: path.to_owned(),
            source,
        })?;
        Ok(WorkDir {
            path: path.to_owned(),
            remove: false,
        })
    }

    /// A new directory under the system's temporary directory, removed on drop.
    pub fn temporary() -> Result<WorkDir, ChildError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("provmesh-bench-{}-{nanos:09}", std::process::id()));
        // `create_dir` (not `_all`) fails if the name is taken.
        std::fs::create_dir(&path).map_err(|source| ChildError::File {
            path: path.clone(),
            source,
        })?;
        Ok(WorkDir { path, remove: true })
    }

    /// Keeps the directory after all (to show a failed run's files).
    pub fn persist(&mut self) {
        self.remove = false;
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes `text` to `path`.
pub fn write_file(path: &Path, text: &str) -> Result<(), ChildError> {
    std::fs::write(path, text).map_err(|source| ChildError::File {
        path: path.to_owned(),
        source,
    })
}

/// This executable, to start children of.
pub fn provmesh_exe() -> Result<PathBuf, ChildError> {
    std::env::current_exe().map_err(|e| ChildError::Start {
        name: "provmesh".to_owned(),
        reason: format!("cannot find the provmesh executable: {e}"),
    })
}

/// `provmesh <args>` with an environment that cannot change what it does: `RUST_LOG`
/// and `PROVMESH_CONFIG` are cleared.
pub fn provmesh_command(exe: &Path) -> Command {
    provmesh_command_on(exe, None)
}

/// [`provmesh_command`] under `taskset -c <cpus>` when `cpus` is given.
fn provmesh_command_on(exe: &Path, cpus: Option<&str>) -> Command {
    let mut command = match cpus {
        Some(cpus) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpus]).arg(exe);
            taskset
        }
        None => Command::new(exe),
    };
    command
        .env_remove("RUST_LOG")
        .env_remove("PROVMESH_CONFIG")
        .stdin(Stdio::null());
    command
}

/// A running `provmesh run` child. Killed (SIGKILL) on drop if still running.
#[derive(Debug)]
pub struct ChildNode {
    name: String,
    child: Child,
    ready: serde_json::Value,
    output: PathBuf,
}

/// How a child stopped.
#[derive(Debug)]
pub struct ChildExit {
    /// Exit status 0 after SIGTERM.
    pub clean: bool,
    /// The exit status, or what went wrong, with the child's last output.
    pub description: String,
}

impl ChildNode {
    /// Starts `provmesh run --config <dir>/<name>.toml` (written by the caller) with its
    /// ready file and output (`<name>.log`) in `dir`, and waits until it is ready.
    pub async fn start(exe: &Path, dir: &Path, name: &str) -> Result<ChildNode, ChildError> {
        Self::start_on(exe, dir, name, None).await
    }

    /// [`ChildNode::start`], on the CPUs `cpus` (a `taskset -c` list such as `0` or
    /// `0,1`) when given, so that a bench's node and its clients do not share cores.
    pub async fn start_on(
        exe: &Path,
        dir: &Path,
        name: &str,
        cpus: Option<&str>,
    ) -> Result<ChildNode, ChildError> {
        let config = dir.join(format!("{name}.toml"));
        let ready_file = dir.join(format!("{name}.ready.json"));
        let output = dir.join(format!("{name}.log"));
        let _ = std::fs::remove_file(&ready_file);
        let stderr = std::fs::File::create(&output).map_err(|source| ChildError::File {
            path: output.clone(),
            source,
        })?;
        let child = provmesh_command_on(exe, cpus)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--ready-file")
            .arg(&ready_file)
            .stdout(Stdio::null())
            // A file, not a pipe: nobody reads the child's output while it runs, and a
            // full pipe would stall it.
            .stderr(stderr)
            .spawn()
            .map_err(|e| ChildError::Start {
                name: name.to_owned(),
                reason: format!("cannot start {}: {e}", exe.display()),
            })?;
        let mut node = ChildNode {
            name: name.to_owned(),
            child,
            ready: serde_json::Value::Null,
            output,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready_file)
                && let Ok(json) = serde_json::from_str::<serde_json::Value>(&text)
            {
                node.ready = json;
                return Ok(node);
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                return Err(node.failed(format!("it exited before it was ready ({status})")));
            }
            if Instant::now() > deadline {
                return Err(node.failed(format!("no ready file within {READY_TIMEOUT:?}")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn failed(&self, what: String) -> ChildError {
        ChildError::Start {
            name: self.name.clone(),
            reason: format!("{what}; its last output:\n{}", self.output_tail()),
        }
    }

    /// The node's name in the bench.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The ready file's contents: the bound addresses (`http`, `grpc`, `mesh`, …).
    pub fn ready(&self) -> &serde_json::Value {
        &self.ready
    }

    /// The address the ready file gives for `key` (e.g. `"http"`), if any.
    pub fn address(&self, key: &str) -> Option<&str> {
        self.ready[key].as_str()
    }

    /// The end of the child's output.
    pub fn output_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(OUTPUT_TAIL_LINES)..].join("\n")
    }

    /// Stops the child with SIGTERM and waits for it; says how it exited.
    pub async fn stop(mut self) -> ChildExit {
        let unclean = |description: String| ChildExit {
            clean: false,
            description,
        };
        match Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => return unclean(format!("kill -TERM failed: {status}")),
            Err(e) => return unclean(format!("cannot run kill(1): {e}")),
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => {
                    return ChildExit {
                        clean: true,
                        description: status.to_string(),
                    };
                }
                Ok(Some(status)) => {
                    return unclean(format!(
                        "{status}; its last output:\n{}",
                        self.output_tail()
                    ));
                }
                // Drop kills it.
                Ok(None) if Instant::now() > deadline => {
                    return unclean(format!(
                        "it did not exit within {STOP_TIMEOUT:?} of SIGTERM (killed it); its \
                         last output:\n{}",
                        self.output_tail()
                    ));
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return unclean(format!("cannot wait for it: {e}")),
            }
        }
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

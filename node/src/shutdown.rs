//! Graceful shutdown: the signal every task observes, the OS signals that fire it, and
//! the supervised set of tasks that must finish within the grace period.
//!
//! The run loop owns the one [`ShutdownTrigger`]; every task gets a [`Shutdown`] clone
//! and stops when [`Shutdown::triggered`] resolves. Tasks are spawned into [`Tasks`],
//! which reports a task that ends on its own (a failure while the node is running) and
//! waits for all of them, bounded by the grace period, once shutdown has begun.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// Creates a shutdown signal: the trigger for its owner and the first observer.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

/// Fires the shutdown signal. Owned by the run loop; dropping it also fires the signal,
/// so a task can never wait forever for a trigger that no longer exists.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    /// Tells every observer to shut down. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// A new observer.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

/// Observes the shutdown signal; cheap to clone, one per task.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Whether shutdown has begun.
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow() || self.rx.has_changed().is_err()
    }

    /// Resolves once shutdown has begun (or the trigger was dropped). Cancel-safe.
    pub async fn triggered(&self) {
        let mut rx = self.rx.clone();
        // An error means the trigger is gone, which is shutdown too.
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

/// The OS signal that asked the node to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (what Kubernetes and systemd send).
    Terminate,
}

impl std::fmt::Display for StopSignal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Interrupt => "SIGINT",
            Self::Terminate => "SIGTERM",
        })
    }
}

/// Listens for SIGINT and SIGTERM. Create it early so the handlers are installed
/// before the node reports that it is ready.
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the signal handlers. Must be called inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) -> StopSignal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => StopSignal::Terminate,
                _ = self.interrupt.recv() => StopSignal::Interrupt,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => StopSignal::Interrupt,
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// The error a supervised task ends with.
pub type TaskError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How one supervised task ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct TaskExit {
    /// The name it was spawned under.
    pub name: &'static str,
    /// `Ok(())` if it returned normally, otherwise why not (including a panic).
    pub result: Result<(), TaskError>,
}

/// The node's long-running tasks, each with a name for logs and errors.
#[derive(Debug, Default)]
pub struct Tasks {
    set: JoinSet<Result<(), TaskError>>,
    /// Name of every running task, so a panic can be reported by name.
    names: HashMap<tokio::task::Id, &'static str>,
}

impl Tasks {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task` under `name`. The task must observe a [`Shutdown`] and return once
    /// it fires.
    pub fn spawn<F, E>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<TaskError>,
    {
        let handle = self
            .set
            .spawn(async move { task.await.map_err(Into::into) });
        self.names.insert(handle.id(), name);
    }

    /// How many tasks are still running.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Waits for the next task to end; `None` if there are none. Cancel-safe.
    pub async fn next_exit(&mut self) -> Option<TaskExit> {
        let (id, result) = match self.set.join_next_with_id().await? {
            Ok((id, result)) => (id, result),
            Err(join_error) => (
                join_error.id(),
                Err(format!("task did not complete: {join_error}").into()),
            ),
        };
        let name = self.names.remove(&id).unwrap_or("<unnamed>");
        Some(TaskExit { name, result })
    }

    /// After shutdown was triggered: waits up to `grace` for every task to end, then
    /// aborts the rest. Returns the tasks that failed, or [`DrainError::GraceExpired`].
    pub async fn drain(mut self, grace: Duration) -> Result<Vec<TaskExit>, DrainError> {
        let mut failed = Vec::new();
        let all_done = async {
            while let Some(exit) = self.next_exit().await {
                if exit.result.is_err() {
                    failed.push(exit);
                }
            }
        };
        if tokio::time::timeout(grace, all_done).await.is_err() {
            let still_running = self.set.len();
            self.set.abort_all();
            while self.set.join_next().await.is_some() {}
            return Err(DrainError::GraceExpired {
                grace,
                still_running,
            });
        }
        Ok(failed)
    }
}

/// Why draining the tasks did not end cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DrainError {
    /// Some tasks did not end within the grace period and were aborted.
    #[error(
        "{still_running} task(s) still running after the {} shutdown grace period; aborted them",
        crate::config::format_duration(*grace)
    )]
    GraceExpired {
        /// The grace period.
        grace: Duration,
        /// How many tasks were aborted.
        still_running: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn observers_see_the_trigger() {
        let (trigger, shutdown) = channel();
        let other = trigger.subscribe();
        assert!(!shutdown.is_triggered());
        trigger.trigger();
        shutdown.triggered().await;
        other.triggered().await;
        assert!(shutdown.is_triggered());
        // Observing again resolves at once.
        shutdown.clone().triggered().await;
    }

    #[tokio::test]
    async fn dropping_the_trigger_is_shutdown() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        shutdown.triggered().await;
        assert!(shutdown.is_triggered());
    }

    #[tokio::test]
    async fn drain_waits_for_cooperative_tasks() {
        let (trigger, shutdown) = channel();
        let mut tasks = Tasks::new();
        for _ in 0..3 {
            let shutdown = shutdown.clone();
            tasks.spawn("cooperative", async move {
                shutdown.triggered().await;
                Ok::<_, std::io::Error>(())
            });
        }
        tasks.spawn("failing", async move {
            Err::<(), _>(std::io::Error::other("boom"))
        });
        trigger.trigger();
        let failed = tasks.drain(Duration::from_secs(5)).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].name, "failing");
    }

    #[tokio::test]
    async fn drain_gives_up_after_the_grace_period() {
        let (trigger, _shutdown) = channel();
        let mut tasks = Tasks::new();
        tasks.spawn("stubborn", async {
            std::future::pending::<()>().await;
            Ok::<_, std::io::Error>(())
        });
        trigger.trigger();
        let err = tasks.drain(Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(
            err,
            DrainError::GraceExpired {
                still_running: 1,
                ..
            }
        ));
    }
}

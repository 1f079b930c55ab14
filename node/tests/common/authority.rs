//! An authority node running in the test process (dev identity, domain log, code-signing
//! CA) on loopback with ephemeral ports, stopped within a bound.

#![allow(dead_code)]
// each test binary uses a different subset
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use provmesh_node::config::Config;
use provmesh_node::identity::{DevCa, DevCaConfig};
use provmesh_node::run::{self, Listeners};
use provmesh_protocol::spiffe::{SpiffeId, TrustDomain};
use tokio::sync::oneshot;

/// The trust domain of the authority.
pub(crate) const TD: &str = "org-a.example";

/// A running authority of [`TD`].
pub(crate) struct TestAuthority {
    /// Its HTTP API, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// Its mTLS listener, when `authority.ca.mtls_listen` was configured.
    pub(crate) mtls: Option<SocketAddr>,
    /// Its admission webhook's HTTPS listener, when `admission.listen` was configured.
    pub(crate) admission: Option<SocketAddr>,
    /// Its data directory.
    pub(crate) data_dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl TestAuthority {
    /// Starts an authority; `extra` is appended to its configuration (tables of its own,
    /// e.g. `[authority.ca]` settings).
    pub(crate) async fn start(extra: &str) -> TestAuthority {
        Self::start_in(tempfile::tempdir().unwrap(), extra).await
    }

    /// [`TestAuthority::start`] on an existing data directory (e.g. after
    /// [`TestAuthority::stop`], to restart).
    pub(crate) async fn start_in(data_dir: tempfile::TempDir, extra: &str) -> TestAuthority {
        let text = format!(
            "[node]\ntrust_domain = \"{TD}\"\ndata_dir = {dir:?}\n\
             [metrics]\nenabled = false\n[grpc]\nenabled = false\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [mesh]\nenabled = false\n\
             [authority]\nenabled = true\n{extra}",
            dir = data_dir.path().display().to_string(),
        );
        let config = Config::parse(&text).unwrap();
        let listeners = Listeners::bind(&config).await.unwrap();
        let node = run::start(&config, listeners).await.unwrap();
        let url = format!("http://{}", node.addrs().http.unwrap());
        let mtls = node.addrs().mtls;
        let admission = node.addrs().admission;
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            node.run_until(async move {
                let _ = stopped.await;
                "test finished"
            })
            .await
            .unwrap();
        });
        TestAuthority {
            url,
            mtls,
            admission,
            data_dir,
            stop: Some(stop),
            done: Some(done),
        }
    }

    /// Stops the node; it must finish within its grace period (10 s) even with client
    /// connections still open. Returns the data directory, which outlives the node.
    pub(crate) async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(Duration::from_secs(20), done)
                .await
                .unwrap()
                .unwrap();
        }
        self.data_dir
    }

    /// The dev CA the node created: workloads of the domain get their SVIDs from it.
    pub(crate) fn dev_ca(&self) -> DevCa {
        DevCa::open(
            &self.data_dir.path().join("identity"),
            &TrustDomain::parse(TD).unwrap(),
            DevCaConfig::default(),
            SystemTime::now(),
        )
        .unwrap()
    }

    /// The authority's own SPIFFE ID: with the dev identity an authority holds the
    /// domain's authority ID (`spiffe://<trust domain>/provmesh/authority`).
    pub(crate) fn authority_id(&self) -> SpiffeId {
        SpiffeId::parse(&format!("spiffe://{TD}/provmesh/authority")).unwrap()
    }
}

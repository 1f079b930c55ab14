//! The admission webhook over HTTPS (`admission.listen`), as the Kubernetes API server
//! calls it: a real authority on loopback serving `POST /admission/v1/validate` with a
//! certificate and key from PEM files, and a rustls client that trusts only that
//! certificate. Reviews are answered (a tag-only image denied with the reason, an object
//! that runs no image admitted, garbage refused with 400), and a certificate replaced on
//! disk, as cert-manager renews it, is served from the next connection on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

mod common;

use common::authority::TestAuthority;

/// Writes a fresh self-signed certificate for `127.0.0.1` and its key to `dir` (as
/// cert-manager's Secret holds them) and returns the certificate.
fn write_pair(dir: &Path) -> CertificateDer<'static> {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    cert.der().clone()
}

/// POSTs `body` to the webhook at `addr` over a new TLS connection that trusts only
/// `trusted`: the status and body, or the handshake's failure.
async fn review(
    addr: SocketAddr,
    trusted: &CertificateDer<'static>,
    body: &str,
) -> Result<(u16, String), String> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = hyper::Request::post("/admission/v1/validate")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn admission_review(kind: &str, object: &Value) -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "b0d8c4a2-3f5e-4c1d-9e2a-7f6b5a4c3d21",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "operation": "CREATE",
            "object": object,
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_over_https_and_follows_a_renewed_certificate() {
    let tls_dir = tempfile::tempdir().unwrap();
    let first = write_pair(tls_dir.path());
    let config = format!(
        "[admission]\nenabled = true\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n",
        tls_dir.path().join("tls.crt").display().to_string(),
        tls_dir.path().join("tls.key").display().to_string(),
    );
    let authority = TestAuthority::start(&config).await;
    let addr = authority.admission.expect("the HTTPS listener is bound");

    let pod = admission_review(
        "Pod",
        &json!({"spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]}}),
    );
    let (status, body) = review(addr, &first, &pod).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["response"]["uid"],
        "b0d8c4a2-3f5e-4c1d-9e2a-7f6b5a4c3d21"
    );
    assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.containers[app] registry.example/app:1.0: tag-only"),
        "{message}"
    );

    let config_map = admission_review("ConfigMap", &json!({"data": {"a": "b"}}));
    let (status, body) = review(addr, &first, &config_map).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["response"]["allowed"],
        true
    );

    let (status, body) = review(addr, &first, "not a review").await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("AdmissionReview"), "{body}");

    // cert-manager renews the certificate: the next connection gets the new one.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = write_pair(tls_dir.path());
    let (status, _) = review(addr, &second, &config_map).await.unwrap();
    assert_eq!(status, 200);
    let refused = review(addr, &first, &config_map).await.unwrap_err();
    assert!(refused.contains("TLS handshake"), "{refused}");

    // A pair that does not parse keeps the renewed one in service.
    std::fs::write(tls_dir.path().join("tls.crt"), "garbage").unwrap();
    let (status, _) = review(addr, &second, &config_map).await.unwrap();
    assert_eq!(status, 200);

    authority.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_listener_without_its_certificate_does_not_start() {
    use provmesh_node::config::Config;
    use provmesh_node::run::{self, Listeners};
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[node]\ntrust_domain = \"org-a.example\"\ndata_dir = {:?}\n\
         [metrics]\nenabled = false\n[grpc]\nenabled = false\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[mesh]\nenabled = false\n\
         [authority]\nenabled = true\n\
         [admission]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\
         tls_cert = {:?}\ntls_key = {:?}\n",
        dir.path().display().to_string(),
        dir.path().join("missing.crt").display().to_string(),
        dir.path().join("missing.key").display().to_string(),
    );
    let config = Config::parse(&text).unwrap();
    let listeners = Listeners::bind(&config).await.unwrap();
    let error = run::start(&config, listeners)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing.crt"), "{error}");
}

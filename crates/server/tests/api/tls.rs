//! Outgoing TLS: webhooks reach an https receiver whose certificate chains
//! to a CA the operator added (`SETTLE_TLS_EXTRA_ROOTS`), and a receiver
//! whose CA nobody trusts gets no request at all, only logged failures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

use crate::support::{TestApp, both};
use crate::webhooks::{endpoint, pay, settled, webhook_app_with};

/// A private CA that signs receiver certificates for `localhost`.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    fn write_pem(&self) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("settle-test-ca-{}-{n}.pem", std::process::id()));
        std::fs::write(&path, self.issuer.pem()).unwrap();
        path
    }

    fn leaf(&self) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    }
}

/// An https receiver answering 200, counting the requests that got through
/// the handshake.
async fn https_receiver(ca: &Ca) -> (String, Arc<AtomicUsize>) {
    let (cert, key) = ca.leaf();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    (format!("https://localhost:{}/hook", addr.port()), seen)
}

both!(https_receivers_need_a_trusted_ca, https_receivers_case);
async fn https_receivers_case(app: &TestApp) {
    let trusted = Ca::new();
    let stranger = Ca::new();
    let roots = trusted.write_pem();
    let w = webhook_app_with(app, "20ms,20ms,20ms", true, |c| {
        c.queue.tls_extra_roots = Some(roots.clone());
    })
    .await;
    let (good_url, good_seen) = https_receiver(&trusted).await;
    let (bad_url, bad_seen) = https_receiver(&stranger).await;
    let (good, _) = endpoint(&w, &good_url, json!(["payment.succeeded"])).await;
    let (bad, _) = endpoint(&w, &bad_url, json!(["payment.succeeded"])).await;
    pay(&w, 3).await;

    settled(&w, &good, 3, "delivered").await;
    assert_eq!(good_seen.load(Ordering::SeqCst), 3);

    // The untrusted receiver's deliveries run out of attempts, each one
    // logged with the handshake's refusal; not one request reached it.
    let failed = settled(&w, &bad, 3, "failed").await;
    let attempts = w
        .get(&format!(
            "/v1/webhook_deliveries/{}/attempts",
            failed[0]["id"].as_str().unwrap()
        ))
        .await;
    let first = &attempts.body["data"][0];
    assert!(first["response_status"].is_null(), "{first}");
    let error = first["error"].as_str().unwrap_or_default();
    assert!(error.contains("certificate"), "the attempt says why: {error}");
    assert_eq!(bad_seen.load(Ordering::SeqCst), 0);
    std::fs::remove_file(&roots).ok();
    w.finish().await;
}

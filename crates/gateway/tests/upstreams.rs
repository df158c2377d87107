//! Reaching upstreams: HTTPS with the public roots or an operator's private CA (a real TLS
//! server with a certificate made here), and the address policy — link-local addresses
//! (cloud metadata) refused by default after the name is resolved, loopback and private
//! ones refused when the operator says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{World, initialize, rpc, tool_call};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use std::sync::Arc;

fn priced() -> serde_json::Value {
    json!([{"name": "echo", "pricing": {"model": "per_request", "price": "0.002"}, "free_calls": 0, "free_reset": "lifetime"}])
}

/// The example MCP servers over HTTPS on `localhost`, with a certificate from a CA made for
/// this test; returns the base URL and the CA's certificate (PEM).
async fn tls_examples() -> (String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Tollgate test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server_cert =
        CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&server_key, &*ca).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = axum::Router::new().nest("/_examples", tollgate_examples::router());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (format!("https://localhost:{port}"), ca.pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_behind_a_private_ca_are_called_and_billed() {
    let (upstream, ca_pem) = tls_examples().await;
    let world = World::with(|c| c.upstream_ca_pem = vec![ca_pem.clone().into_bytes()]).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let url = format!("{upstream}/_examples/echo/mcp");
    let (_, _, key) = world.listed(&publisher, &consumer, "secure", &url, "0.0001", priced()).await;
    let before = world.balance(&consumer).await;

    let init = world.mcp(Some(&key), "secure/1.0.0", &initialize(1), &[]).await;
    assert_eq!(init.status, 200, "{}", init.text);
    let session = init.header("mcp-session-id").expect("a session over TLS");
    let headers = [("mcp-session-id", session.as_str()), ("mcp-protocol-version", "2025-06-18")];
    let call =
        world.mcp(Some(&key), "secure/1.0.0", &tool_call(2, "echo", json!({"text": "over tls"})), &headers).await;
    assert_eq!(call.status, 200, "{}", call.text);
    assert_eq!(rpc(&call)["result"]["content"][0]["text"], "over tls");
    assert_eq!(before - world.balance(&consumer).await, 100_000 + 2_000_000, "the base fee and the tool's price");
    world.assert_ledger_balances().await;

    // A gateway that does not trust the private CA refuses the upstream's certificate.
    let strict = World::new().await;
    let publisher = strict.person("p@example.com").await;
    let consumer = strict.person("c@example.com").await;
    let (_, _, key) = strict.listed(&publisher, &consumer, "secure", &url, "0.0001", priced()).await;
    let before = strict.balance(&consumer).await;
    let refused = strict.mcp(Some(&key), "secure/1.0.0", &initialize(1), &[]).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(strict.record(&refused).await.error_code.as_deref(), Some("upstream_unavailable"));
    assert_eq!(strict.balance(&consumer).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_local_upstreams_are_refused_unless_allowed() {
    let world = World::new().await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let before = world.balance(&consumer).await;
    // Refused before any packet is sent: these addresses are never contacted.
    for (slug, url) in [("metadata", "http://169.254.169.254/mcp"), ("linklocal6", "http://[fe80::1]:8080/mcp")] {
        let (_, _, key) = world.listed(&publisher, &consumer, slug, url, "0.0001", priced()).await;
        let r = world.mcp(Some(&key), &format!("{slug}/1.0.0"), &tool_call(1, "echo", json!({})), &[]).await;
        assert_eq!(r.status, 503, "{slug}: {}", r.text);
        let message = rpc(&r)["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("link-local"), "a clear reason: {message}");
        assert!(!message.contains("169.254") && !message.contains("fe80"), "the private address is not shown");
        assert_eq!(world.record(&r).await.error_code.as_deref(), Some("upstream_address_refused"));
    }
    assert_eq!(world.balance(&consumer).await, before, "refused upstreams cost nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_upstreams_can_be_denied_by_the_operator() {
    let world = World::with(|c| c.upstream_addresses.allow_private = false).await;
    let publisher = world.person("p@example.com").await;
    let consumer = world.person("c@example.com").await;
    let port = world.upstream.rsplit(':').next().unwrap().to_string();
    // A literal address, and a name that resolves to loopback.
    for (slug, host) in [("literal", "127.0.0.1"), ("named", "localhost")] {
        let url = format!("http://{host}:{port}/_examples/echo/mcp");
        let (_, _, key) = world.listed(&publisher, &consumer, slug, &url, "0", priced()).await;
        let r = world.mcp(Some(&key), &format!("{slug}/1.0.0"), &initialize(1), &[]).await;
        assert_eq!(r.status, 503, "{slug}: {}", r.text);
        assert!(rpc(&r)["error"]["message"].as_str().unwrap().contains("loopback or private"), "{}", r.text);
    }
}

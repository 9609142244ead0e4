//! Mutual TLS between services (`[grpc_tls]`, #22 item 8): with it on, a customer's
//! conversation runs through every service over TLS; the internal gRPC ports refuse plaintext,
//! clients without a certificate and certificates from another CA; and ChannelDirectory (it
//! hands out decrypted auth tokens) refuses a certificate of our CA that names a service not
//! allowed there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use switchboard_cli::tls_certs;
use switchboard_proto::session::v1 as spb;
use switchboard_service_kit::grpc::{GrpcTls, Timeouts, channel};

use crate::harness::*;

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn issue(dir: &Path, services: &[&str]) {
    let services: Vec<String> = services.iter().map(|s| (*s).to_owned()).collect();
    let bundle = tls_certs::generate(&services, &["127.0.0.1".to_owned(), "localhost".to_owned()], 1).unwrap();
    tls_certs::write(dir, &bundle).unwrap();
}

fn tls_as(dir: &Path, service: &str) -> GrpcTls {
    GrpcTls {
        enabled: true,
        ca_file: Some(dir.join("ca.crt")),
        cert_file: Some(dir.join(format!("{service}.crt"))),
        key_file: Some(dir.join(format!("{service}.key"))),
        server_name: None,
    }
}

async fn resolve(url: &str, tls: &GrpcTls, channel_id: &str) -> Result<spb::ResolveChannelResponse, tonic::Status> {
    let channel = channel(url, tls, Timeouts::call(Duration::from_secs(5))).unwrap();
    spb::channel_directory_client::ChannelDirectoryClient::new(channel)
        .resolve_channel(spb::ResolveChannelRequest {
            channel_id: channel_id.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn with_mutual_tls_a_conversation_runs_and_only_named_services_read_the_directory() {
    let dir = TempDir(std::env::temp_dir().join(format!("sb-mtls-{}", uuid::Uuid::new_v4().simple())));
    issue(&dir.0, &["ingress", "api"]);
    let other_ca = TempDir(dir.0.with_extension("other"));
    issue(&other_ca.0, &["ingress"]);
    // The one process runs every service under one identity, a certificate naming ingress.
    let ingress = tls_as(&dir.0, "ingress");
    let w = World::start_with(json!({ "grpc_tls": ingress })).await;

    // A conversation through every service: webhook → session → routing → offer over the API →
    // accept → reply → sender (credentials from ChannelDirectory) → Twilio → status callbacks.
    w.conversation_with_ana("+5511955554444", "answered over tls").await;
    let sent = w.emulator().sent();
    assert_eq!(sent.iter().filter(|m| m.body.as_deref() == Some("answered over tls")).count(), 1);

    let directory = w.stack.urls.session_directory.clone();
    // An allowed service reads the token.
    let resolved = resolve(&directory, &ingress, &w.channel_id).await.unwrap();
    assert_eq!(resolved.auth_token, TOKEN);
    // Our CA signed api's certificate, but api may not read tokens.
    let refused = resolve(&directory, &tls_as(&dir.0, "api"), &w.channel_id).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("certificate"), "{refused:?}");
    // Another CA's certificate, even one naming ingress, fails the handshake.
    let foreign = resolve(&directory, &tls_as(&other_ca.0, "ingress"), &w.channel_id)
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), tonic::Code::Unavailable, "{foreign:?}");
    // No client certificate: the server refuses the handshake.
    let anonymous = {
        let ca = tonic::transport::Certificate::from_pem(std::fs::read(dir.0.join("ca.crt")).unwrap());
        let endpoint = tonic::transport::Endpoint::from_shared(directory.replacen("http://", "https://", 1))
            .unwrap()
            .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(ca))
            .unwrap();
        spb::channel_directory_client::ChannelDirectoryClient::new(endpoint.connect_lazy())
            .resolve_channel(spb::ResolveChannelRequest {
                channel_id: w.channel_id.clone(),
            })
            .await
            .unwrap_err()
    };
    assert!(format!("{anonymous:?}").contains("CertificateRequired"), "{anonymous:?}");
    // Plaintext gets nothing from any internal port.
    for url in [&directory, &w.stack.urls.session_grpc, &w.stack.urls.routing_grpc] {
        let plain = resolve(url, &GrpcTls::default(), &w.channel_id).await.unwrap_err();
        assert_ne!(plain.code(), tonic::Code::Ok, "{url}: {plain:?}");
        assert!(
            matches!(
                plain.code(),
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Internal
            ),
            "{url}: {plain:?}"
        );
    }
    w.stop().await;
}

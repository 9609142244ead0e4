//! Internal gRPC, built one way everywhere: the client channel every service uses to reach
//! another, the server builder, and optional mutual TLS for both (`[grpc_tls]`).
//!
//! With `grpc_tls.enabled`, every server presents its certificate and demands one from its
//! clients, signed by `ca_file`; every client presents its own and checks the server's against
//! the same CA. Internal URLs may keep their `http://` scheme: with TLS on they are dialled as
//! `https://`. A server can further restrict who may call it by the DNS names in the client's
//! certificate ([`ClientNames`]): session's `ChannelDirectory`, which hands out decrypted auth
//! tokens, admits only ingress, sender and bots.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use crate::ConfigError;

/// The `[grpc_tls]` section: mutual TLS between services, off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct GrpcTls {
    /// Turn mutual TLS on for every internal gRPC server and client of this service.
    pub enabled: bool,
    /// The CA (PEM) that signs every service's certificate: servers admit only clients it
    /// signed, clients trust only servers it signed.
    pub ca_file: Option<PathBuf>,
    /// This service's certificate chain (PEM), used as server and as client.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// The DNS name clients expect in servers' certificates; unset, the host of the URL dialled.
    /// One shared name (e.g. `switchboard.internal`) lets one SAN list serve every address.
    pub server_name: Option<String>,
}

/// Why the gRPC transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum GrpcSetupError {
    /// A certificate or key file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// Which file (`grpc_tls.ca_file`, …).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An internal URL is not a valid URI.
    #[error("invalid gRPC URL {url}: {reason}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// tonic refused the TLS configuration (e.g. a key that does not parse).
    #[error("TLS configuration refused: {0}")]
    Tls(#[from] tonic::transport::Error),
}

/// The material of an enabled [`GrpcTls`], read from its files.
struct Material {
    ca: Certificate,
    identity: Identity,
}

impl GrpcTls {
    /// Checks that an enabled configuration names its three files.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        for (key, value) in [
            ("grpc_tls.ca_file", &self.ca_file),
            ("grpc_tls.cert_file", &self.cert_file),
            ("grpc_tls.key_file", &self.key_file),
        ] {
            if value.as_deref().is_none_or(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::invalid(key, "must be set when grpc_tls.enabled is true"));
            }
        }
        if self.server_name.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::invalid("grpc_tls.server_name", "must not be empty when set"));
        }
        Ok(())
    }

    fn material(&self) -> Result<Option<Material>, GrpcSetupError> {
        if !self.enabled {
            return Ok(None);
        }
        let read = |what: &'static str, path: &Option<PathBuf>| -> Result<Vec<u8>, GrpcSetupError> {
            let path = path.as_deref().unwrap_or_else(|| Path::new(""));
            std::fs::read(path).map_err(|source| GrpcSetupError::Read {
                what,
                path: path.to_owned(),
                source,
            })
        };
        let ca = Certificate::from_pem(read("grpc_tls.ca_file", &self.ca_file)?);
        let identity = Identity::from_pem(
            read("grpc_tls.cert_file", &self.cert_file)?,
            read("grpc_tls.key_file", &self.key_file)?,
        );
        Ok(Some(Material { ca, identity }))
    }

    /// The server side: present our certificate, require a client certificate signed by the CA.
    pub fn server_config(&self) -> Result<Option<ServerTlsConfig>, GrpcSetupError> {
        Ok(self.material()?.map(|m| {
            ServerTlsConfig::new()
                .identity(m.identity)
                .client_ca_root(m.ca)
                .timeout(Duration::from_secs(5))
        }))
    }

    /// The client side: trust only the CA, present our certificate.
    pub fn client_config(&self) -> Result<Option<ClientTlsConfig>, GrpcSetupError> {
        Ok(self.material()?.map(|m| {
            let config = ClientTlsConfig::new().ca_certificate(m.ca).identity(m.identity);
            match &self.server_name {
                Some(name) => config.domain_name(name.clone()),
                None => config,
            }
        }))
    }
}

/// How long a client waits to connect and for each call.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Connecting (TCP and, with TLS, the handshake).
    pub connect: Duration,
    /// One call, end to end.
    pub request: Duration,
}

impl Timeouts {
    /// The usual internal call: 2 s to connect, `request` for the call.
    pub const fn call(request: Duration) -> Self {
        Self {
            connect: Duration::from_secs(2),
            request,
        }
    }
}

/// A lazily connected channel to the internal gRPC server at `url`, over mutual TLS when `tls`
/// is enabled (an `http://` URL is then dialled as `https://`).
pub fn channel(url: &str, tls: &GrpcTls, timeouts: Timeouts) -> Result<Channel, GrpcSetupError> {
    let client_tls = tls.client_config()?;
    let url = match (&client_tls, url.strip_prefix("http://")) {
        (Some(_), Some(rest)) => format!("https://{rest}"),
        _ => url.to_owned(),
    };
    let endpoint = Endpoint::from_shared(url.clone()).map_err(|e| GrpcSetupError::Url {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    let endpoint = match client_tls {
        Some(config) => endpoint.tls_config(config)?,
        None => endpoint,
    };
    Ok(endpoint.connect_timeout(timeouts.connect).timeout(timeouts.request).connect_lazy())
}

/// A server builder, serving mutual TLS when `tls` is enabled.
pub fn server(tls: &GrpcTls) -> Result<Server, GrpcSetupError> {
    let builder = Server::builder();
    Ok(match tls.server_config()? {
        Some(config) => builder.tls_config(config)?,
        None => builder,
    })
}

/// An interceptor that admits a call only from a client whose certificate names one of the
/// allowed services (a DNS name in its subject alternative names). It admits everything when
/// mutual TLS is off: then the network (a port of its own, NetworkPolicies) is the boundary.
#[derive(Debug, Clone)]
pub struct ClientNames {
    allowed: Option<Arc<[String]>>,
}

impl ClientNames {
    /// Admits clients named in `allowed` when `tls` is enabled; everyone otherwise.
    pub fn new(tls: &GrpcTls, allowed: &[String]) -> Self {
        Self {
            allowed: tls.enabled.then(|| allowed.iter().cloned().collect()),
        }
    }

    /// Whether a peer presenting `chain` (leaf first) may call.
    fn admits(&self, chain: Option<&[tonic::transport::CertificateDer<'static>]>) -> bool {
        let Some(allowed) = &self.allowed else { return true };
        let Some(leaf) = chain.and_then(<[_]>::first) else { return false };
        let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
            return false;
        };
        allowed.iter().any(|name| {
            rustls_pki_types::ServerName::try_from(name.as_str()).is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
        })
    }
}

impl tonic::service::Interceptor for ClientNames {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if self.allowed.is_none() {
            return Ok(request);
        }
        let chain = request.peer_certs();
        if self.admits(chain.as_deref().map(Vec::as_slice)) {
            Ok(request)
        } else {
            Err(tonic::Status::permission_denied(
                "this service's certificate does not name a client allowed here",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_needs_its_three_files() {
        let mut tls = GrpcTls {
            enabled: true,
            ..GrpcTls::default()
        };
        let err = tls.check().expect_err("no files");
        assert!(err.to_string().contains("grpc_tls.ca_file"), "{err}");
        tls.ca_file = Some("ca.pem".into());
        tls.cert_file = Some("c.pem".into());
        let err = tls.check().expect_err("no key");
        assert!(err.to_string().contains("grpc_tls.key_file"), "{err}");
        tls.key_file = Some("k.pem".into());
        tls.check().expect("complete");
        assert!(GrpcTls::default().check().is_ok(), "off needs nothing");
    }

    #[test]
    fn a_missing_file_names_the_setting_and_path() {
        let tls = GrpcTls {
            enabled: true,
            ca_file: Some("/nonexistent/ca.pem".into()),
            cert_file: Some("/nonexistent/c.pem".into()),
            key_file: Some("/nonexistent/k.pem".into()),
            server_name: None,
        };
        let Err(err) = server(&tls) else {
            panic!("an unreadable CA must fail")
        };
        assert!(err.to_string().contains("grpc_tls.ca_file /nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn off_admits_everyone_and_on_admits_no_anonymous_peer() {
        let names = ["ingress".to_owned()];
        assert!(ClientNames::new(&GrpcTls::default(), &names).admits(None));
        let on = GrpcTls {
            enabled: true,
            ..GrpcTls::default()
        };
        assert!(!ClientNames::new(&on, &names).admits(None));
        assert!(!ClientNames::new(&on, &names).admits(Some(&[])));
    }
}

//! `switchboard tls-certs`: a private CA and one certificate per service, for trying
//! `[grpc_tls]` (mutual TLS between services) in development or a test cluster. Production
//! issues them from its own CA (cert-manager, Vault), with the same names.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

/// Every service that serves or calls internal gRPC.
pub const SERVICES: [&str; 6] = ["ingress", "session", "routing", "sender", "api", "bots"];

/// Arguments of `switchboard tls-certs`.
#[derive(Debug, clap::Args)]
pub struct TlsCertsArgs {
    /// Directory to write `ca.crt` and `<service>.crt`/`<service>.key` into (created; an
    /// existing file is never overwritten).
    #[arg(long, default_value = "tls")]
    pub out: PathBuf,
    /// Services to issue for; each certificate names its service (`session`,
    /// `switchboard-session`), which is how ChannelDirectory tells its allowed clients apart.
    #[arg(long = "service", default_values_t = SERVICES.map(String::from))]
    pub services: Vec<String>,
    /// Further DNS names or IP addresses every certificate carries: the hosts services are
    /// dialled at, and the shared `grpc_tls.server_name` if one is used.
    #[arg(long = "san", default_values_t = ["localhost", "127.0.0.1", "switchboard.internal"].map(String::from))]
    pub sans: Vec<String>,
    /// Days the certificates are valid.
    #[arg(long, default_value_t = 90)]
    pub days: u16,
}

/// A CA and the certificates it issued, in PEM.
pub struct Bundle {
    /// The CA certificate (`grpc_tls.ca_file` of every service).
    pub ca: String,
    /// Per service: (name, certificate, private key).
    pub issued: Vec<(String, String, String)>,
}

/// Makes a CA and one client-and-server certificate per service in `services`, each naming
/// `<service>`, `switchboard-<service>` and every name in `sans`.
pub fn generate(services: &[String], sans: &[String], days: u16) -> anyhow::Result<Bundle> {
    let now = time::OffsetDateTime::now_utc();
    let until = now + time::Duration::days(i64::from(days.max(1)));
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, "Switchboard internal CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_before = now - time::Duration::minutes(5);
    ca_params.not_after = until;
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?).context("cannot make the CA")?;
    let mut issued = Vec::new();
    for service in services {
        let mut names = vec![service.clone(), format!("switchboard-{service}")];
        names.extend(sans.iter().cloned());
        let mut params = CertificateParams::new(names).with_context(|| format!("invalid name for {service}"))?;
        params.distinguished_name.push(DnType::CommonName, service.as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = until;
        let key = KeyPair::generate()?;
        let cert = params
            .signed_by(&key, &ca)
            .with_context(|| format!("cannot sign {service}'s certificate"))?;
        issued.push((service.clone(), cert.pem(), key.serialize_pem()));
    }
    Ok(Bundle { ca: ca.pem(), issued })
}

/// Writes `bundle` into `dir` as `ca.crt`, `<service>.crt` and `<service>.key` (owner-only).
pub fn write(dir: &Path, bundle: &Bundle) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = vec![(dir.join("ca.crt"), bundle.ca.as_str(), false)];
    for (service, cert, key) in &bundle.issued {
        files.push((dir.join(format!("{service}.crt")), cert, false));
        files.push((dir.join(format!("{service}.key")), key, true));
    }
    if let Some((path, _, _)) = files.iter().find(|(path, _, _)| path.exists()) {
        anyhow::bail!("{} exists; choose another --out or remove it", path.display());
    }
    for (path, pem, secret) in &files {
        write_file(path, pem, *secret).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _, _)| path).collect())
}

fn write_file(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if secret {
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// Runs the command.
pub fn run(args: &TlsCertsArgs) -> anyhow::Result<()> {
    let bundle = generate(&args.services, &args.sans, args.days)?;
    for path in write(&args.out, &bundle)? {
        println!("wrote {}", path.display());
    }
    println!(
        "each service: SWITCHBOARD_GRPC_TLS__ENABLED=true SWITCHBOARD_GRPC_TLS__CA_FILE={dir}/ca.crt \
         SWITCHBOARD_GRPC_TLS__CERT_FILE={dir}/<service>.crt SWITCHBOARD_GRPC_TLS__KEY_FILE={dir}/<service>.key",
        dir = args.out.display()
    );
    Ok(())
}

//! TLS settings from the configuration: `server.bind_default.ssl` (the
//! server's certificate and key) and `connect.ssl` (the certificates a
//! client, or a server talking to its peers, trusts).

use std::sync::Arc;

use crate::config::Config;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::app::Failure;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file(cfg: &Config, key: &str) -> Result<Option<String>, Failure> {
    Ok(cfg.get_str(key)?)
}

/// `None` when the section is absent, `false` or null; `Err` for `true`
/// and other values that name no files.
fn section(cfg: &Config, key: &str) -> Result<bool, Failure> {
    match cfg.get(key) {
        None | Some(distkv_tree::Value::Bool(false)) => Ok(false),
        Some(distkv_tree::Value::Map(_)) => Ok(true),
        Some(_) => Err(Failure::error(format!(
            "{key} must be false or a map with the certificate files (cert, key)"
        ))),
    }
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| Failure::error(format!("cannot read certificates from {path}: {e}")))?;
    if certs.is_empty() {
        return Err(Failure::error(format!("{path} holds no certificate")));
    }
    Ok(certs)
}

/// The server's TLS configuration (`server.bind_default.ssl: {cert, key}`).
pub fn server(cfg: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, Failure> {
    let key = "server.bind_default.ssl";
    if !section(cfg, key)? {
        return Ok(None);
    }
    let cert = file(cfg, &format!("{key}.cert"))?
        .ok_or_else(|| Failure::error(format!("{key}.cert names no file")))?;
    let private = file(cfg, &format!("{key}.key"))?
        .ok_or_else(|| Failure::error(format!("{key}.key names no file")))?;
    let chain = certs(&cert)?;
    let private = PrivateKeyDer::from_pem_file(&private)
        .map_err(|e| Failure::error(format!("cannot read the key in {private}: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::error(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| Failure::error(format!("TLS certificate {cert}: {e}")))?;
    Ok(Some(Arc::new(config)))
}

/// What a client needs for TLS: the rustls configuration and the name the
/// server's certificate must carry (default: the host connected to).
pub type ClientSettings = (Arc<rustls::ClientConfig>, Option<String>);

/// A client's TLS configuration (`connect.ssl: {cert, server_name}`):
/// the certificates to trust, and optionally the name to expect.
pub fn client(cfg: &Config) -> Result<Option<ClientSettings>, Failure> {
    client_at(cfg, "connect.ssl")
}

/// A client's TLS configuration from the section `key` (`{cert,
/// server_name}`), such as `server.mqtt.tls` for the broker.
pub fn client_at(cfg: &Config, key: &str) -> Result<Option<ClientSettings>, Failure> {
    if !section(cfg, key)? {
        return Ok(None);
    }
    let cert = file(cfg, &format!("{key}.cert"))?
        .ok_or_else(|| Failure::error(format!("{key}.cert must name the certificates to trust")))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&cert)? {
        roots
            .add(c)
            .map_err(|e| Failure::error(format!("TLS certificate {cert}: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::error(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some((
        Arc::new(config),
        file(cfg, &format!("{key}.server_name"))?,
    )))
}

/// TLS for a connection of the server to itself (the web console's): it
/// trusts exactly the server's own certificate (`server.bind_default.ssl`),
/// whatever names it carries and whoever issued it.
pub fn own_server(cfg: &Config) -> Result<distkv_client::ClientTls, Failure> {
    let key = "server.bind_default.ssl.cert";
    let cert = file(cfg, key)?.ok_or_else(|| Failure::error(format!("{key} names no file")))?;
    let Some(own) = certs(&cert)?.into_iter().next() else {
        return Err(Failure::error(format!("{cert} holds no certificate")));
    };
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Failure::error(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(OwnCertificate { own, provider }))
        .with_no_client_auth();
    Ok(distkv_client::ClientTls {
        config: Arc::new(config),
        server_name: None,
    })
}

/// Accepts exactly one certificate: the server's own.
#[derive(Debug)]
struct OwnCertificate {
    own: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.own.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not this server's own certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

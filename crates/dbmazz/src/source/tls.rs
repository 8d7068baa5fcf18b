//! TLS for PostgreSQL connections, with libpq's `sslmode` semantics, on rustls + ring.
//!
//! - `prefer`/`require`: encrypt, but accept any certificate (libpq does the same: these modes
//!   protect against eavesdropping, not against an active man in the middle).
//! - `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
//! - `verify-full`: chain and host name.
//!
//! Trusted roots: `sslrootcert` when given, else `~/.postgresql/root.crt` when present (libpq's
//! default), else the bundled Web PKI roots. The provider is passed explicitly, so this works
//! whatever crypto features other crates enable in rustls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::config::{PgConnectConfig, SslMode};
use super::error::SourceError;

/// Builds the rustls client configuration for `config.ssl_mode` (which must not be `Disable`).
pub(crate) fn client_config(config: &PgConnectConfig) -> Result<ClientConfig, SourceError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(config, "no usable TLS protocol version", error))?;
    let verifier: Arc<dyn ServerCertVerifier> = match config.ssl_mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = trusted_roots(config)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| {
                    tls_error(config, "cannot build the certificate verifier", error)
                })?;
            if config.ssl_mode == SslMode::VerifyCa {
                Arc::new(IgnoreHostName { inner: webpki })
            } else {
                webpki
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The name rustls checks the certificate against (and sends as SNI for DNS names).
pub(crate) fn server_name(config: &PgConnectConfig) -> Result<ServerName<'static>, SourceError> {
    ServerName::try_from(config.host.clone()).map_err(|error| {
        tls_error(
            config,
            "the host is neither a valid DNS name nor an IP address",
            error,
        )
    })
}

pub(crate) fn tls_error(
    config: &PgConnectConfig,
    message: impl Into<String>,
    source: impl std::error::Error + Send + Sync + 'static,
) -> SourceError {
    SourceError::Tls {
        host: config.host.clone(),
        port: config.port,
        message: message.into(),
        source: Some(Box::new(source)),
    }
}

fn trusted_roots(config: &PgConnectConfig) -> Result<RootCertStore, SourceError> {
    let mut roots = RootCertStore::empty();
    let file = config.ssl_root_cert.clone().or_else(default_root_cert);
    let Some(file) = file.filter(|file| file.as_os_str() != "system") else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(roots);
    };
    let certificates = read_certificates(&file).map_err(|error| {
        tls_error(
            config,
            format!("cannot read sslrootcert {}", file.display()),
            error,
        )
    })?;
    let (added, _ignored) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(SourceError::Tls {
            host: config.host.clone(),
            port: config.port,
            message: format!("sslrootcert {} holds no usable certificate", file.display()),
            source: None,
        });
    }
    Ok(roots)
}

fn read_certificates(
    file: &Path,
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_file_iter(file)?.collect()
}

/// libpq's default `sslrootcert`, used only when the file exists.
fn default_root_cert() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let file = PathBuf::from(home).join(".postgresql").join("root.crt");
    file.is_file().then_some(file)
}

/// `sslmode=prefer`/`require`: any certificate, but the handshake signatures are still checked
/// (they prove the peer holds the key of the certificate it sent).
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `sslmode=verify-ca`: full Web PKI verification except the host-name check.
#[derive(Debug)]
struct IgnoreHostName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for IgnoreHostName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is verified before the name, so a name error means the chain was fine.
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

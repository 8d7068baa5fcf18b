//! TLS for PostgreSQL connections, with libpq's `sslmode` semantics, on rustls + ring.
//!
//! - `prefer`/`require`: encrypt, but accept any certificate (libpq does the same: these modes
//!   protect against eavesdropping, not against an active man in the middle) — except that,
//!   as in libpq, `require` with a root certificate file present verifies like `verify-ca`.
//! - `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
//! - `verify-full`: chain and host name.
//!
//! Trusted roots: `sslrootcert` when given, else `PGSSLROOTCERT`, else `~/.postgresql/root.crt`
//! when present (libpq's default), else the bundled Web PKI roots. The provider is passed explicitly, so this works
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
use super::tls_libpq;

/// Builds the rustls client configuration for `config.ssl_mode` (which must not be `Disable`).
pub(crate) fn client_config(config: &PgConnectConfig) -> Result<ClientConfig, SourceError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(config, "no usable TLS protocol version", error))?;
    // libpq: `require` with a root certificate file present verifies the chain, as
    // `verify-ca` does (kept for compatibility with servers set up that way).
    let require_with_roots = config.ssl_mode == SslMode::Require
        && root_cert_file(config)
            .is_some_and(|file| file.as_os_str() != "system" && file.is_file());
    let verifier: Arc<dyn ServerCertVerifier> = match config.ssl_mode {
        SslMode::Require if require_with_roots => {
            Arc::new(chain_verifier(config, provider, false)?)
        }
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        }),
        SslMode::VerifyCa => Arc::new(chain_verifier(config, provider, false)?),
        SslMode::VerifyFull => Arc::new(chain_verifier(config, provider, true)?),
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The chain must lead to a trusted root and, with `check_name`, the certificate name the host.
fn chain_verifier(
    config: &PgConnectConfig,
    provider: Arc<rustls::crypto::CryptoProvider>,
    check_name: bool,
) -> Result<ChainVerifier, SourceError> {
    let (roots, pinned) = trusted_roots(config)?;
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|error| tls_error(config, "cannot build the certificate verifier", error))?;
    Ok(ChainVerifier {
        webpki,
        pinned,
        check_name,
    })
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

/// `sslmode` asks for TLS and the server has it off.
pub(crate) fn server_without_tls(config: &PgConnectConfig) -> SourceError {
    SourceError::Tls {
        host: config.host.clone(),
        port: config.port,
        message: format!(
            "sslmode={} but the server does not accept TLS connections (ssl = off in \
             postgresql.conf); enable ssl on the server or change sslmode",
            config.ssl_mode.as_str()
        ),
        source: None,
    }
}

/// A failed TLS handshake, with what to change when the certificate was refused.
pub(crate) fn handshake_error(
    config: &PgConnectConfig,
    source: impl std::error::Error + Send + Sync + 'static,
) -> SourceError {
    let message = match refused_certificate(&source) {
        Some(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "TLS handshake failed: the server's certificate does not name host {:?}: connect by \
             a name the certificate holds, or use sslmode=verify-ca (which checks the CA but \
             not the name)",
            config.host
        ),
        // `Other` is webpki's CaUsedAsEndEntity among others: a self-signed server certificate.
        Some(
            CertificateError::UnknownIssuer
            | CertificateError::BadSignature
            | CertificateError::Other(_),
        ) => {
            let roots = match root_cert_file(config) {
                Some(file) => format!("the CA in {}", file.display()),
                None => "a public CA (no sslrootcert is given)".to_string(),
            };
            format!(
                "TLS handshake failed: the server's certificate is not signed by {roots}: set \
                 sslrootcert to the CA that signed it (for a self-signed certificate, the \
                 certificate itself)"
            )
        }
        Some(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "TLS handshake failed: the server's certificate has expired: renew it on the server"
                .to_string()
        }
        Some(other) => {
            format!("TLS handshake failed: the server's certificate was refused ({other:?})")
        }
        None => "TLS handshake failed".to_string(),
    };
    tls_error(config, message, source)
}

/// The certificate problem behind a handshake error, if that was the cause.
fn refused_certificate(error: &(dyn std::error::Error + 'static)) -> Option<CertificateError> {
    let mut current = Some(error);
    while let Some(error) = current {
        let rustls_error = error.downcast_ref::<rustls::Error>().or_else(|| {
            error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(reason)) = rustls_error {
            return Some(reason.clone());
        }
        current = error.source();
    }
    None
}

/// The trusted roots, and the certificates of `sslrootcert` as given (a server certificate
/// that is one of them is trusted as is, as libpq does).
fn trusted_roots(
    config: &PgConnectConfig,
) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), SourceError> {
    let mut roots = RootCertStore::empty();
    let file = root_cert_file(config);
    let Some(file) = file.filter(|file| file.as_os_str() != "system") else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok((roots, Vec::new()));
    };
    let certificates = read_certificates(&file).map_err(|error| {
        tls_error(
            config,
            format!("cannot read sslrootcert {}", file.display()),
            error,
        )
    })?;
    let (added, _ignored) = roots.add_parsable_certificates(certificates.iter().cloned());
    if added == 0 {
        return Err(SourceError::Tls {
            host: config.host.clone(),
            port: config.port,
            message: format!("sslrootcert {} holds no usable certificate", file.display()),
            source: None,
        });
    }
    Ok((roots, certificates))
}

fn read_certificates(
    file: &Path,
) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
    CertificateDer::pem_file_iter(file)?.collect()
}

/// `sslrootcert` from the URL, else `PGSSLROOTCERT`, else libpq's default file when it exists.
fn root_cert_file(config: &PgConnectConfig) -> Option<PathBuf> {
    config
        .ssl_root_cert
        .clone()
        .or_else(|| {
            std::env::var_os("PGSSLROOTCERT")
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        })
        .or_else(default_root_cert)
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

/// `verify-ca`/`verify-full`: Web PKI verification of the chain (and name), plus what libpq
/// also accepts (see `tls_libpq`): a server certificate that is itself a trusted root, and the
/// Common Name when the certificate has no subjectAltName of the host's kind.
#[derive(Debug)]
struct ChainVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    check_name: bool,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let host = server_name.to_str();
        let verified = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verified {
            // webpki checks the chain before the name: a name error means the chain was fine.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name || tls_libpq::names_host(end_entity, &host) => {
                Ok(ServerCertVerified::assertion())
            }
            Err(error)
                if tls_libpq::is_ca_used_as_server_certificate(&error)
                    && self
                        .pinned
                        .iter()
                        .any(|root| root.as_ref() == end_entity.as_ref()) =>
            {
                let host = self.check_name.then_some(host.as_ref());
                tls_libpq::verify_pinned(end_entity, host, now)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// SCRAM `tls-server-end-point` channel-binding data (RFC 5929 §4.1): the hash of the server's
/// certificate, with the hash function of the certificate's signature (MD5 and SHA-1 become
/// SHA-256). `None` when the signature algorithm is not one of the RSA PKCS#1 / ECDSA ones we
/// recognise (e.g. RSA-PSS, Ed25519); the caller then authenticates without channel binding.
pub(crate) fn tls_server_end_point(certificate: &[u8]) -> Option<Vec<u8>> {
    let algorithm = signature_hash(certificate)?;
    Some(
        ring::digest::digest(algorithm, certificate)
            .as_ref()
            .to_vec(),
    )
}

fn signature_hash(certificate: &[u8]) -> Option<&'static ring::digest::Algorithm> {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, … }
    let (certificate, _) = der_element(certificate, 0x30)?;
    let (_tbs, rest) = der_element(certificate, 0x30)?;
    let (algorithm_identifier, _) = der_element(rest, 0x30)?;
    let (oid, _) = der_element(algorithm_identifier, 0x06)?;
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
    use ring::digest::{SHA256, SHA384, SHA512};
    if oid == ECDSA_SHA1 {
        return Some(&SHA256);
    }
    if let Some(&[last]) = oid.strip_prefix(RSA) {
        return match last {
            // md5WithRSAEncryption, sha1WithRSAEncryption, sha256WithRSAEncryption
            0x04 | 0x05 | 0x0b => Some(&SHA256),
            0x0c => Some(&SHA384),
            0x0d => Some(&SHA512),
            _ => None,
        };
    }
    if let Some(&[last]) = oid.strip_prefix(ECDSA_SHA2) {
        return match last {
            0x02 => Some(&SHA256),
            0x03 => Some(&SHA384),
            0x04 => Some(&SHA512),
            _ => None,
        };
    }
    None
}

/// One DER element of type `tag`: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&actual_tag, rest) = input.split_first()?;
    if actual_tag != tag {
        return None;
    }
    let (&first_length_byte, rest) = rest.split_first()?;
    let (length, rest) = if first_length_byte < 0x80 {
        (usize::from(first_length_byte), rest)
    } else {
        let count = usize::from(first_length_byte & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (length_bytes, rest) = rest.split_at(count);
        let length = length_bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte));
        (length, rest)
    };
    if rest.len() < length {
        return None;
    }
    Some(rest.split_at(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate skeleton: SEQUENCE { SEQUENCE {tbs}, SEQUENCE { OID }, BIT STRING }.
    fn certificate_with_signature_oid(oid: &[u8]) -> Vec<u8> {
        let tbs = [0x30, 0x03, 0x02, 0x01, 0x01];
        let mut algorithm = vec![0x30, (oid.len() + 2) as u8, 0x06, oid.len() as u8];
        algorithm.extend_from_slice(oid);
        let signature = [0x03, 0x02, 0x00, 0xff];
        let body: Vec<u8> = [&tbs[..], &algorithm, &signature].concat();
        // Long-form length, as real certificates use.
        let mut certificate = vec![0x30, 0x81, body.len() as u8];
        certificate.extend_from_slice(&body);
        certificate
    }

    #[test]
    fn picks_the_channel_binding_hash_from_the_signature_algorithm() {
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
        let sha384_ecdsa = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
        let sha1_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
        let ed25519 = [0x2b, 0x65, 0x70];
        let certificate = certificate_with_signature_oid(&sha256_rsa);
        let hash = tls_server_end_point(&certificate).unwrap();
        assert_eq!(
            hash,
            ring::digest::digest(&ring::digest::SHA256, &certificate).as_ref()
        );
        let hash_len = |oid: &[u8]| {
            tls_server_end_point(&certificate_with_signature_oid(oid)).map(|h| h.len())
        };
        assert_eq!(hash_len(&sha384_ecdsa), Some(48));
        assert_eq!(
            hash_len(&sha1_rsa),
            Some(32),
            "SHA-1 is upgraded to SHA-256"
        );
        assert_eq!(hash_len(&ed25519), None);
    }

    #[test]
    fn never_panics_on_malformed_certificates() {
        let certificate = certificate_with_signature_oid(&[0x2a, 0x86, 0x48]);
        for end in 0..certificate.len() {
            let _ = tls_server_end_point(&certificate[..end]);
        }
        assert_eq!(
            tls_server_end_point(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]),
            None
        );
        assert_eq!(tls_server_end_point(&[0x30, 0x80]), None);
    }
}

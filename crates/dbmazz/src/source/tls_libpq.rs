//! What libpq accepts for `verify-ca`/`verify-full` that Web PKI verification (webpki) refuses
//! (libpq: fe-secure-openssl.c, fe-secure-common.c):
//! - a server certificate that is itself in `sslrootcert`: PostgreSQL's documented self-signed
//!   setup (`openssl req -new -x509 … -subj "/CN=host"`) marks the certificate a CA, which
//!   webpki refuses as a server's certificate (`CaUsedAsEndEntity`); OpenSSL trusts it as is;
//! - the Common Name as the host's name when the certificate has no subjectAltName of the
//!   host's kind (dNSName for a name, iPAddress for an address).

use std::net::IpAddr;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::{CertificateError, OtherError};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// `id-at-commonName`.
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Whether webpki refused the server's certificate for being a CA certificate.
pub(super) fn is_ca_used_as_server_certificate(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            inner.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

/// A server certificate found in the trusted roots themselves: trusted as is, if it is within
/// its validity period (and, `host` given, names it as libpq requires).
pub(super) fn verify_pinned(
    certificate: &CertificateDer<'_>,
    host: Option<&str>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let parsed = Certificate::from_der(certificate.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let validity = &parsed.tbs_certificate.validity;
    let now = Duration::from_secs(now.as_secs());
    if now < validity.not_before.to_unix_duration() {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        ));
    }
    if now > validity.not_after.to_unix_duration() {
        return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
    }
    match host {
        Some(host) if !names_host(certificate, host) => Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        )),
        _ => Ok(()),
    }
}

/// libpq's host-name rule: any subjectAltName dNSName (wildcards `*.` for one label) or
/// iPAddress equal to the host; the Common Name only when there is no subjectAltName of the
/// host's kind. Names compare case-insensitively.
pub(super) fn names_host(certificate: &CertificateDer<'_>, host: &str) -> bool {
    let Ok(parsed) = Certificate::from_der(certificate.as_ref()) else {
        return false;
    };
    let host_ip: Option<IpAddr> = host.parse().ok();
    let mut check_common_name = true;
    let alt_names = parsed
        .tbs_certificate
        .get::<SubjectAltName>()
        .ok()
        .flatten()
        .map(|(_, names)| names.0)
        .unwrap_or_default();
    for name in &alt_names {
        match name {
            GeneralName::DnsName(dns) => {
                if host_ip.is_none() {
                    check_common_name = false;
                }
                if name_matches(dns.as_str(), host) {
                    return true;
                }
            }
            GeneralName::IpAddress(address) => {
                if host_ip.is_some() {
                    check_common_name = false;
                }
                if host_ip.is_some_and(|ip| ip_bytes(ip) == address.as_bytes()) {
                    return true;
                }
            }
            _ => {}
        }
    }
    check_common_name
        && parsed
            .tbs_certificate
            .subject
            .0
            .iter()
            .flat_map(|rdn| rdn.0.iter())
            .filter(|attribute| attribute.oid == COMMON_NAME)
            .any(|attribute| {
                std::str::from_utf8(attribute.value.value())
                    .is_ok_and(|common_name| name_matches(common_name, host))
            })
}

/// libpq's `pq_verify_peer_name_matches_certificate_name`: equal ignoring case, or `*.rest`
/// matching one label in front of `.rest`.
fn name_matches(pattern: &str, host: &str) -> bool {
    if pattern.contains('\0') {
        return false;
    }
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    if !suffix.starts_with('.') || host.len() <= suffix.len() {
        return false;
    }
    let (label, rest) = host.split_at(host.len() - suffix.len());
    rest.eq_ignore_ascii_case(suffix) && !label.contains('.')
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_as_libpq_matches_them() {
        assert!(name_matches("db.example.com", "DB.Example.com"));
        assert!(name_matches("*.example.com", "db.example.com"));
        assert!(!name_matches("*.example.com", "a.db.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*example.com", "db.example.com"));
        assert!(!name_matches("db.example.com\0.evil", "db.example.com"));
        assert!(!name_matches("localhost", "127.0.0.1"));
    }

    #[test]
    fn a_malformed_certificate_names_nothing_and_is_not_trusted() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x02]);
        assert!(!names_host(&garbage, "localhost"));
        assert!(verify_pinned(&garbage, None, UnixTime::now()).is_err());
    }
}

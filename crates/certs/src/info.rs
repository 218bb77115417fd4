//! What a certificate file says about itself: its common name, its hosts
//! and when it expires.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

/// A certificate that expires within this many days deserves a warning
/// (`towerlock etcd check` prints one; [`CertificateInfo::expiry`] uses it).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Why a certificate file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CertInfoError {
    /// The file could not be read.
    #[error("cannot read the certificate {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file holds no PEM certificate that parses.
    #[error("{} is not a PEM certificate: {reason}", path.display())]
    NotACertificate {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

/// The facts of one certificate that matter to an operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject's common name (etcd's user name for a client
    /// certificate); empty when the subject has none.
    pub common_name: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// DNS names and IP addresses of the subject alternative names, in
    /// the certificate's order.
    pub hosts: Vec<String>,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
}

/// Where a certificate stands against [`EXPIRY_WARNING_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Valid for more than [`EXPIRY_WARNING_DAYS`] days.
    Valid {
        /// Whole days left.
        days_left: i64,
    },
    /// Valid, but for at most [`EXPIRY_WARNING_DAYS`] days more: renew it.
    ExpiresSoon {
        /// Whole days left (0 on its last day).
        days_left: i64,
    },
    /// Past its end of validity.
    Expired {
        /// Whole days since it expired (0 on the first day).
        days_ago: i64,
    },
}

impl CertificateInfo {
    /// Reads the first certificate of the PEM file at `path`.
    pub fn read(path: &Path) -> Result<Self, CertInfoError> {
        let bytes = std::fs::read(path).map_err(|source| CertInfoError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pem(&bytes).map_err(|reason| CertInfoError::NotACertificate {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses the first certificate of `pem`; the error is the parser's
    /// reason.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| e.to_string())?;
        if pem.label != "CERTIFICATE" {
            return Err(format!("found a {} block, not a CERTIFICATE", pem.label));
        }
        let cert = pem.parse_x509().map_err(|e| e.to_string())?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut hosts = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => hosts.push(dns.to_string()),
                    GeneralName::IPAddress(bytes) => {
                        if let Some(ip) = ip_from(bytes) {
                            hosts.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(Self {
            common_name,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            hosts,
            is_ca: cert.is_ca(),
        })
    }

    /// Where the certificate stands now against [`EXPIRY_WARNING_DAYS`].
    pub fn expiry_now(&self) -> Expiry {
        self.expiry(OffsetDateTime::now_utc())
    }

    /// Where the certificate stands at `now` against
    /// [`EXPIRY_WARNING_DAYS`].
    pub fn expiry(&self, now: OffsetDateTime) -> Expiry {
        let left = self.not_after - now;
        if left < Duration::ZERO {
            Expiry::Expired {
                days_ago: (-left).whole_days(),
            }
        } else if left <= Duration::days(EXPIRY_WARNING_DAYS) {
            Expiry::ExpiresSoon {
                days_left: left.whole_days(),
            }
        } else {
            Expiry::Valid {
                days_left: left.whole_days(),
            }
        }
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Valid { days_left } | Expiry::ExpiresSoon { days_left } => {
                write!(f, "expires in {days_left} days")
            }
            Expiry::Expired { days_ago } => write!(f, "EXPIRED {days_ago} days ago"),
        }
    }
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SeedCerts, Validity};

    fn hosts() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    }

    #[test]
    fn reads_common_name_hosts_and_validity() {
        let validity = Validity::days(90);
        let certs = SeedCerts::generate(&hosts(), validity).unwrap();
        let server = CertificateInfo::from_pem(certs.server.cert_pem.as_bytes()).unwrap();
        assert_eq!(server.common_name, "etcd");
        assert_eq!(server.hosts, hosts());
        assert!(!server.is_ca);
        // X.509 keeps whole seconds.
        assert_eq!(
            server.not_after.unix_timestamp(),
            validity.not_after.unix_timestamp()
        );
        let ca = CertificateInfo::from_pem(certs.ca.cert_pem.as_bytes()).unwrap();
        assert!(ca.is_ca);
        assert_eq!(ca.common_name, "etcd-ca");
        let client = CertificateInfo::from_pem(certs.client.cert_pem.as_bytes()).unwrap();
        assert_eq!(client.common_name, "validator");
        assert!(client.hosts.is_empty());
    }

    #[test]
    fn judges_expiry_against_the_threshold() {
        let info = CertificateInfo::from_pem(
            SeedCerts::generate(&hosts(), Validity::days(100))
                .unwrap()
                .client
                .cert_pem
                .as_bytes(),
        )
        .unwrap();
        let at = |days_before_end: i64| info.not_after - Duration::days(days_before_end);
        assert_eq!(
            info.expiry(at(31) - Duration::hours(1)),
            Expiry::Valid { days_left: 31 }
        );
        assert_eq!(info.expiry(at(30)), Expiry::ExpiresSoon { days_left: 30 });
        assert_eq!(
            info.expiry(at(0) - Duration::minutes(1)),
            Expiry::ExpiresSoon { days_left: 0 }
        );
        assert_eq!(
            info.expiry(at(-2) - Duration::minutes(1)),
            Expiry::Expired { days_ago: 1 }
        );
        assert_eq!(
            Expiry::Expired { days_ago: 3 }.to_string(),
            "EXPIRED 3 days ago"
        );
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let missing = CertificateInfo::read(&dir.path().join("none.pem")).unwrap_err();
        assert!(
            matches!(missing, CertInfoError::Unreadable { .. }),
            "{missing}"
        );
        let certs = SeedCerts::generate(&hosts(), Validity::days(1)).unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, &certs.client.key_pem).unwrap();
        let err = CertificateInfo::read(&key).unwrap_err();
        assert!(
            matches!(err, CertInfoError::NotACertificate { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("not a PEM certificate"), "{err}");
    }
}

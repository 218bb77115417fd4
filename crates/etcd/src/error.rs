//! Why a connection to etcd failed, in one sentence an operator can act on.
//!
//! etcd-client reports everything as `etcd_client::Error`; the cause sits
//! several layers down (tonic → hyper → io → rustls). [`classify`] walks the
//! `source()` chain, looking inside `std::io::Error`s too (their `source()`
//! skips the wrapped error), and matches rustls' typed errors first, messages
//! only as a fallback.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::{AlertDescription, CertificateError};

/// Errors of connecting to etcd and of requests made through this crate.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// A certificate or key file could not be read.
    #[error("cannot read the {what} file {}: {source}", path.display())]
    FileUnreadable {
        /// Which file (e.g. "CA certificate").
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A certificate or key file holds no usable PEM block.
    #[error("the {what} file {} is not a PEM {expected}", path.display())]
    NotPem {
        /// Which file (e.g. "CA certificate").
        what: &'static str,
        /// The path given.
        path: PathBuf,
        /// What PEM block was expected.
        expected: &'static str,
    },
    /// The configuration names no endpoint or an endpoint that is not `HOST:PORT`.
    #[error("invalid etcd endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it is refused.
        reason: String,
    },
    /// Nothing accepts connections at the endpoint.
    #[error("etcd at {endpoint} is unreachable ({detail}): is etcd running and listening there?")]
    Unreachable {
        /// The endpoint(s).
        endpoint: String,
        /// The OS's reason, e.g. "connection refused".
        detail: String,
    },
    /// etcd's certificate is not signed by the CA given to the client.
    #[error(
        "the certificate of etcd at {endpoint} is not signed by the CA in {}",
        ca_file.display()
    )]
    ServerCertUntrusted {
        /// The endpoint(s).
        endpoint: String,
        /// The CA file given (--etcd-cacert-file).
        ca_file: PathBuf,
    },
    /// etcd refused the client certificate (signed by another CA, or none sent).
    #[error(
        "etcd at {endpoint} rejected {} (TLS alert: {alert}): \
         it needs one signed by the CA it trusts (--trusted-ca-file)",
        presented(cert_file.as_deref())
    )]
    ClientCertRejected {
        /// The endpoint(s).
        endpoint: String,
        /// The client certificate presented (--etcd-cert-file), if any.
        cert_file: Option<PathBuf>,
        /// The TLS alert etcd sent, e.g. "bad certificate".
        alert: String,
    },
    /// etcd's certificate is not valid for the domain name the client checks.
    #[error(
        "the certificate of etcd at {endpoint} is not valid for the host name {domain_name:?}: \
         set --etcd-domain-name to a name the certificate carries"
    )]
    DomainMismatch {
        /// The endpoint(s).
        endpoint: String,
        /// The domain name checked (--etcd-domain-name).
        domain_name: String,
    },
    /// The endpoint answers in plaintext, not TLS.
    #[error(
        "etcd at {endpoint} speaks plaintext, not TLS: start it with the seed's \
         --cert-file, --key-file, --client-cert-auth, --trusted-ca-file and https:// URLs"
    )]
    PlaintextServer {
        /// The endpoint(s).
        endpoint: String,
    },
    /// etcd's certificate has expired (or is not valid yet).
    #[error("the certificate of etcd at {endpoint} has expired or is not valid yet: {detail}")]
    ServerCertExpired {
        /// The endpoint(s).
        endpoint: String,
        /// rustls' account.
        detail: String,
    },
    /// This client's certificate has expired (or is not valid yet).
    #[error("the client certificate {} has expired or is not valid yet: {detail}", path.display())]
    ClientCertExpired {
        /// The client certificate (--etcd-cert-file).
        path: PathBuf,
        /// rustls' account.
        detail: String,
    },
    /// The endpoint speaks TLS but not HTTP/2: not an etcd client (gRPC) port.
    #[error(
        "the server at {endpoint} did not offer HTTP/2 (ALPN h2): \
         is --etcd-endpoint an etcd client port?"
    )]
    NotGrpc {
        /// The endpoint(s).
        endpoint: String,
    },
    /// Another TLS failure.
    #[error("TLS with etcd at {endpoint} failed: {detail}")]
    Tls {
        /// The endpoint(s).
        endpoint: String,
        /// The cause.
        detail: String,
    },
    /// etcd did not answer within the deadline: the outcome of a write is unknown.
    #[error("etcd at {endpoint} did not answer within {} ms", after.as_millis())]
    Timeout {
        /// The endpoint(s).
        endpoint: String,
        /// The deadline.
        after: Duration,
    },
    /// The connection broke or etcd was unavailable: the outcome of a write is unknown.
    #[error("etcd at {endpoint} is unavailable: {detail}")]
    Unavailable {
        /// The endpoint(s).
        endpoint: String,
        /// The cause.
        detail: String,
    },
    /// etcd's access control refused the request to the user of the client
    /// certificate (its common name).
    #[error(
        "etcd at {endpoint} denied {} this request (permission denied): with access control \
         on, etcd takes the user from the certificate's common name, and each identity's \
         certificate may only reach that identity's keys, the reader's may only read",
        presented(cert_file.as_deref())
    )]
    PermissionDenied {
        /// The endpoint(s).
        endpoint: String,
        /// The client certificate presented (--etcd-cert-file), if any.
        cert_file: Option<PathBuf>,
    },
    /// etcd answered with a definite error.
    #[error("etcd at {endpoint} refused the request: {detail}")]
    Server {
        /// The endpoint(s).
        endpoint: String,
        /// etcd's message.
        detail: String,
    },
}

impl EtcdError {
    /// True when the outcome of a request is unknown (it may or may not have
    /// been applied): timeouts, broken connections, unavailable or
    /// unreachable etcd. Conservative: an unreachable endpoint did not get the
    /// request, but callers treat it like the other "etcd unavailable" cases.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            EtcdError::Timeout { .. }
                | EtcdError::Unavailable { .. }
                | EtcdError::Unreachable { .. }
        )
    }

    /// True when etcd could not be used because it did not answer: nothing
    /// accepts connections at the endpoint, no answer within the deadline
    /// (at connect, or of a TLS handshake), or the connection broke. etcd is
    /// down, paused or cut off; a retry may succeed and no flag needs
    /// changing. False for certificates, TLS, files and endpoints that are
    /// wrong, and for definite answers from etcd.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            EtcdError::Unreachable { .. }
                | EtcdError::Timeout { .. }
                | EtcdError::Unavailable { .. }
        )
    }

    /// True when the error is about TLS or certificates.
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            EtcdError::ServerCertUntrusted { .. }
                | EtcdError::ClientCertRejected { .. }
                | EtcdError::DomainMismatch { .. }
                | EtcdError::PlaintextServer { .. }
                | EtcdError::ServerCertExpired { .. }
                | EtcdError::ClientCertExpired { .. }
                | EtcdError::Tls { .. }
        )
    }
}

/// True when `err` leaves the outcome of the request unknown: the request may
/// or may not have been applied (transport failure, timeout, etcd unavailable
/// or leaderless, a cancelled stream). False for a definite answer from etcd
/// (e.g. invalid argument, database space exceeded, permission denied), where
/// the request was certainly not applied.
///
/// In doubt it answers true: treating a definite failure as unknown is safe for
/// a fence (the vote is not sent either way); the converse is not.
pub fn is_outcome_unknown(err: &etcd_client::Error) -> bool {
    use etcd_client::Error as E;
    use tonic_code::definite;
    match err {
        E::GRpcStatus(status) => !definite(status.code()),
        E::InvalidArgs(_)
        | E::InvalidUri(_)
        | E::Utf8Error(_)
        | E::InvalidMetadataValue(_)
        | E::EndpointsNotManaged => false,
        _ => true,
    }
}

/// True when etcd's access control refused the request: the user named by
/// the client certificate's common name may not do it (or does not exist).
pub fn is_permission_denied(err: &etcd_client::Error) -> bool {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            status.code() == tonic::Code::PermissionDenied
                || status.message().contains("permission denied")
        }
        _ => false,
    }
}

/// Alias of [`is_outcome_unknown`]: a transport-level failure.
pub fn is_transport(err: &etcd_client::Error) -> bool {
    is_outcome_unknown(err)
}

mod tonic_code {
    /// The gRPC codes etcd uses for a request it did not apply.
    pub(super) fn definite(code: tonic::Code) -> bool {
        use tonic::Code;
        matches!(
            code,
            Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::PermissionDenied
                | Code::ResourceExhausted
                | Code::FailedPrecondition
                | Code::OutOfRange
                | Code::Unimplemented
                | Code::Unauthenticated
        )
    }
}

/// What [`classify`] needs to name the cause.
#[derive(Debug, Clone)]
pub(crate) struct Context<'a> {
    pub endpoint: &'a str,
    pub domain_name: &'a str,
    pub ca_file: &'a std::path::Path,
    pub cert_file: Option<&'a Path>,
    pub timeout: Duration,
}

/// Every error in the chain of `err`, outermost first, looking inside
/// `std::io::Error`s (whose `source()` skips the error they wrap).
pub(crate) fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        out.push(e);
        if out.len() > 32 {
            break;
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => e.source(),
        };
    }
    out
}

/// The chain of an etcd-client error, which does not expose its `source()`.
pub(crate) fn etcd_chain(err: &etcd_client::Error) -> Vec<&(dyn StdError + 'static)> {
    use etcd_client::Error as E;
    let mut out: Vec<&(dyn StdError + 'static)> = vec![err];
    match err {
        E::GRpcStatus(status) => out.extend(chain(status)),
        E::TransportError(transport) => out.extend(chain(transport)),
        E::IoError(io) => out.extend(chain(io)),
        _ => {}
    }
    out
}

/// The causes of `err` on one line, for logs and diagnostics.
pub fn describe_chain(err: &etcd_client::Error) -> String {
    etcd_chain(err)
        .iter()
        .skip(1)
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Maps an etcd-client error to the cause an operator can act on.
pub(crate) fn classify(err: &etcd_client::Error, ctx: &Context<'_>) -> EtcdError {
    let endpoint = ctx.endpoint.to_string();
    let links = etcd_chain(err);

    // Typed rustls errors first: they are exact.
    for link in &links {
        if let Some(tls) = link.downcast_ref::<rustls::Error>() {
            if let Some(found) = classify_rustls(tls, ctx) {
                return found;
            }
        }
    }

    let text = links
        .iter()
        .map(|e| e.to_string().to_lowercase())
        .collect::<Vec<_>>()
        .join(": ");

    for link in &links {
        if let Some(io) = link.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused
                | K::HostUnreachable
                | K::NetworkUnreachable
                | K::AddrNotAvailable => {
                    return EtcdError::Unreachable {
                        endpoint,
                        detail: io_detail(io),
                    }
                }
                _ => {}
            }
        }
    }
    if text.contains("connection refused")
        || text.contains("no route to host")
        || text.contains("network is unreachable")
        || text.contains("dns error")
        || text.contains("failed to lookup address")
    {
        return EtcdError::Unreachable {
            endpoint,
            detail: short_detail(&text),
        };
    }
    if let Some(alert) = alert_in_message(&text) {
        return EtcdError::ClientCertRejected {
            endpoint,
            cert_file: ctx.cert_file.map(Path::to_path_buf),
            alert,
        };
    }
    if text.contains("http/2 was not negotiated") {
        return EtcdError::NotGrpc { endpoint };
    }
    if text.contains("timeout") || text.contains("timed out") || text.contains("deadline") {
        if text.contains("connect") && !text.contains("tls handshake timeout") {
            return EtcdError::Unreachable {
                endpoint,
                detail: format!("no connection within {} ms", ctx.timeout.as_millis()),
            };
        }
        return EtcdError::Timeout {
            endpoint,
            after: ctx.timeout,
        };
    }
    definite_answer(err, ctx).unwrap_or(EtcdError::Unavailable {
        endpoint,
        detail: short_detail(&describe_chain(err)),
    })
}

/// A definite refusal from etcd (permission denied has its own sentence).
fn definite_answer(err: &etcd_client::Error, ctx: &Context<'_>) -> Option<EtcdError> {
    let endpoint = ctx.endpoint.to_string();
    if is_permission_denied(err) {
        return Some(EtcdError::PermissionDenied {
            endpoint,
            cert_file: ctx.cert_file.map(Path::to_path_buf),
        });
    }
    match err {
        etcd_client::Error::GRpcStatus(status) if tonic_code::definite(status.code()) => {
            Some(EtcdError::Server {
                endpoint,
                detail: status.message().to_string(),
            })
        }
        _ => None,
    }
}

pub(crate) fn classify_rustls(err: &rustls::Error, ctx: &Context<'_>) -> Option<EtcdError> {
    let endpoint = ctx.endpoint.to_string();
    Some(match err {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                EtcdError::ServerCertUntrusted {
                    endpoint,
                    ca_file: ctx.ca_file.to_path_buf(),
                }
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                EtcdError::DomainMismatch {
                    endpoint,
                    domain_name: ctx.domain_name.to_string(),
                }
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => EtcdError::ServerCertExpired {
                endpoint,
                detail: err.to_string(),
            },
            _ => EtcdError::Tls {
                endpoint,
                detail: err.to_string(),
            },
        },
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired => EtcdError::ClientCertRejected {
                endpoint,
                cert_file: ctx.cert_file.map(Path::to_path_buf),
                alert: alert_name(*alert),
            },
            _ => EtcdError::Tls {
                endpoint,
                detail: err.to_string(),
            },
        },
        // The first bytes back were not a TLS record: a plaintext HTTP server.
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            EtcdError::PlaintextServer { endpoint }
        }
        _ => EtcdError::Tls {
            endpoint,
            detail: err.to_string(),
        },
    })
}

fn presented(cert_file: Option<&Path>) -> String {
    match cert_file {
        Some(path) => format!("the client certificate {}", path.display()),
        None => "a client without a certificate".to_string(),
    }
}

/// h2 turns the io::Error carrying rustls' alert into text:
/// "received fatal alert: BadCertificate".
fn alert_in_message(text: &str) -> Option<String> {
    const NAMES: [(&str, AlertDescription); 8] = [
        ("badcertificate", AlertDescription::BadCertificate),
        (
            "unsupportedcertificate",
            AlertDescription::UnsupportedCertificate,
        ),
        ("certificaterevoked", AlertDescription::CertificateRevoked),
        ("certificateexpired", AlertDescription::CertificateExpired),
        ("certificateunknown", AlertDescription::CertificateUnknown),
        ("unknownca", AlertDescription::UnknownCA),
        ("accessdenied", AlertDescription::AccessDenied),
        ("certificaterequired", AlertDescription::CertificateRequired),
    ];
    let (_, rest) = text.split_once("received fatal alert: ")?;
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    NAMES
        .iter()
        .find(|(name, _)| *name == word)
        .map(|(_, alert)| alert_name(*alert))
}

pub(crate) fn alert_name(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::BadCertificate => "bad certificate".into(),
        AlertDescription::UnsupportedCertificate => "unsupported certificate".into(),
        AlertDescription::CertificateRevoked => "certificate revoked".into(),
        AlertDescription::CertificateExpired => "certificate expired".into(),
        AlertDescription::CertificateUnknown => "certificate unknown".into(),
        AlertDescription::UnknownCA => "unknown CA".into(),
        AlertDescription::AccessDenied => "access denied".into(),
        AlertDescription::CertificateRequired => "certificate required".into(),
        other => format!("{other:?}"),
    }
}

fn io_detail(io: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match io.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::HostUnreachable => "no route to host".into(),
        K::NetworkUnreachable => "network is unreachable".into(),
        _ => io.to_string(),
    }
}

fn short_detail(text: &str) -> String {
    // The last link is usually the most specific.
    text.rsplit(": ").next().unwrap_or(text).trim().to_string()
}

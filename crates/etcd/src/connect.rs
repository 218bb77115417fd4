//! Connecting with mutual TLS, and verifying the connection before use.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::config::EtcdConfig;
use crate::error::{classify, Context, EtcdError};

/// The PEM material of a TLS client, read and checked.
#[derive(Clone)]
pub struct TlsMaterial {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Reads the CA, certificate and key files of `config`, checks that each
    /// holds PEM of the right kind, and that the client certificate is within
    /// its validity period.
    pub fn load(config: &EtcdConfig) -> Result<Self, EtcdError> {
        let ca_pem = read("CA certificate", &config.ca_cert_file)?;
        let cas = certs("CA certificate", &config.ca_cert_file, &ca_pem)?;
        let cert_pem = read("client certificate", &config.cert_file)?;
        let chain = certs("client certificate", &config.cert_file, &cert_pem)?;
        let key_pem = read("client key", &config.key_file)?;
        if PrivateKeyDer::from_pem_slice(&key_pem).is_err() {
            return Err(EtcdError::NotPem {
                what: "client key",
                path: config.key_file.clone(),
                expected: "private key",
            });
        }
        check_client_validity(&cas, &chain, &config.cert_file)?;
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem,
        })
    }

    fn tls_options(&self, config: &EtcdConfig, with_identity: bool) -> TlsOptions {
        let mut tls = TlsOptions::new()
            .domain_name(config.domain_name.clone())
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .timeout(config.connect_timeout);
        if with_identity {
            tls = tls.identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        }
        tls
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, EtcdError> {
    std::fs::read(path).map_err(|source| EtcdError::FileUnreadable {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn certs(
    what: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, EtcdError> {
    let not_pem = || EtcdError::NotPem {
        what,
        path: path.to_path_buf(),
        expected: "certificate",
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| not_pem())?;
    if certs.is_empty() {
        return Err(not_pem());
    }
    Ok(certs)
}

/// Refuses a client certificate outside its validity period: etcd would
/// reject it with a generic "bad certificate" alert, which hides the cause.
fn check_client_validity(
    cas: &[CertificateDer<'static>],
    chain: &[CertificateDer<'static>],
    cert_file: &Path,
) -> Result<(), EtcdError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(cas.iter().cloned());
    if roots.is_empty() {
        return Ok(());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
    else {
        return Ok(());
    };
    // webpki checks the end entity's validity period before looking for its
    // issuer, so an expired certificate is reported whoever signed it; other
    // failures (e.g. another CA) are for etcd to judge.
    match verifier.verify_client_cert(&chain[0], &chain[1..], UnixTime::now()) {
        Err(rustls::Error::InvalidCertificate(
            err @ (rustls::CertificateError::Expired
            | rustls::CertificateError::ExpiredContext { .. }
            | rustls::CertificateError::NotValidYet
            | rustls::CertificateError::NotValidYetContext { .. }),
        )) => Err(EtcdError::ClientCertExpired {
            path: cert_file.to_path_buf(),
            detail: rustls::Error::InvalidCertificate(err).to_string(),
        }),
        _ => Ok(()),
    }
}

/// `HOST:PORT` (or `https://HOST:PORT`) → the URL etcd-client wants.
fn endpoint_url(endpoint: &str) -> Result<String, EtcdError> {
    let invalid = |reason: &str| EtcdError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    if endpoint.starts_with("http://") {
        return Err(invalid(
            "TLS is always on: give HOST:PORT or an https:// URL",
        ));
    }
    let rest = endpoint.strip_prefix("https://").unwrap_or(endpoint);
    let rest = rest.trim_end_matches('/');
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(invalid("expected HOST:PORT"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(invalid("expected HOST:PORT"));
    }
    Ok(format!("https://{rest}"))
}

/// Every endpoint of `config` as a URL; at least one.
pub(crate) fn endpoint_urls(config: &EtcdConfig) -> Result<Vec<String>, EtcdError> {
    if config.endpoints.is_empty() {
        return Err(EtcdError::InvalidEndpoint {
            endpoint: String::new(),
            reason: "no etcd endpoint given".into(),
        });
    }
    config.endpoints.iter().map(|e| endpoint_url(e)).collect()
}

/// How a client is made: TLS with or without the client identity, and
/// whether etcd must refuse a request at once when the member has no leader
/// (rather than holding it until the deadline).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dial {
    pub with_identity: bool,
    pub require_leader: bool,
}

impl Dial {
    /// What [`connect`] does.
    const PLAIN: Dial = Dial {
        with_identity: true,
        require_leader: false,
    };
}

pub(crate) fn options(config: &EtcdConfig, material: &TlsMaterial, dial: Dial) -> ConnectOptions {
    let tls = material.tls_options(config, dial.with_identity);
    ConnectOptions::new()
        .with_tls(tls)
        .with_connect_timeout(config.connect_timeout)
        .with_timeout(config.request_timeout)
        .with_keep_alive(Duration::from_secs(10), config.request_timeout)
        .with_tcp_keepalive(Duration::from_secs(10))
        .with_require_leader(dial.require_leader)
}

/// Connects to etcd with mutual TLS and verifies the connection with a
/// `status` request, so that a TLS or reachability problem is reported here,
/// as one [`EtcdError`] naming its cause, rather than on the first write.
///
/// With several endpoints, each is tried on its own first; the client returned
/// balances over those that answered, and the error names the first endpoint's
/// cause when none did. That suits a tool that connects, works and exits; a
/// process that must keep using every endpoint, those down at connect
/// included, holds one client per endpoint instead ([`crate::Endpoints`]).
pub async fn connect(config: &EtcdConfig) -> Result<Client, EtcdError> {
    let material = TlsMaterial::load(config)?;
    connect_with(config, &material, Dial::PLAIN).await
}

/// Like [`connect`] but presents no client certificate: only useful to show
/// what etcd says to a client without one (diagnostics and tests).
pub async fn connect_without_client_cert(config: &EtcdConfig) -> Result<Client, EtcdError> {
    let material = TlsMaterial::load(config)?;
    let dial = Dial {
        with_identity: false,
        ..Dial::PLAIN
    };
    connect_with(config, &material, dial).await
}

async fn connect_with(
    config: &EtcdConfig,
    material: &TlsMaterial,
    dial: Dial,
) -> Result<Client, EtcdError> {
    let urls = endpoint_urls(config)?;
    if urls.len() == 1 {
        return connect_one(config, material, dial, &config.endpoints[0], &urls[0]).await;
    }
    let mut healthy = Vec::new();
    let mut first_error = None;
    for (endpoint, url) in config.endpoints.iter().zip(&urls) {
        match connect_one(config, material, dial, endpoint, url).await {
            Ok(_) => healthy.push(url.clone()),
            Err(err) => {
                tracing::warn!("etcd endpoint {endpoint} left out: {err}");
                first_error.get_or_insert(err);
            }
        }
    }
    if healthy.is_empty() {
        return Err(first_error.expect("at least one endpoint"));
    }
    let joined = config.endpoints.join(", ");
    let client = Client::connect(&healthy, Some(options(config, material, dial)))
        .await
        .map_err(|err| classify(&err, &context(config, &joined, dial.with_identity)))?;
    Ok(client)
}

/// Connects to one endpoint and verifies it with a `status` request; when
/// etcd-client cannot name the cause of a failure, a handshake by hand
/// ([`crate::probe`]) tries to.
pub(crate) async fn connect_one(
    config: &EtcdConfig,
    material: &TlsMaterial,
    dial: Dial,
    endpoint: &str,
    url: &str,
) -> Result<Client, EtcdError> {
    let ctx = context(config, endpoint, dial.with_identity);
    let mut client = Client::connect([url], Some(options(config, material, dial)))
        .await
        .map_err(|err| classify(&err, &ctx))?;
    let deadline = config.connect_timeout + config.request_timeout;
    match tokio::time::timeout(deadline, client.status()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(err)) => {
            tracing::debug!(
                "etcd {endpoint}: status failed: {}",
                crate::error::describe_chain(&err)
            );
            let found = classify(&err, &ctx);
            if !matches!(
                found,
                EtcdError::Unavailable { .. } | EtcdError::Tls { .. } | EtcdError::NotGrpc { .. }
            ) {
                return Err(found);
            }
            let identity = dial
                .with_identity
                .then(|| (&material.cert_pem[..], &material.key_pem[..]));
            let diagnosed =
                crate::probe::diagnose(config, &material.ca_pem, identity, endpoint, &ctx).await;
            Err(diagnosed.unwrap_or(found))
        }
        Err(_) => Err(EtcdError::Timeout {
            endpoint: endpoint.to_string(),
            after: deadline,
        }),
    }
}

pub(crate) fn context<'a>(
    config: &'a EtcdConfig,
    endpoint: &'a str,
    with_identity: bool,
) -> Context<'a> {
    Context {
        endpoint,
        domain_name: &config.domain_name,
        ca_file: &config.ca_cert_file,
        cert_file: with_identity.then_some(config.cert_file.as_path()),
        timeout: config.request_timeout,
    }
}

/// Maps an error of a request made on a client from [`connect`] to its cause.
pub fn classify_request_error(err: &etcd_client::Error, config: &EtcdConfig) -> EtcdError {
    let endpoints = config.endpoints.join(", ");
    classify(err, &context(config, &endpoints, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        assert_eq!(
            endpoint_url("127.0.0.1:2379").unwrap(),
            "https://127.0.0.1:2379"
        );
        assert_eq!(
            endpoint_url("https://etcd:2379/").unwrap(),
            "https://etcd:2379"
        );
        assert!(endpoint_url("http://127.0.0.1:2379").is_err());
        assert!(endpoint_url("127.0.0.1").is_err());
        assert!(endpoint_url("127.0.0.1:x").is_err());
    }
}

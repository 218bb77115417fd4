//! A diagnostic TLS handshake, for failures that etcd-client reports vaguely.
//!
//! Through tonic and hyper some TLS failures lose their cause: a client
//! certificate rejected by etcd under TLS 1.3 arrives as an alert *after* the
//! handshake, often seen only as "broken pipe"; a plaintext etcd just closes
//! the connection on a ClientHello. When [`crate::connect`] cannot name the
//! cause, it repeats the steps by hand: a TCP connect, a rustls handshake with
//! the same CA, client identity and domain name, a short read that catches the
//! server's alert, and — when the handshake was cut short — a plain HTTP/1.1
//! request that a plaintext etcd answers.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::EtcdConfig;
use crate::error::{alert_name, classify_rustls, Context, EtcdError};

/// How long the probe waits for the server's verdict after the handshake.
const VERDICT_WAIT: Duration = Duration::from_millis(500);

/// Tries to name why `endpoint` (`HOST:PORT`) refused a TLS client; `None`
/// when the probe finds nothing wrong or cannot tell.
pub(crate) async fn diagnose(
    config: &EtcdConfig,
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
    endpoint: &str,
    ctx: &Context<'_>,
) -> Option<EtcdError> {
    let address = endpoint
        .strip_prefix("https://")
        .unwrap_or(endpoint)
        .trim_end_matches('/');
    let wait = config.connect_timeout;

    let tcp = match tokio::time::timeout(wait, TcpStream::connect(address)).await {
        Err(_) => {
            return Some(EtcdError::Unreachable {
                endpoint: endpoint.to_string(),
                detail: format!("no connection within {} ms", wait.as_millis()),
            })
        }
        Ok(Err(err)) => {
            return Some(EtcdError::Unreachable {
                endpoint: endpoint.to_string(),
                detail: err.to_string(),
            })
        }
        Ok(Ok(tcp)) => tcp,
    };

    let tls_config = client_config(ca_pem, identity)?;
    let name = ServerName::try_from(config.domain_name.clone()).ok()?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_config));
    let mut stream = match tokio::time::timeout(wait, connector.connect(name, tcp)).await {
        Err(_) => {
            return Some(EtcdError::Timeout {
                endpoint: endpoint.to_string(),
                after: wait,
            })
        }
        Ok(Err(err)) => {
            if let Some(tls) = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
            {
                return classify_rustls(tls, ctx);
            }
            // Cut short without a TLS alert: is it plaintext?
            if speaks_http(address, wait).await {
                return Some(EtcdError::PlaintextServer {
                    endpoint: endpoint.to_string(),
                });
            }
            return Some(EtcdError::Tls {
                endpoint: endpoint.to_string(),
                detail: format!("the connection closed during the TLS handshake ({err})"),
            });
        }
        Ok(Ok(stream)) => stream,
    };

    // Under TLS 1.3 the server judges the client certificate after the
    // client's side of the handshake is done; its alert comes on first read.
    let _ = stream.write_all(b"").await;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(VERDICT_WAIT, stream.read(&mut byte)).await {
        Ok(Err(err)) => {
            let tls = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>());
            match tls {
                Some(rustls::Error::AlertReceived(alert)) => Some(EtcdError::ClientCertRejected {
                    endpoint: endpoint.to_string(),
                    cert_file: ctx.cert_file.map(std::path::Path::to_path_buf),
                    alert: alert_name(*alert),
                }),
                Some(tls) => classify_rustls(tls, ctx),
                None => None,
            }
        }
        Ok(Ok(0)) if identity.is_none() => Some(EtcdError::ClientCertRejected {
            endpoint: endpoint.to_string(),
            cert_file: ctx.cert_file.map(std::path::Path::to_path_buf),
            alert: "none: the connection was closed".into(),
        }),
        _ => None,
    }
}

fn client_config(ca_pem: &[u8], identity: Option<(&[u8], &[u8])>) -> Option<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let cas = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    roots.add_parsable_certificates(cas);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert_pem, key_pem)) => {
            let chain = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_slice(key_pem).ok()?;
            builder.with_client_auth_cert(chain, key).ok()?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols.push(b"h2".to_vec());
    Some(config)
}

/// Whether `address` answers a plain HTTP/1.1 request.
async fn speaks_http(address: &str, wait: Duration) -> bool {
    let attempt = async {
        let mut tcp = TcpStream::connect(address).await.ok()?;
        tcp.write_all(b"GET /version HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 5];
        tcp.read_exact(&mut head).await.ok()?;
        Some(&head == b"HTTP/")
    };
    matches!(tokio::time::timeout(wait, attempt).await, Ok(Some(true)))
}

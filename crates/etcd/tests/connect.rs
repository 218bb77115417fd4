//! `connect` against a real etcd: the happy path with mutual TLS, and every
//! misconfiguration an operator can make, each with its own error variant.

use std::time::Duration;

use towerlock_certs::{CertOptions, SeedCertPaths, Validity};
use towerlock_etcd::etcd_client::{Compare, CompareOp, Txn, TxnOp};
use towerlock_etcd::{
    classify_request_error, connect, connect_without_client_cert, is_outcome_unknown, EtcdConfig,
    EtcdError,
};
use towerlock_testsupport::{free_port, EtcdOptions, EtcdProcess};

/// A complete certificate set from a CA that etcd does not know.
fn foreign_certs() -> (tempfile::TempDir, SeedCertPaths) {
    let dir = tempfile::tempdir().unwrap();
    let paths = towerlock_certs::write_seed_certs(dir.path(), &CertOptions::default()).unwrap();
    (dir, paths)
}

#[tokio::test]
async fn smoke_write_and_read_with_mutual_tls() {
    let etcd = EtcdProcess::start().await;
    let mut client = connect(&etcd.config())
        .await
        .map_err(|e| e.to_string())
        .unwrap();
    client.put("smoke/key", "value", None).await.unwrap();
    let got = client.get("smoke/key", None).await.unwrap();
    assert_eq!(got.kvs().len(), 1);
    assert_eq!(got.kvs()[0].value(), b"value");

    // A fenced write, as the storage layer does it.
    let rev = got.kvs()[0].mod_revision();
    let txn = Txn::new()
        .when([Compare::mod_revision("smoke/key", CompareOp::Equal, rev)])
        .and_then([TxnOp::put("smoke/key", "fenced", None)])
        .or_else([TxnOp::get("smoke/key", None)]);
    assert!(client.txn(txn).await.unwrap().succeeded());
}

#[tokio::test]
async fn data_survives_kill_and_restart() {
    let mut etcd = EtcdProcess::start().await;
    let endpoint = etcd.endpoint();
    let mut client = etcd.client().await;
    client.put("k", "v", None).await.unwrap();
    etcd.kill();
    let err = client.get("k", None).await.unwrap_err();
    assert!(is_outcome_unknown(&err), "{err:?}");
    etcd.restart().await;
    assert_eq!(etcd.endpoint(), endpoint);
    let mut client = etcd.client().await;
    let got = client.get("k", None).await.unwrap();
    assert_eq!(got.kvs()[0].value(), b"v");
}

#[tokio::test]
async fn server_cert_from_another_ca() {
    let etcd = EtcdProcess::start().await;
    let (_dir, other) = foreign_certs();
    let mut config = etcd.config();
    config.ca_cert_file = other.ca_cert();
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(&err, EtcdError::ServerCertUntrusted { ca_file, .. } if *ca_file == other.ca_cert()),
        "{err:?}"
    );
    assert!(err.to_string().contains("not signed by the CA"), "{err}");
}

#[tokio::test]
async fn client_cert_from_another_ca() {
    let etcd = EtcdProcess::start().await;
    let (_dir, other) = foreign_certs();
    let mut config = etcd.config();
    config.cert_file = other.client_cert();
    config.key_file = other.client_key();
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(&err, EtcdError::ClientCertRejected { cert_file: Some(f), .. } if *f == other.client_cert()),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("rejected the client certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn missing_client_cert() {
    let etcd = EtcdProcess::start().await;
    let err = connect_without_client_cert(&etcd.config())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            &err,
            EtcdError::ClientCertRejected {
                cert_file: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("without a certificate"), "{err}");
}

#[tokio::test]
async fn domain_name_not_in_server_cert() {
    let etcd = EtcdProcess::start().await;
    let config = etcd.config().with_domain_name("etcd.example.org");
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(&err, EtcdError::DomainMismatch { domain_name, .. } if domain_name == "etcd.example.org"),
        "{err:?}"
    );
}

#[tokio::test]
async fn plaintext_server() {
    let plain = EtcdProcess::start_plaintext().await;
    let err = connect(&plain.config()).await.err().unwrap();
    assert!(matches!(&err, EtcdError::PlaintextServer { .. }), "{err:?}");
    assert!(err.is_tls() && !err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("plaintext"), "{err}");
}

#[tokio::test]
async fn expired_server_cert() {
    let etcd = EtcdProcess::start_with(EtcdOptions {
        server_validity: Some(Validity::expired()),
        ..EtcdOptions::tls()
    })
    .await;
    let err = connect(&etcd.config()).await.err().unwrap();
    assert!(
        matches!(&err, EtcdError::ServerCertExpired { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("expired"), "{err}");
}

#[tokio::test]
async fn expired_client_cert() {
    let etcd = EtcdProcess::start().await;
    let dir = tempfile::tempdir().unwrap();
    let expired = towerlock_certs::write_seed_certs_with(
        dir.path(),
        &["localhost".into()],
        Validity::expired(),
    )
    .unwrap();
    let mut config = etcd.config();
    config.cert_file = expired.client_cert();
    config.key_file = expired.client_key();
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(&err, EtcdError::ClientCertExpired { path, .. } if *path == expired.client_cert()),
        "{err:?}"
    );
}

#[tokio::test]
async fn unreachable_endpoint() {
    let mut etcd = EtcdProcess::start().await;
    let config = etcd.config();
    etcd.kill();
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(&err, EtcdError::Unreachable { endpoint, .. } if *endpoint == etcd.endpoint()),
        "{err:?}"
    );
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(err.is_unreachable() && !err.is_tls(), "{err:?}");
}

#[tokio::test]
async fn paused_server_times_out() {
    let etcd = EtcdProcess::start().await;
    let config = etcd.config().with_timeout(Duration::from_millis(300));
    let mut client = connect(&config).await.map_err(|e| e.to_string()).unwrap();
    etcd.pause();

    // A request on an established connection: outcome unknown.
    let err = client.put("k", "v", None).await.unwrap_err();
    assert!(is_outcome_unknown(&err), "{err:?}");
    let classified = classify_request_error(&err, &config);
    assert!(
        matches!(&classified, EtcdError::Timeout { .. }),
        "{classified:?}"
    );

    // A new connection: the verification request times out.
    let err = connect(&config).await.err().unwrap();
    assert!(matches!(&err, EtcdError::Timeout { .. }), "{err:?}");
    assert!(err.is_outcome_unknown());
    assert!(err.is_unreachable() && !err.is_tls(), "{err:?}");

    etcd.resume();
    client.put("k", "v", None).await.unwrap();
}

#[tokio::test]
async fn one_dead_endpoint_of_two_is_left_out() {
    let etcd = EtcdProcess::start().await;
    let mut config = etcd.config();
    config.endpoints = vec![format!("127.0.0.1:{}", free_port()), etcd.endpoint()];
    let mut client = connect(&config).await.map_err(|e| e.to_string()).unwrap();
    client.put("a", "b", None).await.unwrap();
}

#[tokio::test]
async fn definite_errors_are_not_outcome_unknown() {
    let etcd = EtcdProcess::start().await;
    let mut client = etcd.client().await;
    // etcd refuses an empty key: a definite answer, nothing was applied.
    let err = client.put("", "v", None).await.unwrap_err();
    assert!(!is_outcome_unknown(&err), "{err:?}");
}

#[tokio::test]
async fn unreadable_and_non_pem_files() {
    let dir = tempfile::tempdir().unwrap();
    let paths = towerlock_certs::write_seed_certs(dir.path(), &CertOptions::default()).unwrap();
    let base = EtcdConfig::new(
        vec!["127.0.0.1:1".into()],
        paths.ca_cert(),
        paths.client_cert(),
        paths.client_key(),
    );

    let mut config = base.clone();
    config.ca_cert_file = dir.path().join("missing.pem");
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(
            &err,
            EtcdError::FileUnreadable {
                what: "CA certificate",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("missing.pem"), "{err}");

    let mut config = base.clone();
    config.cert_file = paths.client_key();
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(
            &err,
            EtcdError::NotPem {
                what: "client certificate",
                ..
            }
        ),
        "{err:?}"
    );

    let mut config = base.clone();
    config.key_file = paths.client_cert();
    let err = connect(&config).await.err().unwrap();
    assert!(
        matches!(
            &err,
            EtcdError::NotPem {
                what: "client key",
                ..
            }
        ),
        "{err:?}"
    );

    let mut config = base;
    config.endpoints = vec!["http://127.0.0.1:2379".into()];
    let err = connect(&config).await.err().unwrap();
    assert!(matches!(&err, EtcdError::InvalidEndpoint { .. }), "{err:?}");
}

//! What connecting to etcd tells the caller: an etcd that does not answer
//! is told apart from certificates or TLS that are wrong.

use std::time::Duration;

use towerlock_storage::{EtcdTowerStorage, StorageError};
use towerlock_testsupport::EtcdProcess;

#[tokio::test]
async fn an_unreachable_etcd_at_connect_is_not_a_tls_problem() {
    let mut etcd = EtcdProcess::start().await;
    let config = etcd.config().with_timeout(Duration::from_millis(500));
    etcd.kill();
    let err = EtcdTowerStorage::connect(&config).await.err().unwrap();
    match &err {
        StorageError::Connect(cause) => {
            assert!(cause.is_unreachable() && !cause.is_tls(), "{cause:?}")
        }
        other => panic!("not a connect error: {other:?}"),
    }
}

#[tokio::test]
async fn a_paused_etcd_at_connect_is_unreachable() {
    let etcd = EtcdProcess::start().await;
    let config = etcd.config().with_timeout(Duration::from_millis(300));
    etcd.pause();
    let err = EtcdTowerStorage::connect(&config).await.err().unwrap();
    etcd.resume();
    assert!(
        matches!(&err, StorageError::Connect(cause) if cause.is_unreachable()),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_certificate_problem_at_connect_is_not_unreachable() {
    let etcd = EtcdProcess::start().await;
    let mut config = etcd.config();
    config.domain_name = "etcd.example.org".into();
    let err = EtcdTowerStorage::connect(&config).await.err().unwrap();
    assert!(
        matches!(&err, StorageError::Connect(cause) if cause.is_tls() && !cause.is_unreachable()),
        "{err:?}"
    );
}

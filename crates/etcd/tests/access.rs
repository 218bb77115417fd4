//! `setup_access` against a real etcd with mutual TLS: users and roles per
//! identity, a prefix, idempotence, and permission denied as its own error.

use towerlock_certs::CertKind;
use towerlock_etcd::etcd_client::{Client, GetOptions};
use towerlock_etcd::{
    classify_request_error, connect, is_permission_denied, setup_access, AccessPlan, EtcdConfig,
    EtcdError,
};
use towerlock_testsupport::EtcdProcess;

const A: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";
const B: &str = "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T";

fn config_for(etcd: &EtcdProcess, kind: &CertKind) -> EtcdConfig {
    let dir = etcd.cert_dir();
    let mut config = etcd.config();
    config.cert_file = dir.join(kind.cert_file());
    config.key_file = dir.join(kind.key_file());
    config
}

async fn client(config: &EtcdConfig) -> Client {
    connect(config).await.map_err(|e| e.to_string()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_identity_reaches_only_its_prefix_and_a_second_run_adds_nothing() {
    let etcd = EtcdProcess::start().await;
    let kinds = [
        CertKind::identity(A).unwrap(),
        CertKind::identity(B).unwrap(),
        CertKind::Reader,
        CertKind::Root,
    ];
    towerlock_certs::issue(&etcd.cert_dir(), &kinds, &[], 1, false).unwrap();
    let plan = AccessPlan {
        key_prefix: "pool/".into(),
        identities: vec![A.into(), B.into()],
        reader: Some("towerlock-reader".into()),
    };
    let root = config_for(&etcd, &CertKind::Root);
    let mut admin = client(&root).await;
    let first = setup_access(&mut admin, &plan).await.unwrap();
    assert_eq!(first.users_added, ["root", A, B, "towerlock-reader"]);
    assert_eq!(first.roles_added, [A, B, "towerlock-reader"]);
    let again = setup_access(&mut client(&root).await, &plan).await.unwrap();
    assert!(again.users_added.is_empty() && again.roles_added.is_empty());

    let a_config = config_for(&etcd, &kinds[0]);
    let mut a = client(&a_config).await;
    a.put(format!("pool/{A}/tower"), "a", None).await.unwrap();
    // Another identity's keys, keys outside the prefix, and a key that only
    // starts like A's (no slash) are all refused.
    for key in [
        format!("pool/{B}/tower"),
        format!("{A}/tower"),
        format!("pool/{A}x"),
    ] {
        let err = a.put(key.as_str(), "a", None).await.unwrap_err();
        assert!(is_permission_denied(&err), "{key}: {err}");
    }
    let err = a.get(format!("pool/{B}/tower"), None).await.unwrap_err();
    let classified = classify_request_error(&err, &a_config);
    assert!(
        matches!(classified, EtcdError::PermissionDenied { .. }),
        "{classified:?}"
    );
    let sentence = classified.to_string();
    assert!(
        sentence.contains(&a_config.cert_file.display().to_string()),
        "{sentence}"
    );
    assert!(sentence.contains("permission denied"), "{sentence}");

    let mut reader = client(&config_for(&etcd, &CertKind::Reader)).await;
    let all = reader
        .get("pool/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(all.count(), 1);
    let err = reader
        .put(format!("pool/{A}/tower"), "r", None)
        .await
        .unwrap_err();
    assert!(is_permission_denied(&err), "{err}");
    let err = reader.get("elsewhere", None).await.unwrap_err();
    assert!(is_permission_denied(&err), "outside the prefix: {err}");
}

//! `towerlock etcd setup-access` against a real etcd with mutual TLS: each
//! identity's certificate reaches only its own keys, the reader only reads,
//! and `etcd check` works with every one of them.

use std::path::PathBuf;
use std::process::{Command, Output};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_etcd::etcd_client::{Client, GetOptions};
use towerlock_etcd::{is_permission_denied, EtcdConfig};
use towerlock_storage::{EtcdTowerStorage, StorageError, TowerStorage};
use towerlock_testsupport::EtcdProcess;
use towerlock_tower::{SavedTower, Tower};

fn towerlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run towerlock")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    stdout
}

/// The etcd config with the client pair `<name>.pem`, `<name>-key.pem`.
fn as_user(etcd: &EtcdProcess, name: &str) -> EtcdConfig {
    let dir = etcd.cert_dir();
    let mut config = etcd.config();
    config.cert_file = dir.join(format!("{name}.pem"));
    config.key_file = dir.join(format!("{name}-key.pem"));
    config
}

fn etcd_flags(config: &EtcdConfig) -> Vec<String> {
    let path = |p: &PathBuf| p.display().to_string();
    vec![
        "--etcd-endpoint".into(),
        config.endpoints[0].clone(),
        "--etcd-cacert-file".into(),
        path(&config.ca_cert_file),
        "--etcd-cert-file".into(),
        path(&config.cert_file),
        "--etcd-key-file".into(),
        path(&config.key_file),
    ]
}

fn run_with(config: &EtcdConfig, args: &[&str]) -> Output {
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend(etcd_flags(config));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    towerlock(&all)
}

fn tower(keypair: &Keypair, slots: std::ops::Range<u64>) -> SavedTower {
    let mut tower = Tower::new(keypair.pubkey());
    for slot in slots {
        let _ = tower.record_vote(
            slot,
            Hash::new_from_array([slot as u8; 32]),
            Hash::default(),
            1,
        );
    }
    SavedTower::new(&tower, keypair).unwrap()
}

async fn client(config: &EtcdConfig) -> Client {
    towerlock_etcd::connect(config).await.expect("connect")
}

/// Issues certificates for `identities`, the reader and root from the
/// etcd's own CA, and turns access control on for `identities`.
fn set_up(etcd: &EtcdProcess, identities: &[String]) -> String {
    let dir = etcd.cert_dir();
    let dir = dir.display().to_string();
    let mut add = vec!["certs", "add", "--dir", &dir, "--reader", "--root"];
    for identity in identities {
        add.extend(["--identity", identity.as_str()]);
    }
    succeeded(&towerlock(&add));
    let mut args = vec!["etcd", "setup-access"];
    for identity in identities {
        args.extend(["--identity", identity.as_str()]);
    }
    succeeded(&run_with(&as_user(etcd, "root"), &args))
}

#[tokio::test(flavor = "multi_thread")]
async fn one_identitys_certificate_cannot_touch_another_identitys_tower() {
    let etcd = EtcdProcess::start().await;
    let (a, b) = (Keypair::new(), Keypair::new());
    let (a_id, b_id) = (a.pubkey().to_string(), b.pubkey().to_string());
    let out = set_up(&etcd, &[a_id.clone(), b_id.clone()]);
    assert!(
        out.contains(&format!("{a_id}: read and write on {a_id}/*")),
        "{out}"
    );

    // B's tower, stored with B's own certificate.
    let b_storage = EtcdTowerStorage::connect(&as_user(&etcd, &format!("validator-{b_id}")))
        .await
        .unwrap();
    let b_token = b_storage.takeover(&b.pubkey()).await.unwrap().token;
    let _stored = b_storage.store(&b_token, &tower(&b, 1..5)).await.unwrap();

    // A's certificate stores A's tower...
    let a_config = as_user(&etcd, &format!("validator-{a_id}"));
    let a_storage = EtcdTowerStorage::connect(&a_config).await.unwrap();
    let a_token = a_storage.takeover(&a.pubkey()).await.unwrap().token;
    let _stored = a_storage.store(&a_token, &tower(&a, 1..9)).await.unwrap();
    assert_eq!(
        a_storage
            .load_unfenced(&a.pubkey())
            .await
            .unwrap()
            .tower()
            .last_voted_slot(),
        Some(8)
    );

    // ...but cannot take B's fence nor read B's tower, with a clear sentence.
    let err = a_storage.takeover(&b.pubkey()).await.unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err:?}"
    );
    let sentence = err.to_string();
    assert!(sentence.contains("permission denied"), "{sentence}");
    assert!(sentence.contains(&b_id), "names the key: {sentence}");
    let err = a_storage.load_unfenced(&b.pubkey()).await.unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err:?}"
    );

    // Raw requests with A's certificate: no read, no write of B's keys.
    let mut raw = client(&a_config).await;
    let read = raw.get(format!("{b_id}/tower"), None).await.unwrap_err();
    assert!(is_permission_denied(&read), "{read}");
    let write = raw
        .put(format!("{b_id}/tower"), "x", None)
        .await
        .unwrap_err();
    assert!(is_permission_denied(&write), "{write}");
    let outside = raw.put("elsewhere", "x", None).await.unwrap_err();
    assert!(is_permission_denied(&outside), "{outside}");

    // B's fence and tower are as B left them.
    let b_again = b_storage.load_unfenced(&b.pubkey()).await.unwrap();
    assert_eq!(b_again.tower().last_voted_slot(), Some(4));
    let _stored = b_storage.store(&b_token, &tower(&b, 1..6)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reader_reads_every_identity_and_writes_nothing() {
    let etcd = EtcdProcess::start().await;
    let a = Keypair::new();
    let a_id = a.pubkey().to_string();
    set_up(&etcd, std::slice::from_ref(&a_id));
    let a_storage = EtcdTowerStorage::connect(&as_user(&etcd, &format!("validator-{a_id}")))
        .await
        .unwrap();
    let token = a_storage.takeover(&a.pubkey()).await.unwrap().token;
    let _stored = a_storage.store(&token, &tower(&a, 1..4)).await.unwrap();

    let reader = as_user(&etcd, "reader");
    let reader_storage = EtcdTowerStorage::connect(&reader).await.unwrap();
    let read = reader_storage.load_unfenced(&a.pubkey()).await.unwrap();
    assert_eq!(read.tower().last_voted_slot(), Some(3));
    let err = reader_storage.takeover(&a.pubkey()).await.unwrap_err();
    assert!(
        matches!(err, StorageError::PermissionDenied { .. }),
        "{err:?}"
    );

    let mut raw = client(&reader).await;
    let got = raw.get(format!("{a_id}/instance"), None).await.unwrap();
    assert_eq!(got.count(), 1);
    let write = raw
        .put(format!("{a_id}/tower"), "x", None)
        .await
        .unwrap_err();
    assert!(is_permission_denied(&write), "{write}");
    assert_eq!(
        a_storage
            .load_unfenced(&a.pubkey())
            .await
            .unwrap()
            .tower()
            .last_voted_slot(),
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_access_again_adds_identities_and_keeps_the_others() {
    let etcd = EtcdProcess::start().await;
    let (a, c) = (Keypair::new(), Keypair::new());
    let (a_id, c_id) = (a.pubkey().to_string(), c.pubkey().to_string());
    let first = set_up(&etcd, std::slice::from_ref(&a_id));
    assert!(first.contains("users added: root"), "{first}");

    let dir = etcd.cert_dir().display().to_string();
    succeeded(&towerlock(&[
        "certs",
        "add",
        "--dir",
        &dir,
        "--identity",
        &c_id,
    ]));
    let again = succeeded(&run_with(
        &as_user(&etcd, "root"),
        &[
            "etcd",
            "setup-access",
            "--identity",
            &a_id,
            "--identity",
            &c_id,
        ],
    ));
    assert!(again.contains(&format!("users added: {c_id}\n")), "{again}");

    for (keypair, id) in [(&a, &a_id), (&c, &c_id)] {
        let storage = EtcdTowerStorage::connect(&as_user(&etcd, &format!("validator-{id}")))
            .await
            .unwrap();
        let token = storage.takeover(&keypair.pubkey()).await.unwrap().token;
        let _stored = storage.store(&token, &tower(keypair, 1..3)).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn setup_access_needs_the_root_certificate() {
    let etcd = EtcdProcess::start().await;
    let a_id = Keypair::new().pubkey().to_string();
    let out = run_with(
        &etcd.config(),
        &["etcd", "setup-access", "--identity", &a_id],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("root user"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    // Nothing changed: the seed's certificate still writes anywhere.
    etcd.client()
        .await
        .put("anywhere", "x", None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_check_works_under_access_control() {
    let etcd = EtcdProcess::start().await;
    let a_id = Keypair::new().pubkey().to_string();
    set_up(&etcd, std::slice::from_ref(&a_id));

    let identity = succeeded(&run_with(
        &as_user(&etcd, &format!("validator-{a_id}")),
        &["etcd", "check"],
    ));
    assert!(
        identity.contains("fenced write (txn with compare)"),
        "{identity}"
    );
    assert!(identity.contains(&format!("CN {a_id}")), "{identity}");
    assert!(
        identity.lines().last().unwrap_or("").starts_with("ok"),
        "{identity}"
    );

    let reader = succeeded(&run_with(&as_user(&etcd, "reader"), &["etcd", "check"]));
    assert!(reader.contains("fenced write: not allowed"), "{reader}");
    assert!(reader.contains("read (linearizable get)"), "{reader}");
    // The lab's certificates last a day: their expiry is the only warning.
    let warnings: Vec<&str> = reader
        .lines()
        .filter(|l| l.starts_with("warning:") && !l.contains(" expires in "))
        .collect();
    assert!(warnings.is_empty(), "{reader}");

    let root = succeeded(&run_with(&as_user(&etcd, "root"), &["etcd", "check"]));
    assert!(root.contains("fenced write (txn with compare)"), "{root}");

    // The seed's shared certificate (CN validator) is no user any more.
    let seed = run_with(&etcd.config(), &["etcd", "check"]);
    let stderr = text(&seed.stderr);
    assert_eq!(seed.status.code(), Some(1), "{}", text(&seed.stdout));
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");

    // No scratch key is left behind, under A's keys or elsewhere.
    let mut root_client = client(&as_user(&etcd, "root")).await;
    let all = root_client
        .get("", Some(GetOptions::new().with_all_keys().with_keys_only()))
        .await
        .unwrap();
    let left: Vec<String> = all
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .filter(|key| key.contains("towerlock-check/") && !key.ends_with("compaction-probe"))
        .collect();
    assert!(left.is_empty(), "scratch keys left: {left:?}");
}

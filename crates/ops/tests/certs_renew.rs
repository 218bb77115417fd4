//! `towerlock certs init --identity`, `certs add` and `certs renew`: one
//! certificate per identity, renewal from the existing CA that leaves every
//! other file as it was, against a real etcd started with the old CA files.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_certs::CertificateInfo;
use towerlock_storage::{EtcdTowerStorage, TowerStorage};
use towerlock_testsupport::EtcdProcess;

fn towerlock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(args)
        .output()
        .expect("run towerlock")
}

#[track_caller]
fn succeeded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every file of `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_with_identities_writes_one_certificate_per_identity() {
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (Keypair::new(), Keypair::new());
    let b_file = work.path().join("b-keypair.json");
    std::fs::write(
        &b_file,
        serde_json::to_string(&b.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    let dir = work.path().join("certs");
    let out = succeeded(&towerlock(&[
        "certs",
        "init",
        "--dir",
        dir.to_str().unwrap(),
        "--identity",
        &a.pubkey().to_string(),
        "--identity",
        b_file.to_str().unwrap(),
    ]));
    for (keypair, name) in [(&a, "a"), (&b, "b")] {
        let id = keypair.pubkey().to_string();
        let cert = dir.join(format!("validator-{id}.pem"));
        let info = CertificateInfo::read(&cert).unwrap();
        assert_eq!(info.common_name, id, "{name}");
        assert_eq!(mode(&dir.join(format!("validator-{id}-key.pem"))), 0o600);
        assert!(out.contains(&cert.display().to_string()), "{out}");
    }
    assert!(!dir.join("validator.pem").exists(), "no shared certificate");
    for (file, cn) in [("reader.pem", "towerlock-reader"), ("root.pem", "root")] {
        assert_eq!(
            CertificateInfo::read(&dir.join(file)).unwrap().common_name,
            cn
        );
    }
    assert_eq!(mode(&dir.join("root-key.pem")), 0o600);
    assert!(out.contains("etcd setup-access"), "{out}");

    // Not a pubkey, not a file: one sentence, nothing written.
    let other = work.path().join("other");
    let bad = towerlock(&[
        "certs",
        "init",
        "--dir",
        other.to_str().unwrap(),
        "--identity",
        "nope",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("\"nope\" is neither a base-58 pubkey"),
        "{stderr}"
    );
    assert!(!other.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_renewed_certificate_works_against_etcd_started_with_the_old_ca() {
    let mut etcd = EtcdProcess::start().await;
    let dir = etcd.cert_dir();
    let d = dir.to_str().unwrap().to_string();
    let a = Keypair::new();
    let id = a.pubkey().to_string();
    succeeded(&towerlock(&[
        "certs",
        "add",
        "--dir",
        &d,
        "--identity",
        &id,
        "--days",
        "2",
    ]));
    let cert = dir.join(format!("validator-{id}.pem"));
    let old = CertificateInfo::read(&cert).unwrap();
    let before = snapshot(&dir);

    let out = succeeded(&towerlock(&[
        "certs",
        "renew",
        "--dir",
        &d,
        "--identity",
        &id,
        "--days",
        "400",
    ]));
    assert!(out.contains(&format!("CN {id}")), "{out}");
    // The lab's CA lasts a day: the renewed certificate outlives it.
    assert!(out.contains("note: the CA expires on"), "{out}");
    let after = snapshot(&dir);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "the same files, no temporary one left"
    );
    let renewed = [
        format!("validator-{id}.pem"),
        format!("validator-{id}-key.pem"),
    ];
    for (name, bytes) in &before {
        if renewed.contains(name) {
            assert_ne!(bytes, &after[name], "{name} was not renewed");
        } else {
            assert_eq!(bytes, &after[name], "{name} changed");
        }
    }
    let new = CertificateInfo::read(&cert).unwrap();
    assert_eq!(new.common_name, old.common_name);
    let gained = new.not_after.unix_timestamp() - old.not_after.unix_timestamp();
    assert!(gained > 390 * 86_400, "{gained} s");
    assert_eq!(mode(&dir.join(&renewed[1])), 0o600);

    // etcd, untouched and still running on the old CA files, takes it.
    let mut config = etcd.config();
    config.cert_file = cert.clone();
    config.key_file = dir.join(&renewed[1]);
    let storage = EtcdTowerStorage::connect(&config).await.unwrap();
    storage.takeover(&a.pubkey()).await.unwrap();

    // The server certificate renewed keeps its hosts; etcd restarted on it
    // is still trusted under the name clients check.
    let server = CertificateInfo::read(&dir.join("etcd.pem")).unwrap();
    succeeded(&towerlock(&["certs", "renew", "--dir", &d, "--server"]));
    let renewed_server = CertificateInfo::read(&dir.join("etcd.pem")).unwrap();
    assert_eq!(renewed_server.hosts, server.hosts);
    assert_ne!(renewed_server.not_after, server.not_after);
    etcd.restart().await;
    let storage = EtcdTowerStorage::connect(&config).await.unwrap();
    storage.takeover(&a.pubkey()).await.unwrap();
}

#[test]
fn renew_all_leaves_the_ca_and_refuses_what_does_not_exist() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path().join("certs");
    let d = d.to_str().unwrap();
    succeeded(&towerlock(&["certs", "init", "--dir", d, "--days", "5"]));
    let before = snapshot(Path::new(d));
    let out = succeeded(&towerlock(&["certs", "renew", "--dir", d, "--all"]));
    let after = snapshot(Path::new(d));
    for name in before.keys() {
        let is_ca = name.starts_with("etcd-ca");
        assert_eq!(before[name] == after[name], is_ca, "{name}");
    }
    assert!(out.contains("etcd's server certificate"), "{out}");
    assert!(out.contains("note: the CA expires on"), "{out}");
    let within = succeeded(&towerlock(&[
        "certs", "renew", "--dir", d, "--reader", "--days", "1",
    ]));
    assert!(!within.contains("note:"), "{within}");
    let after = snapshot(Path::new(d));

    let missing = Keypair::new().pubkey().to_string();
    let refused = towerlock(&["certs", "renew", "--dir", d, "--identity", &missing]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot renew the certificate of identity {missing}"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert_eq!(after, snapshot(Path::new(d)), "nothing written");

    let nothing = towerlock(&["certs", "renew", "--dir", d]);
    assert_eq!(nothing.status.code(), Some(2), "clap: say what to renew");
}

//! `towerlock etcd check` against a real etcd.

use std::process::{Command, Output};

use towerlock_etcd::etcd_client::GetOptions;
use towerlock_etcd::EtcdConfig;
use towerlock_testsupport::EtcdProcess;

fn check(config: &EtcdConfig, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_towerlock"));
    command.args(["etcd", "check"]);
    for endpoint in &config.endpoints {
        command.args(["--etcd-endpoint", endpoint]);
    }
    command
        .arg("--etcd-cacert-file")
        .arg(&config.ca_cert_file)
        .arg("--etcd-cert-file")
        .arg(&config.cert_file)
        .arg("--etcd-key-file")
        .arg(&config.key_file)
        .args(extra)
        .env("RUST_LOG", "error")
        .output()
        .expect("run towerlock")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_version_members_size_compaction_and_latency() {
    let etcd = EtcdProcess::start().await;
    let out = check(&etcd.config(), &[]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("etcd 3."), "no version:\n{stdout}");
    assert!(stdout.contains("members: 1"), "{stdout}");
    assert!(stdout.contains("leader: default"), "{stdout}");
    assert!(stdout.contains("of quota 2.0 GiB"), "{stdout}");
    // A fresh etcd has not compacted yet: the check cannot tell, and says so.
    assert!(stdout.contains("compaction: unknown"), "{stdout}");
    assert!(
        stdout.contains("--auto-compaction-mode revision"),
        "{stdout}"
    );
    assert!(stdout.contains("fenced write"), "{stdout}");

    // The scratch key is gone.
    let mut client = etcd.client().await;
    let left = client
        .get("towerlock-check/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(left.count(), 0, "scratch keys left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn sees_that_history_was_compacted() {
    let etcd = EtcdProcess::start().await;
    let mut client = etcd.client().await;
    let mut revision = 0;
    for i in 0..5 {
        revision = client
            .put("k", i.to_string(), None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
    }
    client.compact(revision - 1, None).await.unwrap();
    let out = check(&etcd.config(), &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "compaction: on (history compacted up to revision {}",
            revision - 1
        )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warns_when_near_the_quota() {
    let etcd = EtcdProcess::start().await;
    let out = check(&etcd.config(), &["--quota-bytes", "1024"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("warning: the database is at"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_etcd_exits_1_with_the_unreachable_sentence() {
    let mut etcd = EtcdProcess::start().await;
    let config = etcd.config();
    etcd.kill();
    let out = check(&config, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    assert!(
        stderr.contains(&format!("etcd at {} is unreachable", etcd.endpoint())),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_ca_exits_1_naming_the_ca() {
    let etcd = EtcdProcess::start().await;
    let other = tempfile::tempdir().unwrap();
    let paths = towerlock_certs::write_seed_certs(other.path(), &Default::default()).unwrap();
    let mut config = etcd.config();
    config.ca_cert_file = paths.ca_cert();
    let out = check(&config, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is not signed by the CA in"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_failing_endpoint_of_two_is_named_and_exits_1() {
    let etcd = EtcdProcess::start().await;
    let mut config = etcd.config();
    // A free port nobody listens on.
    let dead = format!("127.0.0.1:{}", towerlock_testsupport::free_port());
    config.endpoints.push(dead.clone());
    let out = check(&config, &[]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // The live endpoint is still checked in full.
    assert!(stdout.contains("etcd 3."), "{stdout}");
    assert!(stdout.contains("fenced write"), "{stdout}");
    assert!(stdout.contains(&format!("{dead}: FAILED")), "{stdout}");
    assert!(
        stdout.contains("FAILED: 1 of 2 endpoints cannot be used"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "error: endpoint {dead} failed: etcd at {dead} is unreachable"
        )),
        "{stderr}"
    );
}

//! `towerlock etcd check` reads the CA and client certificates first: it
//! prints their expiry, warns when one expires within 30 days, and fails
//! with one sentence when one has expired.

use std::process::{Command, Output};

use towerlock_certs::{CertificateInfo, Validity, EXPIRY_WARNING_DAYS};
use towerlock_etcd::EtcdConfig;
use towerlock_testsupport::EtcdProcess;

fn check(config: &EtcdConfig) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(["etcd", "check", "--etcd-endpoint", &config.endpoints[0]])
        .arg("--etcd-cacert-file")
        .arg(&config.ca_cert_file)
        .arg("--etcd-cert-file")
        .arg(&config.cert_file)
        .arg("--etcd-key-file")
        .arg(&config.key_file)
        .env("RUST_LOG", "error")
        .output()
        .expect("run towerlock")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn prints_each_expiry_and_warns_within_the_threshold() {
    // The lab's certificates are valid for one day: inside the threshold.
    const { assert!(EXPIRY_WARNING_DAYS >= 1) };
    let etcd = EtcdProcess::start().await;
    let config = etcd.config();
    let out = check(&config);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let client = CertificateInfo::read(&config.cert_file).unwrap();
    let until = format!("valid until {} UTC", client.not_after.date());
    assert!(
        stdout.contains(&format!(
            "{} (client certificate, CN validator): {until}",
            config.cert_file.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "{} (CA certificate, CN etcd-ca): ",
            config.ca_cert_file.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "warning: the client certificate {} (CN validator) expires in 0 days",
            config.cert_file.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("towerlock certs renew"), "{stdout}");
    assert!(stdout.contains("ok, with"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_valid_beyond_the_threshold_is_not_warned_about() {
    let etcd = EtcdProcess::start().await;
    let dir = etcd.cert_dir().display().to_string();
    // A renewed client certificate from the same CA, for a year.
    let renewed = Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args([
            "certs",
            "renew",
            "--dir",
            &dir,
            "--validator",
            "--days",
            "365",
        ])
        .output()
        .unwrap();
    assert!(renewed.status.success(), "{}", text(&renewed.stderr));
    let out = check(&etcd.config());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        !stdout.contains("warning: the client certificate"),
        "{stdout}"
    );
    // The CA still expires within a day.
    assert!(stdout.contains("warning: the CA certificate"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_certificate_fails_with_one_sentence() {
    let etcd = EtcdProcess::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hosts = vec!["localhost".to_string()];
    let expired =
        towerlock_certs::write_seed_certs_with(dir.path(), &hosts, Validity::expired()).unwrap();
    let mut config = etcd.config();
    config.cert_file = expired.client_cert();
    config.key_file = expired.client_key();
    let out = check(&config);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    assert!(
        stderr.contains(&format!(
            "the client certificate {} (CN validator) expired on",
            config.cert_file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("towerlock certs renew"), "{stderr}");
}

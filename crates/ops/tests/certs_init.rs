//! `towerlock certs init`: the seed's file names, key modes, no silent
//! overwrite, and the seed's own etcd and curl commands working with them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SEED_FILES: [&str; 6] = [
    "etcd-ca.pem",
    "etcd-ca-key.pem",
    "etcd.pem",
    "etcd-key.pem",
    "validator.pem",
    "validator-key.pem",
];

fn towerlock(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_towerlock"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run towerlock")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn writes_the_seed_files_and_refuses_to_overwrite_without_force() {
    let work = tempfile::tempdir().unwrap();
    let out = towerlock(work.path(), &["certs", "init", "--dir", "certs"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let certs = work.path().join("certs");
    for file in SEED_FILES {
        assert!(certs.join(file).is_file(), "{file} missing");
        assert!(
            stdout.contains(&format!("certs/{file}")),
            "{file} not reported:\n{stdout}"
        );
    }
    for key in ["etcd-ca-key.pem", "etcd-key.pem", "validator-key.pem"] {
        assert_eq!(mode(&certs.join(key)), 0o600, "{key}");
    }
    assert!(stdout.contains("Next steps"), "{stdout}");

    let before: Vec<Vec<u8>> = SEED_FILES
        .iter()
        .map(|f| std::fs::read(certs.join(f)).unwrap())
        .collect();
    let again = towerlock(work.path(), &["certs", "init", "--dir", "certs"]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one sentence: {stderr}");
    let after: Vec<Vec<u8>> = SEED_FILES
        .iter()
        .map(|f| std::fs::read(certs.join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "files changed without --force");

    let forced = towerlock(work.path(), &["certs", "init", "--dir", "certs", "--force"]);
    assert!(forced.status.success());
    assert_ne!(std::fs::read(certs.join("etcd-ca.pem")).unwrap(), before[0]);
    assert_eq!(mode(&certs.join("validator-key.pem")), 0o600);
}

#[test]
fn rejects_bad_arguments() {
    let work = tempfile::tempdir().unwrap();
    let out = towerlock(work.path(), &["certs", "init", "--hosts", "not a host!"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a host!"));
    assert!(
        !work.path().join("certs").exists()
            || std::fs::read_dir(work.path().join("certs"))
                .unwrap()
                .count()
                == 0
    );
    let out = towerlock(work.path(), &["certs", "init", "--days", "0"]);
    assert!(!out.status.success());
}

/// Kills the process on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    towerlock_testsupport::free_port()
}

/// The seed's etcd command line and curl check, verbatim but for the ports,
/// with certificates from `towerlock certs init`.
#[test]
fn the_seeds_etcd_command_and_curl_check_work() {
    let etcd = towerlock_testsupport::etcd_binary();
    let work = tempfile::tempdir().unwrap();
    let out = towerlock(work.path(), &["certs", "init", "--dir", "certs"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);

    // The printed command is the seed's, flag for flag.
    let seed_etcd = "etcd --auto-compaction-retention 2 --auto-compaction-mode revision \\
   --cert-file=certs/etcd.pem --key-file=certs/etcd-key.pem \\
   --client-cert-auth \\
   --trusted-ca-file=certs/etcd-ca.pem \\
   --listen-client-urls=https://127.0.0.1:2379 \\
   --advertise-client-urls=https://127.0.0.1:2379";
    assert!(
        stdout.contains(seed_etcd),
        "printed etcd command differs:\n{stdout}"
    );
    let seed_curl = "curl --cacert certs/etcd-ca.pem https://127.0.0.1:2379/ --cert certs/validator.pem --key certs/validator-key.pem";
    assert!(
        stdout.contains(seed_curl),
        "printed curl command differs:\n{stdout}"
    );

    // Run them with free ports. The seed leaves the peer URL at its default
    // (localhost:2380); move it to a free port too, so tests can run side by side.
    let client_port = free_port().to_string();
    let peer = format!("http://127.0.0.1:{}", free_port());
    let command = format!(
        "exec {} {} --listen-peer-urls={peer} --initial-advertise-peer-urls={peer} \
         --initial-cluster=default={peer}",
        etcd.display(),
        seed_etcd
            .trim_start_matches("etcd ")
            .replace("\\\n", " ")
            .replace("2379", &client_port)
    );
    let log = std::fs::File::create(work.path().join("etcd.log")).unwrap();
    let _etcd = Guard(
        Command::new("bash")
            .arg("-c")
            .arg(&command)
            .current_dir(work.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );

    let curl = seed_curl.replace("2379", &client_port);
    let args: Vec<&str> = curl.split_whitespace().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let out = Command::new("/usr/bin/curl")
            .args(&args[1..])
            .arg("--silent")
            .current_dir(work.path())
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && !body.is_empty() {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "curl never answered; etcd log:\n{}",
            towerlock_testsupport::log_tail(&work.path().join("etcd.log"), 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body.trim(), "404 page not found");

    // Without the client certificate, etcd refuses the handshake.
    let out = Command::new("/usr/bin/curl")
        .args(["--silent", "--cacert", "certs/etcd-ca.pem"])
        .arg(format!("https://127.0.0.1:{client_port}/"))
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "etcd accepted a client without a certificate"
    );
}

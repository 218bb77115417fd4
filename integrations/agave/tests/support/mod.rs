//! A real etcd with the seed's mutual TLS, certificates made by `towerlock
//! certs init`, and the `towerlock` binary for the interoperability checks.
//!
//! A test that needs etcd or `towerlock` fails — never skips — when either
//! is missing, saying how to get it. (towerlock's own `EtcdProcess` lives in
//! crates that cannot link beside agave 3.1, see `src/fence.rs`.)

#![allow(dead_code)]

pub mod tower;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use towerlock_agave::EtcdConfig;

/// How long etcd may take to answer after it was started.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The `towerlock` binary: `$TOWERLOCK_BIN`, else the main workspace's
/// debug build.
pub fn towerlock_bin() -> PathBuf {
    let path = std::env::var_os("TOWERLOCK_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/towerlock")
        });
    assert!(
        path.is_file(),
        "the towerlock binary is missing at {}: run `cargo build -p towerlock-ops --bin towerlock` \
         at the repository root (scripts/check-agave.sh does), or set TOWERLOCK_BIN",
        path.display()
    );
    path
}

/// The `etcd` binary on PATH.
fn etcd_bin() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("etcd"))
                .find(|candidate| candidate.is_file())
        })
        .expect(
            "etcd is not on PATH: install it (Debian: apt-get install -y etcd-server; \
             scripts/check-agave.sh does)",
        )
}

/// Runs `towerlock` with `args`; panics with its output when it fails to
/// start.
pub fn towerlock(args: &[&str]) -> Output {
    Command::new(towerlock_bin())
        .args(args)
        .output()
        .expect("run towerlock")
}

/// `towerlock` that must succeed: its standard output.
pub fn towerlock_ok(args: &[&str]) -> String {
    let output = towerlock(args);
    assert!(
        output.status.success(),
        "towerlock {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// One etcd member with the seed's flags and TLS, on free loopback ports,
/// killed on drop.
pub struct Etcd {
    dir: tempfile::TempDir,
    child: Child,
    client_port: u16,
}

impl Etcd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let certs = dir.path().join("certs");
        towerlock_ok(&[
            "certs",
            "init",
            "--dir",
            certs.to_str().unwrap(),
            "--hosts",
            "localhost,127.0.0.1",
        ]);
        let [client_port, peer_port] = free_ports();
        let client_url = format!("https://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let cert = |name: &str| certs.join(name).display().to_string();
        let child = Command::new(etcd_bin())
            .args([
                "--name".to_string(),
                "agave-test".to_string(),
                format!("--data-dir={}", dir.path().join("data").display()),
                "--auto-compaction-retention".to_string(),
                "2".to_string(),
                "--auto-compaction-mode".to_string(),
                "revision".to_string(),
                format!("--cert-file={}", cert("etcd.pem")),
                format!("--key-file={}", cert("etcd-key.pem")),
                "--client-cert-auth".to_string(),
                format!("--trusted-ca-file={}", cert("etcd-ca.pem")),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=agave-test={peer_url}"),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log"))
            .spawn()
            .expect("start etcd");
        let etcd = Self {
            dir,
            child,
            client_port,
        };
        etcd.wait_until_serving();
        etcd
    }

    /// Waits, up to [`START_DEADLINE`], until etcd answers a TLS request.
    fn wait_until_serving(&self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let deadline = Instant::now() + START_DEADLINE;
        let config = self.config(Duration::from_millis(500));
        runtime.block_on(async {
            loop {
                match towerlock_etcd::connect(&config).await {
                    Ok(_) => return,
                    Err(err) if Instant::now() < deadline => {
                        tracing::debug!("etcd not serving yet: {err}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(err) => panic!(
                        "etcd did not serve within {START_DEADLINE:?}: {err}; its log: {}",
                        std::fs::read_to_string(self.dir.path().join("etcd.log"))
                            .unwrap_or_default()
                    ),
                }
            }
        });
    }

    /// The client config of the seed's validator certificate, with
    /// `timeout` as the deadline of every call.
    pub fn config(&self, timeout: Duration) -> EtcdConfig {
        let certs = self.dir.path().join("certs");
        EtcdConfig::new(
            vec![self.endpoint()],
            certs.join("etcd-ca.pem"),
            certs.join("validator.pem"),
            certs.join("validator-key.pem"),
        )
        .with_timeout(timeout)
    }

    /// `HOST:PORT` of the member.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The etcd flags of every `towerlock` command, and of agave.
    pub fn flags(&self) -> Vec<String> {
        let certs = self.dir.path().join("certs");
        vec![
            "--etcd-endpoint".into(),
            self.endpoint(),
            "--etcd-cacert-file".into(),
            certs.join("etcd-ca.pem").display().to_string(),
            "--etcd-cert-file".into(),
            certs.join("validator.pem").display().to_string(),
            "--etcd-key-file".into(),
            certs.join("validator-key.pem").display().to_string(),
        ]
    }

    /// A scratch directory that lives as long as etcd.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Freezes etcd (SIGSTOP): requests get no answer.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws etcd (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} etcd failed");
    }

    /// Writes `value` under `key` directly, as an operator or another tool
    /// could.
    pub fn put(&self, key: &str, value: Vec<u8>) {
        let config = self.config(Duration::from_secs(5));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut client = towerlock_etcd::connect(&config).await.expect("connect");
            client.put(key, value, None).await.expect("put");
        });
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two loopback ports that were free a moment ago (bound at once, so they
/// differ).
fn free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind");
    [
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    ]
}

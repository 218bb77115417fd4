//! Real processes for integration tests, owned by Drop guards.
//!
//! [`EtcdProcess`] spawns the real `etcd` binary (never a mock): a temporary
//! data dir, free loopback ports, and by default the seed's mutual TLS with
//! certificates made by `towerlock-certs` in the temporary dir. It waits until
//! etcd reports healthy (polling with a deadline, no fixed sleeps), and offers
//! the faults tests need: [`EtcdProcess::kill`] (SIGKILL),
//! [`EtcdProcess::restart`] (same data and ports), [`EtcdProcess::pause`] /
//! [`EtcdProcess::resume`] (SIGSTOP / SIGCONT). Dropping it kills etcd and
//! removes the directory.
//!
//! Health is read from etcd's plain-HTTP metrics listener (`/health`), so it
//! works whatever the client-side TLS (plaintext servers, expired
//! certificates) and does not depend on the code under test.
//!
//! If `etcd` is not on PATH, starting panics with how to install it: these
//! tests never skip.
//!
//! [`lab`] puts the whole system together (etcd, a local cluster, validator
//! processes) for end-to-end tests, `towerlock drill` and the benchmarks.

pub mod lab;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use towerlock_certs::{SeedCertPaths, Validity};
use towerlock_etcd::EtcdConfig;

/// The message of the panic when the etcd binary is missing.
pub const ETCD_MISSING: &str =
    "etcd not found on PATH: install it with 'apt-get update && apt-get install -y etcd-server'";

/// How long [`EtcdProcess::start_with`] waits for etcd to become healthy.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// How to start etcd.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Serve clients with the seed's mutual TLS (`https://`), or in plaintext.
    pub tls: bool,
    /// Validity of the generated certificates (e.g. [`Validity::expired`]).
    pub validity: Validity,
    /// Validity of the server certificate alone, when it should differ.
    pub server_validity: Option<Validity>,
    /// Host names in the server certificate.
    pub hosts: Vec<String>,
    /// Extra command-line flags for etcd.
    pub extra_args: Vec<String>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            tls: true,
            validity: Validity::days(1),
            server_validity: None,
            hosts: towerlock_certs::DEFAULT_HOSTS
                .iter()
                .map(|h| h.to_string())
                .collect(),
            extra_args: Vec::new(),
        }
    }
}

impl EtcdOptions {
    /// The seed's TLS setup (the default).
    pub fn tls() -> Self {
        Self::default()
    }

    /// A plaintext etcd (`http://` client URL); certificates are still made,
    /// so that a TLS client can be pointed at it.
    pub fn plaintext() -> Self {
        Self {
            tls: false,
            ..Self::default()
        }
    }
}

/// A running `etcd` for one test. Dropping it kills etcd and removes its dir.
#[derive(Debug)]
pub struct EtcdProcess {
    dir: tempfile::TempDir,
    options: EtcdOptions,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    child: Option<Child>,
}

impl EtcdProcess {
    /// Starts etcd with the seed's mutual TLS and waits until it is healthy.
    pub async fn start() -> Self {
        Self::start_with(EtcdOptions::default()).await
    }

    /// Starts a plaintext etcd and waits until it is healthy.
    pub async fn start_plaintext() -> Self {
        Self::start_with(EtcdOptions::plaintext()).await
    }

    /// Starts etcd as `options` say and waits until it is healthy.
    ///
    /// Panics when etcd is not installed or does not become healthy within
    /// [`STARTUP_DEADLINE`] (printing the tail of its log).
    pub async fn start_with(options: EtcdOptions) -> Self {
        let etcd = etcd_binary();
        let mut dir = tempfile::Builder::new()
            .prefix("towerlock-etcd-")
            .tempdir()
            .expect("create a temporary dir for etcd");
        towerlock_certs::SeedCerts::generate_with(
            &options.hosts,
            options.validity,
            options.server_validity.unwrap_or(options.validity),
            options.validity,
        )
        .and_then(|certs| certs.write(&dir.path().join("certs"), true))
        .expect("generate certificates for etcd");
        let mut last_log = String::new();
        // Free ports are picked by binding port 0 and released before etcd
        // binds them; another process may grab one meanwhile, so retry.
        for _attempt in 0..3 {
            let (client_port, peer_port, metrics_port) = free_ports();
            let mut process = Self {
                dir,
                options: options.clone(),
                client_port,
                peer_port,
                metrics_port,
                child: None,
            };
            process.spawn(&etcd);
            match process.wait_healthy(STARTUP_DEADLINE).await {
                Ok(()) => return process,
                Err(why) => {
                    last_log = process.log_tail(40);
                    let port_clash = last_log.contains("address already in use");
                    process.kill();
                    if !port_clash {
                        panic!(
                            "etcd did not become healthy: {why}\n--- etcd log (tail) ---\n{last_log}"
                        );
                    }
                    // Take the dir back for the next attempt, with fresh data.
                    let _ = fs::remove_dir_all(process.data_dir());
                    dir = std::mem::replace(
                        &mut process.dir,
                        tempfile::tempdir().expect("create a temporary dir"),
                    );
                }
            }
        }
        panic!("etcd could not bind free ports\n--- etcd log (tail) ---\n{last_log}");
    }

    fn scheme(&self) -> &'static str {
        if self.options.tls {
            "https"
        } else {
            "http"
        }
    }

    fn args(&self) -> Vec<String> {
        let certs = self.certs();
        let client_url = format!("{}://127.0.0.1:{}", self.scheme(), self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut args = vec![
            "--name".to_string(),
            "default".to_string(),
            format!("--data-dir={}", self.data_dir().display()),
            "--auto-compaction-retention".to_string(),
            "2".to_string(),
            "--auto-compaction-mode".to_string(),
            "revision".to_string(),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                self.metrics_port
            ),
            // A single member elects itself after one election timeout.
            "--heartbeat-interval=50".to_string(),
            "--election-timeout=250".to_string(),
        ];
        if self.options.tls {
            args.extend([
                format!("--cert-file={}", certs.server_cert().display()),
                format!("--key-file={}", certs.server_key().display()),
                "--client-cert-auth".to_string(),
                format!("--trusted-ca-file={}", certs.ca_cert().display()),
            ]);
        }
        args.extend(self.options.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self, etcd: &Path) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the etcd log file");
        let child = Command::new(etcd)
            .args(self.args())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {}: {err}", etcd.display()));
        self.child = Some(child);
    }

    async fn wait_healthy(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("etcd exited with {status}"));
                }
            }
            let last = match health(self.metrics_port).await {
                Ok(true) => return Ok(()),
                Ok(false) => "etcd reports unhealthy".to_string(),
                Err(err) => err,
            };
            if Instant::now() >= until {
                return Err(format!("not healthy after {deadline:?}: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The config a validator would use: the client URL, the seed's CA, and
    /// the validator certificate and key; a 2 s deadline.
    pub fn config(&self) -> EtcdConfig {
        let certs = self.certs();
        EtcdConfig::new(
            vec![self.endpoint()],
            certs.ca_cert(),
            certs.client_cert(),
            certs.client_key(),
        )
    }

    /// `127.0.0.1:PORT` of the client listener.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// The client URL (`https://…` or, for a plaintext etcd, `http://…`).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.endpoint())
    }

    /// The client port.
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// Whether clients must use TLS.
    pub fn is_tls(&self) -> bool {
        self.options.tls
    }

    /// The directory of the certificates (the seed's file names).
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// The certificate paths.
    pub fn certs(&self) -> SeedCertPaths {
        SeedCertPaths::in_dir(self.cert_dir())
    }

    /// etcd's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The file receiving etcd's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// The last `lines` lines of etcd's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The etcd flags of every towerlock command (`--etcd-endpoint`, the
    /// CA, the client certificate and key) for this etcd.
    pub fn cli_flags(&self) -> Vec<String> {
        let config = self.config();
        vec![
            "--etcd-cacert-file".into(),
            config.ca_cert_file.display().to_string(),
            "--etcd-cert-file".into(),
            config.cert_file.display().to_string(),
            "--etcd-key-file".into(),
            config.key_file.display().to_string(),
            "--etcd-endpoint".into(),
            self.endpoint(),
        ]
    }

    /// A client connected with mutual TLS through `towerlock-etcd` (or in
    /// plaintext to a plaintext etcd). Panics on failure.
    pub async fn client(&self) -> towerlock_etcd::etcd_client::Client {
        if self.options.tls {
            towerlock_etcd::connect(&self.config())
                .await
                .unwrap_or_else(|err| panic!("connect to the test etcd: {err}"))
        } else {
            towerlock_etcd::etcd_client::Client::connect([self.url()], None)
                .await
                .unwrap_or_else(|err| panic!("connect to the test etcd: {err}"))
        }
    }

    /// Kills etcd with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills etcd (if running) and starts it again on the same data dir and
    /// ports; waits until it is healthy.
    pub async fn restart(&mut self) {
        self.kill();
        let etcd = etcd_binary();
        let until = Instant::now() + STARTUP_DEADLINE;
        loop {
            self.spawn(&etcd);
            match self.wait_healthy(STARTUP_DEADLINE).await {
                Ok(()) => return,
                Err(why) => {
                    let tail = self.log_tail(40);
                    self.kill();
                    // The old listener's port may linger for a moment.
                    if tail.contains("address already in use") && Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    panic!("etcd did not restart: {why}\n--- etcd log (tail) ---\n{tail}");
                }
            }
        }
    }

    /// Freezes etcd with SIGSTOP: connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Thaws etcd with SIGCONT.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.pid().expect("etcd is not running");
        let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
        // SAFETY: plain syscall on a child we own and have not reaped.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `etcd` binary on PATH; panics with [`ETCD_MISSING`] when absent.
pub fn etcd_binary() -> PathBuf {
    etcd_binary_in(std::env::var_os("PATH"))
}

fn etcd_binary_in(path: Option<std::ffi::OsString>) -> PathBuf {
    find_in(path, "etcd").unwrap_or_else(|| panic!("{ETCD_MISSING}"))
}

fn find_in(path: Option<std::ffi::OsString>, name: &str) -> Option<PathBuf> {
    let path = path?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

fn free_ports() -> (u16, u16, u16) {
    // Hold all three listeners at once so the ports differ.
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    let port = |i: usize| listeners[i].local_addr().expect("local addr").port();
    (port(0), port(1), port(2))
}

/// GET /health on the metrics listener: Ok(true) when etcd says healthy.
async fn health(port: u16) -> Result<bool, String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&response);
        Ok::<_, String>(text.contains("\"health\":\"true\""))
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(result) => result,
        Err(_) => Err("health check timed out".into()),
    }
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `check` every 20 ms until it returns true or `deadline` passes;
/// returns whether it did.
pub async fn wait_until<F, Fut>(deadline: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_etcd_panics_with_the_install_command() {
        let empty = tempfile::tempdir().unwrap();
        let result =
            std::panic::catch_unwind(|| etcd_binary_in(Some(empty.path().as_os_str().to_owned())));
        let panic = result.expect_err("must panic, never skip");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(message, ETCD_MISSING);
    }

    #[test]
    fn free_ports_differ() {
        let (a, b, c) = free_ports();
        assert!(a != b && b != c && a != c);
    }
}

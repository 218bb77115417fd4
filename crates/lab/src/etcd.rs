//! A real `etcd` process: a temporary data dir, free loopback ports, and by
//! default the seed's mutual TLS with certificates made by `towerlock-certs`.
//!
//! One member today. The member's name, ports and `--initial-cluster` are
//! kept together ([`EtcdProcess::args`]) so that a three-member cluster
//! (peer TLS, one process per member) can grow from here.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use towerlock_certs::{SeedCertPaths, Validity};
use towerlock_etcd::EtcdConfig;

use crate::process::{log_tail, signal};
use crate::{wait_until, LabError};

/// How to install etcd, as [`LabError::EtcdMissing`] says it.
pub const ETCD_MISSING: &str =
    "etcd not found on PATH: install it with 'apt-get update && apt-get install -y etcd-server'";

/// How long starting etcd waits for it to become healthy.
pub const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Lines of etcd's log carried by errors.
const TAIL_LINES: usize = 40;

/// How many times etcd is started on fresh ports after a port clash.
pub(crate) const PORT_ATTEMPTS: usize = 3;

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

/// A running `etcd`. Dropping it kills etcd and removes its directory.
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
    pub async fn start() -> Result<Self, LabError> {
        Self::start_with(EtcdOptions::default()).await
    }

    /// Starts a plaintext etcd and waits until it is healthy.
    pub async fn start_plaintext() -> Result<Self, LabError> {
        Self::start_with(EtcdOptions::plaintext()).await
    }

    /// Starts etcd as `options` say and waits (up to [`STARTUP_DEADLINE`])
    /// until it is healthy.
    pub async fn start_with(options: EtcdOptions) -> Result<Self, LabError> {
        let etcd = etcd_binary()?;
        let mut dir = temp_dir("towerlock-etcd-")?;
        write_certs(&options, &dir.path().join("certs"))?;
        let mut last = None;
        // Free ports are picked by binding port 0 and released before etcd
        // binds them; another process may grab one meanwhile, so retry.
        for _attempt in 0..PORT_ATTEMPTS {
            let [client_port, peer_port, metrics_port] = free_ports()?;
            let mut process = Self {
                dir,
                options: options.clone(),
                client_port,
                peer_port,
                metrics_port,
                child: None,
            };
            process.spawn(&etcd)?;
            let err = match process.wait_healthy().await {
                Ok(()) => return Ok(process),
                Err(err) => err,
            };
            process.kill();
            if !process.port_clash() {
                return Err(err);
            }
            // Take the dir back for the next attempt, with fresh data.
            let _ = fs::remove_dir_all(process.data_dir());
            dir = std::mem::replace(&mut process.dir, temp_dir("towerlock-etcd-")?);
            last = Some(err);
        }
        Err(last.unwrap_or(LabError::EtcdUnhealthy {
            reason: "no free ports".into(),
            log_tail: String::new(),
        }))
    }

    fn port_clash(&self) -> bool {
        log_shows_port_clash(&self.log_path())
    }

    fn scheme(&self) -> &'static str {
        if self.options.tls {
            "https"
        } else {
            "http"
        }
    }

    /// etcd's command line: this member, and the cluster it belongs to.
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

    fn spawn(&mut self, etcd: &Path) -> Result<(), LabError> {
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(LabError::io("open etcd's log", &log_path))?;
        let stdout = log
            .try_clone()
            .map_err(LabError::io("open etcd's log", &log_path))?;
        let child = Command::new(etcd)
            .args(self.args())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(LabError::io("start", etcd))?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits until `/health` says healthy; fails at once if etcd exits.
    async fn wait_healthy(&mut self) -> Result<(), LabError> {
        let mut last = String::from("no answer yet");
        let waited = wait_until(STARTUP_DEADLINE, "etcd to become healthy", async || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                last = format!("etcd exited with {status}");
                return Err(LabError::NotRunning {
                    what: "etcd".into(),
                });
            }
            match health(self.metrics_port).await {
                Ok(true) => Ok(Some(())),
                Ok(false) => {
                    last = "etcd reports unhealthy".into();
                    Ok(None)
                }
                Err(err) => {
                    last = err;
                    Ok(None)
                }
            }
        })
        .await;
        waited.map_err(|err| LabError::EtcdUnhealthy {
            reason: match err {
                LabError::Timeout { waited, .. } => format!("not healthy after {waited:?}: {last}"),
                _ => last,
            },
            log_tail: self.log_tail(TAIL_LINES),
        })
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

    /// The port of the metrics listener (`/metrics`, `/health`).
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
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
        self.child.as_ref().map(Child::id)
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
    /// plaintext to a plaintext etcd).
    pub async fn client(&self) -> Result<towerlock_etcd::etcd_client::Client, LabError> {
        let connected = if self.options.tls {
            towerlock_etcd::connect(&self.config())
                .await
                .map_err(|e| e.into())
        } else {
            towerlock_etcd::etcd_client::Client::connect([self.url()], None)
                .await
                .map_err(|e| e.into())
        };
        connected.map_err(|source| LabError::EtcdConnect {
            endpoint: self.endpoint(),
            source,
        })
    }

    /// Kills etcd with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills etcd (if running) and starts it again on the same data dir and
    /// ports; waits until it is healthy. The old listener's port may linger
    /// for a moment: a port clash is retried until [`STARTUP_DEADLINE`].
    pub async fn restart(&mut self) -> Result<(), LabError> {
        self.kill();
        let etcd = etcd_binary()?;
        let mut last = None;
        wait_until(
            STARTUP_DEADLINE,
            "etcd to restart on its ports",
            async || {
                self.spawn(&etcd)?;
                match self.wait_healthy().await {
                    Ok(()) => Ok(Some(())),
                    Err(err) => {
                        self.kill();
                        if self.port_clash() {
                            last = Some(err);
                            Ok(None)
                        } else {
                            Err(err)
                        }
                    }
                }
            },
        )
        .await
        .map_err(|err| match (err, last.take()) {
            (LabError::Timeout { .. }, Some(clash)) => clash,
            (err, _) => err,
        })
    }

    /// Freezes etcd with SIGSTOP: connections stay open, nothing answers.
    pub fn pause(&self) -> Result<(), LabError> {
        signal("etcd", self.pid(), libc::SIGSTOP)
    }

    /// Thaws etcd with SIGCONT.
    pub fn resume(&self) -> Result<(), LabError> {
        signal("etcd", self.pid(), libc::SIGCONT)
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the etcd writing `log` could not listen because one of its ports
/// was taken.
pub(crate) fn log_shows_port_clash(log: &Path) -> bool {
    log_tail(log, TAIL_LINES).contains("address already in use")
}

pub(crate) fn temp_dir(prefix: &str) -> Result<tempfile::TempDir, LabError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(LabError::io(
            "create a temporary directory in",
            std::env::temp_dir(),
        ))
}

fn write_certs(options: &EtcdOptions, dir: &Path) -> Result<(), LabError> {
    towerlock_certs::SeedCerts::generate_with(
        &options.hosts,
        options.validity,
        options.server_validity.unwrap_or(options.validity),
        options.validity,
    )
    .and_then(|certs| certs.write(dir, true))
    .map(drop)
    .map_err(|source| LabError::Certs {
        dir: dir.to_path_buf(),
        source,
    })
}

/// The `etcd` binary on PATH.
pub fn etcd_binary() -> Result<PathBuf, LabError> {
    etcd_binary_in(std::env::var_os("PATH"))
}

fn etcd_binary_in(path: Option<std::ffi::OsString>) -> Result<PathBuf, LabError> {
    find_in(path, "etcd").ok_or(LabError::EtcdMissing)
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
pub fn free_port() -> Result<u16, LabError> {
    free_ports::<1>().map(|[port]| port)
}

/// `N` different loopback ports that were free a moment ago (all bound at
/// once, so that they differ).
pub fn free_ports<const N: usize>() -> Result<[u16; N], LabError> {
    let list = free_port_list(N)?;
    let mut ports = [0; N];
    ports.copy_from_slice(&list);
    Ok(ports)
}

/// `count` different loopback ports that were free a moment ago.
pub(crate) fn free_port_list(count: usize) -> Result<Vec<u16>, LabError> {
    let bind_error = LabError::io("bind a port on", "127.0.0.1");
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(bind_error)?;
    listeners
        .iter()
        .map(|listener| {
            listener
                .local_addr()
                .map(|addr| addr.port())
                .map_err(LabError::io("read the address of a port on", "127.0.0.1"))
        })
        .collect()
}

/// GET /metrics on the metrics listener: etcd's Prometheus text.
pub async fn metrics_text(port: u16) -> Result<String, String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&response).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("reading etcd's metrics timed out".into()),
    }
}

/// GET /health on the metrics listener: Ok(true) when etcd says healthy.
pub(crate) async fn health(port: u16) -> Result<bool, String> {
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        Ok::<_, std::io::Error>(text.contains("\"health\":\"true\""))
    };
    match tokio::time::timeout(Duration::from_secs(2), attempt).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("health check timed out".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_etcd_says_how_to_install_it() {
        let empty = tempfile::tempdir().unwrap();
        let err = etcd_binary_in(Some(empty.path().as_os_str().to_owned())).unwrap_err();
        assert!(matches!(err, LabError::EtcdMissing));
        assert_eq!(err.to_string(), ETCD_MISSING);
    }

    #[test]
    fn free_ports_differ() {
        let [a, b, c] = free_ports().unwrap();
        assert!(a != b && b != c && a != c);
    }
}

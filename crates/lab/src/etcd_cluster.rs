//! A multi-member etcd on loopback: one `etcd` process per member, mutual
//! TLS for clients *and* between members (the peer certificate of
//! `towerlock-certs`), members stopped, killed and restarted one by one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use towerlock_certs::{SeedCertPaths, SeedCerts, Validity};
use towerlock_etcd::EtcdConfig;

use crate::etcd::{
    etcd_binary, free_port_list, health, log_shows_port_clash, temp_dir, PORT_ATTEMPTS,
    STARTUP_DEADLINE,
};
use crate::process::{log_tail, signal};
use crate::{wait_until, LabError};

/// Lines of a member's log carried by errors.
const TAIL_LINES: usize = 40;

/// One member: its name, ports and process.
#[derive(Debug)]
struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    metrics_port: u16,
    child: Option<Child>,
}

/// A running etcd cluster of several members; every member is killed, and
/// the directory removed, when it drops.
#[derive(Debug)]
pub struct EtcdCluster {
    dir: tempfile::TempDir,
    members: Vec<Member>,
    /// Flags added to every member's command line.
    extra_args: Vec<String>,
}

impl EtcdCluster {
    /// Starts `size` members (TLS for clients and peers) and waits until
    /// every one is healthy (a leader is elected).
    pub async fn start(size: usize) -> Result<Self, LabError> {
        Self::start_with_args(size, Vec::new()).await
    }

    /// Like [`EtcdCluster::start`], with `extra_args` added to every
    /// member's command line (e.g. `--quota-backend-bytes=…`).
    pub async fn start_with_args(size: usize, extra_args: Vec<String>) -> Result<Self, LabError> {
        Self::start_on(size, extra_args, Self::members_on_free_ports).await
    }

    /// Starts `size` members on the ports `pick` gives, picking again after
    /// a port clash.
    async fn start_on(
        size: usize,
        extra_args: Vec<String>,
        mut pick: impl FnMut(usize) -> Result<Vec<Member>, LabError>,
    ) -> Result<Self, LabError> {
        let etcd = etcd_binary()?;
        let dir = temp_dir("towerlock-etcd-cluster-")?;
        let certs = dir.path().join("certs");
        let hosts: Vec<String> = towerlock_certs::DEFAULT_HOSTS.map(String::from).to_vec();
        SeedCerts::generate_for_members(&hosts, &hosts, Validity::days(1))
            .and_then(|c| c.write(&certs, true))
            .map_err(|source| LabError::Certs { dir: certs, source })?;
        let mut cluster = Self {
            dir,
            members: Vec::new(),
            extra_args,
        };
        // Ports are picked by binding port 0 and released before etcd binds
        // them; meanwhile members already dial each other from ephemeral
        // ports, which may take a port another member is about to listen
        // on. On such a clash start afresh on new ports.
        let mut attempt = 1;
        loop {
            cluster.members = pick(size)?;
            let err = match cluster.start_members(&etcd).await {
                Ok(()) => return Ok(cluster),
                Err(err) => err,
            };
            let clash = (0..size).any(|index| cluster.port_clash(index));
            for index in 0..size {
                cluster.kill(index);
            }
            if !clash || attempt == PORT_ATTEMPTS {
                return Err(err);
            }
            for index in 0..size {
                let _ = fs::remove_dir_all(cluster.dir.path().join(&cluster.members[index].name));
                let _ = fs::remove_file(cluster.log_path(index));
            }
            attempt += 1;
        }
    }

    /// `size` members, each on three ports that differ from every other's.
    fn members_on_free_ports(size: usize) -> Result<Vec<Member>, LabError> {
        let ports = free_port_list(3 * size)?;
        Ok(ports
            .chunks_exact(3)
            .enumerate()
            .map(|(index, ports)| Member {
                name: format!("m{index}"),
                client_port: ports[0],
                peer_port: ports[1],
                metrics_port: ports[2],
                child: None,
            })
            .collect())
    }

    /// Spawns every member, then waits until each is healthy.
    async fn start_members(&mut self, etcd: &Path) -> Result<(), LabError> {
        for index in 0..self.size() {
            self.spawn(etcd, index)?;
        }
        for index in 0..self.size() {
            self.wait_healthy(index).await?;
        }
        Ok(())
    }

    /// Whether member `index` could not listen because its port was taken.
    fn port_clash(&self, index: usize) -> bool {
        log_shows_port_clash(&self.log_path(index))
    }

    /// How many members the cluster has (running or not).
    pub fn size(&self) -> usize {
        self.members.len()
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}=https://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn args(&self, index: usize) -> Vec<String> {
        let m = &self.members[index];
        let certs = self.certs();
        let client_url = format!("https://127.0.0.1:{}", m.client_port);
        let peer_url = format!("https://127.0.0.1:{}", m.peer_port);
        let data_dir = self.dir.path().join(&m.name);
        let ca = certs.ca_cert().display().to_string();
        let mut args = vec![
            format!("--name={}", m.name),
            format!("--data-dir={}", data_dir.display()),
            "--auto-compaction-retention=2".into(),
            "--auto-compaction-mode=revision".into(),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster={}", self.initial_cluster()),
            "--initial-cluster-state=new".into(),
            "--initial-cluster-token=towerlock-lab".into(),
            format!("--listen-metrics-urls=http://127.0.0.1:{}", m.metrics_port),
            "--heartbeat-interval=50".into(),
            "--election-timeout=500".into(),
            format!("--cert-file={}", certs.server_cert().display()),
            format!("--key-file={}", certs.server_key().display()),
            "--client-cert-auth".into(),
            format!("--trusted-ca-file={ca}"),
            format!("--peer-cert-file={}", certs.peer_cert().display()),
            format!("--peer-key-file={}", certs.peer_key().display()),
            "--peer-client-cert-auth".into(),
            format!("--peer-trusted-ca-file={ca}"),
        ];
        args.extend(self.extra_args.iter().cloned());
        args
    }

    fn spawn(&mut self, etcd: &Path, index: usize) -> Result<(), LabError> {
        let log_path = self.log_path(index);
        let open_error = LabError::io("open etcd's log", &log_path);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(open_error)?;
        let stdout = log
            .try_clone()
            .map_err(LabError::io("open etcd's log", &log_path))?;
        let child = Command::new(etcd)
            .args(self.args(index))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .map_err(LabError::io("start", etcd))?;
        self.members[index].child = Some(child);
        Ok(())
    }

    /// Waits until member `index` says healthy (it has a leader).
    pub async fn wait_healthy(&mut self, index: usize) -> Result<(), LabError> {
        let port = self.members[index].metrics_port;
        let what = format!("etcd member {} to become healthy", self.members[index].name);
        let waited = wait_until(STARTUP_DEADLINE, &what, async || {
            let member = &mut self.members[index];
            if let Some(child) = member.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    member.child = None;
                }
            }
            if member.child.is_none() {
                return Err(LabError::NotRunning {
                    what: format!("etcd member {}", member.name),
                });
            }
            Ok(matches!(health(port).await, Ok(true)).then_some(()))
        })
        .await;
        waited.map_err(|err| LabError::EtcdUnhealthy {
            reason: err.to_string(),
            log_tail: log_tail(&self.log_path(index), TAIL_LINES),
        })
    }

    /// Kills member `index` with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops member `index` with SIGTERM and waits for it to exit.
    pub async fn stop(&mut self, index: usize) -> Result<(), LabError> {
        let member = &mut self.members[index];
        signal(
            &member.name,
            member.child.as_ref().map(Child::id),
            libc::SIGTERM,
        )?;
        let what = format!("etcd member {} to stop", member.name);
        wait_until(STARTUP_DEADLINE, &what, async || {
            let exited = member.child.as_mut().map(|c| c.try_wait());
            Ok(matches!(exited, Some(Ok(Some(_))) | None).then_some(()))
        })
        .await?;
        member.child = None;
        Ok(())
    }

    /// Starts member `index` again on its data dir and ports (killing it
    /// first if it runs) and waits until it is healthy.
    pub async fn restart(&mut self, index: usize) -> Result<(), LabError> {
        self.kill(index);
        let etcd = etcd_binary()?;
        self.spawn(&etcd, index)?;
        self.wait_healthy(index).await
    }

    /// The process id of member `index`, while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.members[index].child.as_ref().map(Child::id)
    }

    /// The port of member `index`'s metrics listener (`/metrics`, `/health`).
    pub fn metrics_port(&self, index: usize) -> u16 {
        self.members[index].metrics_port
    }

    /// Whether member `index` runs.
    pub fn is_running(&mut self, index: usize) -> bool {
        match self.members[index].child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.members[index].child = None;
                false
            }
            None => false,
        }
    }

    /// The index of the member that leads now, as the running members see
    /// it (`None` while there is no leader or no member answers).
    pub async fn leader(&mut self) -> Option<usize> {
        for index in 0..self.size() {
            if !self.is_running(index) {
                continue;
            }
            let Ok(mut client) = towerlock_etcd::connect(&self.member_config(index)).await else {
                continue;
            };
            let Ok(Ok(status)) =
                tokio::time::timeout(Duration::from_secs(2), client.status()).await
            else {
                continue;
            };
            let leader = status.leader();
            let Ok(members) = client.member_list().await else {
                continue;
            };
            let name = members
                .members()
                .iter()
                .find(|m| m.id() == leader)
                .map(|m| m.name().to_string())?;
            return self.members.iter().position(|m| m.name == name);
        }
        None
    }

    /// `127.0.0.1:PORT` of each member's client listener.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect()
    }

    /// The certificates (the seed's files and the peer pair).
    pub fn certs(&self) -> SeedCertPaths {
        SeedCertPaths::in_dir(self.dir.path().join("certs"))
    }

    /// A validator's config naming every member.
    pub fn config(&self) -> EtcdConfig {
        self.config_for(self.endpoints())
    }

    /// A config naming member `index` only.
    pub fn member_config(&self, index: usize) -> EtcdConfig {
        self.config_for(vec![self.endpoints()[index].clone()])
    }

    /// A config for `endpoints` (e.g. proxies in front of the members).
    pub fn config_for(&self, endpoints: Vec<String>) -> EtcdConfig {
        let certs = self.certs();
        EtcdConfig::new(
            endpoints,
            certs.ca_cert(),
            certs.client_cert(),
            certs.client_key(),
        )
    }

    /// The etcd flags of every towerlock command for `endpoints`
    /// (`--etcd-endpoint` repeated).
    pub fn cli_flags_for(&self, endpoints: &[String]) -> Vec<String> {
        let certs = self.certs();
        let mut flags = vec![
            "--etcd-cacert-file".into(),
            certs.ca_cert().display().to_string(),
            "--etcd-cert-file".into(),
            certs.client_cert().display().to_string(),
            "--etcd-key-file".into(),
            certs.client_key().display().to_string(),
        ];
        for endpoint in endpoints {
            flags.extend(["--etcd-endpoint".into(), endpoint.clone()]);
        }
        flags
    }

    /// A client connected to every member.
    pub async fn client(&self) -> Result<towerlock_etcd::etcd_client::Client, LabError> {
        towerlock_etcd::connect(&self.config())
            .await
            .map_err(|source| LabError::EtcdConnect {
                endpoint: self.endpoints().join(","),
                source: source.into(),
            })
    }

    /// The file receiving member `index`'s output.
    pub fn log_path(&self, index: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[index].name))
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A member whose client port is taken when it starts does not fail
    /// the cluster: the start is tried again on fresh ports.
    #[tokio::test]
    async fn a_port_taken_meanwhile_is_left_for_fresh_ports() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken_port = taken.local_addr().unwrap().port();
        let mut picks = 0;
        let cluster = EtcdCluster::start_on(3, Vec::new(), |size| {
            picks += 1;
            let mut members = EtcdCluster::members_on_free_ports(size)?;
            if picks == 1 {
                members[0].client_port = taken_port;
            }
            Ok(members)
        })
        .await
        .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(picks, 2, "the clash should have cost exactly one retry");
        assert!(!cluster
            .endpoints()
            .iter()
            .any(|e| e.ends_with(&format!(":{taken_port}"))));
        let mut client = cluster.client().await.unwrap();
        client.put("k", "v", None).await.unwrap();
        drop(taken);
    }
}

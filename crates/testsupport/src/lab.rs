//! The whole system on one machine: a real etcd with mutual TLS, a local
//! cluster, and validator processes, for end-to-end tests and for
//! `towerlock drill` / `towerlock chaos`.
//!
//! Everything waits on events (a log line, an audit-trail line, a process
//! exit) with a deadline, never on a fixed sleep.

use std::{
    fs,
    io::Read,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use towerlock_audit::event::{BlockEvent, Event, VoteEvent};
use towerlock_cluster::{
    genesis::{
        self, InitOptions, ValidatorKeys, IDENTITY_FILE, SECONDARY_IDENTITY_FILE, VOTE_ACCOUNT_FILE,
    },
    server::{Server, ServerConfig},
};

use crate::EtcdProcess;

/// A local cluster running in this process; stops when dropped.
pub struct LabCluster {
    pub dir: PathBuf,
    pub url: String,
    pub keys: ValidatorKeys,
    server: Option<ClusterServer>,
}

/// A cluster server on a thread (and runtime) of its own; stops when
/// dropped. Stopping waits until the server has written its last file,
/// whatever runtime the caller is on, so that its folder can be removed
/// right after.
pub struct ClusterServer {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ClusterServer {
    /// Serves the cluster folder `dir` on `rpc_addr`.
    pub async fn start(dir: &Path, rpc_addr: SocketAddr) -> Result<Self, String> {
        let config = ServerConfig {
            dir: dir.to_path_buf(),
            slot_ms: None,
            rpc_addr,
        };
        let (bound_tx, bound) = tokio::sync::oneshot::channel::<Result<String, String>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("lab-cluster".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the cluster");
                runtime.block_on(async move {
                    let server = match Server::bind(config).await {
                        Ok(server) => server,
                        Err(err) => {
                            let _ = bound_tx.send(Err(err.to_string()));
                            return;
                        }
                    };
                    let _ = bound_tx.send(Ok(server.rpc_url()));
                    let _ = server
                        .run(async move {
                            let _ = stopped.await;
                        })
                        .await;
                });
            })
            .map_err(|e| format!("spawn the cluster thread: {e}"))?;
        let bound = bound
            .await
            .unwrap_or_else(|_| Err("the cluster thread ended".into()));
        match bound {
            Ok(url) => Ok(Self {
                url,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(err) => {
                let _ = thread.join();
                Err(err)
            }
        }
    }

    /// The cluster's JSON-RPC URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the server and waits until it has flushed everything.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ClusterServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl LabCluster {
    /// Creates a cluster folder in `dir` and serves it on a free port.
    pub async fn start(dir: &Path, options: &InitOptions) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let (_, mut keys) = genesis::init(dir, options, now_ms).expect("create the cluster folder");
        let server = ClusterServer::start(dir, SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap_or_else(|err| panic!("start the cluster: {err}"));
        Self {
            dir: dir.to_path_buf(),
            url: server.url().to_string(),
            keys: keys.remove(0),
            server: Some(server),
        }
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    pub fn identity_file(&self) -> PathBuf {
        self.keys.dir.join(IDENTITY_FILE)
    }

    pub fn secondary_identity_file(&self) -> PathBuf {
        self.keys.dir.join(SECONDARY_IDENTITY_FILE)
    }

    pub fn vote_account_file(&self) -> PathBuf {
        self.keys.dir.join(VOTE_ACCOUNT_FILE)
    }

    /// Every event of the audit trail so far.
    pub fn events(&self) -> Vec<Event> {
        read_events(&self.audit_path())
    }

    /// Every vote received so far.
    pub fn votes(&self) -> Vec<VoteEvent> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Vote(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    /// Every block one of our leaders submitted so far.
    pub fn blocks(&self) -> Vec<BlockEvent> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Block(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    /// Waits until an accepted vote from `instance` lands in the trail after
    /// `after_ms`; returns it.
    pub async fn wait_for_vote(
        &self,
        instance: &str,
        after_ms: u64,
        deadline: Duration,
    ) -> Option<VoteEvent> {
        let until = Instant::now() + deadline;
        loop {
            let vote = self
                .votes()
                .into_iter()
                .find(|v| v.instance == instance && v.ts_ms > after_ms && v.result == "ok");
            if vote.is_some() || Instant::now() >= until {
                return vote;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `n` banks frozen after `after_ms` are in the trail;
    /// returns the slot of the `n`th.
    pub async fn wait_for_banks(&self, after_ms: u64, n: usize, deadline: Duration) -> Option<u64> {
        let until = Instant::now() + deadline;
        loop {
            let bank = self
                .events()
                .into_iter()
                .filter_map(|e| match e {
                    Event::Bank(b) if b.ts_ms > after_ms => Some(b.slot),
                    _ => None,
                })
                .nth(n.saturating_sub(1));
            if bank.is_some() || Instant::now() >= until {
                return bank;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Accepted votes sent by `instance`, in trail order.
    pub fn accepted_votes(&self, instance: &str) -> Vec<VoteEvent> {
        self.votes()
            .into_iter()
            .filter(|v| v.instance == instance && v.result == "ok")
            .collect()
    }

    /// Waits until `instance` has `n` more accepted votes than now.
    pub async fn wait_for_more_votes(
        &self,
        instance: &str,
        n: usize,
        deadline: Duration,
    ) -> Result<(), String> {
        let before = self.accepted_votes(instance).len();
        let until = Instant::now() + deadline;
        while self.accepted_votes(instance).len() < before + n {
            if Instant::now() >= until {
                return Err(format!("instance {instance} stopped voting"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Banks strictly between two slots: the slots a vote account could
    /// have voted on between two votes.
    pub fn banks_between(&self, after: u64, before: u64) -> usize {
        banks_between(&self.events(), after, before)
    }

    /// Votable slots missed across a switch from `old` to `new`: banks
    /// between the old holder's last accepted vote and the new holder's
    /// first one received after `since_ms` (`None` if it has not voted).
    pub fn missed_slots(&self, old: &str, new: &str, since_ms: u64) -> Option<usize> {
        let last_old = self
            .accepted_votes(old)
            .iter()
            .map(voted_slot)
            .max()
            .unwrap_or(0);
        let first_new = self
            .accepted_votes(new)
            .iter()
            .filter(|v| v.ts_ms >= since_ms)
            .map(voted_slot)
            .min()?;
        Some(self.banks_between(last_old, first_new))
    }

    /// Stops the cluster and starts it again from its folder on the same
    /// port (validators see their subscriptions drop and come back).
    pub async fn restart(&mut self) {
        self.stop().await;
        let addr: SocketAddr = self
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("the cluster URL is an address");
        let until = Instant::now() + Duration::from_secs(10);
        let server = loop {
            match ClusterServer::start(&self.dir, addr).await {
                Ok(server) => break server,
                // The old listener may linger for a moment.
                Err(_) if Instant::now() < until => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("restart the cluster on {addr}: {err}"),
            }
        };
        self.server = Some(server);
    }

    /// Stops the cluster and waits for it to flush its trail.
    pub async fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = tokio::task::spawn_blocking(move || server.stop()).await;
        }
    }
}

/// Parses an audit trail, skipping a torn last line.
pub fn read_events(path: &Path) -> Vec<Event> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| Event::from_line(line).ok())
        .collect()
}

/// Banks in `events` strictly between two slots, on every fork.
pub fn banks_between(events: &[Event], after: u64, before: u64) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Bank(b) if b.slot > after && b.slot < before))
        .count()
}

/// The slot a vote is for: the newest slot of its lockouts.
pub fn voted_slot(vote: &VoteEvent) -> u64 {
    vote.lockouts.last().map(|l| l.0).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (the trail's clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A `towerlock-validator` process; killed when dropped.
pub struct ValidatorProcess {
    pub name: String,
    pub ledger: PathBuf,
    pub log: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl ValidatorProcess {
    /// Starts `bin --ledger <ledger> <args…>`, logging to `<ledger>.log`.
    pub fn spawn(bin: &Path, name: &str, ledger: PathBuf, args: &[String]) -> Self {
        let log = ledger.with_extension("log");
        let out = fs::File::create(&log).expect("create the validator log");
        let err = out.try_clone().expect("clone the log handle");
        let child = Command::new(bin)
            .arg("--ledger")
            .arg(&ledger)
            .args(args)
            .env("RUST_LOG", "info,towerlock_validator=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Self {
            name: name.to_string(),
            ledger,
            log,
            bin: bin.to_path_buf(),
            child: Some(child),
            status: None,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// Waits for a log line containing `needle`; returns it. On timeout (or
    /// if the process exits first) returns the log's tail as the error.
    pub async fn wait_for_log(
        &mut self,
        needle: &str,
        deadline: Duration,
    ) -> Result<String, String> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(line) = self.log_text().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if self.try_status().is_some() || Instant::now() >= until {
                return Err(format!(
                    "{}: no log line with {needle:?} (exit: {:?})\n--- log tail ---\n{}",
                    self.name,
                    self.status,
                    crate::log_tail(&self.log, 30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The instance id the node logged at start.
    pub async fn instance(&mut self, deadline: Duration) -> Result<String, String> {
        let line = self.wait_for_log("replaying", deadline).await?;
        line.split_whitespace()
            .find_map(|w| w.strip_prefix("instance="))
            .map(str::to_string)
            .ok_or_else(|| format!("no instance in {line:?}"))
    }

    /// Waits until the admin RPC serves requests that need a running node
    /// (it answers "retry once start up is complete" until then).
    pub async fn wait_ready(&mut self, deadline: Duration) -> Result<(), String> {
        let until = Instant::now() + deadline;
        while !self.admin(&["contact-info"]).await.status.success() {
            if Instant::now() >= until || self.try_status().is_some() {
                return Err(format!(
                    "{}: the admin RPC never became ready (exit: {:?})\n--- log tail ---\n{}",
                    self.name,
                    self.status,
                    crate::log_tail(&self.log, 30)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// After `set-identity`: the last voted slot of the tower the node
    /// loaded (`identity switched … last_vote=Some(N)` in its log).
    pub async fn loaded_last_vote(&mut self, deadline: Duration) -> Result<Option<u64>, String> {
        let line = self.wait_for_log("identity switched", deadline).await?;
        Ok(line.find("last_vote=Some(").and_then(|start| {
            line[start + "last_vote=Some(".len()..]
                .split(')')
                .next()
                .and_then(|n| n.parse().ok())
        }))
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.status = Some(status);
                }
            }
        }
        self.status
    }

    /// Waits for the process to exit; `None` on timeout.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// SIGSTOP: the node freezes with its connections open.
    pub fn pause(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(pid) = self.pid() {
            // SAFETY: a plain syscall on our own child process.
            unsafe { libc::kill(pid as libc::pid_t, signal) };
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status.get_or_insert(status);
            }
        }
    }

    /// Runs an admin subcommand against this node (`--ledger L <args…>`).
    pub async fn admin(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(&self.bin);
        command.arg("--ledger").arg(&self.ledger).args(args);
        command.output().await.expect("run an admin command")
    }
}

impl Drop for ValidatorProcess {
    fn drop(&mut self) {
        self.resume();
        self.kill();
    }
}

/// etcd, a cluster, and the seed's primary/secondary command lines.
pub struct Lab {
    pub etcd: EtcdProcess,
    pub cluster: LabCluster,
    pub dir: PathBuf,
    validator_bin: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Lab {
    /// Starts etcd (TLS) and a cluster with `slot_ms` slots in a temporary
    /// directory (or `dir`, kept afterwards).
    pub async fn start(validator_bin: &Path, slot_ms: u64, dir: Option<PathBuf>) -> Self {
        Self::start_with_stake(validator_bin, slot_ms, dir, 10.0).await
    }

    /// Like [`Lab::start`], our validator holding `stake_percent` of the
    /// stake (more stake, more leader slots).
    pub async fn start_with_stake(
        validator_bin: &Path,
        slot_ms: u64,
        dir: Option<PathBuf>,
        stake_percent: f64,
    ) -> Self {
        let options = InitOptions {
            slot_ms,
            slots_per_epoch: 8192,
            fork_rate: 0.02,
            synthetic: 10,
            stake_percent,
            ..InitOptions::default()
        };
        Self::start_with(validator_bin, dir, options).await
    }

    /// Like [`Lab::start`], with the cluster's genesis options.
    pub async fn start_with(
        validator_bin: &Path,
        dir: Option<PathBuf>,
        options: InitOptions,
    ) -> Self {
        let (tmp, dir) = match dir {
            Some(dir) => {
                fs::create_dir_all(&dir).expect("create the lab directory");
                (None, dir)
            }
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("towerlock-lab-")
                    .tempdir()
                    .expect("create a temporary directory");
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let etcd = EtcdProcess::start().await;
        let cluster = LabCluster::start(&dir.join("cluster"), &options).await;
        Self {
            etcd,
            cluster,
            dir,
            validator_bin: validator_bin.to_path_buf(),
            _tmp: tmp,
        }
    }

    pub fn validator_bin(&self) -> &Path {
        &self.validator_bin
    }

    /// `--tower-storage etcd` and the etcd flags, as the seed gives them.
    pub fn etcd_flags(&self) -> Vec<String> {
        let mut flags = vec!["--tower-storage".into(), "etcd".into()];
        flags.extend(self.etcd.cli_flags());
        flags
    }

    fn common(&self) -> Vec<String> {
        let mut args = vec![
            "--vote-account".into(),
            self.cluster.vote_account_file().display().to_string(),
            "--entrypoint".into(),
            self.cluster.url.clone(),
            "--rpc-port".into(),
            "0".into(),
        ];
        args.extend(self.etcd_flags());
        args
    }

    /// The primary: the staked identity.
    pub fn primary_args(&self) -> Vec<String> {
        let mut args = vec![
            "--identity".into(),
            self.cluster.identity_file().display().to_string(),
        ];
        args.extend(self.common());
        args
    }

    /// The seed's secondary: its own identity, `--no-check-vote-account`,
    /// and the primary's identity as authorized voter.
    pub fn secondary_args(&self) -> Vec<String> {
        let mut args = vec![
            "--identity".into(),
            self.cluster.secondary_identity_file().display().to_string(),
            "--no-check-vote-account".into(),
            "--authorized-voter".into(),
            self.cluster.identity_file().display().to_string(),
        ];
        args.extend(self.common());
        args
    }

    /// Starts the seed's secondary as `name` and waits until it replays as a
    /// hot spare and its admin RPC is ready; returns it with its instance id.
    pub async fn start_hot_spare(
        &self,
        name: &str,
        deadline: Duration,
    ) -> Result<(ValidatorProcess, String), String> {
        let mut spare = self.spawn_validator(name, &self.secondary_args());
        let instance = spare.instance(deadline).await?;
        spare.wait_for_log("hot spare", deadline).await?;
        spare.wait_ready(deadline).await?;
        Ok((spare, instance))
    }

    /// Starts a validator whose ledger is `<lab>/<name>`.
    pub fn spawn_validator(&self, name: &str, args: &[String]) -> ValidatorProcess {
        ValidatorProcess::spawn(&self.validator_bin, name, self.dir.join(name), args)
    }
}

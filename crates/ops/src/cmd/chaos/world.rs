//! The system under chaos: a three-member etcd, the cluster, two validators
//! supervised like systemd's `Restart=always`, and a fault proxy on each of
//! their links (one per etcd member, one to the cluster).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use towerlock_cluster::genesis::{Consensus, InitOptions};
use towerlock_lab::{
    consensus_flags, now_ms, EtcdCluster, Fault, FaultProxy, LabCluster, Role, ValidatorProcess,
};

/// How long an exited validator stays down before its supervisor restarts
/// it (systemd's `RestartSec`).
const RESTART_SEC: Duration = Duration::from_secs(1);
/// How long a status request may take before the node counts as frozen.
const STATUS_DEADLINE: Duration = Duration::from_millis(400);
/// How often roles are sampled for the timeline.
const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// How the second node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The seed's secondary: its own identity, the fence in etcd.
    Fenced,
    /// The control: a second instance of the staked identity with
    /// `--tower-storage file`, which does not use the fence.
    Control,
}

/// What a node was doing at a moment, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Active,
    HotSpare,
    Starting,
    Frozen,
    Down,
}

/// One sample of a node's role.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ts_ms: u64,
    pub node: usize,
    pub seen: Seen,
}

/// A validator with its links and its supervisor's state.
pub struct Node {
    pub name: &'static str,
    pub process: ValidatorProcess,
    pub etcd_links: Vec<FaultProxy>,
    pub cluster_link: FaultProxy,
    /// Killed by a fault: the supervisor leaves it down until then.
    pub held_down: bool,
    exited_at: Option<Instant>,
    pub restarts: u32,
    pub exits: Vec<(u64, String)>,
}

impl Node {
    /// Sets `fault` on every etcd link of this node.
    pub fn set_etcd(&self, fault: Fault) {
        self.etcd_links.iter().for_each(|link| link.set(fault));
    }

    /// Heals every link of this node.
    pub fn heal_links(&self) {
        self.set_etcd(Fault::Pass);
        self.cluster_link.set(Fault::Pass);
    }
}

/// The whole system, and what was observed of it.
pub struct World {
    pub etcd: EtcdCluster,
    pub cluster: LabCluster,
    pub nodes: Vec<Node>,
    pub dir: PathBuf,
    pub samples: Vec<Sample>,
    /// Every instance id seen, with the node that ran it.
    pub instances: Vec<(String, usize)>,
    pub identity_file: String,
    last_sample: Option<Instant>,
    /// A control run: see [`World::args`].
    control: bool,
    /// The cluster's consensus and slot length, for the validators' flags.
    consensus: Consensus,
    slot_ms: u64,
}

impl World {
    /// Starts etcd (three members), the cluster and both validators, and
    /// waits until the primary votes.
    pub async fn start(
        bin: &Path,
        dir: &Path,
        slot_ms: u64,
        mode: Mode,
        consensus: Consensus,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let etcd = EtcdCluster::start(3).await?;
        let options = InitOptions {
            slot_ms,
            slots_per_epoch: 8192,
            fork_rate: if mode == Mode::Control { 0.3 } else { 0.05 },
            synthetic: 10,
            stake_percent: 10.0,
            ..InitOptions::default()
        };
        let cluster = LabCluster::start_with(&dir.join("cluster"), &options, consensus).await?;
        let identity_file = cluster.identity_file().display().to_string();
        let mut world = Self {
            etcd,
            cluster,
            nodes: Vec::new(),
            dir: dir.to_path_buf(),
            samples: Vec::new(),
            instances: Vec::new(),
            identity_file,
            last_sample: None,
            control: matches!(mode, Mode::Control),
            consensus,
            slot_ms,
        };
        let primary = world.spawn_node(bin, "primary", Kind::Primary).await?;
        world.nodes.push(primary);
        let (name, kind) = match mode {
            Mode::Fenced => ("secondary", Kind::Secondary),
            Mode::Control => ("control", Kind::Control),
        };
        let second = world.spawn_node(bin, name, kind).await?;
        world.nodes.push(second);
        Ok(world)
    }

    async fn spawn_node(&self, bin: &Path, name: &'static str, kind: Kind) -> anyhow::Result<Node> {
        let mut etcd_links = Vec::new();
        for (index, endpoint) in self.etcd.endpoints().iter().enumerate() {
            let upstream: SocketAddr = endpoint.parse().context("etcd endpoint")?;
            let link = format!("{name}->etcd{index}");
            etcd_links.push(FaultProxy::start(&link, upstream).await?);
        }
        let cluster_addr: SocketAddr = self
            .cluster
            .url
            .trim_start_matches("http://")
            .parse()
            .context("cluster address")?;
        let cluster_link = FaultProxy::start(&format!("{name}->cluster"), cluster_addr).await?;
        let endpoints: Vec<String> = etcd_links.iter().map(|l| l.addr().to_string()).collect();
        let args = self.args(kind, &format!("http://{}", cluster_link.addr()), &endpoints);
        let process = ValidatorProcess::spawn(bin, name, self.dir.join(name), &args)?;
        Ok(Node {
            name,
            process,
            etcd_links,
            cluster_link,
            held_down: false,
            exited_at: None,
            restarts: 0,
            exits: Vec::new(),
        })
    }

    fn args(&self, kind: Kind, entrypoint: &str, endpoints: &[String]) -> Vec<String> {
        let keys = |path: PathBuf| path.display().to_string();
        let identity = keys(self.cluster.identity_file());
        let mut args = match kind {
            Kind::Primary | Kind::Control => vec!["--identity".into(), identity],
            Kind::Secondary => vec![
                "--identity".into(),
                keys(self.cluster.secondary_identity_file()),
                "--no-check-vote-account".into(),
                "--authorized-voter".into(),
                identity,
            ],
        };
        args.extend([
            "--vote-account".into(),
            keys(self.cluster.vote_account_file()),
            "--entrypoint".into(),
            entrypoint.to_string(),
            "--rpc-port".into(),
            "0".into(),
        ]);
        if kind != Kind::Primary && self.consensus == Consensus::Alpenglow {
            // The second node gives up on a window at once, as a machine
            // that sees blocks late would: two machines never see quite the
            // same network. Fenced, it votes from the history the primary
            // stored; in the control, with the history in local files, the
            // two views become contradicting votes.
            args.extend(consensus_flags(self.consensus, 1));
        } else {
            args.extend(consensus_flags(self.consensus, self.slot_ms));
        }
        // On Alpenglow a node refuses a vote history older than the landed
        // votes; nothing rebuilds one, so the control's nodes are told to
        // vote without it (agave's override).
        let without_history = (self.consensus == Consensus::Alpenglow)
            .then(|| "--do-not-require-vote-history".to_string());
        if kind == Kind::Control {
            // The classic mistake in full: its own file tower (and vote
            // history), rebuilt from the landed votes whenever it has none
            // (a node refuses that unless told to).
            args.extend([
                "--tower-storage".into(),
                "file".into(),
                "--allow-tower-rebuild".into(),
            ]);
            args.extend(without_history);
        } else {
            args.extend(["--tower-storage".into(), "etcd".into()]);
            args.extend(self.etcd.cli_flags_for(endpoints));
            if self.control {
                // The fenced primary sees the control's landed votes newer
                // than its stored tower and rightly refuses to start; the
                // control is about two towers voting, so let it rebuild.
                args.push("--allow-tower-rebuild".into());
                args.extend(without_history);
            }
        }
        args
    }

    /// The supervisor and the sampler: restarts exited nodes (unless a
    /// fault holds them down) after [`RESTART_SEC`], and samples roles.
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        for node in &mut self.nodes {
            if node.held_down || node.process.is_running() {
                node.exited_at = None;
                continue;
            }
            let exited = *node.exited_at.get_or_insert_with(|| {
                let reason = node
                    .process
                    .exit_reason()
                    .unwrap_or_else(|| "killed".into());
                node.exits.push((now_ms(), reason));
                Instant::now()
            });
            if exited.elapsed() >= RESTART_SEC {
                node.process.restart()?;
                node.restarts += 1;
                node.exited_at = None;
            }
        }
        if self.last_sample.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY) {
            self.last_sample = Some(Instant::now());
            self.sample().await;
        }
        Ok(())
    }

    async fn sample(&mut self) {
        for index in 0..self.nodes.len() {
            let seen = self.observe(index).await;
            self.samples.push(Sample {
                ts_ms: now_ms(),
                node: index,
                seen,
            });
        }
    }

    /// What node `index` is doing now (its status, with a deadline).
    pub async fn observe(&mut self, index: usize) -> Seen {
        let node = &mut self.nodes[index];
        if !node.process.is_running() {
            return Seen::Down;
        }
        let status = tokio::time::timeout(STATUS_DEADLINE, node.process.status()).await;
        let Ok(Ok(status)) = status else {
            return Seen::Frozen;
        };
        if !status.instance.is_empty() && !self.instances.iter().any(|(i, _)| *i == status.instance)
        {
            self.instances.push((status.instance.clone(), index));
        }
        match status.role {
            Role::Voting => Seen::Active,
            Role::HotSpare => Seen::HotSpare,
            _ => Seen::Starting,
        }
    }

    /// Runs the supervisor until `until`.
    pub async fn run_until(&mut self, until: Instant) -> anyhow::Result<()> {
        while Instant::now() < until {
            self.tick().await?;
            tokio::time::sleep(towerlock_lab::POLL * 5).await;
        }
        Ok(())
    }

    /// The node an instance id belongs to.
    pub fn node_of(&self, instance: &str) -> Option<usize> {
        self.instances
            .iter()
            .find(|(i, _)| i == instance)
            .map(|(_, n)| *n)
    }

    /// Heals every link and thaws every node (the end of a run).
    pub fn heal_everything(&mut self) {
        for node in &mut self.nodes {
            node.heal_links();
            let _ = node.process.resume();
            node.held_down = false;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Primary,
    Secondary,
    Control,
}

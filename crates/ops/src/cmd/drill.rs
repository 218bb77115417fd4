//! `towerlock drill`: the seed's failover story, run for real on one machine
//! and checked by the audit at the end.
//!
//! etcd with mutual TLS, a local cluster, a primary and a secondary started
//! with the seed's command lines; then a manual failover with the seed's
//! `wait-for-restart-window && set-identity`, the restart cycle, and two
//! monitoring-triggered failovers run by the sentinel (in-process, beside the
//! secondary, with the etcd fence): the primary killed (kill -9), then, after
//! another restart cycle, the primary hanging (SIGSTOP) and thawed once the
//! secondary holds the fence (the zombie). Between the first restart cycle
//! and the sentinel, an upgrade by failover (`drill_upgrade.rs`).
//!
//! `--consensus alpenglow` runs the story on a Votor cluster, the vote
//! history behind the fence (`drill_alpenglow.rs`): the same manual
//! failover and restart cycles, the zombie and kill -9 by the operator's
//! set-identity, and at the end every landed vote checked against the
//! vote history left in etcd as well.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::Args;
use towerlock_cluster::genesis::Consensus;
use towerlock_lab::{as_landed, now_ms, Lab, Role, ValidatorProcess};

use super::drill_sentinel::Fault;

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Slot length of the local cluster, in milliseconds.
    #[arg(long, default_value_t = 200)]
    slot_ms: u64,
    /// Keep everything (cluster folder, audit trail, ledgers, logs) here
    /// instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The validator binary [default: towerlock-validator next to this one].
    #[arg(long, value_name = "PATH")]
    validator_bin: Option<PathBuf>,
    /// The cluster's consensus: `tower` (TowerBFT) or `alpenglow` (Votor,
    /// the vote history behind the fence).
    #[arg(long, value_enum, default_value_t = DrillConsensus::Tower)]
    consensus: DrillConsensus,
}

/// `--consensus` of the drill and of chaos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DrillConsensus {
    Tower,
    Alpenglow,
}

impl DrillConsensus {
    /// The cluster's consensus at genesis.
    pub fn genesis(self) -> Consensus {
        match self {
            Self::Tower => Consensus::Tower,
            Self::Alpenglow => Consensus::Alpenglow,
        }
    }

    /// What a run prints about it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Tower => "TowerBFT",
            Self::Alpenglow => "Alpenglow (Votor, the vote history behind the fence)",
        }
    }
}

pub(super) const WAIT: Duration = Duration::from_secs(60);

/// One failover, measured.
pub(super) struct Failover {
    pub(super) name: &'static str,
    pub(super) missed_slots: usize,
    pub(super) switch: Duration,
    /// Fault → the sentinel's detection, for monitoring failovers.
    pub(super) detected: Option<Duration>,
    /// Fault → the new holder's first vote landed, for monitoring failovers.
    pub(super) recovered: Option<Duration>,
}

/// A node the drill started, with its instance id.
pub(super) struct Node {
    pub(super) process: ValidatorProcess,
    pub(super) instance: String,
}

/// The lab and what the drill has measured so far.
pub(super) struct Drill {
    pub(super) lab: Lab,
    /// The validator binary the admin commands run (the new one after an
    /// upgrade).
    pub(super) bin: PathBuf,
    identity_file: String,
    pub(super) failovers: Vec<Failover>,
    /// The cluster's slot length: the sentinel checks once a slot.
    pub(super) slot: Duration,
}

pub(super) fn step(text: &str) {
    println!("\n== {text}");
}

impl DrillArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        let started = Instant::now();
        let mut drill = Drill::start(&bin, self.slot_ms, self.dir.clone(), self.consensus).await?;
        if self.consensus == DrillConsensus::Alpenglow {
            drill.alpenglow_story().await?;
            let clean = drill.audit(started).await?;
            if self.dir.is_some() {
                println!("kept: {}", drill.lab.dir.display());
            }
            return Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        let (primary, secondary) = drill.primary_and_hot_spare().await?;
        let secondary = drill.manual_failover(primary, secondary, "manual").await?;
        let (primary, secondary) = drill.restart_cycle(secondary, "").await?;
        let (primary, secondary) = drill.upgrade(primary, secondary).await?;
        let secondary = drill
            .sentinel_failover(primary, secondary, Fault::Kill)
            .await?;
        let (primary, secondary) = drill.restart_cycle(secondary, "-2").await?;
        drill
            .sentinel_failover(primary, secondary, Fault::Hang)
            .await?;
        let clean = drill.audit(started).await?;
        if self.dir.is_some() {
            println!("kept: {}", drill.lab.dir.display());
        }
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

impl Drill {
    async fn start(
        bin: &Path,
        slot_ms: u64,
        dir: Option<PathBuf>,
        consensus: DrillConsensus,
    ) -> anyhow::Result<Self> {
        let lab = match consensus {
            DrillConsensus::Tower => {
                step("etcd with the seed's mutual TLS, and a local cluster");
                Lab::start(bin, slot_ms, dir).await?
            }
            DrillConsensus::Alpenglow => {
                step("etcd with the seed's mutual TLS, and a local cluster running Alpenglow (Votor)");
                Lab::start_with_consensus(bin, dir, Lab::options(slot_ms), Consensus::Alpenglow)
                    .await?
            }
        };
        println!(
            "etcd      https://{} (client certificates required)",
            lab.etcd.endpoint()
        );
        println!("cluster   {} ({} ms slots)", lab.cluster.url, slot_ms);
        println!("directory {}", lab.dir.display());
        let identity_file = lab
            .cluster
            .identity_file()
            .to_str()
            .context("non-UTF-8 path")?
            .to_string();
        Ok(Self {
            lab,
            bin: bin.to_path_buf(),
            identity_file,
            failovers: Vec::new(),
            slot: Duration::from_millis(slot_ms),
        })
    }

    /// Starts a node and waits until it plays `role` with its admin RPC up.
    pub(super) async fn start_node(
        &self,
        name: &str,
        args: &[String],
        role: Role,
    ) -> anyhow::Result<Node> {
        let (process, instance) = self.lab.start_validator(name, args, role, WAIT).await?;
        Ok(Node { process, instance })
    }

    pub(super) async fn wait_for_votes(&self, node: &Node, n: usize) -> anyhow::Result<()> {
        self.lab
            .cluster
            .wait_for_more_landed(&node.instance, n, WAIT)
            .await?;
        Ok(())
    }

    pub(super) fn missed_slots(
        &self,
        old: &Node,
        new: &Node,
        since_ms: u64,
    ) -> anyhow::Result<usize> {
        let missed = self
            .lab
            .cluster
            .missed_slots(&old.instance, &new.instance, since_ms)?;
        Ok(missed.unwrap_or(usize::MAX))
    }

    pub(super) async fn primary_and_hot_spare(&self) -> anyhow::Result<(Node, Node)> {
        step(
            "primary: towerlock-validator --identity validator-keypair.json --tower-storage etcd …",
        );
        let primary = self
            .start_node("primary", &self.lab.primary_args(), Role::Voting)
            .await?;
        self.wait_for_votes(&primary, 3).await?;
        println!("primary votes (instance {})", primary.instance);

        step("secondary: --identity secondary-validator-keypair.json --no-check-vote-account --authorized-voter validator-keypair.json");
        let secondary = self
            .start_node("secondary", &self.lab.secondary_args(), Role::HotSpare)
            .await?;
        self.wait_for_votes(&primary, 2).await?;
        if !self
            .lab
            .cluster
            .landed_votes(&secondary.instance)?
            .is_empty()
        {
            bail!("the hot spare voted");
        }
        println!(
            "secondary replays as a hot spare (instance {}), no votes",
            secondary.instance
        );
        Ok((primary, secondary))
    }

    /// The seed's `wait-for-restart-window && set-identity` on the
    /// secondary; the primary must terminate. Returns the new holder.
    pub(super) async fn manual_failover(
        &mut self,
        mut primary: Node,
        secondary: Node,
        name: &'static str,
    ) -> anyhow::Result<Node> {
        step("manual failover on the secondary: wait-for-restart-window --identity validator-keypair.json && set-identity validator-keypair.json");
        let since = now_ms();
        let switch = self.failover_command(&secondary).await?;
        let reason = expect_exit(&mut primary.process, "it must terminate once fenced out").await?;
        println!("primary terminated: {reason}");
        self.wait_for_votes(&secondary, 3).await?;
        let missed = self.missed_slots(&primary, &secondary, since)?;
        println!("secondary votes; votable slots missed: {missed}");
        self.failovers.push(Failover {
            name,
            missed_slots: missed,
            switch,
            detected: None,
            recovered: None,
        });
        Ok(secondary)
    }

    /// The seed's `wait-for-restart-window && set-identity` on `secondary`;
    /// returns how long it took.
    pub(super) async fn failover_command(&self, secondary: &Node) -> anyhow::Result<Duration> {
        let ledger = secondary.process.ledger.display().to_string();
        let command = format!(
            "{bin} --ledger {ledger} wait-for-restart-window --identity {identity} --min-idle-time 0.05 --max-delinquent-stake 100 \
             && {bin} --ledger {ledger} set-identity {identity}",
            bin = self.bin.display(),
            identity = self.identity_file,
        );
        let begun = Instant::now();
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .output()
            .await
            .context("cannot run the failover command")?;
        print!("{}", String::from_utf8_lossy(&output.stdout));
        if !output.status.success() {
            bail!(
                "the failover command failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(begun.elapsed())
    }

    /// The primary restarts and reclaims its identity (the secondary
    /// exits), then the secondary restarts as a hot spare.
    pub(super) async fn restart_cycle(
        &mut self,
        mut secondary: Node,
        suffix: &str,
    ) -> anyhow::Result<(Node, Node)> {
        step("restart cycle: the primary restarts and reclaims its identity once caught up");
        let since = now_ms();
        let begun = Instant::now();
        let primary = self
            .start_node(
                &format!("primary-restarted{suffix}"),
                &self.lab.primary_args(),
                Role::Voting,
            )
            .await?;
        let reason =
            expect_exit(&mut secondary.process, "the primary reclaimed the identity").await?;
        println!("secondary terminated: {reason}");
        self.wait_for_votes(&primary, 3).await?;
        let missed = self.missed_slots(&secondary, &primary, since)?;
        println!("primary votes again; votable slots missed: {missed}");
        self.failovers.push(Failover {
            name: "restart cycle",
            missed_slots: missed,
            switch: begun.elapsed(),
            detected: None,
            recovered: None,
        });
        let secondary = self
            .start_node(
                &format!("secondary-restarted{suffix}"),
                &self.lab.secondary_args(),
                Role::HotSpare,
            )
            .await?;
        self.wait_for_votes(&primary, 2).await?;
        println!(
            "secondary restarted with its own identity: a hot spare again; the cycle is broken"
        );
        Ok((primary, secondary))
    }

    /// Stops the cluster, audits the trail, prints the table and the
    /// figures; returns whether the audit is clean.
    async fn audit(&mut self, started: Instant) -> anyhow::Result<bool> {
        step("audit of every vote and block the cluster received");
        self.lab.cluster.stop().await;
        let report = towerlock_audit::check_file(&self.lab.cluster.audit_path())
            .context("cannot audit the trail")?;
        println!("{report}");
        let history_clean = self.audit_vote_history().await?;

        print_table(&self.failovers);
        let max_missed = self
            .failovers
            .iter()
            .map(|f| f.missed_slots)
            .max()
            .unwrap_or(0);
        let votes = self
            .lab
            .cluster
            .events()?
            .iter()
            .filter_map(as_landed)
            .count();
        println!(
            "failovers={} violations={} max_missed_slots={max_missed} votes={votes} seconds={:.1}",
            self.failovers.len(),
            report.violations.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(report.is_clean() && history_clean)
    }
}

/// Waits for `node` to exit with status 1; returns the reason it logged.
pub(super) async fn expect_exit(node: &mut ValidatorProcess, why: &str) -> anyhow::Result<String> {
    let status = node
        .wait_exit(WAIT)
        .await
        .with_context(|| format!("{} did not exit ({why})", node.name))?;
    if status.code() != Some(1) {
        bail!("{} exited with {status}, expected status 1", node.name);
    }
    Ok(node
        .exit_reason()
        .unwrap_or_else(|| "(no reason logged)".to_string()))
}

/// The failovers: command time, and for the sentinel's the fault → detection
/// and fault → first landed vote.
fn print_table(failovers: &[Failover]) {
    let ms = |d: Option<Duration>| {
        d.map_or("-".to_string(), |d| {
            format!("{:.0}", d.as_secs_f64() * 1000.0)
        })
    };
    println!(
        "\n{:<20} {:>12} {:>13} {:>13} {:>14}",
        "failover", "command ms", "detection ms", "recovery ms", "missed slots"
    );
    for f in failovers {
        println!(
            "{:<20} {:>12.0} {:>13} {:>13} {:>14}",
            f.name,
            f.switch.as_secs_f64() * 1000.0,
            ms(f.detected),
            ms(f.recovered),
            f.missed_slots
        );
    }
}

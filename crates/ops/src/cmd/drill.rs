//! `towerlock drill`: the seed's failover story, run for real on one machine
//! and checked by the audit at the end.
//!
//! etcd with mutual TLS, a local cluster, a primary and a secondary started
//! with the seed's command lines; then a manual failover with the seed's
//! `wait-for-restart-window && set-identity`, the restart cycle, and a
//! monitoring-triggered failover away from a primary that hangs.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::Args;
use towerlock_testsupport::lab::{now_ms, Lab, ValidatorProcess};

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
}

const WAIT: Duration = Duration::from_secs(60);

/// One failover, measured.
struct Failover {
    name: &'static str,
    missed_slots: usize,
    switch: Duration,
}

fn step(text: &str) {
    println!("\n== {text}");
}

async fn wait_for_votes(lab: &Lab, instance: &str, n: usize) -> anyhow::Result<()> {
    lab.cluster
        .wait_for_more_votes(instance, n, WAIT)
        .await
        .map_err(anyhow::Error::msg)
}

fn missed_slots(lab: &Lab, old: &str, new: &str, since_ms: u64) -> usize {
    lab.cluster
        .missed_slots(old, new, since_ms)
        .unwrap_or(usize::MAX)
}

async fn start(
    lab: &Lab,
    name: &str,
    args: &[String],
    expect: &str,
) -> anyhow::Result<(ValidatorProcess, String)> {
    let mut node = lab.spawn_validator(name, args);
    let instance = node.instance(WAIT).await.map_err(anyhow::Error::msg)?;
    node.wait_for_log(expect, WAIT)
        .await
        .map_err(anyhow::Error::msg)?;
    node.wait_ready(WAIT).await.map_err(anyhow::Error::msg)?;
    Ok((node, instance))
}

async fn expect_exit(node: &mut ValidatorProcess, why: &str) -> anyhow::Result<String> {
    let status = node
        .wait_exit(WAIT)
        .await
        .with_context(|| format!("{} did not exit ({why})", node.name))?;
    if status.code() != Some(1) {
        bail!("{} exited with {status}, expected status 1", node.name);
    }
    let log = node.log_text();
    let reason = log
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("(no reason logged)")
        .to_string();
    Ok(reason)
}

impl DrillArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        let started = Instant::now();
        step("etcd with the seed's mutual TLS, and a local cluster");
        let mut lab = Lab::start(&bin, self.slot_ms, self.dir.clone()).await;
        println!(
            "etcd      https://{} (client certificates required)",
            lab.etcd.endpoint()
        );
        println!("cluster   {} ({} ms slots)", lab.cluster.url, self.slot_ms);
        println!("directory {}", lab.dir.display());
        let identity_file = lab.cluster.identity_file();
        let identity_file = identity_file
            .to_str()
            .context("non-UTF-8 path")?
            .to_string();
        let mut failovers = Vec::new();

        step(
            "primary: towerlock-validator --identity validator-keypair.json --tower-storage etcd …",
        );
        let (mut primary, a) =
            start(&lab, "primary", &lab.primary_args(), "took the fence").await?;
        wait_for_votes(&lab, &a, 3).await?;
        println!("primary votes (instance {a})");

        step("secondary: --identity secondary-validator-keypair.json --no-check-vote-account --authorized-voter validator-keypair.json");
        let (mut secondary, b) =
            start(&lab, "secondary", &lab.secondary_args(), "hot spare").await?;
        wait_for_votes(&lab, &a, 2).await?;
        if !lab.cluster.accepted_votes(&b).is_empty() {
            bail!("the hot spare voted");
        }
        println!("secondary replays as a hot spare (instance {b}), no votes");

        step("manual failover on the secondary: wait-for-restart-window --identity validator-keypair.json && set-identity validator-keypair.json");
        let ledger = secondary.ledger.display().to_string();
        let command = format!(
            "{bin} --ledger {ledger} wait-for-restart-window --identity {identity_file} --min-idle-time 0.05 --max-delinquent-stake 100 \
             && {bin} --ledger {ledger} set-identity {identity_file}",
            bin = bin.display()
        );
        let since = now_ms();
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
        let switch = begun.elapsed();
        let reason = expect_exit(&mut primary, "it must terminate once fenced out").await?;
        println!("primary terminated: {reason}");
        wait_for_votes(&lab, &b, 3).await?;
        let missed = missed_slots(&lab, &a, &b, since);
        println!("secondary votes; votable slots missed: {missed}");
        failovers.push(Failover {
            name: "manual",
            missed_slots: missed,
            switch,
        });

        step("restart cycle: the primary restarts and reclaims its identity once caught up");
        let since = now_ms();
        let begun = Instant::now();
        let (mut primary, a2) = start(
            &lab,
            "primary-restarted",
            &lab.primary_args(),
            "took the fence",
        )
        .await?;
        let reason = expect_exit(&mut secondary, "the primary reclaimed the identity").await?;
        println!("secondary terminated: {reason}");
        wait_for_votes(&lab, &a2, 3).await?;
        let missed = missed_slots(&lab, &b, &a2, since);
        println!("primary votes again; votable slots missed: {missed}");
        failovers.push(Failover {
            name: "restart cycle",
            missed_slots: missed,
            switch: begun.elapsed(),
        });
        let (secondary, b2) = start(
            &lab,
            "secondary-restarted",
            &lab.secondary_args(),
            "hot spare",
        )
        .await?;
        wait_for_votes(&lab, &a2, 2).await?;
        println!(
            "secondary restarted with its own identity: a hot spare again; the cycle is broken"
        );

        step("failover by monitoring: the primary hangs (SIGSTOP); monitoring runs set-identity on the secondary");
        primary.pause();
        let since = now_ms();
        let begun = Instant::now();
        let output = secondary.admin(&["set-identity", &identity_file]).await;
        if !output.status.success() {
            bail!(
                "set-identity failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let switch = begun.elapsed();
        wait_for_votes(&lab, &b2, 3).await?;
        let missed = missed_slots(&lab, &a2, &b2, since);
        let thawed_at = now_ms();
        primary.resume();
        let reason = expect_exit(&mut primary, "thawed, it finds itself fenced out").await?;
        let late = lab
            .cluster
            .accepted_votes(&a2)
            .iter()
            .filter(|v| v.ts_ms >= thawed_at)
            .count();
        println!(
            "hung primary thawed and terminated ({reason}); votes it sent after the thaw: {late}"
        );
        failovers.push(Failover {
            name: "monitoring",
            missed_slots: missed,
            switch,
        });
        wait_for_votes(&lab, &b2, 3).await?;
        drop(secondary);

        step("audit of every vote and block the cluster received");
        lab.cluster.stop().await;
        let report = towerlock_audit::check_file(&lab.cluster.audit_path())
            .context("cannot audit the trail")?;
        println!("{report}");

        println!(
            "\n{:<16} {:>12} {:>14}",
            "failover", "command ms", "missed slots"
        );
        for f in &failovers {
            println!(
                "{:<16} {:>12.0} {:>14}",
                f.name,
                f.switch.as_secs_f64() * 1000.0,
                f.missed_slots
            );
        }
        let max_missed = failovers.iter().map(|f| f.missed_slots).max().unwrap_or(0);
        let votes = report
            .accounts
            .iter()
            .map(|a| a.votes_accepted)
            .sum::<u64>();
        println!(
            "failovers={} violations={} max_missed_slots={max_missed} votes={votes} seconds={:.1}",
            failovers.len(),
            report.violations.len(),
            started.elapsed().as_secs_f64()
        );
        if self.dir.is_some() {
            println!("kept: {}", lab.dir.display());
        }
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

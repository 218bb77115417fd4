//! `towerlock chaos`: the whole system under random faults, then the audit.
//!
//! A three-member etcd, the cluster, a primary and a secondary (each
//! supervised and restarted on exit, as `Restart=always` would), every link
//! of the validators through a fault proxy. Faults come one after another
//! from a schedule fixed by `--seed`; each is logged with timestamps, lasts
//! a random time and heals. The run ends with the audit of the cluster's
//! trail, the figures, and `timeline.svg`; exit 1 on any violation.
//!
//! `--control` replaces the secondary by the classic operator mistake: a
//! second instance of the staked identity with `--tower-storage file`. It
//! must be caught: the run stops at the first violation the audit finds.

mod inject;
mod report;
mod schedule;
mod timeline;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use solana_signer::Signer;
use towerlock_lab::now_ms;

use inject::{FaultRecord, SetIdentityOnSpare};
use schedule::FaultKind;
use world::{Mode, World};

#[derive(Debug, Args)]
pub struct ChaosArgs {
    /// Keep everything here (cluster, trail, ledgers, logs, faults.jsonl,
    /// timeline.svg) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// How long faults are injected (e.g. 90s, 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of the fault schedule (the same seed, the same schedule).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Slot length of the local cluster, in milliseconds.
    #[arg(long, default_value_t = 100)]
    slot_ms: u64,
    /// The faults to draw from (comma separated) [default: all].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    faults: Option<Vec<FaultKind>>,
    /// Run the control: a second instance of the staked identity with
    /// --tower-storage file instead of the secondary; it must be caught.
    #[arg(long)]
    control: bool,
    /// The validator binary [default: towerlock-validator next to this one].
    #[arg(long, value_name = "PATH")]
    validator_bin: Option<PathBuf>,
    /// The cluster's consensus: `tower` (TowerBFT) or `alpenglow` (Votor,
    /// the vote history behind the fence).
    #[arg(long, value_enum, default_value_t = super::drill::DrillConsensus::Tower)]
    consensus: super::drill::DrillConsensus,
}

/// Parses `500ms`, `90s`, `10m`, `1h` (a bare number is seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?}"))?;
    let ms = match unit {
        "ms" => n,
        "" | "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?}: use ms, s, m or h"
            ))
        }
    };
    Ok(Duration::from_millis(ms))
}

const WARMUP: Duration = Duration::from_secs(120);

impl ChaosArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        let (_tmp, dir) = match &self.dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("towerlock-chaos-")
                    .tempdir()?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let kinds = self
            .faults
            .clone()
            .unwrap_or_else(|| FaultKind::ALL.to_vec());
        let mode = if self.control {
            Mode::Control
        } else {
            Mode::Fenced
        };
        let plan = schedule::plan(self.seed, &kinds, self.duration, self.slot_ms);
        println!(
            "chaos: seed {} ({} faults planned over {:?}), {} ms slots, {}, {}",
            self.seed,
            plan.len(),
            self.duration,
            self.slot_ms,
            self.consensus.describe(),
            if self.control {
                "control: a second instance without the fence"
            } else {
                "primary and secondary fenced in etcd"
            }
        );
        let consensus = self.consensus.genesis();
        let mut world = World::start(&bin, &dir, self.slot_ms, mode, consensus).await?;
        let start_ms = now_ms();
        world.cluster.wait_for_banks(start_ms, 1, WARMUP).await?;
        wait_for_first_vote(&mut world).await?;
        println!("{} primary votes; faults begin", stamp(start_ms));
        let votor = self.consensus == super::drill::DrillConsensus::Alpenglow;
        let records = run_faults(&mut world, &plan, start_ms, self.control, votor).await?;
        world.heal_everything();
        let settle = Instant::now() + Duration::from_secs(3);
        world.run_until(settle).await?;
        let end_ms = now_ms();
        let clean = finish(&mut world, &records, (start_ms, end_ms), self.control).await?;
        if self.dir.is_some() {
            println!("kept: {}", dir.display());
        }
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// `[+12.3s]` relative to the start of the run.
fn stamp(start_ms: u64) -> String {
    format!(
        "[+{:.1}s]",
        now_ms().saturating_sub(start_ms) as f64 / 1000.0
    )
}

async fn wait_for_first_vote(world: &mut World) -> anyhow::Result<()> {
    let account = world.cluster.keys.vote_account.pubkey().to_string();
    let until = Instant::now() + WARMUP;
    while Instant::now() < until {
        world.tick().await?;
        let voted = world
            .cluster
            .trail
            .with_events(|events| !report::landed(events, &account).is_empty())?;
        if voted {
            return Ok(());
        }
        tokio::time::sleep(towerlock_lab::POLL * 5).await;
    }
    anyhow::bail!(
        "the primary did not vote within {WARMUP:?}: see {}",
        world.dir.join("primary.log").display()
    )
}

/// Runs the schedule; in the control, stops at the first violation (on
/// Alpenglow, the first of Votor's offences).
async fn run_faults(
    world: &mut World,
    plan: &[schedule::Planned],
    start_ms: u64,
    control: bool,
    votor: bool,
) -> anyhow::Result<Vec<FaultRecord>> {
    let mut records = Vec::new();
    let mut trigger = SetIdentityOnSpare;
    for (index, planned) in plan.iter().enumerate() {
        world.run_until(Instant::now() + planned.gap).await?;
        if control && violations_so_far(world, votor)? > 0 {
            println!(
                "{} the audit found a violation: the control stops",
                stamp(start_ms)
            );
            break;
        }
        let record = inject::inject(world, planned, &mut trigger).await?;
        println!(
            "{} fault {}/{}: {} on {} for {:.1}s: {}",
            stamp(start_ms),
            index + 1,
            plan.len(),
            record.kind,
            record.target,
            (record.end_ms - record.start_ms) as f64 / 1000.0,
            record.detail
        );
        records.push(record);
        progress(world, start_ms)?;
    }
    Ok(records)
}

/// Violations the audit finds so far; with `votor`, Votor's offences only
/// (the control on Alpenglow is about the vote history: it runs until one).
fn violations_so_far(world: &World, votor: bool) -> anyhow::Result<usize> {
    use towerlock_audit::ViolationKind::{DoubleNotarize, FinalizeSkipped, NotarizeAndSkip};
    let path = world.cluster.audit_path();
    Ok(towerlock_audit::check_file(&path).map_or(0, |r| {
        r.violations
            .iter()
            .filter(|v| {
                !votor || matches!(v.kind(), NotarizeAndSkip | DoubleNotarize | FinalizeSkipped)
            })
            .count()
    }))
}

fn progress(world: &World, start_ms: u64) -> anyhow::Result<()> {
    let account = world.cluster.keys.vote_account.pubkey().to_string();
    let landed = world
        .cluster
        .trail
        .with_events(|e| report::landed(e, &account).len())?;
    let restarts: Vec<String> = world
        .nodes
        .iter()
        .map(|n| format!("{} restarts {}", n.name, n.restarts))
        .collect();
    println!(
        "{}   votes landed {landed}; {}",
        stamp(start_ms),
        restarts.join(", ")
    );
    Ok(())
}

/// Stops the cluster, audits, prints the report, writes the fault log and
/// the timeline; returns whether the audit is clean.
async fn finish(
    world: &mut World,
    records: &[FaultRecord],
    span: (u64, u64),
    control: bool,
) -> anyhow::Result<bool> {
    world.cluster.stop().await;
    let audit = towerlock_audit::check_file(&world.cluster.audit_path())
        .context("cannot audit the trail")?;
    println!("\n== audit of every vote and block the cluster received\n{audit}");
    let account = world.cluster.keys.vote_account.pubkey().to_string();
    let events = world.cluster.events()?;
    let figures = report::figures(&events, &account, records, span);
    print_report(&figures, &audit, &account, records);
    write_outputs(world, records, &figures, &events, &account, span)?;
    let history_clean = vote_history_clean(world, &events, control).await?;
    if control {
        println!(
            "control: {} violations found (the control must be caught)",
            audit.violations.len()
        );
    }
    Ok(audit.is_clean() && history_clean)
}

/// On Alpenglow, fenced: every landed vote of the identity is in the vote
/// history left in etcd. (The control keeps its history in a file.)
async fn vote_history_clean(
    world: &World,
    events: &[towerlock_audit::event::Event],
    control: bool,
) -> anyhow::Result<bool> {
    if control {
        return Ok(true);
    }
    let identity = world.cluster.keys.identity.pubkey();
    super::drill_alpenglow::vote_history_verdict(&world.etcd.config(), &identity, events).await
}

fn print_report(
    figures: &report::Figures,
    audit: &towerlock_audit::Report,
    account: &str,
    records: &[FaultRecord],
) {
    println!("\nfaults by kind:");
    for (kind, n) in &figures.faults_by_kind {
        println!("  {kind:<18} {n}");
    }
    println!("\nrecovery (heal → next landed vote):");
    for ((kind, ms), record) in figures.recoveries.iter().zip(records) {
        let shown = ms.map_or("none".to_string(), |ms| {
            format!("{:.1}s", ms as f64 / 1000.0)
        });
        println!("  {kind:<18} {:<14} {shown}", record.target);
    }
    let credits = audit.account(account).map_or(0, |a| a.credits);
    let worst = figures
        .recoveries
        .iter()
        .filter_map(|(_, ms)| *ms)
        .max()
        .unwrap_or(0);
    println!(
        "\nfaults={} failovers={} violations={} votes_landed={} longest_no_vote_s={:.1} credits={} credits_possible={} worst_recovery_s={:.1}",
        records.len(),
        figures.failovers,
        audit.violations.len(),
        figures.votes_landed,
        figures.longest_gap_ms as f64 / 1000.0,
        credits,
        figures.credits_possible,
        worst as f64 / 1000.0
    );
}

fn write_outputs(
    world: &World,
    records: &[FaultRecord],
    figures: &report::Figures,
    events: &[towerlock_audit::event::Event],
    account: &str,
    (start_ms, end_ms): (u64, u64),
) -> anyhow::Result<()> {
    let log: String = records
        .iter()
        .map(|r| serde_json::to_string(r).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    std::fs::write(world.dir.join("faults.jsonl"), log).context("cannot write faults.jsonl")?;
    let votes = report::landed(events, account)
        .iter()
        .map(|v| (v.ts_ms, world.node_of(&v.instance)))
        .collect();
    let timeline = timeline::Timeline {
        start_ms,
        end_ms,
        nodes: world.nodes.iter().map(|n| n.name).collect(),
        samples: &world.samples,
        votes,
        faults: records,
        failovers: &figures.failover_ts,
    };
    let svg = timeline
        .render()
        .map_err(|e| anyhow::anyhow!("cannot draw the timeline: {e}"))?;
    let path = world.dir.join("timeline.svg");
    std::fs::write(&path, svg).with_context(|| format!("cannot write {}", path.display()))?;
    println!("timeline: {}", path.display());
    Ok(())
}

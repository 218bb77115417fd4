//! `towerlock bench sentinel`: repeated kill -9 of the active node, with the
//! sentinel (in-process, beside the hot spare, at its defaults, one check a
//! slot) promoting the spare; then a healthy stretch of the same length in
//! which any promotion is a false one.
//!
//! Each round: the holder votes, a hot spare is ready, a sentinel starts
//! beside it; the holder is killed; the round ends when the sentinel sees the
//! new holder's first vote land in the vote account (its timeline, so up to
//! one check late). The killed node comes back as systemd would restart it
//! on the other machine: with its own identity, as the next hot spare.

use std::{
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use clap::Args;
use tokio::sync::mpsc::UnboundedReceiver;
use towerlock_lab::{now_ms, Lab, Role, ValidatorProcess};
use towerlock_sentinel::{Config, Entry, Event};

use super::bench::{print_header, print_row, Samples};

/// Repeated kill -9 of the active node with the sentinel failing over.
#[derive(Debug, Args)]
pub struct BenchSentinelArgs {
    /// Kill rounds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Slot length of the local cluster, in milliseconds.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(20..))]
    slot_ms: u64,
    /// The `towerlock-validator` binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    validator_bin: Option<PathBuf>,
    /// Keep the cluster, logs and timelines here.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

const WAIT: Duration = Duration::from_secs(60);

struct Node {
    process: ValidatorProcess,
    instance: String,
}

struct Round {
    detected: Duration,
    landed: Duration,
    missed: usize,
}

/// A sentinel running beside a spare.
struct Sentinel {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<
        Result<towerlock_sentinel::Report, towerlock_sentinel::SentinelError>,
    >,
    events: UnboundedReceiver<Entry>,
}

impl Sentinel {
    fn start(lab: &Lab, spare: &Node, slot: Duration, dry_run: bool) -> Self {
        let mut config = Config::new(
            spare.process.ledger.clone(),
            lab.cluster.identity_file(),
            lab.cluster.url.clone(),
        );
        config.etcd = Some(lab.etcd.config());
        config.interval = slot;
        config.dry_run = dry_run;
        config.timeline = Some(lab.dir.join("sentinel-timeline.jsonl"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tx, events) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(towerlock_sentinel::run_with_events(
            config,
            async move {
                let _ = stopped.await;
            },
            Some(tx),
        ));
        Self { stop, task, events }
    }

    async fn wait(&mut self, event: Event, ok: impl Fn(&Entry) -> bool) -> anyhow::Result<Entry> {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(entry) = self.events.recv().await {
                if entry.event == event && ok(&entry) {
                    return Some(entry);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(entry)) => Ok(entry),
            _ => bail!("the sentinel reported no {event:?} within {WAIT:?}"),
        }
    }

    async fn finish(self) -> anyhow::Result<Vec<Entry>> {
        let _ = self.stop.send(());
        let _ = self.task.await.context("the sentinel's task")??;
        let mut events = self.events;
        let mut out = Vec::new();
        while let Ok(entry) = events.try_recv() {
            out.push(entry);
        }
        Ok(out)
    }
}

impl BenchSentinelArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        if cfg!(debug_assertions) {
            eprintln!("note: a debug build; build with --release for meaningful figures");
        }
        let slot = Duration::from_millis(self.slot_ms);
        let mut lab = Lab::start(&bin, self.slot_ms, self.dir.clone()).await?;
        let (process, instance) = lab
            .start_validator("node-0", &lab.primary_args(), Role::Voting, WAIT)
            .await?;
        let mut holder = Node { process, instance };
        let (process, instance) = lab.start_hot_spare("node-1", WAIT).await?;
        let mut spare = Node { process, instance };
        let began = Instant::now();
        let mut rounds = Vec::new();
        for round in 0..self.rounds as usize {
            let measured = self.round(&lab, &mut holder, &spare, slot).await?;
            eprintln!(
                "round {}/{}: detected {:.0} ms, first vote landed {:.0} ms, missed {}",
                round + 1,
                self.rounds,
                ms(measured.detected),
                ms(measured.landed),
                measured.missed
            );
            rounds.push(measured);
            let (process, instance) = lab
                .start_hot_spare(&format!("node-{}", round + 2), WAIT)
                .await?;
            holder = std::mem::replace(&mut spare, Node { process, instance });
        }
        let stretch = began.elapsed();
        eprintln!(
            "healthy stretch of {:.0} s with a dry-run sentinel…",
            stretch.as_secs_f64()
        );
        let false_promotions = self
            .healthy_stretch(&lab, &holder, &spare, slot, stretch)
            .await?;
        lab.cluster.stop().await;
        let report = towerlock_audit::check_file(&lab.cluster.audit_path())
            .context("cannot audit the trail")?;
        self.print(&rounds, false_promotions, stretch, report.is_clean());
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn round(
        &self,
        lab: &Lab,
        holder: &mut Node,
        spare: &Node,
        slot: Duration,
    ) -> anyhow::Result<Round> {
        lab.cluster
            .wait_for_more_votes(&holder.instance, 3, WAIT)
            .await?;
        let mut sentinel = Sentinel::start(lab, spare, slot, false);
        sentinel
            .wait(Event::Decision, |e| {
                e.fields.get("state").and_then(|s| s.as_str()) == Some("healthy")
            })
            .await?;
        // A different moment of the slot each time.
        tokio::time::sleep(Duration::from_millis(now_ms() % self.slot_ms)).await;
        let killed = now_ms();
        holder.process.kill();
        let detected = sentinel.wait(Event::Detected, |_| true).await?;
        let landed = sentinel.wait(Event::FirstVoteLanded, |_| true).await?;
        let _ = sentinel.finish().await?;
        let missed = lab
            .cluster
            .missed_slots(&holder.instance, &spare.instance, killed)?
            .unwrap_or(usize::MAX);
        Ok(Round {
            detected: Duration::from_millis(detected.ts_ms.saturating_sub(killed)),
            landed: Duration::from_millis(landed.ts_ms.saturating_sub(killed)),
            missed,
        })
    }

    /// A dry-run sentinel beside the spare while the holder votes; returns
    /// the promotions it would have made.
    async fn healthy_stretch(
        &self,
        lab: &Lab,
        holder: &Node,
        spare: &Node,
        slot: Duration,
        length: Duration,
    ) -> anyhow::Result<usize> {
        lab.cluster
            .wait_for_more_votes(&holder.instance, 3, WAIT)
            .await?;
        let sentinel = Sentinel::start(lab, spare, slot, true);
        tokio::time::sleep(length).await;
        let entries = sentinel.finish().await?;
        Ok(entries
            .iter()
            .filter(|e| e.event == Event::PromotionSent)
            .count())
    }

    fn print(&self, rounds: &[Round], false_promotions: usize, stretch: Duration, clean: bool) {
        let (mut detected, mut landed) = (Samples::default(), Samples::default());
        for r in rounds {
            detected.push(r.detected);
            landed.push(r.landed);
        }
        let missed: Vec<usize> = rounds.iter().map(|r| r.missed).collect();
        let missed_max = missed.iter().copied().max().unwrap_or(0);
        let mut sorted = missed.clone();
        sorted.sort_unstable();
        let missed_p50 = sorted
            .get(sorted.len().div_ceil(2).max(1) - 1)
            .copied()
            .unwrap_or(0);
        println!("{} kill -9 rounds, {} ms slots, sentinel at its defaults (one check a slot, 3 failures)", rounds.len(), self.slot_ms);
        print_header();
        print_row("kill -> detected", &detected);
        print_row("kill -> first vote landed", &landed);
        println!(
            "votable slots missed per round: p50 {missed_p50}, max {missed_max} (all: {missed:?})"
        );
        println!(
            "false promotions in a healthy stretch of {:.0} s (dry run): {false_promotions}",
            stretch.as_secs_f64()
        );
        let (p50, max) = (landed.quantile_ms(0.5), landed.quantile_ms(1.0));
        println!(
            "target median <= 2000 ms: {:.0} ms {}",
            p50,
            met(p50 <= 2000.0)
        );
        println!(
            "target max <= 4000 ms: {:.0} ms {}",
            max,
            met(max <= 4000.0)
        );
        println!(
            "target 0 false promotions: {false_promotions} {}",
            met(false_promotions == 0)
        );
        println!(
            "audit: {}",
            if clean {
                "clean"
            } else {
                "VIOLATIONS (exit status 1)"
            }
        );
        println!(
            "landed_p50_ms={p50:.0} landed_max_ms={max:.0} detected_p50_ms={:.0} detected_max_ms={:.0} \
             missed_slots_p50={missed_p50} missed_slots_max={missed_max} false_promotions={false_promotions} \
             healthy_seconds={:.0} rounds={} slot_ms={} audit_clean={clean}",
            detected.quantile_ms(0.5),
            detected.quantile_ms(1.0),
            stretch.as_secs_f64(),
            rounds.len(),
            self.slot_ms
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

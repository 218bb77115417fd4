//! `towerlock bench cluster`: what the local cluster costs, with real vote
//! transactions.
//!
//! The cluster runs in this process with its synthetic validators (whose
//! votes are in memory) and, alternating window by window in one run, with
//! and without a generator of real signed TowerSync transactions for many
//! identities; one or two real `towerlock-validator` processes vote
//! throughout. Side by side: the cluster's CPU and slot-clock lateness with
//! and without the transactions (so the CPU per vote transaction), the
//! `sendTransaction` round trip, how soon the votes land, and whether the
//! real validators' votes slow down under the load.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use solana_signer::Signer;
use towerlock_audit::check::timely_vote_credits;
use towerlock_audit::event::Event;
use towerlock_cluster::genesis::{
    self, InitOptions, ValidatorKeys, IDENTITY_FILE, VOTE_ACCOUNT_FILE,
};
use towerlock_cluster::server::{now_ms, Server, ServerConfig};
use towerlock_lab::{trail::as_vote, voted_slot, AuditTrail, Role, ValidatorProcess};

use super::bench::Samples;
use super::bench_cluster_voters::{Generator, Voter, VoterReport, GENERATOR_INSTANCE};

/// How long a real validator may take to start voting.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Run a cluster with many synthetic validators and, window by window,
/// with and without real vote transactions for many identities.
#[derive(Debug, clap::Args)]
pub struct BenchClusterArgs {
    /// Slot length in milliseconds.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(20..))]
    slot_ms: u64,
    /// Synthetic validators (their votes stay in memory).
    #[arg(long, default_value_t = 200)]
    synthetic: u32,
    /// Identities whose votes the generator sends as real transactions, one
    /// per identity for every bank of the heaviest fork.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    voters: u32,
    /// Real `towerlock-validator` processes voting throughout (file storage).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=2))]
    validators: u32,
    /// Seconds per window; windows alternate without and with the generator.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..))]
    window_seconds: u64,
    /// Pairs of windows (without, then with the generator).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pairs: u32,
    /// Slots per epoch.
    #[arg(long, default_value_t = 8192)]
    epoch_slots: u64,
    /// The `towerlock-validator` binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    validator_bin: Option<PathBuf>,
    /// Keep the cluster and the validators' ledgers and logs in this folder.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// One window of the run.
#[derive(Debug, Clone, Copy)]
struct Window {
    votes: bool,
    start_ms: u64,
    end_ms: u64,
    /// CPU seconds of the whole process and of the generator thread.
    process_cpu: f64,
    generator_cpu: f64,
}

/// Per kind of window (without / with the generator).
#[derive(Debug, Default)]
struct Side {
    seconds: f64,
    cluster_cpu: f64,
    lateness: Samples,
    /// The real validators: bank frozen → vote received.
    validator_sent: Samples,
    validator_credits: Vec<u64>,
}

impl BenchClusterArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let (_tmp, dir) = match &self.dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let tmp = tempfile::Builder::new()
                    .prefix("towerlock-bench-cluster-")
                    .tempdir()
                    .context("cannot create a temporary folder")?;
                let dir = tmp.path().to_path_buf();
                (Some(tmp), dir)
            }
        };
        let cluster_dir = dir.join("cluster");
        let ours = self.voters + self.validators;
        // Our identities hold 30 % of the stake together: the synthetic
        // validators alone confirm, so windows without the generator go on.
        let options = InitOptions {
            validators: ours,
            stake_percent: 30.0 / ours as f64,
            slots_per_epoch: self.epoch_slots,
            slot_ms: self.slot_ms,
            // No minor forks: the generator's towers follow the heaviest fork
            // without fork choice, so a fork switch would break a lockout.
            fork_rate: 0.0,
            synthetic: self.synthetic,
        };
        let (_, keys) =
            genesis::init(&cluster_dir, &options, now_ms()).context("cannot create the cluster")?;
        let server = Server::bind(ServerConfig {
            dir: cluster_dir.clone(),
            slot_ms: Some(self.slot_ms),
            rpc_addr: "127.0.0.1:0".parse().expect("a socket address"),
        })
        .await
        .context("cannot start the cluster")?;
        if cfg!(debug_assertions) {
            eprintln!("note: a debug build; build with --release for meaningful figures");
        }
        let url = server.rpc_url();
        let first_slot = server.current_slot();
        let audit_path = server.audit_path();
        let mut keys = keys.into_iter();
        let validator_keys: Vec<_> = keys.by_ref().take(self.validators as usize).collect();
        let voters: Vec<Voter> = keys
            .map(|k| Voter {
                vote_account: k.vote_account.pubkey(),
                identity: k.identity,
            })
            .collect();
        println!(
            "{} synthetic validators, {} identities voting with transactions, {} real validator(s), {} ms slots; {} pairs of {} s windows (without, then with the transactions)",
            self.synthetic, self.voters, self.validators, self.slot_ms, self.pairs, self.window_seconds
        );

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move {
            let _ = stop_rx.await;
        }));
        let experiment = self.experiment(&dir, &url, &validator_keys, voters);
        let outcome = experiment.await;
        let _ = stop_tx.send(());
        let run = serving
            .await
            .context("the cluster's task failed")?
            .context("the cluster failed")?;
        let (windows, report, instances) = outcome?;

        let events = AuditTrail::new(audit_path.clone())
            .events()
            .context("cannot read the audit trail")?;
        let sides = sides(&windows, &run.lateness_us, first_slot, &events, &instances);
        let audit = towerlock_audit::check_file(&audit_path).context("cannot audit the trail")?;
        self.print(&sides, &report, audit.is_clean());
        Ok(if audit.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// Starts the real validators and the generator, runs the windows, and
    /// stops them; the windows, the generator's report and the validators'
    /// instance names.
    async fn experiment(
        &self,
        dir: &std::path::Path,
        url: &str,
        validator_keys: &[ValidatorKeys],
        voters: Vec<Voter>,
    ) -> anyhow::Result<(Vec<Window>, VoterReport, Vec<String>)> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        let mut nodes = Vec::new();
        for (i, k) in validator_keys.iter().enumerate() {
            let args = vec![
                "--identity".to_string(),
                k.dir.join(IDENTITY_FILE).display().to_string(),
                "--vote-account".into(),
                k.dir.join(VOTE_ACCOUNT_FILE).display().to_string(),
                "--entrypoint".into(),
                url.to_string(),
                "--rpc-port".into(),
                "0".into(),
                "--tower-storage".into(),
                "file".into(),
            ];
            let name = format!("validator-{i}");
            let mut node = ValidatorProcess::spawn(&bin, &name, dir.join(&name), &args)?;
            let status = node.wait_role(Role::Voting, START_DEADLINE).await?;
            nodes.push((node, status.instance));
        }
        let generator = Generator::start(url, voters)?;
        let windows = self.windows(&generator).await;
        generator.set_active(false);
        let report = generator.finish().await?;
        let windows = windows?;
        for (node, _) in &mut nodes {
            if !node.is_running() {
                anyhow::bail!(
                    "{} stopped during the run:\n{}",
                    node.name,
                    node.log_tail(20)
                );
            }
            node.kill();
        }
        let instances = nodes.into_iter().map(|(_, i)| i).collect();
        Ok((windows, report, instances))
    }

    /// The windows, without and with the generator, each measured.
    async fn windows(&self, generator: &Generator) -> anyhow::Result<Vec<Window>> {
        let mut windows = Vec::new();
        for pair in 0..self.pairs {
            for votes in [false, true] {
                generator.set_active(votes);
                let start_ms = now_ms();
                let (p0, g0) = (process_cpu_seconds()?, generator.cpu_seconds()?);
                tokio::time::sleep(Duration::from_secs(self.window_seconds)).await;
                let (p1, g1) = (process_cpu_seconds()?, generator.cpu_seconds()?);
                windows.push(Window {
                    votes,
                    start_ms,
                    end_ms: now_ms(),
                    process_cpu: p1 - p0,
                    generator_cpu: g1 - g0,
                });
                eprintln!(
                    "pair {}/{}: window {} the transactions done",
                    pair + 1,
                    self.pairs,
                    if votes { "with" } else { "without" }
                );
            }
        }
        Ok(windows)
    }

    fn print(&self, sides: &[Side; 2], report: &VoterReport, audit_clean: bool) {
        let f = Figures::new(sides, report);
        let [without, with] = sides;
        println!();
        println!("{:<44} {:>12} {:>12}", "", "without", "with");
        let row = |name: &str, a: f64, b: f64| println!("{name:<44} {a:>12.3} {b:>12.3}");
        row("cluster CPU (cores)", f.cores[0], f.cores[1]);
        for (name, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
            row(
                &format!("slot end lateness {name} (ms)"),
                without.lateness.quantile_ms(q),
                with.lateness.quantile_ms(q),
            );
        }
        for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
            row(
                &format!("real validator: bank → vote received {name} (ms)"),
                without.validator_sent.quantile_ms(q),
                with.validator_sent.quantile_ms(q),
            );
        }
        row(
            "real validator: credits per landed vote",
            f.validator_credits[0],
            f.validator_credits[1],
        );
        println!();
        println!(
            "vote transactions: {} sent ({:.0}/s in the windows with them), {} accepted, {:.1} % landed",
            report.sent,
            f.votes_per_s,
            report.accepted,
            f.landed_fraction * 100.0
        );
        println!(
            "sendTransaction round trip: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            report.send.quantile_ms(0.5),
            report.send.quantile_ms(0.99),
            report.send.quantile_ms(1.0)
        );
        println!(
            "landed after (slots): p50 {} max {}; {:.2} credits per landed vote",
            f.landed_p50, f.landed_max, f.credits_per_vote
        );
        println!(
            "cluster CPU per vote transaction: {:.1} µs; the generator itself (signing, sending): {:.3} cores",
            f.per_vote_us, f.generator_cores
        );
        println!(
            "votes_per_s={:.0} send_p50_ms={:.3} send_p99_ms={:.3} accepted={:.4} landed={:.4} landed_slots_p50={} landed_slots_max={} credits_per_vote={:.2} cluster_cores_without={:.3} cluster_cores_with={:.3} cluster_us_per_vote={:.1} slot_late_p99_ms_without={:.3} slot_late_p99_ms_with={:.3} validator_sent_p50_ms_without={:.3} validator_sent_p50_ms_with={:.3} validator_credits_without={:.2} validator_credits_with={:.2} voters={} synthetic={} slot_ms={} audit_clean={audit_clean}",
            f.votes_per_s,
            report.send.quantile_ms(0.5),
            report.send.quantile_ms(0.99),
            report.accepted as f64 / report.sent.max(1) as f64,
            f.landed_fraction,
            f.landed_p50,
            f.landed_max,
            f.credits_per_vote,
            f.cores[0],
            f.cores[1],
            f.per_vote_us,
            without.lateness.quantile_ms(0.99),
            with.lateness.quantile_ms(0.99),
            without.validator_sent.quantile_ms(0.5),
            with.validator_sent.quantile_ms(0.5),
            f.validator_credits[0],
            f.validator_credits[1],
            self.voters,
            self.synthetic,
            self.slot_ms
        );
    }
}

/// The derived figures: per side (without, with) and of the transactions.
struct Figures {
    cores: [f64; 2],
    validator_credits: [f64; 2],
    votes_per_s: f64,
    /// The cluster's extra CPU in the windows with transactions, per one.
    per_vote_us: f64,
    generator_cores: f64,
    landed_fraction: f64,
    landed_p50: u64,
    landed_max: u64,
    credits_per_vote: f64,
}

impl Figures {
    fn new([without, with]: &[Side; 2], report: &VoterReport) -> Self {
        let per_second = |x: f64, s: &Side| x / s.seconds.max(f64::EPSILON);
        let cores = [
            per_second(without.cluster_cpu, without),
            per_second(with.cluster_cpu, with),
        ];
        let extra_cpu = with.cluster_cpu - cores[0] * with.seconds;
        let per_vote_us = extra_cpu / report.sent.max(1) as f64 * 1e6;
        let mut landed = report.landed_after_slots.clone();
        landed.sort_unstable();
        let quantile = |q: f64| -> u64 {
            landed
                .get(((landed.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        let credits: u64 = landed.iter().map(|l| timely_vote_credits(*l)).sum();
        let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
        Self {
            cores,
            validator_credits: [
                mean(&without.validator_credits),
                mean(&with.validator_credits),
            ],
            votes_per_s: per_second(report.sent as f64, with),
            per_vote_us,
            generator_cores: report.cpu_seconds
                / (with.seconds + without.seconds).max(f64::EPSILON),
            landed_fraction: landed.len() as f64 / report.sent.max(1) as f64,
            landed_p50: quantile(0.5),
            landed_max: quantile(1.0),
            credits_per_vote: credits as f64 / landed.len().max(1) as f64,
        }
    }
}

/// Sorts the run's measurements into the windows without and with the
/// generator.
fn sides(
    windows: &[Window],
    lateness_us: &[u64],
    first_slot: u64,
    events: &[Event],
    instances: &[String],
) -> [Side; 2] {
    let mut sides = [Side::default(), Side::default()];
    let side_of = |ms: u64| {
        windows
            .iter()
            .find(|w| (w.start_ms..w.end_ms).contains(&ms))
            .map(|w| usize::from(w.votes))
    };
    for w in windows {
        let side = &mut sides[usize::from(w.votes)];
        side.seconds += (w.end_ms - w.start_ms) as f64 / 1000.0;
        side.cluster_cpu += w.process_cpu - w.generator_cpu;
    }
    // Banks frozen: their time (the slot clock's) and slot.
    let mut frozen: HashMap<u64, u64> = HashMap::new();
    for event in events {
        if let Event::Bank(b) = event {
            frozen.entry(b.slot).or_insert(b.ts_ms);
        }
    }
    // Slot lateness: the i-th slot the clock ended is `first_slot + i`;
    // placed by when its bank froze (slots nobody produced are left out).
    for (i, late) in lateness_us.iter().enumerate() {
        let at = frozen.get(&(first_slot + i as u64)).copied();
        if let Some(side) = at.and_then(side_of) {
            sides[side].lateness.push(Duration::from_micros(*late));
        }
    }
    // The real validators' votes: bank frozen → received, and the credits
    // of each accepted vote by when it landed: an accepted vote is in the
    // next bank frozen after the cluster received it.
    let mut slots_sorted: Vec<u64> = frozen.keys().copied().collect();
    slots_sorted.sort_unstable();
    for vote in events.iter().filter_map(as_vote) {
        if vote.instance == GENERATOR_INSTANCE || !instances.contains(&vote.instance) {
            continue;
        }
        if vote.result != "ok" {
            continue;
        }
        let slot = voted_slot(vote);
        let Some(frozen_ms) = frozen.get(&slot) else {
            continue;
        };
        let Some(side) = side_of(vote.ts_ms) else {
            continue;
        };
        sides[side]
            .validator_sent
            .push(Duration::from_millis(vote.ts_ms.saturating_sub(*frozen_ms)));
        let landed_in = slots_sorted
            .iter()
            .find(|s| frozen.get(s).is_some_and(|t| *t >= vote.ts_ms))
            .copied();
        if let Some(landed_in) = landed_in {
            sides[side]
                .validator_credits
                .push(timely_vote_credits(landed_in - slot));
        }
    }
    sides
}

/// User + system CPU time of this process (all threads).
pub fn process_cpu_seconds() -> anyhow::Result<f64> {
    cpu_seconds("/proc/self/stat")
}

/// User + system CPU time from a `/proc/…/stat` file.
pub fn cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    // Fields after the command name (which is in parentheses).
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected {path}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line (1-based).
    let ticks: u64 = fields
        .get(11..13)
        .with_context(|| format!("unexpected {path}"))?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / per_second.max(1) as f64)
}

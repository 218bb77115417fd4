//! `towerlock bench vote-path`: what the fence costs on the vote path.
//!
//! One validator (the staked identity) on a local cluster, run with
//! `--tower-storage file` and with `--tower-storage etcd` in alternating
//! rounds of the same run. Each round starts a fresh process (a new ledger;
//! `--allow-tower-rebuild`, as the tower stored by the other backend is
//! older than the landed votes), lets it vote a few times, then measures
//! from the cluster's audit trail (the cluster runs in this process, on
//! the same clock): bank frozen → vote received by the cluster (sent), and
//! → the first bank whose vote account holds it (landed); the node's own
//! store latency (`towerlockStatus`, polled); and the timely vote credits
//! those votes earn (the vote program's rule, by landing latency) per slot.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use solana_signer::Signer;
use towerlock_audit::{check::timely_vote_credits, event::Event};
use towerlock_cluster::{
    api::{BankNotification, BANK_SUBSCRIBE},
    client::Subscription,
};
use towerlock_lab::{now_ms, trail::as_vote, voted_slot, wait_until, Lab, Role};

use super::bench::{print_header, print_row, Samples};

/// One validator voting with file storage and with etcd, alternating.
#[derive(Debug, Args)]
pub struct BenchVotePathArgs {
    /// Slot length of the local cluster, in milliseconds.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(20..))]
    slot_ms: u64,
    /// Rounds per storage (file, etcd, file, etcd, …).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Votes measured per round (after three unmeasured ones).
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..))]
    slots_per_round: u64,
    /// The `towerlock-validator` binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    validator_bin: Option<PathBuf>,
    /// Keep the cluster, etcd data and validator logs in this folder.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    File,
    Etcd,
}

impl Storage {
    fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Etcd => "etcd",
        }
    }
}

/// One bank notification: our vote account in that bank.
#[derive(Debug, Clone, Copy)]
struct BankSeen {
    slot: u64,
    last_vote: Option<u64>,
    received_ms: u64,
}

type Banks = Arc<Mutex<Vec<BankSeen>>>;

/// One round: which storage, which process, when it was measured, and the
/// store latency the node reported for each vote.
struct Round {
    storage: Storage,
    instance: String,
    start_ms: u64,
    end_ms: u64,
    store_ms: Vec<f64>,
}

/// The figures of one storage over its rounds.
#[derive(Default)]
struct Figures {
    sent: Samples,
    landed: Samples,
    store: Samples,
    credits: u64,
    slots: u64,
}

impl Figures {
    fn credits_per_slot(&self) -> f64 {
        self.credits as f64 / self.slots.max(1) as f64
    }
}

const WAIT: Duration = Duration::from_secs(60);

impl BenchVotePathArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        if cfg!(debug_assertions) {
            eprintln!("note: a debug build; build with --release for meaningful figures");
        }
        eprintln!(
            "starting etcd (mutual TLS) and a cluster with {} ms slots…",
            self.slot_ms
        );
        let mut lab = Lab::start(&bin, self.slot_ms, self.dir.clone()).await?;
        let banks = Banks::default();
        let watcher = watch_banks(&lab, Arc::clone(&banks)).await?;
        let mut rounds = Vec::new();
        for round in 0..self.rounds as usize * 2 {
            let storage = if round % 2 == 0 {
                Storage::File
            } else {
                Storage::Etcd
            };
            let measured = self
                .round(&lab, &banks, storage, round)
                .await
                .with_context(|| format!("round {} ({}) stopped", round + 1, storage.name()))?;
            rounds.push(measured);
        }
        watcher.abort();
        lab.cluster.stop().await;
        let events = lab.cluster.events()?;
        let banks = lock(&banks).clone();
        let file = figures(&rounds, Storage::File, &events, &banks);
        let etcd = figures(&rounds, Storage::Etcd, &events, &banks);
        let report = towerlock_audit::check_file(&lab.cluster.audit_path())
            .context("cannot audit the trail")?;
        self.print(&file, &etcd, report.is_clean());
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    fn args(&self, lab: &Lab, storage: Storage) -> Vec<String> {
        let mut args = match storage {
            Storage::Etcd => lab.primary_args(),
            Storage::File => vec![
                "--identity".into(),
                lab.cluster.identity_file().display().to_string(),
                "--vote-account".into(),
                lab.cluster.vote_account_file().display().to_string(),
                "--entrypoint".into(),
                lab.cluster.url.clone(),
                "--rpc-port".into(),
                "0".into(),
                "--tower-storage".into(),
                "file".into(),
            ],
        };
        args.push("--allow-tower-rebuild".into());
        args
    }

    async fn round(
        &self,
        lab: &Lab,
        banks: &Banks,
        storage: Storage,
        round: usize,
    ) -> anyhow::Result<Round> {
        let name = format!("{}-{}", storage.name(), round / 2 + 1);
        let (mut process, instance) = lab
            .start_validator(&name, &self.args(lab, storage), Role::Voting, WAIT)
            .await?;
        lab.cluster
            .wait_for_more_votes(&instance, 3, WAIT)
            .await
            .with_context(|| process.log_tail(20))?;
        let start_ms = now_ms();
        let store_ms = self.poll_stores(lab, &process, &instance).await?;
        let end_ms = now_ms();
        process.kill();
        let last = lab
            .cluster
            .accepted_votes(&instance)?
            .iter()
            .map(voted_slot)
            .max()
            .unwrap_or(0);
        // The next round rebuilds its tower from the landed votes: let the
        // last one land first.
        let landed = wait_until(WAIT, "the last vote to land", async || {
            Ok(lock(banks)
                .iter()
                .any(|b| b.last_vote.is_some_and(|v| v >= last))
                .then_some(()))
        })
        .await;
        if landed.is_err() {
            eprintln!("warning: the last vote of {name} (slot {last}) did not land");
        }
        eprintln!(
            "round {}/{}: {}, {} votes measured",
            round + 1,
            self.rounds * 2,
            storage.name(),
            store_ms.len()
        );
        Ok(Round {
            storage,
            instance,
            start_ms,
            end_ms,
            store_ms,
        })
    }

    /// Polls the node's status until `slots_per_round` more votes were
    /// accepted; returns the store latency it reported for each new vote.
    async fn poll_stores(
        &self,
        lab: &Lab,
        process: &towerlock_lab::ValidatorProcess,
        instance: &str,
    ) -> anyhow::Result<Vec<f64>> {
        let before = lab.cluster.accepted_votes(instance)?.len();
        let target = before + self.slots_per_round as usize;
        let mut client = process.admin_client().await?;
        let mut latencies = HashMap::new();
        let deadline = tokio::time::Instant::now() + WAIT + self.slot() * target as u32;
        while lab.cluster.accepted_votes(instance)?.len() < target {
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("{} stopped voting\n{}", process.name, process.log_tail(20));
            }
            let status = client
                .status()
                .await
                .map_err(|e| anyhow!("{}: towerlockStatus: {e}", process.name))?;
            if let (Some(slot), Some(ms)) = (status.last_vote_slot, status.last_store_latency_ms) {
                latencies.entry(slot).or_insert(ms);
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        Ok(latencies.into_values().collect())
    }

    fn slot(&self) -> Duration {
        Duration::from_millis(self.slot_ms)
    }
}

async fn watch_banks(lab: &Lab, banks: Banks) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let vote_account = lab.cluster.keys.vote_account.pubkey();
    let ws_url = lab.cluster.url.replacen("http://", "ws://", 1);
    let mut subscription = Subscription::open(&ws_url, BANK_SUBSCRIBE)
        .await
        .map_err(|e| anyhow!("cannot subscribe to the cluster's banks: {e}"))?;
    Ok(tokio::spawn(async move {
        while let Ok(bank) = subscription.next::<BankNotification>().await {
            let ours = bank
                .vote_accounts
                .iter()
                .find(|v| v.vote_pubkey == vote_account);
            lock(&banks).push(BankSeen {
                slot: bank.slot,
                last_vote: ours.and_then(|v| v.last_vote),
                received_ms: now_ms(),
            });
        }
    }))
}

/// The figures of `storage`'s rounds, from the trail and the banks seen.
fn figures(rounds: &[Round], storage: Storage, events: &[Event], banks: &[BankSeen]) -> Figures {
    let mut frozen: HashMap<u64, u64> = HashMap::new();
    for event in events {
        if let Event::Bank(b) = event {
            frozen.entry(b.slot).or_insert(b.ts_ms);
        }
    }
    let mut figures = Figures::default();
    for round in rounds.iter().filter(|r| r.storage == storage) {
        for ms in &round.store_ms {
            figures.store.push(from_ms(*ms));
        }
        let votes = events.iter().filter_map(as_vote).filter(|v| {
            v.instance == round.instance
                && v.result == "ok"
                && (round.start_ms..=round.end_ms).contains(&v.ts_ms)
        });
        for vote in votes {
            let slot = voted_slot(vote);
            let Some(bank_ms) = frozen.get(&slot) else {
                continue;
            };
            figures
                .sent
                .push(from_ms(vote.ts_ms.saturating_sub(*bank_ms) as f64));
            let landed = banks
                .iter()
                .find(|b| b.slot > slot && b.last_vote.is_some_and(|v| v >= slot));
            if let Some(landed) = landed {
                // The vote program's timely credits for this landing latency.
                figures.credits += timely_vote_credits(landed.slot - slot);
                if let Some(landed_ms) = frozen.get(&landed.slot) {
                    figures
                        .landed
                        .push(from_ms(landed_ms.saturating_sub(*bank_ms) as f64));
                }
            }
        }
        let window: Vec<&BankSeen> = banks
            .iter()
            .filter(|b| (round.start_ms..=round.end_ms).contains(&b.received_ms))
            .collect();
        if let (Some(first), Some(last)) = (window.first(), window.last()) {
            figures.slots += last.slot.saturating_sub(first.slot) + 1;
        }
    }
    figures
}

impl BenchVotePathArgs {
    fn print(&self, file: &Figures, etcd: &Figures, clean: bool) {
        println!(
            "one validator, {} ms slots, {} rounds per storage alternating, {} votes measured \
             per round; etcd with mutual TLS on loopback",
            self.slot_ms, self.rounds, self.slots_per_round
        );
        print_header();
        print_row("file: bank -> vote sent", &file.sent);
        print_row("etcd: bank -> vote sent", &etcd.sent);
        print_row("file: bank -> vote landed", &file.landed);
        print_row("etcd: bank -> vote landed", &etcd.landed);
        print_row("file: tower store (node)", &file.store);
        print_row("etcd: tower store (node)", &etcd.store);
        let q = |s: &Samples, q| s.quantile_ms(q);
        println!(
            "etcd/file p50 ratio: sent {:.2}, store {:.2}",
            q(&etcd.sent, 0.5) / q(&file.sent, 0.5),
            q(&etcd.store, 0.5) / q(&file.store, 0.5)
        );
        println!(
            "vote credits per slot: file {:.2}, etcd {:.2} (16 at best)",
            file.credits_per_slot(),
            etcd.credits_per_slot()
        );
        let added = q(&etcd.sent, 0.99) - q(&file.sent, 0.99);
        let store_added = q(&etcd.store, 0.99) - q(&file.store, 0.99);
        let met = added <= 1.0;
        println!(
            "target: etcd adds <= 1 ms at p99 over file storage: bank -> sent {added:.1} ms \
             (trail times: 1 ms resolution), store {store_added:.3} ms: {}",
            if met { "met" } else { "NOT met" }
        );
        for line in HOW_MEASURED {
            println!("{line}");
        }
        println!("audit: {}", if clean { "clean" } else { "VIOLATIONS" });
        let mut line = Vec::new();
        for (name, f) in [("file", file), ("etcd", etcd)] {
            for (what, s) in [
                ("sent", &f.sent),
                ("landed", &f.landed),
                ("store", &f.store),
            ] {
                for (tag, quantile) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
                    line.push(format!("{name}_{what}_{tag}_ms={:.3}", q(s, quantile)));
                }
            }
            line.push(format!(
                "{name}_credits_per_slot={:.2}",
                f.credits_per_slot()
            ));
            line.push(format!("{name}_votes={}", f.sent.len()));
        }
        line.push(format!("etcd_added_p99_ms={added:.3}"));
        line.push(format!("etcd_store_added_p99_ms={store_added:.3}"));
        line.push(format!("rounds={} slot_ms={}", self.rounds, self.slot_ms));
        line.push(format!("target_met={met} audit_clean={clean}"));
        println!("{}", line.join(" "));
    }
}

const HOW_MEASURED: [&str; 7] = [
    "how it is measured:",
    "  sent     the bank's freeze (trail bank line) -> the cluster received the vote (trail vote line)",
    "  landed   the bank's freeze -> the freeze of the first later bank whose vote account holds",
    "           the vote (bank subscription)",
    "  store    the node's own latency of each tower store (towerlockStatus, polled every 40 ms)",
    "  credits  the vote program's timely credits of each measured vote (by its landing",
    "           latency), per slot of the rounds' measured windows",
];

fn lock(banks: &Mutex<Vec<BankSeen>>) -> std::sync::MutexGuard<'_, Vec<BankSeen>> {
    banks.lock().unwrap_or_else(|p| p.into_inner())
}

fn from_ms(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

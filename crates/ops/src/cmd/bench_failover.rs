//! `towerlock bench failover`: how long a manual failover takes and how many
//! votes it costs.
//!
//! A real etcd with mutual TLS, the local cluster, and `towerlock-validator`
//! processes started with the seed's command lines. Each round: the current
//! holder of the staked identity votes, a hot spare (the seed's secondary
//! command line) is ready; `set-identity` on the spare; the old holder must
//! exit 1; its process is restarted as the next hot spare (secondary command
//! line, new ledger), so the roles alternate. Times come from the cluster's
//! audit trail (the cluster runs in this process, on the same clock), not from
//! the lab's waits, so their 20 ms polling does not show in the figures.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use solana_signer::Signer;
use towerlock_audit::event::Event;
use towerlock_cluster::{
    api::{BankNotification, BANK_SUBSCRIBE},
    client::Subscription,
};
use towerlock_lab::{trail::as_vote, voted_slot, wait_until, Lab, Role, ValidatorProcess};

use super::bench::{print_header, print_row, Samples};

/// Repeated manual failovers (`set-identity` on a hot spare) on a local
/// cluster with a real etcd; reports the time to the new holder's first vote
/// sent and landed, and the votes missed per failover.
#[derive(Debug, Args)]
pub struct BenchFailoverArgs {
    /// Failovers to run; roles alternate between two machines' command lines.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    failovers: u32,
    /// Slot length of the local cluster, in milliseconds.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(20..))]
    slot_ms: u64,
    /// The `towerlock-validator` binary (default: next to this executable).
    #[arg(long, value_name = "PATH")]
    validator_bin: Option<PathBuf>,
    /// Keep the cluster, etcd data and validator logs in this folder
    /// (default: a temporary folder, removed at the end).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The cluster's consensus: `tower` (TowerBFT) or `alpenglow` (Votor,
    /// the vote history behind the fence).
    #[arg(long, value_enum, default_value_t = super::drill::DrillConsensus::Tower)]
    consensus: super::drill::DrillConsensus,
}

/// What one failover measured.
#[derive(Debug)]
struct Round {
    from: String,
    to: String,
    /// When in the slot the call started: ms after the last bank.
    phase_ms: f64,
    /// The `set-identity` command (a process, as an operator runs it) returned.
    set_identity: Duration,
    /// Call start → the cluster received the new holder's first vote.
    first_vote_sent_ms: f64,
    /// That bank froze → the cluster received the vote (the node's share).
    vote_after_bank_ms: f64,
    /// Call start → the first bank whose vote-account state holds it.
    first_vote_landed_ms: f64,
    /// The last vote of the tower the new holder loaded.
    loaded: Option<u64>,
    /// The old holder's last accepted vote slot.
    old_last: u64,
    /// The new holder's first accepted vote slot.
    new_first: u64,
    /// The bank in which that vote first showed in the vote account.
    landed_in: u64,
    /// Bank slots strictly between `old_last` and `new_first`.
    missed: usize,
    /// Accepted votes of the old holder past what the new holder loaded.
    old_votes_past_loaded: usize,
}

/// One bank notification: our vote account's last landed vote in that bank.
#[derive(Debug, Clone, Copy)]
struct BankSeen {
    slot: u64,
    last_vote: Option<u64>,
    received_us: u64,
}

impl BenchFailoverArgs {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let bin = super::validator_bin(self.validator_bin.as_deref())?;
        if cfg!(debug_assertions) {
            eprintln!("note: a debug build; build with --release for meaningful figures");
        }
        let wait = Duration::from_millis((self.slot_ms * 150).max(60_000));
        eprintln!(
            "starting etcd (mutual TLS) and a cluster with {} ms slots…",
            self.slot_ms
        );
        if self.consensus == super::drill::DrillConsensus::Alpenglow {
            let mut lab = Lab::start_with_consensus(
                &bin,
                self.dir.clone(),
                Lab::options(self.slot_ms),
                self.consensus.genesis(),
            )
            .await?;
            let clean =
                super::bench_failover_votor::run(&mut lab, self.failovers, self.slot_ms).await?;
            return Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        let mut lab = Lab::start(&bin, self.slot_ms, self.dir.clone()).await?;
        let vote_account = lab.cluster.keys.vote_account.pubkey().to_string();
        let banks = Arc::new(Mutex::new(Vec::<BankSeen>::new()));
        let ws_url = lab.cluster.url.replacen("http://", "ws://", 1);
        let mut subscription = Subscription::open(&ws_url, BANK_SUBSCRIBE)
            .await
            .map_err(|e| anyhow!("cannot subscribe to the cluster's banks: {e}"))?;
        let watcher = {
            let banks = Arc::clone(&banks);
            let vote_account = vote_account.clone();
            tokio::spawn(async move {
                while let Ok(bank) = subscription.next::<BankNotification>().await {
                    let received_us = now_us();
                    let last_vote = bank
                        .vote_accounts
                        .iter()
                        .find(|v| v.vote_pubkey.to_string() == vote_account)
                        .and_then(|v| v.last_vote);
                    lock(&banks).push(BankSeen {
                        slot: bank.slot,
                        last_vote,
                        received_us,
                    });
                }
            })
        };

        let result = self.failovers(&lab, &banks, wait).await;
        watcher.abort();
        let rounds = match result {
            Ok(rounds) => rounds,
            Err(err) => {
                let hint = if self.dir.is_none() {
                    " (give --dir to keep the validator logs)"
                } else {
                    ""
                };
                return Err(err.context(format!("the benchmark stopped{hint}")));
            }
        };
        lab.cluster.stop().await;
        let report = towerlock_audit::check_file(&lab.cluster.audit_path())
            .context("cannot audit the trail")?;
        self.print(&rounds, &report);
        Ok(if report.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    async fn failovers(
        &self,
        lab: &Lab,
        banks: &Mutex<Vec<BankSeen>>,
        wait: Duration,
    ) -> anyhow::Result<Vec<Round>> {
        let identity = lab.cluster.identity_file();
        let identity = identity
            .to_str()
            .context("the identity path is not UTF-8")?
            .to_string();
        eprintln!("starting the primary (staked identity)…");
        let (process, instance) = lab
            .start_validator("node-0", &lab.primary_args(), Role::Voting, wait)
            .await?;
        let mut holder = Node { process, instance };
        lab.cluster
            .wait_for_vote(&holder.instance, 0, wait)
            .await
            .with_context(|| format!("the primary never voted\n{}", tail(&holder.process)))?;
        eprintln!("starting the secondary (hot spare)…");
        let (process, instance) = lab.start_hot_spare("node-1", wait).await?;
        let mut spare = Node { process, instance };

        let mut rounds = Vec::new();
        for round in 0..self.failovers as usize {
            let measured = self
                .round(lab, banks, &identity, round, &mut holder, &mut spare, wait)
                .await?;
            eprintln!(
                "failover {}/{}: {} → {}: set-identity {:.0} ms, first vote sent {:.0} ms, \
                 landed {:.0} ms, missed {}",
                round + 1,
                self.failovers,
                measured.from,
                measured.to,
                ms(measured.set_identity),
                measured.first_vote_sent_ms,
                measured.first_vote_landed_ms,
                measured.missed
            );
            rounds.push(measured);
            if round + 1 < self.failovers as usize {
                // The old holder's machine comes back as the hot spare.
                let name = format!("node-{}", round + 2);
                let (process, instance) = lab.start_hot_spare(&name, wait).await?;
                holder = std::mem::replace(&mut spare, Node { process, instance });
            }
        }
        Ok(rounds)
    }

    /// Sleeps until a different point of the slot each round (a low-
    /// discrepancy spread over the slot), measured from the last bank: the
    /// time to the first vote depends on when the next bank comes. Returns
    /// the phase, in ms after the last bank.
    async fn reach_phase(&self, banks: &Mutex<Vec<BankSeen>>, round: usize) -> f64 {
        let offset_us = ((0.5 + round as f64 * 0.618_033_988_749_895) % 1.0
            * self.slot_ms as f64
            * 1000.0) as u64;
        let last_bank_us = last_bank(banks).map_or_else(now_us, |b| b.received_us);
        let mut target_us = last_bank_us + offset_us;
        while target_us < now_us() {
            target_us += self.slot_ms * 1000;
        }
        tokio::time::sleep(Duration::from_micros(target_us.saturating_sub(now_us()))).await;
        let start_us = now_us();
        last_bank(banks).map_or(0.0, |b| {
            start_us.saturating_sub(b.received_us) as f64 / 1000.0
        })
    }

    /// One failover from `holder` to `spare`, measured.
    #[allow(clippy::too_many_arguments)]
    async fn round(
        &self,
        lab: &Lab,
        banks: &Mutex<Vec<BankSeen>>,
        identity: &str,
        round: usize,
        holder: &mut Node,
        spare: &mut Node,
        wait: Duration,
    ) -> anyhow::Result<Round> {
        // Steady state: the holder votes, the spare replays.
        lab.cluster
            .wait_for_more_votes(&holder.instance, 3, wait)
            .await
            .with_context(|| tail(&holder.process))?;
        let phase_ms = self.reach_phase(banks, round).await;
        let start_us = now_us();
        let started = Instant::now();
        let out = spare.process.admin(&["set-identity", identity]).await?;
        let set_identity = started.elapsed();
        if !out.status.success() {
            bail!(
                "set-identity on {} failed: {}",
                spare.process.name,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let votes = first_votes(lab, spare, start_us, wait).await?;
        let landed = first_landed(lab, banks, start_us, votes.new_first, wait).await?;
        expect_exit(&mut holder.process, wait).await?;
        let old = OldHolder::of(lab, &holder.instance, votes.loaded)?;
        let start_ms = start_us as f64 / 1000.0;
        Ok(Round {
            from: holder.process.name.clone(),
            to: spare.process.name.clone(),
            phase_ms,
            set_identity,
            first_vote_sent_ms: votes.first_sent_ms - start_ms,
            vote_after_bank_ms: votes.after_bank_ms,
            first_vote_landed_ms: landed.ms - start_ms,
            loaded: votes.loaded,
            old_last: old.last,
            new_first: votes.new_first,
            landed_in: landed.slot,
            missed: lab.cluster.banks_between(old.last, votes.new_first)?,
            old_votes_past_loaded: old.past_loaded,
        })
    }

    fn print(&self, rounds: &[Round], report: &towerlock_audit::Report) {
        println!(
            "{} manual failovers, {} ms slots, etcd with mutual TLS, towerlock-validator processes",
            rounds.len(),
            self.slot_ms
        );
        println!();
        print_rounds(rounds);
        let figures = Figures::of(rounds);
        figures.print_table();
        self.print_targets(&figures, rounds);
        println!();
        print!("audit: {report}");
        println!(
            "audit: {}",
            if report.is_clean() {
                "clean"
            } else {
                "VIOLATIONS (exit status 1)"
            }
        );
        self.print_line(&figures, rounds.len(), report.is_clean());
    }

    fn print_targets(&self, figures: &Figures, rounds: &[Round]) {
        let slot = self.slot_ms as f64;
        let sent_p50 = figures.sent.quantile_ms(0.5);
        let sent_max = figures.sent.quantile_ms(1.0);
        println!();
        println!(
            "target first vote sent <= 1 slot ({} ms): p50 {:.2} slots {}, max {:.2} slots {}",
            self.slot_ms,
            sent_p50 / slot,
            met(sent_p50 <= slot),
            sent_max / slot,
            met(sent_max <= slot)
        );
        if sent_max > slot {
            println!(
                "  (a call just before a bank lets the old holder vote on that bank; the new \
                 holder's first vote is then for the next one, about a slot later)"
            );
        }
        println!(
            "target missed votes <= 1 per failover: max {} {}",
            figures.missed_max,
            met(figures.missed_max <= 1)
        );
        let past: usize = rounds.iter().map(|r| r.old_votes_past_loaded).sum();
        if past > 0 {
            println!(
                "warning: {past} accepted votes of an old holder past the tower the new holder loaded"
            );
        }
    }

    /// The one machine-readable line.
    fn print_line(&self, figures: &Figures, failovers: usize, clean: bool) {
        let slot = self.slot_ms as f64;
        let (sent_p50, sent_max) = (figures.sent.quantile_ms(0.5), figures.sent.quantile_ms(1.0));
        println!(
            "set_identity_p50_ms={:.1} set_identity_max_ms={:.1} \
             first_vote_sent_p50_ms={:.1} first_vote_sent_max_ms={:.1} \
             first_vote_sent_p50_slots={:.2} first_vote_sent_max_slots={:.2} \
             first_vote_after_bank_p50_ms={:.1} first_vote_after_bank_max_ms={:.1} \
             first_vote_landed_p50_ms={:.1} first_vote_landed_max_ms={:.1} \
             missed_votes_p50={} missed_votes_max={} \
             failovers={failovers} slot_ms={} audit_clean={clean}",
            figures.set_identity.quantile_ms(0.5),
            figures.set_identity.quantile_ms(1.0),
            sent_p50,
            sent_max,
            sent_p50 / slot,
            sent_max / slot,
            figures.after_bank.quantile_ms(0.5),
            figures.after_bank.quantile_ms(1.0),
            figures.landed.quantile_ms(0.5),
            figures.landed.quantile_ms(1.0),
            figures.missed_p50,
            figures.missed_max,
            self.slot_ms,
        );
    }
}

/// A node the benchmark started, with its instance id.
struct Node {
    process: ValidatorProcess,
    instance: String,
}

/// The new holder's first votes after the call.
struct FirstVotes {
    /// The last vote of the tower it loaded.
    loaded: Option<u64>,
    /// When the cluster received its first vote (accepted or not).
    first_sent_ms: f64,
    /// That vote's bank froze → the cluster received it.
    after_bank_ms: f64,
    /// The slot of its first accepted vote.
    new_first: u64,
}

async fn first_votes(
    lab: &Lab,
    spare: &mut Node,
    start_us: u64,
    wait: Duration,
) -> anyhow::Result<FirstVotes> {
    let before_ms = start_us / 1000;
    let loaded = spare.process.loaded_last_vote(wait).await?;
    // The first vote of the new holder the cluster received (the spare
    // never voted before; accepted or not).
    let what = format!("a vote of {} after set-identity", spare.process.name);
    let first_sent = lab
        .cluster
        .trail
        .wait_for(wait, &what, |e| {
            as_vote(e)
                .filter(|v| v.instance == spare.instance && v.ts_ms >= before_ms)
                .cloned()
        })
        .await?;
    let first_accepted = lab
        .cluster
        .wait_for_vote(&spare.instance, before_ms.saturating_sub(1), wait)
        .await?;
    // The node's own share: its first vote after the bank it is for.
    let first_sent_slot = voted_slot(&first_sent);
    let after_bank_ms = lab.cluster.trail.with_events(|events| {
        events
            .iter()
            .find_map(|e| match e {
                Event::Bank(b) if b.slot == first_sent_slot => {
                    Some(first_sent.ts_ms as f64 - b.ts_ms as f64)
                }
                _ => None,
            })
            .unwrap_or(f64::NAN)
    })?;
    Ok(FirstVotes {
        loaded,
        first_sent_ms: first_sent.ts_ms as f64,
        after_bank_ms,
        new_first: voted_slot(&first_accepted),
    })
}

/// The first bank whose vote-account state holds the new holder's vote.
struct Landed {
    slot: u64,
    /// When that bank froze (the trail's bank line).
    ms: f64,
}

async fn first_landed(
    lab: &Lab,
    banks: &Mutex<Vec<BankSeen>>,
    start_us: u64,
    new_first: u64,
    wait: Duration,
) -> anyhow::Result<Landed> {
    let what = format!("the vote for slot {new_first} to land");
    let landed = wait_until(wait, &what, async || {
        Ok(lock(banks)
            .iter()
            .find(|b| b.received_us >= start_us && b.last_vote.is_some_and(|v| v >= new_first))
            .copied())
    })
    .await?;
    let ms = lab.cluster.trail.with_events(|events| {
        events
            .iter()
            .find_map(|e| match e {
                Event::Bank(b) if b.slot == landed.slot => Some(b.ts_ms as f64),
                _ => None,
            })
            .unwrap_or(landed.received_us as f64 / 1000.0)
    })?;
    Ok(Landed {
        slot: landed.slot,
        ms,
    })
}

/// The old holder must stop: exit status 1.
async fn expect_exit(holder: &mut ValidatorProcess, wait: Duration) -> anyhow::Result<()> {
    let status = holder
        .wait_exit(wait)
        .await
        .with_context(|| format!("{} did not exit after the failover", holder.name))?;
    if status.code() != Some(1) {
        bail!(
            "{} exited with {status} instead of 1\n{}",
            holder.name,
            tail(holder)
        );
    }
    Ok(())
}

/// What the old holder's accepted votes say.
struct OldHolder {
    /// Its last accepted vote's slot.
    last: u64,
    /// Its accepted votes past the tower the new holder loaded.
    past_loaded: usize,
}

impl OldHolder {
    fn of(lab: &Lab, instance: &str, loaded: Option<u64>) -> anyhow::Result<Self> {
        let old = lab.cluster.accepted_votes(instance)?;
        let last = old
            .iter()
            .map(voted_slot)
            .max()
            .context("the old holder has no accepted vote")?;
        let past_loaded = old
            .iter()
            .filter(|v| loaded.is_none_or(|l| voted_slot(v) > l))
            .count();
        Ok(Self { last, past_loaded })
    }
}

fn print_rounds(rounds: &[Round]) {
    println!(
        "{:>3} {:<16} {:>6} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6}",
        "#",
        "from → to",
        "phase",
        "set-id",
        "sent",
        "vote-bk",
        "landed",
        "loaded",
        "old end",
        "new 1st",
        "land@",
        "missed"
    );
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "{:>3} {:<16} {:>6.0} {:>7.1} {:>7.1} {:>8.1} {:>7.1} {:>7} {:>7} {:>7} {:>7} {:>6}",
            i + 1,
            format!("{} → {}", r.from, r.to),
            r.phase_ms,
            ms(r.set_identity),
            r.first_vote_sent_ms,
            r.vote_after_bank_ms,
            r.first_vote_landed_ms,
            r.loaded.map_or("-".to_string(), |l| l.to_string()),
            r.old_last,
            r.new_first,
            r.landed_in,
            r.missed
        );
    }
    println!(
        "(times in ms; phase, set-id, sent, landed from the call's start; slots for the rest)"
    );
    println!();
}

/// The rounds' samples and missed-vote figures.
struct Figures {
    set_identity: Samples,
    sent: Samples,
    after_bank: Samples,
    landed: Samples,
    missed_p50: usize,
    missed_max: usize,
    missed_all: Vec<usize>,
}

impl Figures {
    fn of(rounds: &[Round]) -> Self {
        let mut figures = Self {
            set_identity: Samples::default(),
            sent: Samples::default(),
            after_bank: Samples::default(),
            landed: Samples::default(),
            missed_p50: 0,
            missed_max: 0,
            missed_all: rounds.iter().map(|r| r.missed).collect(),
        };
        for r in rounds {
            figures.set_identity.push(r.set_identity);
            figures.sent.push(from_ms(r.first_vote_sent_ms));
            if r.vote_after_bank_ms.is_finite() {
                figures.after_bank.push(from_ms(r.vote_after_bank_ms));
            }
            figures.landed.push(from_ms(r.first_vote_landed_ms));
        }
        let mut missed = figures.missed_all.clone();
        missed.sort_unstable();
        figures.missed_p50 = missed
            .get(missed.len().div_ceil(2).max(1) - 1)
            .copied()
            .unwrap_or(0);
        figures.missed_max = missed.last().copied().unwrap_or(0);
        figures
    }

    fn print_table(&self) {
        print_header();
        print_row("set-identity returns", &self.set_identity);
        print_row("first vote sent", &self.sent);
        print_row("  of which after its bank", &self.after_bank);
        print_row("first vote landed", &self.landed);
        println!(
            "votes missed per failover: p50 {}, max {} (all: {:?})",
            self.missed_p50, self.missed_max, self.missed_all
        );
        println!();
        for line in HOW_MEASURED {
            println!("{line}");
        }
    }
}

const HOW_MEASURED: [&str; 10] = [
    "how it is measured:",
    "  phase    when in the slot the call started: ms after the last bank (spread over the slot)",
    "  set-id   `towerlock-validator --ledger L set-identity KEYPAIR` as a process, start to exit",
    "  sent     call start -> the cluster received the new holder's first vote (the audit",
    "           trail's receive time; loopback, within a millisecond of the send)",
    "  vote-bk  the bank that vote is for froze -> the cluster received the vote",
    "  landed   call start -> the first bank whose vote account shows a last vote at or past",
    "           that vote's slot (seen by a bank subscription; time from the trail's bank line)",
    "  missed   bank slots strictly between the old holder's last accepted vote (old end) and",
    "           the new holder's first accepted vote (new 1st), on every fork",
];

fn lock(banks: &Mutex<Vec<BankSeen>>) -> std::sync::MutexGuard<'_, Vec<BankSeen>> {
    banks.lock().unwrap_or_else(|p| p.into_inner())
}

fn last_bank(banks: &Mutex<Vec<BankSeen>>) -> Option<BankSeen> {
    lock(banks).last().copied()
}

fn tail(node: &ValidatorProcess) -> String {
    format!("--- {} log tail ---\n{}", node.name, node.log_tail(30))
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn from_ms(ms: f64) -> Duration {
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use towerlock_lab::banks_between;

    #[test]
    fn missed_counts_banks_strictly_between() {
        let bank = |slot| {
            Event::Bank(towerlock_audit::event::BankEvent {
                slot,
                parent: slot.saturating_sub(1),
                hash: String::new(),
                leader: String::new(),
                ts_ms: 0,
            })
        };
        let events: Vec<Event> = (10..=15).map(bank).collect();
        assert_eq!(banks_between(&events, 11, 12), 0);
        assert_eq!(banks_between(&events, 11, 14), 2);
    }
}

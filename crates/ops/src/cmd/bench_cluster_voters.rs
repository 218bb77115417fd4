//! The vote generator of `towerlock bench cluster`: many identities, each
//! with a tower of its own, voting for every bank of the heaviest fork with
//! real signed TowerSync transactions sent through `sendTransaction`, as a
//! validator's vote would arrive. It runs on a thread (and a single-threaded
//! runtime) of its own, so that its CPU can be told apart from the cluster's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_cluster::api::{BankNotification, BANK_SUBSCRIBE};
use towerlock_cluster::client::{RpcClient, Subscription};
use towerlock_tower::{Recorded, Tower};
use towerlock_wire::vote::{vote_transaction, Transaction};

use super::bench::Samples;

/// The instance name the generator's votes carry in the audit trail.
pub const GENERATOR_INSTANCE: &str = "bench-voters";

/// Concurrent senders (HTTP connections), a few as a validator's TPU
/// client would use for a burst.
const LANES: usize = 8;

/// Banks watched after the last vote before reporting: a vote not in the
/// bank this many slots after its own is counted as not landed.
const DRAIN_SLOTS: u64 = 12;

/// One identity the generator votes for.
pub struct Voter {
    pub identity: Keypair,
    pub vote_account: Pubkey,
}

/// What the generator measured.
#[derive(Debug, Default)]
pub struct VoterReport {
    /// Round trip of each `sendTransaction` (the cluster decodes, verifies
    /// and runs the vote program before it answers).
    pub send: Samples,
    /// Transactions sent and accepted.
    pub sent: u64,
    pub accepted: u64,
    /// For each landed vote: slots from its slot to the first bank holding it.
    pub landed_after_slots: Vec<u64>,
    /// The generator thread's own CPU time, in seconds.
    pub cpu_seconds: f64,
}

/// The generator, running on its own thread.
pub struct Generator {
    active: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<VoterReport>>>,
    tid: u64,
}

impl Generator {
    /// Subscribes to the cluster's banks and starts voting (inactive until
    /// [`Generator::set_active`]).
    pub fn start(rpc_url: &str, voters: Vec<Voter>) -> anyhow::Result<Self> {
        let active = Arc::new(AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the vote generator's runtime")?;
        let url = rpc_url.to_string();
        let flag = active.clone();
        let thread = std::thread::Builder::new()
            .name("bench-voters".into())
            .spawn(move || {
                let _ = tid_tx.send(thread_id());
                runtime.block_on(run(url, voters, flag, stopped))
            })
            .context("cannot start the vote generator's thread")?;
        let tid = tid_rx
            .recv()
            .map_err(|_| anyhow!("the vote generator's thread ended at once"))??;
        Ok(Self {
            active,
            stop: Some(stop),
            thread: Some(thread),
            tid,
        })
    }

    /// Votes (or stops voting) from the next bank on.
    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::SeqCst);
    }

    /// The generator thread's CPU time so far, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        super::bench_cluster::cpu_seconds(&format!("/proc/self/task/{}/stat", self.tid))
    }

    /// Stops voting, lets the last votes land (a few banks), and joins
    /// the thread off the runtime's workers.
    pub async fn finish(mut self) -> anyhow::Result<VoterReport> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take().expect("joined once");
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("the vote generator's join failed")?
            .map_err(|_| anyhow!("the vote generator panicked"))?
    }
}

/// This thread's id (`/proc/thread-self` is `<pid>/task/<tid>`).
fn thread_id() -> anyhow::Result<u64> {
    let link = std::fs::read_link("/proc/thread-self").context("cannot read /proc/thread-self")?;
    link.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.parse().ok())
        .context("unexpected /proc/thread-self")
}

struct Voting {
    voter: Voter,
    tower: Tower,
    /// Voted slots not yet seen landed, oldest first.
    pending: std::collections::VecDeque<u64>,
}

#[derive(Default)]
struct Sends {
    send: Samples,
    sent: u64,
    accepted: u64,
}

async fn run(
    url: String,
    voters: Vec<Voter>,
    active: Arc<AtomicBool>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) -> anyhow::Result<VoterReport> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut banks = Subscription::open(&ws_url, BANK_SUBSCRIBE)
        .await
        .map_err(|e| anyhow!("cannot subscribe to the cluster's banks: {e}"))?;
    let client = Arc::new(RpcClient::new(url));
    let mut voting: Vec<Voting> = voters
        .into_iter()
        .map(|voter| Voting {
            tower: Tower::new(voter.identity.pubkey()),
            voter,
            pending: Default::default(),
        })
        .collect();
    let index: HashMap<Pubkey, usize> = voting
        .iter()
        .enumerate()
        .map(|(i, v)| (v.voter.vote_account, i))
        .collect();
    let sends = Arc::new(Mutex::new(Sends::default()));
    let mut report = VoterReport::default();
    let mut lanes = tokio::task::JoinSet::new();
    // Once told to stop, the generator stops voting and watches a few more
    // banks, so that the last votes can land before it reports.
    let mut drain_until: Option<u64> = None;
    let mut last_voted: Option<u64> = None;
    loop {
        let bank = tokio::select! {
            bank = banks.next::<BankNotification>() => {
                bank.map_err(|e| anyhow!("the cluster's bank stream ended: {e}"))?
            }
            _ = &mut stopped, if drain_until.is_none() => {
                drain_until = Some(last_voted.unwrap_or(0) + DRAIN_SLOTS);
                continue;
            }
        };
        note_landed(&bank, &index, &mut voting, &mut report.landed_after_slots);
        if drain_until.is_some_and(|until| bank.slot >= until) {
            break;
        }
        // Vote for the head of the heaviest fork only: the towers stay on
        // one fork, as a validator's would.
        if drain_until.is_some() || !active.load(Ordering::SeqCst) || bank.slot != bank.tip {
            continue;
        }
        let txs = vote_on(&bank, &mut voting);
        last_voted = Some(bank.slot);
        let per_lane = txs.len().div_ceil(LANES).max(1);
        let mut txs = txs.into_iter();
        loop {
            let lane: Vec<_> = txs.by_ref().take(per_lane).collect();
            if lane.is_empty() {
                break;
            }
            lanes.spawn(send_lane(lane, client.clone(), sends.clone()));
        }
        while lanes.try_join_next().is_some() {}
    }
    // Sends still under way finish (bounded: one slot's votes).
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while lanes.join_next().await.is_some() {}
    })
    .await;
    let sends = std::mem::take(&mut *sends.lock().expect("sends lock"));
    report.send = sends.send;
    report.sent = sends.sent;
    report.accepted = sends.accepted;
    report.cpu_seconds = super::bench_cluster::cpu_seconds("/proc/thread-self/stat")?;
    Ok(report)
}

/// Moves the votes this bank holds from pending to landed.
fn note_landed(
    bank: &BankNotification,
    index: &HashMap<Pubkey, usize>,
    voting: &mut [Voting],
    landed_after_slots: &mut Vec<u64>,
) {
    for state in &bank.vote_accounts {
        let (Some(&i), Some(landed)) = (index.get(&state.vote_pubkey), state.last_vote) else {
            continue;
        };
        let pending = &mut voting[i].pending;
        while pending.front().is_some_and(|slot| *slot <= landed) {
            let slot = pending.pop_front().expect("checked");
            landed_after_slots.push(bank.slot - slot);
        }
    }
}

/// Every identity's vote for `bank`: recorded in its tower, signed.
fn vote_on(bank: &BankNotification, voting: &mut [Voting]) -> Vec<Transaction> {
    let now = (towerlock_lab::now_ms() / 1000) as i64;
    let mut txs = Vec::with_capacity(voting.len());
    for v in voting {
        let Recorded::Vote(recorded) =
            v.tower
                .record_vote(bank.slot, bank.hash, bank.block_id, now)
        else {
            continue;
        };
        v.pending.push_back(bank.slot);
        txs.push(vote_transaction(
            &v.voter.identity,
            &v.voter.identity,
            &v.voter.vote_account,
            recorded.tower_sync,
            bank.blockhash,
        ));
    }
    txs
}

/// Sends `lane`'s transactions one after another on one connection.
async fn send_lane(lane: Vec<Transaction>, client: Arc<RpcClient>, sends: Arc<Mutex<Sends>>) {
    for tx in lane {
        let started = Instant::now();
        let answer = client
            .send_transaction(&tx, Some(GENERATOR_INSTANCE), false)
            .await;
        let mut sends = sends.lock().expect("sends lock");
        sends.send.push(started.elapsed());
        sends.sent += 1;
        sends.accepted += u64::from(answer.is_ok());
    }
}

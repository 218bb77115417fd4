//! The vote driver: the one place where the tower, the storage and the
//! network meet. It replays the cluster's banks, votes (storing the tower
//! first), produces blocks in its leader slots (fenced first), watches gossip
//! for a newer instance of its identity, and carries out admin commands.

use std::{
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rand::RngCore;
use serde_json::json;
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use tokio::sync::{mpsc, oneshot, watch};
use towerlock_storage::{FenceToken, InstanceRecord, StorageError, TowerStorage};
use towerlock_tower::{Lockout, Recorded, SavedTower, Slot, Tower};
use towerlock_wire::{
    api::{
        BankNotification, ContactAddresses, ContactInfo, SignedContactInfo, SubmitBlock,
        BANK_SUBSCRIBE, GOSSIP_SUBSCRIBE,
    },
    client::{ClientError, RpcClient, Subscription},
};

use super::{
    decide::{choose_vote, is_newer_instance_of, may_vote, HotSpareReason, VoteChoice},
    forks::ForkView,
    schedule::LeaderSlots,
    vote::PendingVote,
};
use crate::{
    admin::{AdminError, ContactInfoView, NodeStatus, Role},
    metrics::Metrics,
};

/// What to do when the tower cannot be stored because storage did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnavailablePolicy {
    /// Exit with status 1 (agave's behaviour, the seed's).
    Exit,
    /// Stay up without voting; vote again once a store succeeds.
    SkipVote,
}

/// Everything the node needs, resolved and loaded.
pub struct NodeConfig {
    pub identity: Keypair,
    pub vote_account: Pubkey,
    pub authorized_voters: Vec<Keypair>,
    pub check_vote_account: bool,
    pub storage: Arc<dyn TowerStorage>,
    /// The cluster's JSON-RPC URL (`http://host:port`).
    pub cluster_url: String,
    pub unavailable: UnavailablePolicy,
    /// How close to the cluster's slot the node must be to take over.
    pub catchup_slots: u64,
    /// The node's own RPC address, advertised in its contact info.
    pub rpc_addr: Option<std::net::SocketAddr>,
}

/// Why the node stopped (other than an orderly exit).
#[derive(Debug, thiserror::Error)]
pub enum NodeExit {
    /// Another instance took the fence (agave's message).
    #[error("Lost etcd instance lock for {identity}: taken over by {by}")]
    LockLost { identity: Pubkey, by: String },
    /// Another instance published this identity with a newer outset.
    #[error("duplicate running instances of the same validator node: {identity}")]
    DuplicateInstance { identity: Pubkey },
    /// A store failed and the policy is to exit (agave's message).
    #[error("Unable to save tower to storage: {reason}")]
    StorageUnavailable { reason: String },
    /// A condition the node cannot run with (a refused start-up check, a
    /// tower that cannot be used); the message says what to do.
    #[error("{0}")]
    Fatal(String),
    /// The cluster could not be reached or used.
    #[error("cannot use the cluster: {0}")]
    Cluster(String),
}

/// A request from the admin RPC, answered by the driver between events.
pub enum Command {
    SetIdentity {
        keypair: Keypair,
        require_tower: bool,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    AddAuthorizedVoter {
        keypair: Keypair,
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    RemoveAllAuthorizedVoters {
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
    Exit {
        reply: oneshot::Sender<Result<(), AdminError>>,
    },
}

/// What the driver publishes for the admin RPC and the node's RPC.
#[derive(Debug, Clone)]
pub struct Published {
    pub status: NodeStatus,
    pub contact: Option<ContactInfoView>,
    pub caught_up: bool,
}

enum Activity {
    /// Replaying, not yet within `catchup_slots` of the cluster.
    CatchingUp,
    /// Replaying without voting.
    HotSpare(HotSpareReason),
    /// Holding the fence with this tower.
    Voting { token: FenceToken, tower: Tower },
    /// Holding the fence, but the last store did not get an answer.
    SkipVote { token: FenceToken, tower: Tower },
}

struct Node {
    identity: Arc<Keypair>,
    vote_account: Pubkey,
    voters: Vec<Arc<Keypair>>,
    storage: Arc<dyn TowerStorage>,
    rpc: RpcClient,
    unavailable: UnavailablePolicy,
    catchup_slots: u64,
    rpc_addr: Option<std::net::SocketAddr>,
    instance: String,
    outset: u64,
    /// The newest outset seen in gossip per identity: a new outset must be
    /// newer even if this host's clock is behind the other's.
    outsets_seen: std::collections::HashMap<String, u64>,
    start_slot: Slot,
    forks: ForkView,
    activity: Activity,
    schedule: LeaderSlots,
    produced: Option<Slot>,
    last_vote_slot: Option<Slot>,
    loaded_last_vote: Option<Slot>,
    last_store: Option<Duration>,
    produced_count: u64,
    skipped_count: u64,
    metrics: Arc<Metrics>,
    published: watch::Sender<Published>,
}

/// Deadline of each request to the cluster from the driver: a cluster that
/// hangs must not hang the node.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(2);
/// Silence on the bank stream after which it is reopened.
const BANK_SILENCE: Duration = Duration::from_secs(10);
/// How long the node tries to reopen a dropped subscription before exiting.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CLUSTER_DEADLINE, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(format!("{what}: {err}")),
        Err(_) => Err(format!("{what}: no answer within {CLUSTER_DEADLINE:?}")),
    }
}

/// Reopens a subscription after the cluster dropped it (it replays what is
/// live, which the fork view absorbs).
async fn resubscribe(ws_url: &str, method: &str, why: String) -> Result<Subscription, NodeExit> {
    tracing::warn!(%why, method, "subscription lost: reconnecting");
    let until = Instant::now() + RECONNECT_FOR;
    loop {
        match bounded(method, Subscription::open(ws_url, method)).await {
            Ok(subscription) => {
                tracing::info!(method, "subscription restored");
                return Ok(subscription);
            }
            Err(err) if Instant::now() >= until => {
                return Err(NodeExit::Cluster(format!(
                    "{why}; reconnecting for {RECONNECT_FOR:?} failed: {err}"
                )))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs the node until an admin `exit`, `shutdown`, or a reason to stop.
pub async fn run(
    config: NodeConfig,
    mut commands: mpsc::Receiver<Command>,
    published: watch::Sender<Published>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeExit> {
    let rpc = RpcClient::new(config.cluster_url.clone());
    let identity = config.identity.pubkey();
    if config.check_vote_account {
        check_vote_account(&rpc, &identity, &config.vote_account).await?;
    }
    let start_slot = bounded(
        "getSlot",
        rpc.call("getSlot", json!([{ "commitment": "processed" }])),
    )
    .await
    .ok()
    .and_then(|v| v.as_u64())
    .ok_or_else(|| {
        NodeExit::Cluster(format!(
            "no answer to getSlot from {} (is the cluster running, and is --entrypoint its RPC address?)",
            config.cluster_url
        ))
    })?;
    let ws_url = config.cluster_url.replacen("http", "ws", 1);
    let mut banks = bounded(
        "bank subscription",
        Subscription::open(&ws_url, BANK_SUBSCRIBE),
    )
    .await
    .map_err(|e| NodeExit::Cluster(format!("{e} at {ws_url}")))?;
    let mut gossip = bounded(
        "gossip subscription",
        Subscription::open(&ws_url, GOSSIP_SUBSCRIBE),
    )
    .await
    .map_err(|e| NodeExit::Cluster(format!("{e} at {ws_url}")))?;

    let mut node = Node {
        identity: Arc::new(config.identity),
        vote_account: config.vote_account,
        voters: config.authorized_voters.into_iter().map(Arc::new).collect(),
        instance: config.storage.instance().id.to_string(),
        storage: config.storage,
        rpc,
        unavailable: config.unavailable,
        catchup_slots: config.catchup_slots,
        rpc_addr: config.rpc_addr,
        outset: now_micros(),
        outsets_seen: std::collections::HashMap::new(),
        start_slot,
        forks: ForkView::default(),
        activity: Activity::CatchingUp,
        schedule: LeaderSlots::default(),
        produced: None,
        last_vote_slot: None,
        loaded_last_vote: None,
        last_store: None,
        produced_count: 0,
        skipped_count: 0,
        metrics,
        published,
    };
    tracing::info!(identity = %identity, instance = %node.instance, start_slot, "replaying");
    node.publish_status();

    tokio::pin!(shutdown);
    let mut last_bank = Instant::now();
    loop {
        // Biased: queued banks before queued gossip, so a node thawed after a
        // takeover meets the fence on its next vote before anything else.
        tokio::select! {
            biased;
            bank = banks.next::<BankNotification>() => match bank {
                Ok(bank) => {
                    last_bank = Instant::now();
                    node.on_bank(bank).await?
                }
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable bank notification")
                }
                Err(e) => {
                    banks = resubscribe(&ws_url, BANK_SUBSCRIBE, format!("bank stream: {e}")).await?
                }
            },
            contact = gossip.next::<SignedContactInfo>() => match contact {
                Ok(contact) => node.on_contact(&contact)?,
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable contact info")
                }
                Err(e) => {
                    gossip =
                        resubscribe(&ws_url, GOSSIP_SUBSCRIBE, format!("gossip stream: {e}")).await?
                }
            },
            // A connection can go silent without closing: banks come every
            // slot, so a long silence means a dead stream.
            () = tokio::time::sleep_until((last_bank + BANK_SILENCE).into()) => {
                banks = resubscribe(
                    &ws_url,
                    BANK_SUBSCRIBE,
                    format!("no bank for {BANK_SILENCE:?}"),
                )
                .await?;
                last_bank = Instant::now();
            }
            command = commands.recv() => match command {
                Some(Command::Exit { reply }) => {
                    let _ = reply.send(Ok(()));
                    tracing::info!("exit requested over the admin RPC");
                    return Ok(());
                }
                Some(command) => node.on_command(command).await,
                None => return Ok(()),
            },
            () = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
        }
        node.publish_status();
    }
}

async fn check_vote_account(
    rpc: &RpcClient,
    identity: &Pubkey,
    vote_account: &Pubkey,
) -> Result<(), NodeExit> {
    let accounts = bounded(
        "getVoteAccounts",
        rpc.call(
            "getVoteAccounts",
            json!([{ "votePubkey": vote_account.to_string(), "keepUnstakedDelinquents": true }]),
        ),
    )
    .await
    .map_err(NodeExit::Cluster)?;
    let found = ["current", "delinquent"]
        .iter()
        .filter_map(|k| accounts[k].as_array())
        .flatten()
        .find(|a| a["votePubkey"] == vote_account.to_string());
    match found {
        None => Err(NodeExit::Fatal(format!(
            "vote account {vote_account} does not exist in the cluster"
        ))),
        Some(account) if account["nodePubkey"] != identity.to_string() => {
            Err(NodeExit::Fatal(format!(
                "vote account {vote_account} belongs to node {}, not to this identity {identity}; a secondary needs --no-check-vote-account",
                account["nodePubkey"].as_str().unwrap_or("?")
            )))
        }
        Some(_) => Ok(()),
    }
}

impl Node {
    fn pubkey(&self) -> Pubkey {
        self.identity.pubkey()
    }

    fn voter_pubkeys(&self) -> Vec<Pubkey> {
        self.voters.iter().map(|k| k.pubkey()).collect()
    }

    fn voter(&self, pubkey: &Pubkey) -> Option<Arc<Keypair>> {
        self.voters.iter().find(|k| k.pubkey() == *pubkey).cloned()
    }

    async fn on_bank(&mut self, notification: BankNotification) -> Result<(), NodeExit> {
        self.forks.insert(&notification);
        self.metrics.replayed_slot.store(self.forks.newest, Relaxed);
        // Whether this node may vote, and as which voter, as of this bank:
        // decided once for the role and the vote below.
        let may_vote = self.check_may_vote();
        if matches!(self.activity, Activity::CatchingUp) {
            // The cluster's tip as of this notification is where it is now;
            // take over only once this close to it (and to where it was
            // when we subscribed).
            let present = notification.tip.max(self.start_slot.saturating_sub(1));
            if self.forks.newest + self.catchup_slots < present {
                return Ok(());
            }
            tracing::info!(slot = self.forks.newest, "caught up with the cluster");
            self.activate(may_vote.clone()).await?;
        } else {
            self.reconsider_role(may_vote.clone()).await?;
        }
        let Ok(voter) = may_vote else {
            return Ok(());
        };
        if !self.is_fenced() {
            return Ok(());
        }
        // Produce only for the slot now in progress: after the newest bank,
        // at the head of the cluster. Replayed banks are history.
        let live = notification.slot == self.forks.newest && notification.slot >= notification.tip;
        // The vote first: it must not wait for block production.
        self.vote(&voter).await?;
        if live && self.forks.get(notification.slot + 1).is_none() {
            self.produce_block(notification.slot + 1).await?;
        }
        Ok(())
    }

    fn is_fenced(&self) -> bool {
        matches!(
            self.activity,
            Activity::Voting { .. } | Activity::SkipVote { .. }
        )
    }

    /// Decides the role at the first bank after catching up, and takes the
    /// fence when the node may vote.
    async fn activate(&mut self, may_vote: Result<Pubkey, HotSpareReason>) -> Result<(), NodeExit> {
        self.outset = self.next_outset(&self.pubkey());
        match may_vote {
            Ok(_) => match self.take_over(self.pubkey(), false).await {
                Ok((token, tower, last_leader_slot)) => {
                    // Never produce a slot an earlier holder already fenced.
                    self.produced = self.produced.max(last_leader_slot);
                    self.loaded_last_vote = tower.last_voted_slot();
                    self.activity = Activity::Voting { token, tower }
                }
                Err(err @ StorageError::Unavailable { .. }) => {
                    self.handle_unavailable(err)?;
                    // Try again at the next bank.
                    self.activity = Activity::CatchingUp;
                    return Ok(());
                }
                Err(err) => {
                    let identity = self.pubkey();
                    return Err(NodeExit::Fatal(format!(
                        "cannot take over the tower of {identity}: {err}; the stored tower and the fence were left untouched \
                         (inspect it with `towerlock tower show --identity {identity}` and the etcd flags; \
                         replace it with `towerlock tower import --force`)"
                    )));
                }
            },
            Err(reason) => {
                tracing::info!(%reason, "hot spare: replaying without voting");
                self.activity = Activity::HotSpare(reason);
            }
        }
        // Caught up and in a role now: say so before the first vote leaves,
        // not only after this bank is done.
        self.publish_status();
        self.publish_contact().await;
        Ok(())
    }

    /// A hot spare becomes a voter when it may (a voter keypair was added);
    /// a voter becomes a hot spare when it may no longer.
    async fn reconsider_role(
        &mut self,
        may_vote: Result<Pubkey, HotSpareReason>,
    ) -> Result<(), NodeExit> {
        match (&self.activity, may_vote) {
            (Activity::HotSpare(_), may_vote @ Ok(_)) => self.activate(may_vote).await,
            (Activity::Voting { .. } | Activity::SkipVote { .. }, Err(reason)) => {
                tracing::warn!(%reason, "no longer voting");
                self.activity = Activity::HotSpare(reason);
                Ok(())
            }
            (Activity::HotSpare(current), Err(reason)) => {
                if *current != reason {
                    tracing::info!(%reason, "hot spare: replaying without voting");
                    self.activity = Activity::HotSpare(reason);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_may_vote(&self) -> Result<Pubkey, HotSpareReason> {
        self.may_vote_as(&self.pubkey())
    }

    fn may_vote_as(&self, identity: &Pubkey) -> Result<Pubkey, HotSpareReason> {
        let state = self
            .forks
            .newest_bank()
            .and_then(|bank| bank.vote_account(&self.vote_account));
        may_vote(identity, &self.vote_account, state, &self.voter_pubkeys())
    }

    /// Takes the fence of `identity` and loads its tower, or builds one from
    /// the vote account's landed lockouts when none is stored.
    async fn take_over(
        &self,
        identity: Pubkey,
        require_tower: bool,
    ) -> Result<(FenceToken, Tower, Option<Slot>), StorageError> {
        let taken = self.storage.takeover(&identity).await?;
        if let Some(displaced) = &taken.displaced {
            tracing::info!(%identity, %displaced, revision = taken.token.revision, "took the fence");
        } else {
            tracing::info!(%identity, revision = taken.token.revision, "took the fence");
        }
        let tower = match taken.tower {
            Some(saved) => saved.into_tower(),
            None if require_tower => {
                return Err(StorageError::NotFound { identity });
            }
            None => self.tower_from_landed_state(identity),
        };
        Ok((taken.token, tower, taken.last_leader_slot))
    }

    fn tower_from_landed_state(&self, identity: Pubkey) -> Tower {
        let state = self
            .forks
            .newest_bank()
            .and_then(|bank| bank.vote_account(&self.vote_account));
        let Some(state) = state else {
            return Tower::new(identity);
        };
        let lockouts = state
            .lockouts
            .iter()
            .map(|&(slot, conf)| Lockout::new_with_confirmation_count(slot, conf));
        let hash = state
            .lockouts
            .last()
            .and_then(|(slot, _)| self.forks.get(*slot))
            .map(|bank| bank.hash)
            .unwrap_or_default();
        tracing::info!(%identity, root = ?state.root_slot, "no saved tower: rebuilt from the vote account");
        Tower::from_landed(identity, lockouts, state.root_slot, hash)
    }

    fn handle_unavailable(&mut self, err: StorageError) -> Result<(), NodeExit> {
        self.metrics.store_failed("unavailable");
        match self.unavailable {
            UnavailablePolicy::Exit => Err(NodeExit::StorageUnavailable {
                reason: err.to_string(),
            }),
            UnavailablePolicy::SkipVote => {
                tracing::warn!(error = %err, "tower storage unavailable: not voting until a store succeeds");
                Ok(())
            }
        }
    }

    fn lock_lost(&self, identity: Pubkey, by: &InstanceRecord) -> NodeExit {
        self.metrics.store_failed("lock_lost");
        NodeExit::LockLost {
            identity,
            by: by.to_string(),
        }
    }

    async fn produce_block(&mut self, slot: Slot) -> Result<(), NodeExit> {
        let identity = self.pubkey();
        if !self.schedule.covers(&identity, slot) {
            match bounded(
                "leader schedule",
                LeaderSlots::fetch(&self.rpc, identity, slot),
            )
            .await
            {
                Ok(schedule) => self.schedule = schedule,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot read the leader schedule");
                    return Ok(());
                }
            }
        }
        if !self.schedule.is_leader(slot) || self.produced >= Some(slot) {
            return Ok(());
        }
        let token = match &self.activity {
            Activity::Voting { token, .. } | Activity::SkipVote { token, .. } => token.clone(),
            _ => return Ok(()),
        };
        // The fence first: a node that lost it must not produce either.
        match self.storage.fence_leader_slot(&token, slot).await {
            // From here on this slot is ours or lost: never fence or submit
            // it again (a retried submission could be a second block).
            Ok(_) => self.produced = Some(slot),
            Err(StorageError::LockLost { identity, by }) => {
                return Err(self.lock_lost(identity, &by))
            }
            Err(err @ StorageError::Unavailable { .. }) => {
                self.skipped_count += 1;
                self.metrics.leader_slots_skipped.fetch_add(1, Relaxed);
                return self.handle_unavailable(err);
            }
            Err(err) => return Err(NodeExit::Fatal(err.to_string())),
        }
        // Build on our own fork: the vote just made (or the newest bank
        // descending from it).
        let parent = match &self.activity {
            Activity::Voting { tower, .. } | Activity::SkipVote { tower, .. } => tower
                .last_voted_slot()
                .and_then(|s| self.forks.newest_descendant(s)),
            _ => None,
        }
        .unwrap_or(self.forks.tip);
        let mut block_id = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut block_id);
        let block = SubmitBlock::new_signed(
            &self.identity,
            slot,
            parent,
            Hash::new_from_array(block_id),
            &self.instance,
        );
        match bounded("submitBlock", self.rpc.submit_block(&block)).await {
            Ok(_) => {
                self.produced_count += 1;
                self.metrics.leader_slots_produced.fetch_add(1, Relaxed);
                tracing::debug!(slot, parent, "produced a block");
            }
            Err(err) => {
                self.skipped_count += 1;
                self.metrics.leader_slots_skipped.fetch_add(1, Relaxed);
                tracing::warn!(slot, error = %err, "block not accepted");
            }
        }
        Ok(())
    }

    /// Votes as `voter_pubkey` (the vote account's authorized voter, whose
    /// keypair this node holds) when the tower allows a vote.
    async fn vote(&mut self, voter_pubkey: &Pubkey) -> Result<(), NodeExit> {
        let Some(voter) = self.voter(voter_pubkey) else {
            return Ok(());
        };
        let (token, tower) = match &mut self.activity {
            Activity::Voting { token, tower } | Activity::SkipVote { token, tower } => {
                (token.clone(), tower)
            }
            _ => return Ok(()),
        };
        let slot = match choose_vote(tower, &self.forks, &self.vote_account) {
            VoteChoice::Vote { slot } => slot,
            other => {
                tracing::trace!(?other, "no vote");
                return Ok(());
            }
        };
        let bank = self.forks.get(slot).expect("chosen banks exist");
        let Recorded::Vote(recorded) =
            tower.record_vote(slot, bank.hash, bank.block_id, now_unix())
        else {
            return Ok(());
        };
        let pending = PendingVote::new(slot, recorded.tower_sync, bank.blockhash);
        let saved = SavedTower::new(tower, &self.identity)
            .map_err(|e| NodeExit::Fatal(format!("cannot sign the tower: {e}")))?;
        let root = tower.root();
        let started = Instant::now();
        let stored = match self.storage.store(&token, &saved).await {
            Ok(stored) => stored,
            Err(StorageError::LockLost { identity, by }) => {
                return Err(self.lock_lost(identity, &by))
            }
            Err(err @ StorageError::Unavailable { .. }) => {
                self.make_skip_vote();
                return self.handle_unavailable(err);
            }
            Err(err) => {
                self.metrics.store_failed("other");
                return Err(NodeExit::StorageUnavailable {
                    reason: err.to_string(),
                });
            }
        };
        let latency = started.elapsed();
        self.last_store = Some(latency);
        self.metrics.observe_store(latency);
        self.make_voting();
        let sendable = pending.stored(stored);
        let tx = sendable.transaction(&self.identity, &voter, &self.vote_account);
        self.last_vote_slot = Some(slot);
        self.metrics.last_vote_slot.store(slot, Relaxed);
        self.metrics.root_slot.store(root.unwrap_or(0), Relaxed);
        match bounded(
            "sendTransaction",
            self.rpc.send_transaction(&tx, Some(&self.instance), false),
        )
        .await
        {
            Ok(_) => {
                self.metrics.votes_sent.fetch_add(1, Relaxed);
                tracing::debug!(slot, "voted");
            }
            Err(err) => {
                // The cluster saw the vote and refused it (or the send failed):
                // the tower already holds it, which only makes us stricter.
                self.metrics.votes_rejected.fetch_add(1, Relaxed);
                tracing::warn!(slot, error = %err, "vote not accepted");
            }
        }
        Ok(())
    }

    fn make_skip_vote(&mut self) {
        let activity = std::mem::replace(&mut self.activity, Activity::CatchingUp);
        self.activity = match activity {
            Activity::Voting { token, tower } => Activity::SkipVote { token, tower },
            other => other,
        };
    }

    fn make_voting(&mut self) {
        let activity = std::mem::replace(&mut self.activity, Activity::CatchingUp);
        self.activity = match activity {
            Activity::SkipVote { token, tower } => {
                tracing::info!("tower storage answers again: voting");
                Activity::Voting { token, tower }
            }
            other => other,
        };
    }

    /// An outset newer than the clock and than any seen for `identity`.
    fn next_outset(&self, identity: &Pubkey) -> u64 {
        let seen = self
            .outsets_seen
            .get(&identity.to_string())
            .copied()
            .unwrap_or(0);
        now_micros().max(seen + 1)
    }

    fn on_contact(&mut self, contact: &SignedContactInfo) -> Result<(), NodeExit> {
        if contact.info.instance != self.instance && contact.verify().is_some() {
            let seen = self
                .outsets_seen
                .entry(contact.info.pubkey.to_string())
                .or_default();
            *seen = (*seen).max(contact.info.outset);
        }
        let identity = self.pubkey();
        if is_newer_instance_of(&identity, &self.instance, self.outset, contact) {
            tracing::error!(
                other_instance = %contact.info.instance,
                "duplicate running instances of the same validator node: {identity}"
            );
            return Err(NodeExit::DuplicateInstance { identity });
        }
        Ok(())
    }

    async fn on_command(&mut self, command: Command) {
        match command {
            Command::SetIdentity {
                keypair,
                require_tower,
                reply,
            } => {
                let result = self.set_identity(keypair, require_tower).await;
                let _ = reply.send(result);
            }
            Command::AddAuthorizedVoter { keypair, reply } => {
                if !self.voters.iter().any(|k| k.pubkey() == keypair.pubkey()) {
                    tracing::info!(voter = %keypair.pubkey(), "authorized voter added");
                    self.voters.push(Arc::new(keypair));
                }
                let _ = reply.send(Ok(()));
            }
            Command::RemoveAllAuthorizedVoters { reply } => {
                tracing::info!("all authorized voters removed");
                self.voters.clear();
                let _ = reply.send(Ok(()));
            }
            Command::Exit { reply } => {
                let _ = reply.send(Ok(()));
            }
        }
    }

    /// agave's `setIdentity`: take the fence of the new identity and load its
    /// tower, then switch keys and announce the switch. On any error nothing
    /// about the running node changes.
    async fn set_identity(
        &mut self,
        keypair: Keypair,
        require_tower: bool,
    ) -> Result<(), AdminError> {
        if matches!(self.activity, Activity::CatchingUp) {
            return Err(AdminError::Starting);
        }
        let identity = keypair.pubkey();
        if let Err(reason) = self.may_vote_as(&identity) {
            return Err(AdminError::InvalidParams(format!(
                "refusing to switch to {identity}: it could not vote ({reason})"
            )));
        }
        if require_tower {
            // Check first, so that a refusal leaves the fence where it is.
            if let Err(err) = self.storage.load_unfenced(&identity).await {
                return Err(AdminError::Failed(format!(
                    "Unable to load tower file for identity {identity}: {err}"
                )));
            }
        }
        let (token, tower, last_leader_slot) = self
            .take_over(identity, require_tower)
            .await
            .map_err(|err| match err {
                StorageError::Unavailable { .. } => AdminError::Failed(format!(
                    "cannot tell whether the takeover of {identity} happened ({err}): the fence may have moved; run set-identity again"
                )),
                err => AdminError::Failed(format!(
                    "Unable to load tower file for identity {identity}: {err}"
                )),
            })?;
        tracing::info!(%identity, revision = token.revision, last_vote = ?tower.last_voted_slot(), "identity switched");
        self.outset = self.next_outset(&identity);
        self.identity = Arc::new(keypair);
        self.loaded_last_vote = tower.last_voted_slot();
        self.activity = Activity::Voting { token, tower };
        self.schedule = LeaderSlots::default();
        self.produced = last_leader_slot;
        self.publish_contact().await;
        Ok(())
    }

    async fn publish_contact(&mut self) {
        let contact = ContactInfo {
            pubkey: self.pubkey(),
            outset: self.outset,
            instance: self.instance.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            addresses: ContactAddresses {
                rpc: self.rpc_addr.map(|a| a.to_string()),
                ..ContactAddresses::default()
            },
        }
        .sign(&self.identity);
        if let Err(err) = bounded(
            "publishContactInfo",
            self.rpc.publish_contact_info(&contact),
        )
        .await
        {
            tracing::warn!(error = %err, "cannot publish the contact info");
        }
    }

    fn publish_status(&self) {
        let (role, token, root) = match &self.activity {
            Activity::CatchingUp => (Role::Starting, None, None),
            Activity::HotSpare(_) => (Role::HotSpare, None, None),
            Activity::Voting { token, tower } => (Role::Voting, Some(token.revision), tower.root()),
            Activity::SkipVote { token, tower } => {
                (Role::SkipVote, Some(token.revision), tower.root())
            }
        };
        self.metrics.role.store(
            match role {
                Role::Starting => 0,
                Role::Voting => 1,
                Role::HotSpare => 2,
                Role::SkipVote => 3,
            },
            Relaxed,
        );
        self.metrics.fence_token.store(token.unwrap_or(0), Relaxed);
        let status = NodeStatus {
            slot: self.forks.newest,
            identity: self.pubkey(),
            vote_account: Some(self.vote_account),
            role,
            last_vote_slot: self.last_vote_slot,
            root,
            fence_token: token,
            last_store_latency_ms: self.last_store.map(|d| d.as_secs_f64() * 1000.0),
            leader_slots_produced: self.produced_count,
            leader_slots_skipped: self.skipped_count,
            cluster_slot: Some(self.forks.tip.max(self.forks.newest)),
            instance: self.instance.clone(),
            loaded_last_vote: self.loaded_last_vote,
            votes_sent: self.metrics.votes_sent.load(Relaxed),
            votes_rejected: self.metrics.votes_rejected.load(Relaxed),
        };
        let contact = ContactInfoView {
            id: self.pubkey(),
            gossip: None,
            tpu: None,
            tpu_vote: None,
            rpc: self.rpc_addr,
            rpc_pubsub: None,
            outset: self.outset,
            last_updated_timestamp: now_micros() / 1000,
            shred_version: 0,
        };
        self.published.send_replace(Published {
            status,
            contact: Some(contact),
            caught_up: !matches!(self.activity, Activity::CatchingUp),
        });
    }
}

//! The driver: the one place where the node machine meets storage and the
//! network. It pumps events into the machine (banks, gossip, admin requests,
//! ticks) and carries out the machine's actions one at a time, feeding each
//! answer back before anything else happens. It decides nothing.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::json;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use tokio::sync::{mpsc, oneshot, watch};
use towerlock_storage::TowerStorage;
use towerlock_wire::{
    api::{BankNotification, SignedContactInfo, BANK_SUBSCRIBE, GOSSIP_SUBSCRIBE},
    client::{ClientError, RpcClient, Subscription},
};

use super::{
    machine::{
        Action, Command, Event, MachineConfig, NodeExit, NodeMachine, Now, RequestId, Stream,
        UnavailablePolicy,
    },
    schedule::LeaderSchedule,
};
use crate::{
    admin::{AdminError, ContactInfoView, NodeStatus},
    metrics::Metrics,
};

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
    /// `--allow-tower-rebuild`.
    pub allow_tower_rebuild: bool,
}

/// An admin request and where its answer goes.
pub type AdminRequest = (Command, oneshot::Sender<Result<(), AdminError>>);

/// What the driver publishes for the admin RPC, the node's RPC and metrics.
#[derive(Debug, Clone)]
pub struct Published {
    pub status: NodeStatus,
    pub contact: Option<ContactInfoView>,
    /// Caught up and settled in a role.
    pub caught_up: bool,
}

/// Deadline of each request to the cluster: a cluster that hangs must not
/// hang the node.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(2);
/// How long the node tries to reopen a dropped subscription before exiting.
const RECONNECT_FOR: Duration = Duration::from_secs(30);
/// How often time is passed to the machine.
const TICK: Duration = Duration::from_secs(1);

fn now() -> Now {
    Now::from_micros(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0),
    )
}

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

/// The cluster's bank and gossip streams.
struct Streams {
    ws_url: String,
    banks: Subscription,
    gossip: Subscription,
}

impl Streams {
    async fn open(ws_url: String) -> Result<Self, String> {
        let open = |method| bounded(method, Subscription::open(&ws_url, method));
        let banks = open(BANK_SUBSCRIBE).await?;
        let gossip = open(GOSSIP_SUBSCRIBE).await?;
        Ok(Self {
            ws_url: ws_url.clone(),
            banks,
            gossip,
        })
    }

    /// Reopens a stream (the cluster replays what is live, which the fork
    /// view absorbs), retrying for [`RECONNECT_FOR`].
    async fn reopen(&mut self, stream: Stream) -> Result<(), String> {
        let method = match stream {
            Stream::Banks => BANK_SUBSCRIBE,
            Stream::Gossip => GOSSIP_SUBSCRIBE,
        };
        let until = Instant::now() + RECONNECT_FOR;
        let subscription = loop {
            match bounded(method, Subscription::open(&self.ws_url, method)).await {
                Ok(subscription) => break subscription,
                Err(err) if Instant::now() >= until => {
                    return Err(format!(
                        "reopening {method} for {RECONNECT_FOR:?} failed: {err}"
                    ))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        tracing::info!(method, "subscription restored");
        match stream {
            Stream::Banks => self.banks = subscription,
            Stream::Gossip => self.gossip = subscription,
        }
        Ok(())
    }

    /// The next event from either stream; banks first, so a node thawed
    /// after a takeover meets the fence on its next vote before it reads
    /// the gossip that announced the takeover.
    async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            biased;
            bank = self.banks.next::<BankNotification>() => match bank {
                Ok(bank) => Some(Event::Bank(bank)),
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable bank notification");
                    None
                }
                Err(e) => Some(Event::StreamClosed { stream: Stream::Banks, reason: e.to_string() }),
            },
            contact = self.gossip.next::<SignedContactInfo>() => match contact {
                Ok(contact) => Some(Event::Contact(contact)),
                Err(ClientError::Decode(e)) => {
                    tracing::warn!(error = %e, "skipping an undecodable contact info");
                    None
                }
                Err(e) => Some(Event::StreamClosed { stream: Stream::Gossip, reason: e.to_string() }),
            },
        }
    }
}

/// Carries out actions.
struct Executor {
    storage: Arc<dyn TowerStorage>,
    rpc: RpcClient,
    streams: Streams,
    instance: String,
    replies: HashMap<RequestId, oneshot::Sender<Result<(), AdminError>>>,
    next_request: u64,
    metrics: Arc<Metrics>,
    published: watch::Sender<Published>,
}

impl Executor {
    /// Carries out every action the machine has, feeding answers back;
    /// returns how the node ends once the machine says so.
    async fn drain(&mut self, machine: &mut NodeMachine) -> Option<Result<(), NodeExit>> {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Exit(result) => {
                    self.publish(machine);
                    return Some(result);
                }
                // An operator who got an answer sees the status it left.
                Action::Reply { .. } => self.publish(machine),
                _ => {}
            }
            if let Some(event) = self.execute(action).await {
                machine.handle(now(), event);
            }
        }
        None
    }

    async fn execute(&mut self, action: Action) -> Option<Event> {
        let storage = self.storage.clone();
        match action {
            Action::TakeOver { op, identity } => Some(Event::TakenOver {
                op,
                result: storage.takeover(&identity).await,
            }),
            Action::CheckTower { op, identity } => Some(Event::TowerChecked {
                op,
                result: stored_last_vote(storage.load_unfenced(&identity).await),
            }),
            Action::Renew { op, token } => Some(Event::Renewed {
                op,
                result: storage.renew(&token).await,
            }),
            Action::Store { op, token, tower } => {
                let started = Instant::now();
                let result = storage.store(&token, &tower).await;
                let elapsed = started.elapsed();
                if result.is_ok() {
                    self.metrics.observe_store(elapsed);
                }
                Some(Event::Stored {
                    op,
                    result,
                    elapsed,
                })
            }
            Action::FenceLeaderSlot { op, token, slot } => Some(Event::LeaderFenced {
                op,
                result: storage.fence_leader_slot(&token, slot).await,
            }),
            action => self.execute_network(action).await,
        }
    }

    async fn execute_network(&mut self, action: Action) -> Option<Event> {
        match action {
            Action::SendVote { slot, transaction } => {
                let sent = self
                    .rpc
                    .send_transaction(&transaction, Some(&self.instance), false);
                let accepted = warn_on_error(bounded("sendTransaction", sent).await);
                Some(Event::VoteSent { slot, accepted })
            }
            Action::SubmitBlock(block) => {
                let submitted = bounded("submitBlock", self.rpc.submit_block(&block)).await;
                let accepted = warn_on_error(submitted);
                Some(Event::BlockSubmitted {
                    slot: block.slot,
                    accepted,
                })
            }
            Action::FetchLeaderSchedule { identity, slot } => Some(Event::LeaderSchedule(
                bounded(
                    "leader schedule",
                    LeaderSchedule::fetch(&self.rpc, identity, slot),
                )
                .await,
            )),
            Action::PublishContact(contact) => {
                let published = self.rpc.publish_contact_info(&contact);
                warn_on_error(bounded("publishContactInfo", published).await);
                None
            }
            Action::Reopen(stream) => self
                .streams
                .reopen(stream)
                .await
                .err()
                .map(|reason| Event::ClusterLost { reason }),
            Action::Reply { request, result } => {
                if let Some(reply) = self.replies.remove(&request) {
                    let _ = reply.send(result);
                }
                None
            }
            _ => unreachable!("storage actions and exits are handled by the caller"),
        }
    }

    fn publish(&self, machine: &NodeMachine) {
        let status = machine.status();
        self.metrics.set_status(&status);
        self.published.send_replace(Published {
            status,
            contact: Some(machine.contact_info(now())),
            caught_up: machine.is_running(),
        });
    }

    fn register(&mut self, reply: oneshot::Sender<Result<(), AdminError>>) -> RequestId {
        self.next_request += 1;
        let request = RequestId(self.next_request);
        self.replies.insert(request, reply);
        request
    }
}

/// A tower check's answer: `None` when no tower is stored, else its last
/// vote.
pub fn stored_last_vote(
    loaded: Result<towerlock_tower::SavedTower, towerlock_storage::StorageError>,
) -> Result<Option<Option<towerlock_tower::Slot>>, towerlock_storage::StorageError> {
    match loaded {
        Ok(saved) => Ok(Some(saved.tower().last_voted_slot())),
        Err(towerlock_storage::StorageError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

fn warn_on_error<T>(result: Result<T, String>) -> bool {
    if let Err(err) = &result {
        tracing::warn!(error = %err, "not accepted");
    }
    result.is_ok()
}

/// Runs the node until an admin `exit`, `shutdown`, or a reason to stop.
/// `shutdown` is only looked at between actions, so a store in flight
/// always finishes first.
pub async fn run(
    config: NodeConfig,
    mut commands: mpsc::Receiver<AdminRequest>,
    published: watch::Sender<Published>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeExit> {
    let (mut machine, mut executor) = start(config, metrics, published).await?;
    let mut tick = tokio::time::interval(TICK);
    tokio::pin!(shutdown);
    loop {
        if let Some(result) = executor.drain(&mut machine).await {
            return result;
        }
        executor.publish(&machine);
        let event = tokio::select! {
            biased;
            () = &mut shutdown => {
                tracing::info!("shutting down");
                return Ok(());
            }
            // Admin requests before the streams: a burst of banks must not
            // starve an operator.
            command = commands.recv() => match command {
                Some((command, reply)) => Event::Admin { request: executor.register(reply), command },
                None => return Ok(()),
            },
            event = executor.streams.next() => match event {
                Some(event) => event,
                None => continue,
            },
            _ = tick.tick() => Event::Tick,
        };
        machine.handle(now(), event);
    }
}

/// The start-up checks and subscriptions, then the machine.
async fn start(
    config: NodeConfig,
    metrics: Arc<Metrics>,
    published: watch::Sender<Published>,
) -> Result<(NodeMachine, Executor), NodeExit> {
    let rpc = RpcClient::new(config.cluster_url.clone());
    let identity = config.identity.pubkey();
    let unreachable = |reason: String| NodeExit::ClusterUnreachable {
        url: config.cluster_url.clone(),
        reason,
    };
    if config.check_vote_account {
        check_vote_account(&rpc, &identity, &config.vote_account)
            .await
            .map_err(|e| e.unwrap_or_else(unreachable))?;
    }
    let start_slot = bounded(
        "getSlot",
        rpc.call("getSlot", json!([{ "commitment": "processed" }])),
    )
    .await
    .and_then(|v| v.as_u64().ok_or_else(|| format!("getSlot answered {v}")))
    .map_err(unreachable)?;
    let ws_url = config.cluster_url.replacen("http", "ws", 1);
    let streams = Streams::open(ws_url).await.map_err(unreachable)?;
    let instance = config.storage.instance().id;
    tracing::info!(%identity, %instance, start_slot, "replaying");
    let machine = NodeMachine::new(
        MachineConfig {
            identity: config.identity,
            vote_account: config.vote_account,
            authorized_voters: config.authorized_voters,
            instance,
            unavailable: config.unavailable,
            catchup_slots: config.catchup_slots,
            start_slot,
            rpc_addr: config.rpc_addr,
            allow_tower_rebuild: config.allow_tower_rebuild,
        },
        now(),
    );
    let executor = Executor {
        storage: config.storage,
        rpc,
        streams,
        instance: instance.to_string(),
        replies: HashMap::new(),
        next_request: 0,
        metrics,
        published,
    };
    Ok((machine, executor))
}

/// The start-up check that the vote account names this identity as its
/// node: `Err(Ok(exit))` when it does not, `Err(Err(text))` when the
/// cluster did not answer.
async fn check_vote_account(
    rpc: &RpcClient,
    identity: &Pubkey,
    vote_account: &Pubkey,
) -> Result<(), Result<NodeExit, String>> {
    let accounts = bounded(
        "getVoteAccounts",
        rpc.call(
            "getVoteAccounts",
            json!([{ "votePubkey": vote_account.to_string(), "keepUnstakedDelinquents": true }]),
        ),
    )
    .await
    .map_err(Err)?;
    let found = ["current", "delinquent"]
        .iter()
        .filter_map(|k| accounts[k].as_array())
        .flatten()
        .find(|a| a["votePubkey"] == vote_account.to_string());
    match found {
        None => Err(Ok(NodeExit::VoteAccountMissing {
            vote_account: *vote_account,
        })),
        Some(account) if account["nodePubkey"] != identity.to_string() => {
            Err(Ok(NodeExit::VoteAccountNotOurs {
                vote_account: *vote_account,
                node: account["nodePubkey"].as_str().unwrap_or("?").to_string(),
                identity: *identity,
            }))
        }
        Some(_) => Ok(()),
    }
}

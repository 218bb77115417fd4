//! The thin tokio layer around [`Cluster`]: the slot clock, HTTP JSON-RPC,
//! the websocket, the audit trail and the resume snapshot.
//!
//! One mutex guards the cluster; whatever a call produced (audit events,
//! notifications) is handed on while the lock is held, so the trail and the
//! streams keep the core's order. The trail is written by one thread, one
//! `write` per line.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};
use towerlock_audit::Event;
use towerlock_wire::api::{BANK_SUBSCRIBE, GOSSIP_SUBSCRIBE, SLOT_SUBSCRIBE};

use crate::core::{Cluster, Notification, Outputs};
use crate::genesis::{Genesis, GenesisError};

/// The audit trail's file name inside the cluster folder.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// The resume snapshot's file name inside the cluster folder.
pub const STATE_FILE: &str = "state.bin";
/// A snapshot is also written every this many slots.
pub const CHECKPOINT_SLOTS: u64 = 256;

/// How to run a cluster.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The folder `init` made.
    pub dir: PathBuf,
    /// Slot length; `None` takes genesis' value.
    pub slot_ms: Option<u64>,
    /// Where to listen (port 0 picks a free port).
    pub rpc_addr: SocketAddr,
}

/// Why the server could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Restore {
        path: PathBuf,
        source: crate::core::cluster::RestoreError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the audit trail writer failed: {0}")]
    Audit(String),
}

/// What a finished run measured.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Slots the clock ended.
    pub slots: u64,
    /// How late each slot ended after its deadline, in microseconds.
    pub lateness_us: Vec<u64>,
    /// Wall time the clock ran.
    pub elapsed: Duration,
}

struct Shared {
    cluster: Mutex<Cluster>,
    audit: std::sync::mpsc::Sender<Event>,
    notifications: broadcast::Sender<Arc<Notification>>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// Hands a call's outputs on; call with the cluster lock held.
    fn dispatch(&self, outputs: Outputs) {
        for event in outputs.events {
            // The writer only stops at shutdown, after every sender is gone.
            let _ = self.audit.send(event);
        }
        for notification in outputs.notifications {
            let _ = self.notifications.send(Arc::new(notification));
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A bound, not yet running cluster server.
pub struct Server {
    dir: PathBuf,
    slot_ms: u64,
    listener: tokio::net::TcpListener,
    cluster: Cluster,
    initial: Outputs,
    resumed: bool,
}

impl Server {
    /// Loads the cluster (resuming from its snapshot when there is one) and
    /// binds the RPC port.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let genesis = Genesis::load(&config.dir)?;
        let slot_ms = config.slot_ms.unwrap_or(genesis.slot_ms).max(1);
        let state_path = config.dir.join(STATE_FILE);
        let (cluster, initial, resumed) = match std::fs::read(&state_path) {
            Ok(bytes) => {
                let cluster =
                    Cluster::restore(genesis, &bytes).map_err(|source| ServerError::Restore {
                        path: state_path.clone(),
                        source,
                    })?;
                (cluster, Outputs::default(), true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (cluster, outputs) = Cluster::new(genesis, now_ms());
                (cluster, outputs, false)
            }
            Err(source) => {
                return Err(ServerError::Io {
                    path: state_path,
                    source,
                })
            }
        };
        let listener = tokio::net::TcpListener::bind(config.rpc_addr)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.rpc_addr,
                source,
            })?;
        Ok(Self {
            dir: config.dir,
            slot_ms,
            listener,
            cluster,
            initial,
            resumed,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.local_addr())
    }
    pub fn websocket_url(&self) -> String {
        format!("ws://{}", self.local_addr())
    }
    pub fn audit_path(&self) -> PathBuf {
        self.dir.join(AUDIT_FILE)
    }
    /// Whether the state came from a snapshot.
    pub fn resumed(&self) -> bool {
        self.resumed
    }
    /// The slot the clock will end first.
    pub fn current_slot(&self) -> u64 {
        self.cluster.current_slot()
    }

    /// Runs until `shutdown` completes: stops the clock, closes connections,
    /// writes the snapshot and drains the trail.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<RunReport, ServerError> {
        let audit_path = self.audit_path();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&audit_path)
            .map_err(|source| ServerError::Io {
                path: audit_path.clone(),
                source,
            })?;
        let (audit_tx, audit_rx) = std::sync::mpsc::channel::<Event>();
        let writer = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_trail(file, audit_rx))
            .map_err(|source| ServerError::Io {
                path: audit_path.clone(),
                source,
            })?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (notifications, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            cluster: Mutex::new(self.cluster),
            audit: audit_tx,
            notifications,
            shutdown: stop_rx.clone(),
        });
        {
            let _guard = shared.cluster.lock().expect("cluster lock");
            shared.dispatch(self.initial);
        }
        let clock = tokio::spawn(slot_clock(
            shared.clone(),
            self.slot_ms,
            self.dir.clone(),
            stop_rx.clone(),
        ));
        let app = Router::new()
            .route("/", get(websocket).post(json_rpc))
            .route("/health", get(|| async { "ok" }))
            .with_state(shared.clone());
        let mut http_stop = stop_rx.clone();
        let http = tokio::spawn(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async move {
                    stopped(&mut http_stop).await;
                })
                .await
        });
        shutdown.await;
        let _ = stop_tx.send(true);
        let report = clock.await.unwrap_or_default();
        let _ = http.await;
        let snapshot = shared.cluster.lock().expect("cluster lock").snapshot();
        write_snapshot(&self.dir, &snapshot)?;
        drop(shared);
        // The writer ends once the last connection task has let go of the
        // trail; wait for it off the runtime's worker threads.
        match tokio::task::spawn_blocking(move || writer.join()).await {
            Ok(Ok(written)) => written.map_err(|e| ServerError::Audit(e.to_string()))?,
            _ => return Err(ServerError::Audit("the writer panicked".into())),
        }
        Ok(report)
    }
}

fn write_trail(
    mut file: std::fs::File,
    rx: std::sync::mpsc::Receiver<Event>,
) -> std::io::Result<()> {
    // Ends when every sender is dropped (after shutdown).
    for event in rx {
        let mut line = event.to_line();
        line.push('\n');
        file.write_all(line.as_bytes())?;
    }
    file.sync_all()
}

/// Writes the snapshot: `state.bin.new`, fsync, rename, fsync the folder.
fn write_snapshot(dir: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    let path = dir.join(STATE_FILE);
    let tmp = dir.join(format!("{STATE_FILE}.new"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerError::Io { path, source }
    };
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

async fn slot_clock(
    shared: Arc<Shared>,
    slot_ms: u64,
    dir: PathBuf,
    mut stop: watch::Receiver<bool>,
) -> RunReport {
    let slot = Duration::from_millis(slot_ms);
    let start = Instant::now();
    let mut report = RunReport::default();
    let mut n: u32 = 1;
    loop {
        let deadline = start + slot * n;
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => {}
            _ = stopped(&mut stop) => break,
        }
        let late = Instant::now().saturating_duration_since(deadline);
        report.lateness_us.push(late.as_micros() as u64);
        report.slots += 1;
        let snapshot = {
            let mut cluster = shared.cluster.lock().expect("cluster lock");
            let outputs = cluster.end_slot(now_ms());
            shared.dispatch(outputs);
            cluster
                .current_slot()
                .is_multiple_of(CHECKPOINT_SLOTS)
                .then(|| cluster.snapshot())
        };
        if let Some(bytes) = snapshot {
            let dir = dir.clone();
            let written = tokio::task::spawn_blocking(move || write_snapshot(&dir, &bytes)).await;
            if let Ok(Err(e)) = written {
                tracing::warn!("checkpoint failed: {e}");
            }
        }
        n += 1;
    }
    report.elapsed = start.elapsed();
    report
}

async fn json_rpc(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    // Parsing and signature checks need no cluster: done before taking it,
    // so that votes arriving together verify in parallel and the cluster
    // is held only for the vote program.
    let prepared = crate::rpc::prepare_body(&body);
    let response = {
        let mut cluster = shared.cluster.lock().expect("cluster lock");
        let (response, outputs) = crate::rpc::handle_prepared(&mut cluster, prepared, now_ms());
        shared.dispatch(outputs);
        response
    };
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        response.to_string(),
    )
        .into_response()
}

async fn websocket(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| subscriptions(shared, socket))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Slot,
    Bank,
    Gossip,
    Root,
    Vote,
    /// Votor's stream (Alpenglow clusters).
    Votor,
    /// A vote account (or any account the cluster holds) at a commitment.
    Account(AccountSubscription),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AccountSubscription {
    pubkey: solana_pubkey::Pubkey,
    encoding: Option<String>,
    commitment: crate::rpc::Commitment,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Slot => "slot",
            Kind::Bank => "bank",
            Kind::Gossip => "gossip",
            Kind::Root => "root",
            Kind::Vote => "vote",
            Kind::Votor => "votor",
            Kind::Account(_) => "account",
        }
    }

    fn notification_method(&self) -> String {
        format!("{}Notification", self.name())
    }
}

fn notification(kind: &Kind, id: u64, result: Value) -> Message {
    Message::Text(
        json!({
            "jsonrpc": "2.0",
            "method": kind.notification_method(),
            "params": { "result": result, "subscription": id },
        })
        .to_string()
        .into(),
    )
}

/// One websocket connection: JSON-RPC subscribe/unsubscribe calls in,
/// notifications out.
async fn subscriptions(shared: Arc<Shared>, mut socket: WebSocket) {
    let mut stop = shared.shutdown.clone();
    // Stopping wins even over a send to a subscriber that stopped reading:
    // a stalled client must not hold up the server's shutdown.
    tokio::select! {
        _ = stopped(&mut stop) => {}
        _ = serve_subscriptions(&shared, &mut socket) => return,
    }
    let _ = tokio::time::timeout(
        Duration::from_millis(100),
        socket.send(Message::Close(None)),
    )
    .await;
}

async fn serve_subscriptions(shared: &Shared, socket: &mut WebSocket) {
    let mut rx = shared.notifications.subscribe();
    let mut subscriptions = Subscriptions::default();
    loop {
        let replies = tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => subscriptions.call(shared, &text),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            received = rx.recv() => match received {
                Ok(notification) => subscriptions.notify(shared, &notification),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow: the subscriber would miss banks; it must reconnect.
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        for reply in replies {
            if socket.send(reply).await.is_err() {
                return;
            }
        }
    }
}

/// One connection's subscriptions: what it subscribed to, how far each
/// bank subscription's replay went, and what each account subscription
/// last sent.
#[derive(Default)]
struct Subscriptions {
    kinds: HashMap<u64, Kind>,
    /// Banks up to this slot were sent by a subscription's replay.
    replayed_up_to: HashMap<u64, u64>,
    /// The account value last sent per account subscription.
    last_account: HashMap<u64, Value>,
}

/// The subscription a `*Subscribe` call asks for, or the error to answer.
fn subscription_kind(method: &str, params: &Value) -> Option<Result<Kind, String>> {
    Some(Ok(match method {
        SLOT_SUBSCRIBE => Kind::Slot,
        BANK_SUBSCRIBE => Kind::Bank,
        GOSSIP_SUBSCRIBE => Kind::Gossip,
        "rootSubscribe" => Kind::Root,
        "voteSubscribe" => Kind::Vote,
        towerlock_wire::votor::VOTOR_SUBSCRIBE => Kind::Votor,
        "accountSubscribe" => return Some(account_subscription(params).map(Kind::Account)),
        _ => return None,
    }))
}

fn account_subscription(params: &Value) -> Result<AccountSubscription, String> {
    #[derive(Default, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        encoding: Option<String>,
        commitment: Option<crate::rpc::Commitment>,
    }
    let pubkey = params
        .get(0)
        .and_then(Value::as_str)
        .ok_or("Invalid params: invalid type: null, expected a string.")?
        .parse()
        .map_err(|e| format!("Invalid param: {e:?}"))?;
    let config: Config = match params.get(1) {
        None | Some(Value::Null) => Config::default(),
        Some(config) => {
            serde_json::from_value(config.clone()).map_err(|e| format!("Invalid params: {e}."))?
        }
    };
    Ok(AccountSubscription {
        pubkey,
        encoding: config.encoding,
        commitment: config
            .commitment
            .unwrap_or(crate::rpc::Commitment::Finalized),
    })
}

fn error_reply(id: &Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc":"2.0","error":{"code":code,"message":message},"id":id})
}

impl Subscriptions {
    /// Answers one JSON-RPC call (`*Subscribe`, `*Unsubscribe`); a new
    /// subscription's replay follows its answer.
    fn call(&mut self, shared: &Shared, text: &str) -> Vec<Message> {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mut replies = vec![];
        let Ok(call) = serde_json::from_str::<Value>(text) else {
            replied(
                &mut replies,
                error_reply(&Value::Null, -32700, "Parse error"),
            );
            return replies;
        };
        let id = call.get("id").cloned().unwrap_or(Value::Null);
        let method = call
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let params = call.get("params").cloned().unwrap_or(Value::Null);
        match subscription_kind(method, &params) {
            Some(Ok(Kind::Votor))
                if shared
                    .cluster
                    .lock()
                    .expect("cluster lock")
                    .votor()
                    .is_none() =>
            {
                let message = "votorSubscribe needs a cluster made with --consensus alpenglow";
                replied(&mut replies, error_reply(&id, -32601, message));
            }
            Some(Ok(kind)) => {
                let sub = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                replied(&mut replies, json!({"jsonrpc":"2.0","result":sub,"id":id}));
                if let Some(last) = replay(shared, &kind, sub, &mut replies) {
                    self.replayed_up_to.insert(sub, last);
                }
                self.kinds.insert(sub, kind);
            }
            Some(Err(message)) => replied(&mut replies, error_reply(&id, -32602, &message)),
            None => {
                let reply = match method.strip_suffix("Unsubscribe") {
                    Some(name) => self.unsubscribe(&id, name, &params),
                    None => error_reply(&id, -32601, "Method not found"),
                };
                replied(&mut replies, reply);
            }
        }
        replies
    }

    fn unsubscribe(&mut self, id: &Value, name: &str, params: &Value) -> Value {
        let sub = params.get(0).and_then(Value::as_u64);
        let known = sub
            .and_then(|s| self.kinds.get(&s))
            .is_some_and(|k| k.name() == name);
        match sub {
            Some(sub) if known => {
                self.kinds.remove(&sub);
                self.last_account.remove(&sub);
                json!({"jsonrpc":"2.0","result":true,"id":id})
            }
            _ => error_reply(id, -32602, "Invalid subscription id."),
        }
    }

    /// The messages one notification makes for this connection's
    /// subscriptions (none for a bank its replay already sent).
    fn notify(&mut self, shared: &Shared, notification_: &Notification) -> Vec<Message> {
        let mut messages = vec![];
        for (&sub, kind) in &self.kinds {
            let value = match (notification_, kind) {
                (Notification::Slot(s), Kind::Slot) => json!(s),
                (Notification::Root(root), Kind::Root) => json!(root),
                (Notification::Vote(vote), Kind::Vote) => json!(vote),
                (Notification::Bank(b), Kind::Bank) => {
                    if self
                        .replayed_up_to
                        .get(&sub)
                        .is_some_and(|last| b.slot <= *last)
                    {
                        continue;
                    }
                    json!(b)
                }
                (Notification::Bank(b), Kind::Account(account)) => {
                    let Some(value) = account_value(shared, account, b) else {
                        continue;
                    };
                    if self.last_account.get(&sub) == Some(&value["value"]) {
                        continue;
                    }
                    self.last_account.insert(sub, value["value"].clone());
                    value
                }
                (Notification::Contact(c), Kind::Gossip) => json!(c),
                (Notification::Votor(v), Kind::Votor) => json!(v),
                _ => continue,
            };
            messages.push(notification(kind, sub, value));
        }
        messages
    }
}

/// An account subscription's `accountNotification` result at the bank's
/// commitment slot for it.
fn account_value(
    shared: &Shared,
    account: &AccountSubscription,
    bank: &towerlock_wire::api::BankNotification,
) -> Option<Value> {
    use crate::rpc::Commitment;
    let slot = match account.commitment {
        Commitment::Processed => bank.slot,
        Commitment::Confirmed => bank.confirmed,
        Commitment::Finalized => bank.root,
    };
    let found = shared
        .cluster
        .lock()
        .expect("cluster lock")
        .account(&account.pubkey, slot)?;
    let value = crate::rpc::account_json(&found, account.encoding.as_deref()).ok()?;
    Some(json!({ "context": { "slot": slot }, "value": value }))
}

/// The current state a new subscription starts with; returns the last
/// replayed bank slot for bank subscriptions.
fn replay(shared: &Shared, kind: &Kind, sub: u64, replies: &mut Vec<Message>) -> Option<u64> {
    let cluster = shared.cluster.lock().expect("cluster lock");
    match kind {
        Kind::Bank => {
            let mut last = 0;
            for bank in cluster.live_banks() {
                let n = cluster.bank_notification(bank);
                last = bank.slot;
                replies.push(notification(kind, sub, json!(n)));
            }
            Some(last)
        }
        Kind::Votor => {
            for n in cluster.votor_replay() {
                replies.push(notification(kind, sub, json!(n)));
            }
            None
        }
        Kind::Gossip => {
            for contact in cluster.gossip().all() {
                replies.push(notification(kind, sub, json!(contact)));
            }
            None
        }
        _ => None,
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

fn replied(replies: &mut Vec<Message>, value: Value) {
    replies.push(Message::Text(value.to_string().into()));
}

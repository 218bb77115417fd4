//! The admin RPC over real unix sockets: a server in a temporary ledger
//! directory, a fake node behind it, the client and raw connections in front.

use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde_json::{json, Value};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use towerlock_validator::admin::keypair::{keypair_json, write_keypair_file};
use towerlock_validator::admin::protocol::{
    INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
    STARTING_MESSAGE,
};
use towerlock_validator::admin::{
    run_with, socket_path, AdminClient, AdminCommand, AdminError, AdminHandler, AdminServer,
    AuthorizedVoterCommand, ClientError, Console, ContactInfoView, KeypairBytes, NodeStatus, Role,
    ServeError, ServerConfig,
};

// ---------------------------------------------------------------------------
// A fake node

/// Records every call; `starting` makes the node-dependent methods answer
/// [`AdminError::Starting`]; `exit` runs the server's shutdown and kills
/// `child` (standing in for the validator process) when there is one.
struct FakeNode {
    identity: Mutex<Pubkey>,
    starting: AtomicBool,
    calls: Mutex<Vec<String>>,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    child: Mutex<Option<std::process::Child>>,
    start_time: SystemTime,
    /// When set, `remove_all_authorized_voters` reports that it started and
    /// waits to be released.
    gate: Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
}

impl FakeNode {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            identity: Mutex::new(Keypair::new().pubkey()),
            starting: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
            shutdown: Mutex::new(None),
            child: Mutex::new(None),
            gate: Mutex::new(None),
            start_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        })
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn ready(&self) -> Result<(), AdminError> {
        if self.starting.load(Ordering::SeqCst) {
            Err(AdminError::Starting)
        } else {
            Ok(())
        }
    }

    fn contact_info(&self) -> ContactInfoView {
        ContactInfoView {
            id: *self.identity.lock().unwrap(),
            gossip: Some("127.0.0.1:8001".parse().unwrap()),
            tpu: Some("127.0.0.1:8003".parse().unwrap()),
            tpu_vote: None,
            rpc: Some("127.0.0.1:8899".parse().unwrap()),
            rpc_pubsub: None,
            outset: 1_700_000_000_000_000,
            last_updated_timestamp: 1_700_000_000_000,
            shred_version: 42,
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            slot: 1000,
            identity: *self.identity.lock().unwrap(),
            vote_account: Some(Pubkey::new_from_array([7; 32])),
            role: Role::Voting,
            last_vote_slot: Some(999),
            root: Some(968),
            fence_token: Some(12345),
            last_store_latency_ms: Some(2.5),
            leader_slots_produced: 8,
            leader_slots_skipped: 1,
            cluster_slot: Some(1003),
            instance: "cd".repeat(16),
            loaded_last_vote: Some(990),
            votes_sent: 30,
            votes_rejected: 0,
            store_failures: Default::default(),
        }
    }
}

#[async_trait]
impl AdminHandler for FakeNode {
    async fn exit(&self) -> Result<(), AdminError> {
        self.record("exit".into());
        if let Some(mut child) = self.child.lock().unwrap().take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        if let Some(shutdown) = self.shutdown.lock().unwrap().take() {
            let _ = shutdown.send(());
        }
        Ok(())
    }

    fn pid(&self) -> u32 {
        match &*self.child.lock().unwrap() {
            Some(child) => child.id(),
            None => 4242,
        }
    }

    fn start_time(&self) -> SystemTime {
        self.start_time
    }

    fn start_progress(&self) -> String {
        if self.starting.load(Ordering::SeqCst) {
            "Initializing".into()
        } else {
            "Running".into()
        }
    }

    async fn contact_info(&self) -> Result<ContactInfoView, AdminError> {
        self.ready()?;
        Ok(self.contact_info())
    }

    async fn rpc_address(&self) -> Result<Option<SocketAddr>, AdminError> {
        self.ready()?;
        Ok(Some("127.0.0.1:8899".parse().unwrap()))
    }

    async fn set_identity(&self, keypair: Keypair, require_tower: bool) -> Result<(), AdminError> {
        self.ready()?;
        if require_tower {
            return Err(AdminError::Failed(format!(
                "Unable to load tower file for identity {}",
                keypair.pubkey()
            )));
        }
        self.record(format!("set_identity {}", keypair.pubkey()));
        *self.identity.lock().unwrap() = keypair.pubkey();
        Ok(())
    }

    async fn add_authorized_voter(&self, keypair: Keypair) -> Result<(), AdminError> {
        self.ready()?;
        self.record(format!("add_authorized_voter {}", keypair.pubkey()));
        Ok(())
    }

    async fn remove_all_authorized_voters(&self) -> Result<(), AdminError> {
        self.ready()?;
        let gate = self.gate.lock().unwrap().take();
        if let Some((started, release)) = gate {
            let _ = started.send(());
            let _ = release.await;
        }
        self.record("remove_all_authorized_voters".into());
        Ok(())
    }

    async fn set_log_filter(&self, filter: String) -> Result<(), AdminError> {
        if filter.contains('[') {
            return Err(AdminError::InvalidParams(format!(
                "invalid log filter {filter:?}"
            )));
        }
        self.record(format!("set_log_filter {filter}"));
        Ok(())
    }

    async fn status(&self) -> Result<NodeStatus, AdminError> {
        self.ready()?;
        Ok(self.status())
    }
}

// ---------------------------------------------------------------------------
// Harness

struct Running {
    _dir: tempfile::TempDir,
    ledger: PathBuf,
    node: Arc<FakeNode>,
    server: JoinHandle<()>,
}

impl Running {
    async fn start() -> Self {
        Self::start_with(FakeNode::new(), ServerConfig::default()).await
    }

    async fn start_with(node: Arc<FakeNode>, config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().to_path_buf();
        let server = AdminServer::bind(&ledger, config).await.unwrap();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        *node.shutdown.lock().unwrap() = Some(shutdown_tx);
        let server = tokio::spawn(server.run(node.clone(), async {
            let _ = shutdown_rx.await;
        }));
        Self {
            _dir: dir,
            ledger,
            node,
            server,
        }
    }

    async fn client(&self) -> AdminClient {
        AdminClient::connect(&self.ledger).await.unwrap()
    }

    async fn raw(&self) -> Raw {
        let stream = UnixStream::connect(socket_path(&self.ledger))
            .await
            .unwrap();
        let (reader, writer) = stream.into_split();
        Raw {
            reader: BufReader::new(reader),
            writer,
        }
    }

    /// Stops the server (as the node's shutdown would) and waits for it.
    async fn stop(self) -> PathBuf {
        if let Some(shutdown) = self.node.shutdown.lock().unwrap().take() {
            let _ = shutdown.send(());
        }
        self.server.await.unwrap();
        socket_path(&self.ledger)
    }
}

/// A connection that writes bytes and reads response lines as they come.
struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).await.unwrap();
    }

    /// The next response: one JSON value on one line ending with `\n`.
    async fn response(&mut self) -> Value {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).await.unwrap();
        assert!(n > 0, "connection closed instead of answering");
        assert!(
            line.ends_with('\n'),
            "response not newline-terminated: {line:?}"
        );
        assert_eq!(line.matches('\n').count(), 1);
        serde_json::from_str(&line).unwrap()
    }

    async fn error(&mut self) -> (Value, i64, String) {
        let response = self.response().await;
        assert_eq!(response["jsonrpc"], "2.0", "{response}");
        let error = &response["error"];
        assert!(error.is_object(), "expected an error: {response}");
        (
            response["id"].clone(),
            error["code"].as_i64().unwrap(),
            error["message"].as_str().unwrap().to_string(),
        )
    }
}

fn call(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn keypair_file(dir: &Path, name: &str) -> (Keypair, PathBuf) {
    let keypair = Keypair::new();
    let path = dir.join(name);
    write_keypair_file(&keypair, &path).unwrap();
    (keypair, path)
}

// ---------------------------------------------------------------------------
// Round trips

#[tokio::test]
async fn every_method_round_trips_through_client_and_server() {
    let running = Running::start().await;
    let node = running.node.clone();
    let mut client = running.client().await;

    assert_eq!(client.pid().await.unwrap(), 4242);
    assert_eq!(client.start_time().await.unwrap(), node.start_time);
    assert_eq!(client.start_progress().await.unwrap(), "Running");
    assert_eq!(client.contact_info().await.unwrap(), node.contact_info());
    assert_eq!(
        client.rpc_address().await.unwrap(),
        Some("127.0.0.1:8899".parse().unwrap())
    );
    assert_eq!(client.status().await.unwrap(), node.status());

    let (from_file, path) = keypair_file(&running.ledger, "identity.json");
    client.set_identity(&path, false).await.unwrap();
    let from_bytes = Keypair::new();
    client
        .set_identity_from_bytes(&KeypairBytes::from_keypair(&from_bytes), false)
        .await
        .unwrap();
    let (voter_file, voter_path) = keypair_file(&running.ledger, "voter.json");
    client.add_authorized_voter(&voter_path).await.unwrap();
    let voter_bytes = Keypair::new();
    client
        .add_authorized_voter_from_bytes(&KeypairBytes::from_keypair(&voter_bytes))
        .await
        .unwrap();
    client.remove_all_authorized_voters().await.unwrap();
    client.set_log_filter("info,towerlock=debug").await.unwrap();
    client.exit().await.unwrap();

    assert_eq!(
        node.calls(),
        vec![
            format!("set_identity {}", from_file.pubkey()),
            format!("set_identity {}", from_bytes.pubkey()),
            format!("add_authorized_voter {}", voter_file.pubkey()),
            format!("add_authorized_voter {}", voter_bytes.pubkey()),
            "remove_all_authorized_voters".to_string(),
            "set_log_filter info,towerlock=debug".to_string(),
            "exit".to_string(),
        ]
    );
    // `exit` shut the server down, and it removed its socket.
    let socket = running.stop().await;
    assert!(!socket.exists());
}

#[tokio::test]
async fn agave_wire_shapes() {
    let running = Running::start().await;
    let mut raw = running.raw().await;
    raw.send(&call(1, "startTime", json!([]))).await;
    let response = raw.response().await;
    assert_eq!(
        response,
        json!({"jsonrpc": "2.0", "id": 1,
               "result": {"secs_since_epoch": 1_700_000_000u64, "nanos_since_epoch": 0}})
    );
    raw.send(&call(2, "rpcAddress", json!([]))).await;
    assert_eq!(raw.response().await["result"], "127.0.0.1:8899");
    raw.send(&call(3, "setLogFilter", json!(["warn"]))).await;
    assert_eq!(raw.response().await["result"], Value::Null);
    raw.send(r#"{"jsonrpc":"2.0","id":"s","method":"towerlockStatus"}"#)
        .await;
    let status = raw.response().await;
    assert_eq!(status["id"], "s");
    assert_eq!(status["result"]["role"], "voting");
    assert_eq!(status["result"]["fence_token"], 12345);
    running.stop().await;
}

// ---------------------------------------------------------------------------
// Framing

#[tokio::test]
async fn back_to_back_requests_in_one_write_get_two_lines() {
    let running = Running::start().await;
    let mut raw = running.raw().await;
    let two = format!(
        "{}{}",
        call(1, "pid", json!([])),
        call(2, "startProgress", json!([]))
    );
    raw.send(&two).await;
    assert_eq!(
        raw.response().await,
        json!({"jsonrpc": "2.0", "id": 1, "result": 4242})
    );
    assert_eq!(
        raw.response().await,
        json!({"jsonrpc": "2.0", "id": 2, "result": "Running"})
    );
    running.stop().await;
}

#[tokio::test]
async fn a_request_split_across_writes_is_answered_once_complete() {
    let running = Running::start().await;
    let mut raw = running.raw().await;
    // Braces and an escaped quote inside a string must not end the request early.
    let request = call(7, "setLogFilter", json!(["a{b}\"c]"]));
    for chunk in request.as_bytes().chunks(5) {
        raw.writer.write_all(chunk).await.unwrap();
        raw.writer.flush().await.unwrap();
    }
    assert_eq!(
        raw.response().await,
        json!({"jsonrpc": "2.0", "id": 7, "result": null})
    );
    assert_eq!(running.node.calls(), vec!["set_log_filter a{b}\"c]"]);
    running.stop().await;
}

#[tokio::test]
async fn newline_separated_requests_and_batches() {
    let running = Running::start().await;
    let mut raw = running.raw().await;
    raw.send(&format!(
        "{}\n\n{}\n",
        call(1, "pid", json!([])),
        call(2, "pid", json!(null))
    ))
    .await;
    assert_eq!(raw.response().await["id"], 1);
    assert_eq!(raw.response().await["id"], 2);

    raw.send(&format!(
        "[{},{}]",
        call(3, "pid", json!([])),
        call(4, "nope", json!([]))
    ))
    .await;
    let batch = raw.response().await;
    assert_eq!(batch[0]["result"], 4242);
    assert_eq!(batch[1]["error"]["code"], METHOD_NOT_FOUND);
    running.stop().await;
}

#[tokio::test]
async fn connections_are_served_concurrently() {
    let running = Running::start().await;
    // One connection holds half a request ...
    let mut stuck = running.raw().await;
    stuck
        .send(r#"{"jsonrpc":"2.0","id":1,"method":"pid""#)
        .await;
    // ... another is answered meanwhile.
    let mut other = running.client().await;
    assert_eq!(other.pid().await.unwrap(), 4242);
    stuck.send("}").await;
    assert_eq!(stuck.response().await["result"], 4242);
    running.stop().await;
}

// ---------------------------------------------------------------------------
// Malformed input

#[tokio::test]
async fn malformed_requests_get_json_rpc_errors_and_serving_goes_on() {
    let running = Running::start().await;
    let mut raw = running.raw().await;

    // Not JSON (balanced braces, bad content), and bytes that are no JSON value at all.
    raw.send(r#"{"jsonrpc": "2.0", "id": 1, "method": }"#).await;
    let (id, code, message) = raw.error().await;
    assert_eq!((id, code), (Value::Null, PARSE_ERROR));
    assert!(message.starts_with("Parse error"), "{message}");
    raw.send("hello\n").await;
    assert_eq!(raw.error().await.1, PARSE_ERROR);

    // JSON but not a request.
    raw.send(r#"{"id": 2, "method": "pid"}"#).await;
    let (id, code, message) = raw.error().await;
    assert_eq!((id, code), (json!(2), INVALID_REQUEST));
    assert!(message.contains(r#"jsonrpc must be "2.0""#), "{message}");
    raw.send(r#"[]"#).await;
    assert_eq!(raw.error().await.1, INVALID_REQUEST);

    // Unknown method.
    raw.send(&call(3, "getBalance", json!([]))).await;
    assert_eq!(
        raw.error().await,
        (
            json!(3),
            METHOD_NOT_FOUND,
            "Method not found: getBalance".into()
        )
    );

    // Wrong param types.
    raw.send(&call(4, "setIdentity", json!([17, true]))).await;
    assert_eq!(
        raw.error().await,
        (
            json!(4),
            INVALID_PARAMS,
            "Invalid params for setIdentity: keypair_path (param 1) must be a string, not a number"
                .into()
        )
    );
    raw.send(&call(5, "setIdentity", json!(["/x.json", "yes"])))
        .await;
    let (_, code, message) = raw.error().await;
    assert_eq!(code, INVALID_PARAMS);
    assert!(
        message.contains("require_tower (param 2) must be a boolean"),
        "{message}"
    );

    // A keypair that is not 64 bytes, and one whose halves do not match.
    raw.send(&call(
        6,
        "setIdentityFromBytes",
        json!([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], false]),
    ))
    .await;
    assert_eq!(
        raw.error().await,
        (
            json!(6),
            INVALID_PARAMS,
            "Invalid params for setIdentityFromBytes: invalid keypair: expected 64 bytes, got 10"
                .into()
        )
    );
    let mut bytes = Keypair::new().to_bytes();
    bytes[63] ^= 0xff;
    raw.send(&call(
        7,
        "addAuthorizedVoterFromBytes",
        json!([bytes.to_vec()]),
    ))
    .await;
    let (_, code, message) = raw.error().await;
    assert_eq!(code, INVALID_PARAMS);
    assert!(message.contains("public half does not match"), "{message}");

    // A notification (no id) is not answered, even when it is wrong: the next
    // line is the answer to the request after it.
    raw.send(r#"{"jsonrpc":"2.0","method":"nope"}"#).await;
    raw.send(&call(8, "pid", json!([]))).await;
    assert_eq!(raw.response().await["id"], 8);

    // Nothing changed in the node, and the server still serves this and new connections.
    assert!(running.node.calls().is_empty());
    assert_eq!(running.client().await.pid().await.unwrap(), 4242);
    running.stop().await;
}

#[tokio::test]
async fn oversized_input_closes_the_connection() {
    let running = Running::start().await;
    let raw = running.raw().await;
    let Raw {
        mut reader,
        mut writer,
    } = raw;
    let writing = tokio::spawn(async move {
        // An unterminated string: never a complete request.
        let mut bytes = br#"{"jsonrpc":"2.0","id":1,"method":"pid","params":[""#.to_vec();
        bytes.resize(2 * 1024 * 1024, b'x');
        // The server may close before all is written.
        let _ = writer.write_all(&bytes).await;
        writer
    });
    // The server answers with a parse error and closes. Closing with unread
    // input makes the kernel reset the connection, which may swallow that
    // answer: either way the connection must end.
    let mut received = Vec::new();
    match reader.read_to_end(&mut received).await {
        Ok(_) => {}
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
    if !received.is_empty() {
        let answer: Value = serde_json::from_slice(&received).unwrap();
        assert_eq!(answer["error"]["code"], PARSE_ERROR);
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 1048576 bytes"));
    }
    drop(writing.await.unwrap());
    assert_eq!(running.client().await.pid().await.unwrap(), 4242);
    running.stop().await;
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_is_answered() {
    let node = FakeNode::new();
    let (started_tx, started) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    *node.gate.lock().unwrap() = Some((started_tx, release_rx));
    let running = Running::start_with(node.clone(), ServerConfig::default()).await;
    let mut client = running.client().await;
    let in_flight = tokio::spawn(async move { client.remove_all_authorized_voters().await });
    started.await.unwrap();
    // Shut down while the node is busy with the request, then let it finish.
    let _ = node.shutdown.lock().unwrap().take().unwrap().send(());
    release.send(()).unwrap();
    in_flight.await.unwrap().unwrap();
    running.server.await.unwrap();
    assert!(!socket_path(&running.ledger).exists());
    assert_eq!(node.calls(), vec!["remove_all_authorized_voters"]);
}

// ---------------------------------------------------------------------------
// Node answers

#[tokio::test]
async fn a_starting_node_answers_retry_once_start_up_is_complete() {
    let node = FakeNode::new();
    node.starting.store(true, Ordering::SeqCst);
    let running = Running::start_with(node, ServerConfig::default()).await;

    let mut raw = running.raw().await;
    raw.send(&call(
        1,
        "setIdentityFromBytes",
        json!([Keypair::new().to_bytes().to_vec(), false]),
    ))
    .await;
    assert_eq!(
        raw.error().await,
        (json!(1), INVALID_PARAMS, STARTING_MESSAGE.to_string())
    );
    assert_eq!(
        STARTING_MESSAGE,
        "Retry once validator start up is complete"
    );

    let mut client = running.client().await;
    let err = client.status().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "towerlockStatus failed: Retry once validator start up is complete"
    );
    assert_eq!(err.rpc_error().unwrap().code, INVALID_PARAMS);
    // What does not need the running node still answers.
    assert_eq!(client.start_progress().await.unwrap(), "Initializing");
    assert_eq!(client.pid().await.unwrap(), 4242);
    running.stop().await;
}

#[tokio::test]
async fn node_errors_map_to_json_rpc_codes() {
    let running = Running::start().await;
    let mut client = running.client().await;
    let err = client
        .set_identity_from_bytes(&KeypairBytes::from_keypair(&Keypair::new()), true)
        .await
        .unwrap_err();
    assert_eq!(err.rpc_error().unwrap().code, INTERNAL_ERROR);
    assert!(err
        .to_string()
        .starts_with("setIdentityFromBytes failed: Unable to load tower file for identity"));
    let err = client.set_log_filter("[bad").await.unwrap_err();
    assert_eq!(err.rpc_error().unwrap().code, INVALID_PARAMS);
    assert_eq!(
        err.to_string(),
        r#"setLogFilter failed: invalid log filter "[bad""#
    );
    running.stop().await;
}

#[tokio::test]
async fn keypair_files_are_read_by_the_server_and_must_be_private() {
    let running = Running::start().await;
    let mut client = running.client().await;
    let (_, path) = keypair_file(&running.ledger, "id.json");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = client.set_identity(&path, false).await.unwrap_err();
    assert_eq!(err.rpc_error().unwrap().code, INVALID_PARAMS);
    assert_eq!(
        err.to_string(),
        format!(
            "setIdentity failed: keypair file {} is accessible by group or others (mode 0644); run `chmod 600` on it",
            path.display()
        )
    );
    let missing = running.ledger.join("missing.json");
    let err = client.add_authorized_voter(&missing).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "addAuthorizedVoter failed: cannot read keypair file {}",
            missing.display()
        )),
        "{err}"
    );
    std::fs::write(&missing, "[1,2]").unwrap();
    std::fs::set_permissions(&missing, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = client.add_authorized_voter(&missing).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("invalid keypair: expected 64 bytes, got 2"),
        "{err}"
    );
    assert!(running.node.calls().is_empty());
    running.stop().await;

    // A server configured to allow it accepts the same file.
    let allowing = ServerConfig {
        allow_insecure_keypair_files: true,
        ..ServerConfig::default()
    };
    let running = Running::start_with(FakeNode::new(), allowing).await;
    let (keypair, path) = keypair_file(&running.ledger, "id.json");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    running
        .client()
        .await
        .set_identity(&path, false)
        .await
        .unwrap();
    assert_eq!(
        running.node.calls(),
        vec![format!("set_identity {}", keypair.pubkey())]
    );
    running.stop().await;
}

// ---------------------------------------------------------------------------
// The socket file

#[tokio::test]
async fn socket_is_private_and_removed_on_shutdown() {
    let running = Running::start().await;
    let socket = socket_path(&running.ledger);
    let metadata = std::fs::symlink_metadata(&socket).unwrap();
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    // No leftovers of the private directory it was created in.
    let entries: Vec<_> = std::fs::read_dir(&running.ledger)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec!["admin.rpc"]);
    let socket = running.stop().await;
    assert!(!socket.exists());
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path();
    // A socket file that nobody listens on any more.
    drop(std::os::unix::net::UnixListener::bind(socket_path(ledger)).unwrap());
    let err = AdminClient::connect(ledger).await.unwrap_err();
    assert!(matches!(err, ClientError::Stale { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "the validator that used {} is not running",
            ledger.display()
        )
    );

    let server = AdminServer::bind(ledger, ServerConfig::default())
        .await
        .unwrap();
    let node = FakeNode::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(node, async {
        let _ = stopped.await;
    }));
    assert_eq!(
        AdminClient::connect(ledger)
            .await
            .unwrap()
            .pid()
            .await
            .unwrap(),
        4242
    );

    // A second server on the same ledger refuses to start and leaves the first alone.
    let err = AdminServer::bind(ledger, ServerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::AlreadyRunning { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "another validator is running with ledger {}: {}/admin.rpc answers",
            ledger.display(),
            ledger.display()
        )
    );
    assert_eq!(
        AdminClient::connect(ledger)
            .await
            .unwrap()
            .pid()
            .await
            .unwrap(),
        4242
    );
    stop.send(()).unwrap();
    serving.await.unwrap();
    assert!(!socket_path(ledger).exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_socket_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(socket_path(dir.path()), "precious").unwrap();
    let err = AdminServer::bind(dir.path(), ServerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::NotASocket { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(socket_path(dir.path())).unwrap(),
        "precious"
    );
}

#[tokio::test]
async fn client_names_a_missing_socket() {
    let dir = tempfile::tempdir().unwrap();
    let err = AdminClient::connect(dir.path()).await.unwrap_err();
    assert!(matches!(err, ClientError::NoSocket { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "no validator is running with ledger {0}: {0}/admin.rpc does not exist",
            dir.path().display()
        )
    );
}

#[tokio::test]
async fn client_names_permission_denied() {
    let running = Running::start().await;
    let socket = socket_path(&running.ledger);
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|line| line.starts_with("Uid:") && line.split_whitespace().nth(1) == Some("0"));
    if root {
        // Root ignores the socket's mode: connect as `nobody` instead, with
        // this test binary running the ignored test below.
        std::fs::set_permissions(&running.ledger, std::fs::Permissions::from_mode(0o755)).unwrap();
        // `nobody` may not reach this binary where it was built (a build
        // directory under a private home): run a copy from a directory it can.
        let copy_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(copy_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = copy_dir.path().join("admin_rpc_as_nobody");
        std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let output = tokio::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy)
            .args([
                "--exact",
                "connect_as_another_user",
                "--ignored",
                "--nocapture",
            ])
            .env(OTHER_USER_LEDGER, &running.ledger)
            .output()
            .await
            .unwrap();
        let printed = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{printed}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(printed.contains("1 passed"), "{printed}");
    } else {
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = AdminClient::connect(&running.ledger).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "permission denied on {}: run as the validator's user",
                socket.display()
            )
        );
    }
    running.stop().await;
}

const OTHER_USER_LEDGER: &str = "TOWERLOCK_ADMIN_TEST_OTHER_USER_LEDGER";

/// Run by `client_names_permission_denied` as another user; does nothing otherwise.
#[tokio::test]
#[ignore = "run by client_names_permission_denied as another user"]
async fn connect_as_another_user() {
    let Some(ledger) = std::env::var_os(OTHER_USER_LEDGER) else {
        return;
    };
    let ledger = PathBuf::from(ledger);
    let err = AdminClient::connect(&ledger).await.unwrap_err();
    assert!(matches!(err, ClientError::PermissionDenied { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "permission denied on {}/admin.rpc: run as the validator's user",
            ledger.display()
        )
    );
}

// ---------------------------------------------------------------------------
// The subcommands

/// Runs a subcommand against `ledger` with `stdin`, returns what it printed.
async fn run_command(ledger: &Path, command: AdminCommand, stdin: &str) -> anyhow::Result<String> {
    let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
    let mut output = Vec::new();
    let console = Console {
        stdin: &mut input,
        stdout: &mut output,
        terminal: false,
    };
    run_with(ledger, command, console, std::future::pending()).await?;
    Ok(String::from_utf8(output).unwrap())
}

#[tokio::test]
async fn set_identity_reads_the_keypair_from_stdin() {
    let running = Running::start().await;
    let keypair = Keypair::new();
    let command = AdminCommand::SetIdentity {
        require_tower: false,
        keypair: None,
    };
    let printed = run_command(&running.ledger, command, &keypair_json(&keypair))
        .await
        .unwrap();
    assert_eq!(
        printed,
        format!("New validator identity: {}\n", keypair.pubkey())
    );
    assert_eq!(
        running.node.calls(),
        vec![format!("set_identity {}", keypair.pubkey())]
    );

    // Garbage on stdin: one clear sentence, and the node untouched.
    let command = AdminCommand::SetIdentity {
        require_tower: false,
        keypair: None,
    };
    let err = run_command(&running.ledger, command, "[1,2,3]\n")
        .await
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        "the keypair on stdin is unusable: invalid keypair: expected 64 bytes, got 3"
    );
    assert_eq!(running.node.calls().len(), 1);
    running.stop().await;
}

#[tokio::test]
async fn set_identity_with_a_file_and_require_tower() {
    let running = Running::start().await;
    let (keypair, path) = keypair_file(&running.ledger, "validator-keypair.json");
    let command = AdminCommand::SetIdentity {
        require_tower: false,
        keypair: Some(path.clone()),
    };
    let printed = run_command(&running.ledger, command, "").await.unwrap();
    assert_eq!(
        printed,
        format!("New validator identity: {}\n", keypair.pubkey())
    );

    let command = AdminCommand::SetIdentity {
        require_tower: true,
        keypair: Some(path),
    };
    let err = run_command(&running.ledger, command, "").await.unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "setIdentity failed: Unable to load tower file for identity {}",
            keypair.pubkey()
        )
    );
    running.stop().await;
}

#[tokio::test]
async fn other_subcommands_print_their_results() {
    let running = Running::start().await;
    let ledger = running.ledger.clone();

    let printed = run_command(&ledger, AdminCommand::Pid, "").await.unwrap();
    assert_eq!(printed, "4242\n");
    let printed = run_command(&ledger, AdminCommand::RpcAddress, "")
        .await
        .unwrap();
    assert_eq!(printed, "127.0.0.1:8899\n");
    let printed = run_command(&ledger, AdminCommand::ContactInfo, "")
        .await
        .unwrap();
    assert!(printed.starts_with(&format!(
        "Identity: {}\nGossip: 127.0.0.1:8001\n",
        running.node.contact_info().id
    )));
    assert!(printed.ends_with("Shred Version: 42\n"), "{printed}");

    let voter = Keypair::new();
    let add = AdminCommand::AuthorizedVoter(AuthorizedVoterCommand::Add { keypair: None });
    let printed = run_command(&ledger, add, &keypair_json(&voter))
        .await
        .unwrap();
    assert_eq!(
        printed,
        format!("Added authorized voter: {}\n", voter.pubkey())
    );
    let remove = AdminCommand::AuthorizedVoter(AuthorizedVoterCommand::RemoveAll);
    let printed = run_command(&ledger, remove, "").await.unwrap();
    assert_eq!(printed, "All authorized voters removed\n");
    let filter = AdminCommand::SetLogFilter {
        filter: "debug".into(),
    };
    assert_eq!(run_command(&ledger, filter, "").await.unwrap(), "");

    assert_eq!(
        running.node.calls(),
        vec![
            format!("add_authorized_voter {}", voter.pubkey()),
            "remove_all_authorized_voters".into(),
            "set_log_filter debug".into(),
        ]
    );

    let printed = run_command(
        &ledger,
        AdminCommand::Exit {
            force: true,
            no_wait_for_exit: true,
            timeout: 5,
            window: Default::default(),
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(printed, "Exit requested\n");
    running.server.await.unwrap();

    // Nothing runs any more: one sentence.
    let err = run_command(&ledger, AdminCommand::Pid, "")
        .await
        .unwrap_err();
    assert_eq!(
        format!("{err:#}"),
        format!(
            "no validator is running with ledger {0}: {0}/admin.rpc does not exist",
            ledger.display()
        )
    );
}

#[tokio::test]
async fn exit_waits_until_the_process_is_gone() {
    let node = FakeNode::new();
    let child = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = child.id();
    *node.child.lock().unwrap() = Some(child);
    let running = Running::start_with(node, ServerConfig::default()).await;
    let ledger = running.ledger.clone();

    let printed = run_command(
        &ledger,
        // --force: this fake node serves no RPC to judge a restart window by.
        AdminCommand::Exit {
            force: true,
            no_wait_for_exit: false,
            timeout: 60,
            window: Default::default(),
        },
        "",
    )
    .await
    .unwrap();
    assert_eq!(printed, "Validator exited\n");
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(!socket_path(&ledger).exists());
    running.server.await.unwrap();
}

#[tokio::test]
async fn monitor_prints_one_line_per_refresh_when_not_a_terminal() {
    let running = Running::start().await;

    /// Collects output lines; after the first the node goes back to
    /// starting, after the second the monitor is interrupted.
    struct Lines {
        node: Arc<FakeNode>,
        partial: Vec<u8>,
        lines: Arc<Mutex<Vec<String>>>,
        interrupt: Option<oneshot::Sender<()>>,
    }
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.partial.extend_from_slice(buf);
            while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let mut lines = self.lines.lock().unwrap();
                lines.push(String::from_utf8(line).unwrap());
                match lines.len() {
                    1 => self.node.starting.store(true, Ordering::SeqCst),
                    2 => drop(self.interrupt.take().map(|tx| tx.send(()))),
                    _ => {}
                }
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let lines = Arc::new(Mutex::new(Vec::new()));
    let (interrupt_tx, interrupt_rx) = oneshot::channel::<()>();
    let mut output = Lines {
        node: running.node.clone(),
        partial: Vec::new(),
        lines: lines.clone(),
        interrupt: Some(interrupt_tx),
    };
    let mut input = std::io::empty();
    let console = Console {
        stdin: &mut input,
        stdout: &mut output,
        terminal: false,
    };
    let interrupt = async {
        let _ = interrupt_rx.await;
    };
    run_with(&running.ledger, AdminCommand::Monitor, console, interrupt)
        .await
        .unwrap();
    let seen = lines.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let identity = running.node.status().identity;
    assert_eq!(
        seen[0],
        format!(
            "slot=1000 cluster_slot=1003 behind=3 role=voting identity={identity} vote_account={} last_vote=999 root=968 fence=12345 store_latency=2.5ms leader_produced=8 leader_skipped=1\n",
            Pubkey::new_from_array([7; 32])
        )
    );
    assert_eq!(
        seen[1],
        "towerlockStatus failed: Retry once validator start up is complete\n"
    );
    running.stop().await;
}

#[tokio::test]
async fn exit_accepts_a_validator_that_is_gone_before_answering() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::UnixListener::bind(socket_path(dir.path())).unwrap();
    // A validator that answers `pid`, then dies on `exit` without answering.
    let validator = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let pid: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(pid["method"], "pid");
        let answer = json!({"jsonrpc": "2.0", "id": pid["id"], "result": 4242});
        writer
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .unwrap();
        let exit: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(exit["method"], "exit");
    });
    let command = AdminCommand::Exit {
        force: true,
        no_wait_for_exit: true,
        timeout: 5,
        window: Default::default(),
    };
    let printed = run_command(dir.path(), command, "").await.unwrap();
    assert_eq!(printed, "Exit requested\n");
    validator.await.unwrap();
}

//! The admin RPC protocol: JSON-RPC 2.0 with positional params and agave's
//! method names. [`AdminRequest`] is the one type for a request on both
//! sides: the server builds it with [`AdminRequest::parse`], the client turns
//! it into JSON with [`AdminRequest::to_call`]. The shapes of the results are
//! the types of this module ([`ContactInfoView`], [`NodeStatus`], …).

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use solana_pubkey::Pubkey;

use super::keypair::{KeypairBytes, KeypairError};

/// File name of the admin socket inside the ledger directory (agave's).
pub const SOCKET_FILE_NAME: &str = "admin.rpc";

/// The admin socket of the validator using `ledger`.
pub fn socket_path(ledger: &Path) -> PathBuf {
    ledger.join(SOCKET_FILE_NAME)
}

/// JSON-RPC: the input is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the input is JSON but not a request.
pub const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the params do not fit the method (agave also uses it for "not now").
pub const INVALID_PARAMS: i64 = -32602;
/// JSON-RPC: the node failed to do what was asked.
pub const INTERNAL_ERROR: i64 = -32603;

/// agave's answer, with [`INVALID_PARAMS`], while the node is starting.
pub const STARTING_MESSAGE: &str = "Retry once validator start up is complete";

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// One of the JSON-RPC codes of this module (or another the server chose).
    pub code: i64,
    /// What went wrong, for a human.
    pub message: String,
    /// Optional details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// [`PARSE_ERROR`].
    pub fn parse_error(detail: impl fmt::Display) -> Self {
        Self::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// [`INVALID_REQUEST`].
    pub fn invalid_request(detail: impl fmt::Display) -> Self {
        Self::new(INVALID_REQUEST, format!("Invalid request: {detail}"))
    }

    /// [`METHOD_NOT_FOUND`].
    pub fn method_not_found(method: &str) -> Self {
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// [`INVALID_PARAMS`], with the message as is (agave's style).
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// [`INTERNAL_ERROR`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }
}

/// One admin request: a method and its params.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminRequest {
    /// `exit`: stop the node.
    Exit,
    /// `pid`: the node's process id.
    Pid,
    /// `startTime`: when the node started.
    StartTime,
    /// `startProgress`: where the node is in its start (agave's `ValidatorStartProgress`).
    StartProgress,
    /// `contactInfo`: the node's contact info.
    ContactInfo,
    /// `rpcAddress`: the node's JSON-RPC address, if it serves one.
    RpcAddress,
    /// `setIdentity [keypair_path, require_tower]`: the server reads the file.
    SetIdentity {
        /// Path of a solana-keygen JSON file, as the server sees it.
        keypair_path: PathBuf,
        /// Fail, changing nothing, when the new identity has no tower.
        require_tower: bool,
    },
    /// `setIdentityFromBytes [keypair_bytes, require_tower]`.
    SetIdentityFromBytes {
        /// The new identity.
        keypair: KeypairBytes,
        /// Fail, changing nothing, when the new identity has no tower.
        require_tower: bool,
    },
    /// `addAuthorizedVoter [keypair_path]`.
    AddAuthorizedVoter {
        /// Path of a solana-keygen JSON file, as the server sees it.
        keypair_path: PathBuf,
    },
    /// `addAuthorizedVoterFromBytes [keypair_bytes]`.
    AddAuthorizedVoterFromBytes {
        /// The voter.
        keypair: KeypairBytes,
    },
    /// `removeAllAuthorizedVoters`.
    RemoveAllAuthorizedVoters,
    /// `setLogFilter [filter]`: a tracing `EnvFilter` directive.
    SetLogFilter {
        /// The directive, e.g. `info,towerlock_validator=debug`.
        filter: String,
    },
    /// `towerlockStatus` (towerlock's own): the [`NodeStatus`] shown by `monitor`.
    TowerlockStatus,
}

impl AdminRequest {
    /// Every method name, in declaration order.
    pub const METHODS: [&'static str; 13] = [
        "exit",
        "pid",
        "startTime",
        "startProgress",
        "contactInfo",
        "rpcAddress",
        "setIdentity",
        "setIdentityFromBytes",
        "addAuthorizedVoter",
        "addAuthorizedVoterFromBytes",
        "removeAllAuthorizedVoters",
        "setLogFilter",
        "towerlockStatus",
    ];

    /// The JSON-RPC method name.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Exit => "exit",
            Self::Pid => "pid",
            Self::StartTime => "startTime",
            Self::StartProgress => "startProgress",
            Self::ContactInfo => "contactInfo",
            Self::RpcAddress => "rpcAddress",
            Self::SetIdentity { .. } => "setIdentity",
            Self::SetIdentityFromBytes { .. } => "setIdentityFromBytes",
            Self::AddAuthorizedVoter { .. } => "addAuthorizedVoter",
            Self::AddAuthorizedVoterFromBytes { .. } => "addAuthorizedVoterFromBytes",
            Self::RemoveAllAuthorizedVoters => "removeAllAuthorizedVoters",
            Self::SetLogFilter { .. } => "setLogFilter",
            Self::TowerlockStatus => "towerlockStatus",
        }
    }

    /// Whether the request changes the node (logged by the server).
    pub fn is_mutating(&self) -> bool {
        matches!(
            self,
            Self::Exit
                | Self::SetIdentity { .. }
                | Self::SetIdentityFromBytes { .. }
                | Self::AddAuthorizedVoter { .. }
                | Self::AddAuthorizedVoterFromBytes { .. }
                | Self::RemoveAllAuthorizedVoters
                | Self::SetLogFilter { .. }
        )
    }

    /// The positional params.
    pub fn params(&self) -> Value {
        let bytes = |keypair: &KeypairBytes| json!(keypair.as_bytes().to_vec());
        match self {
            Self::Exit
            | Self::Pid
            | Self::StartTime
            | Self::StartProgress
            | Self::ContactInfo
            | Self::RpcAddress
            | Self::RemoveAllAuthorizedVoters
            | Self::TowerlockStatus => json!([]),
            Self::SetIdentity {
                keypair_path,
                require_tower,
            } => json!([keypair_path.to_string_lossy(), require_tower]),
            Self::SetIdentityFromBytes {
                keypair,
                require_tower,
            } => json!([bytes(keypair), require_tower]),
            Self::AddAuthorizedVoter { keypair_path } => json!([keypair_path.to_string_lossy()]),
            Self::AddAuthorizedVoterFromBytes { keypair } => json!([bytes(keypair)]),
            Self::SetLogFilter { filter } => json!([filter]),
        }
    }

    /// The JSON-RPC 2.0 call object with `id`.
    pub fn to_call(&self, id: u64) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "method": self.method(), "params": self.params()})
    }

    /// Builds the request for `method` from its params (absent, `null` or a
    /// positional array). Errors are [`METHOD_NOT_FOUND`] or [`INVALID_PARAMS`].
    ///
    /// `require_tower` may be omitted (it defaults to `false`).
    pub fn parse(method: &str, params: Option<&Value>) -> Result<Self, RpcError> {
        if !Self::METHODS.contains(&method) {
            return Err(RpcError::method_not_found(method));
        }
        let params = Params::new(method, params)?;
        let request = match method {
            "exit" => Self::Exit,
            "pid" => Self::Pid,
            "startTime" => Self::StartTime,
            "startProgress" => Self::StartProgress,
            "contactInfo" => Self::ContactInfo,
            "rpcAddress" => Self::RpcAddress,
            "removeAllAuthorizedVoters" => Self::RemoveAllAuthorizedVoters,
            "towerlockStatus" => Self::TowerlockStatus,
            "setIdentity" => Self::SetIdentity {
                keypair_path: params.string(0, "keypair_path")?.into(),
                require_tower: params.optional_bool(1, "require_tower")?,
            },
            "setIdentityFromBytes" => Self::SetIdentityFromBytes {
                keypair: params.keypair(0)?,
                require_tower: params.optional_bool(1, "require_tower")?,
            },
            "addAuthorizedVoter" => Self::AddAuthorizedVoter {
                keypair_path: params.string(0, "keypair_path")?.into(),
            },
            "addAuthorizedVoterFromBytes" => Self::AddAuthorizedVoterFromBytes {
                keypair: params.keypair(0)?,
            },
            "setLogFilter" => Self::SetLogFilter {
                filter: params.string(0, "filter")?,
            },
            _ => unreachable!("checked against METHODS"),
        };
        params.check_count(&request)?;
        Ok(request)
    }

    /// How many positional params the method takes.
    fn param_count(&self) -> usize {
        match self {
            Self::SetIdentity { .. } | Self::SetIdentityFromBytes { .. } => 2,
            Self::AddAuthorizedVoter { .. }
            | Self::AddAuthorizedVoterFromBytes { .. }
            | Self::SetLogFilter { .. } => 1,
            _ => 0,
        }
    }
}

/// Positional params of one call, with errors that name the method and param.
struct Params<'a> {
    method: &'a str,
    values: &'a [Value],
}

impl<'a> Params<'a> {
    fn new(method: &'a str, params: Option<&'a Value>) -> Result<Self, RpcError> {
        let values: &[Value] = match params {
            None | Some(Value::Null) => &[],
            Some(Value::Array(values)) => values,
            Some(_) => {
                return Err(RpcError::invalid_params(format!(
                    "Invalid params for {method}: params must be a positional array"
                )))
            }
        };
        Ok(Self { method, values })
    }

    fn error(&self, message: impl fmt::Display) -> RpcError {
        RpcError::invalid_params(format!("Invalid params for {}: {message}", self.method))
    }

    fn required(&self, index: usize, name: &str) -> Result<&'a Value, RpcError> {
        self.values
            .get(index)
            .ok_or_else(|| self.error(format_args!("missing {name} (param {})", index + 1)))
    }

    fn string(&self, index: usize, name: &str) -> Result<String, RpcError> {
        match self.required(index, name)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(self.error(format_args!(
                "{name} (param {}) must be a string, not {}",
                index + 1,
                kind(other)
            ))),
        }
    }

    fn optional_bool(&self, index: usize, name: &str) -> Result<bool, RpcError> {
        match self.values.get(index) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.error(format_args!(
                "{name} (param {}) must be a boolean, not {}",
                index + 1,
                kind(other)
            ))),
        }
    }

    fn keypair(&self, index: usize) -> Result<KeypairBytes, RpcError> {
        let name = "keypair_bytes";
        let not_bytes = || {
            self.error(format_args!(
                "{name} (param {}) must be an array of 64 numbers from 0 to 255",
                index + 1
            ))
        };
        let Value::Array(items) = self.required(index, name)? else {
            return Err(not_bytes());
        };
        let bytes = items
            .iter()
            .map(|item| item.as_u64().and_then(|n| u8::try_from(n).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(not_bytes)?;
        KeypairBytes::from_slice(&bytes).map_err(|err: KeypairError| self.error(err))
    }

    fn check_count(&self, request: &AdminRequest) -> Result<(), RpcError> {
        let expected = request.param_count();
        if self.values.len() > expected {
            return Err(self.error(format_args!(
                "expected at most {expected} params, got {}",
                self.values.len()
            )));
        }
        Ok(())
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A request as read off the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The call's id; `None` for a notification (which gets no response).
    pub id: Option<Value>,
    /// What is asked.
    pub request: AdminRequest,
}

/// A call that could not be understood: the error to answer, and the id to
/// answer it with (`null` when the id itself could not be read).
#[derive(Debug, Clone, PartialEq)]
pub struct BadCall {
    /// The id of the response.
    pub id: Value,
    /// The error.
    pub error: RpcError,
    /// Whether the call was a well-formed notification (no id) naming an
    /// unknown method or bad params: then no response is sent.
    pub notification: bool,
}

impl Call {
    /// Reads one JSON-RPC 2.0 call object.
    pub fn from_value(value: &Value) -> Result<Self, BadCall> {
        let bad = |id: Value, error, notification| BadCall {
            id,
            error,
            notification,
        };
        let Value::Object(object) = value else {
            return Err(bad(
                Value::Null,
                RpcError::invalid_request("a request must be a JSON object"),
                false,
            ));
        };
        let id = match object.get("id") {
            None => None,
            Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id.clone()),
            Some(_) => {
                return Err(bad(
                    Value::Null,
                    RpcError::invalid_request("id must be a number, a string or null"),
                    false,
                ))
            }
        };
        let reply_id = id.clone().unwrap_or(Value::Null);
        if object.get("jsonrpc") != Some(&Value::from("2.0")) {
            return Err(bad(
                reply_id,
                RpcError::invalid_request(r#"jsonrpc must be "2.0""#),
                false,
            ));
        }
        let Some(Value::String(method)) = object.get("method") else {
            return Err(bad(
                reply_id,
                RpcError::invalid_request("method must be a string"),
                false,
            ));
        };
        match AdminRequest::parse(method, object.get("params")) {
            Ok(request) => Ok(Self { id, request }),
            Err(error) => Err(bad(reply_id, error, id.is_none())),
        }
    }
}

/// A successful response object.
pub fn success_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "result": result, "id": id})
}

/// An error response object.
pub fn error_response(id: Value, error: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "error": error, "id": id})
}

/// A response as the client reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The id of the call answered.
    pub id: Value,
    /// Its result or error.
    pub outcome: Result<Value, RpcError>,
}

impl Response {
    /// Reads one JSON-RPC 2.0 response object.
    pub fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(mut object) = value else {
            return Err("a response must be a JSON object".into());
        };
        let id = object.remove("id").unwrap_or(Value::Null);
        let outcome = match (object.remove("result"), object.remove("error")) {
            (_, Some(error)) if !error.is_null() => Err(serde_json::from_value(error)
                .map_err(|err| format!("malformed error object: {err}"))?),
            (Some(result), _) => Ok(result),
            (None, _) => return Err("a response needs a result or an error".into()),
        };
        Ok(Self { id, outcome })
    }
}

/// Serde for a [`Pubkey`] as a base-58 string.
pub mod pubkey_string {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use solana_pubkey::Pubkey;

    /// Serializes as base-58.
    pub fn serialize<S: Serializer>(pubkey: &Pubkey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(pubkey)
    }

    /// Deserializes from base-58.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Pubkey, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }

    /// The same for `Option<Pubkey>`.
    pub mod option {
        use super::*;

        /// Serializes as base-58 or null.
        pub fn serialize<S: Serializer>(
            pubkey: &Option<Pubkey>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match pubkey {
                Some(pubkey) => serializer.collect_str(pubkey),
                None => serializer.serialize_none(),
            }
        }

        /// Deserializes from base-58 or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Pubkey>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|text| text.parse().map_err(D::Error::custom))
                .transpose()
        }
    }
}

/// The result of `contactInfo`: what the node publishes in gossip (field
/// names as agave's `AdminRpcContactInfo`, for the addresses towerlock has).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInfoView {
    /// The node's identity.
    #[serde(with = "pubkey_string")]
    pub id: Pubkey,
    /// Gossip address.
    pub gossip: Option<SocketAddr>,
    /// Transaction ingest address.
    pub tpu: Option<SocketAddr>,
    /// Vote ingest address.
    pub tpu_vote: Option<SocketAddr>,
    /// JSON-RPC address.
    pub rpc: Option<SocketAddr>,
    /// JSON-RPC websocket address.
    pub rpc_pubsub: Option<SocketAddr>,
    /// Microseconds since the Unix epoch at which this identity started here.
    pub outset: u64,
    /// Milliseconds since the Unix epoch of the last update.
    pub last_updated_timestamp: u64,
    /// The cluster's shred version.
    pub shred_version: u16,
}

impl fmt::Display for ContactInfoView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |addr: &Option<SocketAddr>| match addr {
            Some(addr) => addr.to_string(),
            None => "none".to_string(),
        };
        writeln!(f, "Identity: {}", self.id)?;
        writeln!(f, "Gossip: {}", addr(&self.gossip))?;
        writeln!(f, "TPU: {}", addr(&self.tpu))?;
        writeln!(f, "TPU Vote: {}", addr(&self.tpu_vote))?;
        writeln!(f, "JSON RPC: {}", addr(&self.rpc))?;
        writeln!(f, "JSON RPC PubSub: {}", addr(&self.rpc_pubsub))?;
        writeln!(f, "Outset: {}", self.outset)?;
        writeln!(f, "Last Updated Timestamp: {}", self.last_updated_timestamp)?;
        write!(f, "Shred Version: {}", self.shred_version)
    }
}

/// What the node is doing about votes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Holds the fence and votes.
    #[serde(rename = "voting")]
    Voting,
    /// Replays without voting: its identity is not the vote account's node,
    /// or it has no authorized voter keypair.
    #[serde(rename = "hot spare")]
    HotSpare,
    /// Catching up or taking over; not voting yet.
    #[default]
    #[serde(rename = "starting")]
    Starting,
    /// Storage is unavailable and the node runs with `--etcd-unavailable
    /// skip-vote`: it votes nothing until a store succeeds.
    #[serde(rename = "skip-vote")]
    SkipVote,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Voting => "voting",
            Self::HotSpare => "hot spare",
            Self::Starting => "starting",
            Self::SkipVote => "skip-vote",
        })
    }
}

/// The result of `towerlockStatus`: one screen of `monitor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The slot the node has replayed up to.
    pub slot: u64,
    /// The node's identity.
    #[serde(with = "pubkey_string")]
    pub identity: Pubkey,
    /// The vote account, if any.
    #[serde(with = "pubkey_string::option")]
    pub vote_account: Option<Pubkey>,
    /// What the node does about votes.
    pub role: Role,
    /// The slot of the last vote sent.
    pub last_vote_slot: Option<u64>,
    /// The tower's root.
    pub root: Option<u64>,
    /// The fencing token (etcd revision of the takeover), when storage is fenced.
    pub fence_token: Option<i64>,
    /// Latency of the last tower store, in milliseconds.
    pub last_store_latency_ms: Option<f64>,
    /// Leader slots in which the node produced a block.
    pub leader_slots_produced: u64,
    /// Leader slots the node did not produce.
    pub leader_slots_skipped: u64,
    /// The cluster's slot, when known.
    pub cluster_slot: Option<u64>,
    /// This process's random instance id (as written to the fence and sent
    /// with each vote).
    #[serde(default)]
    pub instance: String,
    /// The last vote of the tower loaded by the latest takeover (start-up
    /// or set-identity), when the node holds the fence.
    #[serde(default)]
    pub loaded_last_vote: Option<u64>,
    /// Vote transactions sent, and of those the cluster refused.
    #[serde(default)]
    pub votes_sent: u64,
    #[serde(default)]
    pub votes_rejected: u64,
    /// Fenced writes that failed, by kind.
    #[serde(default)]
    pub store_failures: StoreFailures,
}

/// Fenced writes (tower stores, takeovers, leader fences) that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFailures {
    /// Another instance held the fence.
    pub lock_lost: u64,
    /// Storage did not answer: the outcome is unknown.
    pub unavailable: u64,
    /// Any other refusal.
    pub other: u64,
}

impl NodeStatus {
    /// How many slots the node is behind the cluster, when the cluster's slot is known.
    pub fn behind_by(&self) -> Option<u64> {
        self.cluster_slot
            .map(|cluster| cluster.saturating_sub(self.slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use solana_keypair::Keypair;

    fn all_requests() -> Vec<AdminRequest> {
        let keypair = KeypairBytes::from_keypair(&Keypair::new());
        vec![
            AdminRequest::Exit,
            AdminRequest::Pid,
            AdminRequest::StartTime,
            AdminRequest::StartProgress,
            AdminRequest::ContactInfo,
            AdminRequest::RpcAddress,
            AdminRequest::SetIdentity {
                keypair_path: "/k/id.json".into(),
                require_tower: true,
            },
            AdminRequest::SetIdentityFromBytes {
                keypair: keypair.clone(),
                require_tower: false,
            },
            AdminRequest::AddAuthorizedVoter {
                keypair_path: "voter.json".into(),
            },
            AdminRequest::AddAuthorizedVoterFromBytes { keypair },
            AdminRequest::RemoveAllAuthorizedVoters,
            AdminRequest::SetLogFilter {
                filter: "info".into(),
            },
            AdminRequest::TowerlockStatus,
        ]
    }

    #[test]
    fn every_request_round_trips_through_json() {
        let requests = all_requests();
        let methods: Vec<_> = requests.iter().map(AdminRequest::method).collect();
        assert_eq!(methods, AdminRequest::METHODS);
        for (id, request) in requests.into_iter().enumerate() {
            let text = request.to_call(id as u64).to_string();
            let call = Call::from_value(&serde_json::from_str(&text).unwrap()).unwrap();
            assert_eq!(call.id, Some(Value::from(id)));
            assert_eq!(call.request, request);
        }
    }

    #[test]
    fn agave_param_shapes() {
        let call = Call::from_value(&json!({
            "jsonrpc": "2.0", "id": "x", "method": "setIdentity", "params": ["/a.json", true]
        }))
        .unwrap();
        assert_eq!(
            call.request,
            AdminRequest::SetIdentity {
                keypair_path: "/a.json".into(),
                require_tower: true
            }
        );
        // require_tower may be omitted; no-param methods accept absent or null params.
        assert!(AdminRequest::parse("setIdentity", Some(&json!(["/a.json"]))).is_ok());
        assert_eq!(AdminRequest::parse("pid", None), Ok(AdminRequest::Pid));
        assert_eq!(
            AdminRequest::parse("pid", Some(&Value::Null)),
            Ok(AdminRequest::Pid)
        );
    }

    #[test]
    fn bad_params_are_invalid_params() {
        let cases = [
            (
                "setIdentity",
                json!([1, true]),
                "keypair_path (param 1) must be a string, not a number",
            ),
            (
                "setIdentity",
                json!(["a", "yes"]),
                "require_tower (param 2) must be a boolean",
            ),
            ("setIdentity", json!([]), "missing keypair_path (param 1)"),
            (
                "setIdentityFromBytes",
                json!([[1, 2, 3], false]),
                "expected 64 bytes, got 3",
            ),
            (
                "setIdentityFromBytes",
                json!(["abc"]),
                "must be an array of 64 numbers",
            ),
            (
                "addAuthorizedVoterFromBytes",
                json!([[256]]),
                "must be an array of 64 numbers",
            ),
            ("pid", json!([1]), "expected at most 0 params, got 1"),
            (
                "setLogFilter",
                json!({"filter": "x"}),
                "params must be a positional array",
            ),
        ];
        for (method, params, expected) in cases {
            let err = AdminRequest::parse(method, Some(&params)).unwrap_err();
            assert_eq!(err.code, INVALID_PARAMS, "{method} {params}");
            assert!(
                err.message.contains(expected),
                "{method} {params}: {}",
                err.message
            );
            assert!(err.message.contains(method), "{}", err.message);
        }
    }

    #[test]
    fn malformed_calls() {
        let err =
            Call::from_value(&json!({"jsonrpc": "2.0", "id": 3, "method": "nope"})).unwrap_err();
        assert_eq!((err.id, err.error.code), (json!(3), METHOD_NOT_FOUND));
        let err = Call::from_value(&json!({"id": 3, "method": "pid"})).unwrap_err();
        assert_eq!(err.error.code, INVALID_REQUEST);
        let err = Call::from_value(&json!([1])).unwrap_err();
        assert_eq!((err.id, err.error.code), (Value::Null, INVALID_REQUEST));
        let err = Call::from_value(&json!({"jsonrpc": "2.0", "method": 5})).unwrap_err();
        assert!(!err.notification);
        let err = Call::from_value(&json!({"jsonrpc": "2.0", "method": "nope"})).unwrap_err();
        assert!(err.notification);
    }

    #[test]
    fn results_serialize_readably() {
        let identity = Keypair::new();
        let status = NodeStatus {
            slot: 10,
            identity: solana_signer::Signer::pubkey(&identity),
            vote_account: None,
            role: Role::HotSpare,
            last_vote_slot: None,
            root: Some(3),
            fence_token: Some(42),
            last_store_latency_ms: Some(1.5),
            leader_slots_produced: 1,
            leader_slots_skipped: 0,
            cluster_slot: Some(12),
            instance: "ab".repeat(16),
            loaded_last_vote: Some(9),
            votes_sent: 5,
            votes_rejected: 1,
            store_failures: StoreFailures::default(),
        };
        let value = serde_json::to_value(&status).unwrap();
        assert_eq!(value["role"], "hot spare");
        assert_eq!(value["identity"], status.identity.to_string());
        assert_eq!(value["vote_account"], Value::Null);
        assert_eq!(serde_json::from_value::<NodeStatus>(value).unwrap(), status);
        assert_eq!(status.behind_by(), Some(2));
    }

    #[test]
    fn responses() {
        let ok = Response::from_value(success_response(json!(1), json!(7))).unwrap();
        assert_eq!(ok.outcome, Ok(json!(7)));
        let error = RpcError::invalid_params(STARTING_MESSAGE);
        let err = Response::from_value(error_response(json!(1), &error)).unwrap();
        assert_eq!(err.outcome, Err(error));
    }
}

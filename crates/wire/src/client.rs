//! A small client for the cluster: JSON-RPC over HTTP and websocket
//! subscriptions (see [`crate::api`] for the protocol).

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use solana_transaction::Transaction;
use tokio_tungstenite::tungstenite::Message;

use crate::api::{
    SendTransactionConfig, SignedContactInfo, SubmitBlock, SubmitBlockResult, PUBLISH_CONTACT_INFO,
    SUBMIT_BLOCK,
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cluster answered with a JSON-RPC error.
    #[error("JSON-RPC error {code}: {message}")]
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// Connecting or transferring failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer did not have the expected shape.
    #[error("unexpected answer: {0}")]
    Decode(String),
    /// The websocket closed.
    #[error("the subscription closed")]
    Closed,
}

/// `GET url` as text (a Prometheus metrics page).
pub async fn get_text(url: &str) -> Result<String, ClientError> {
    let request = hyper::Request::get(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| ClientError::Transport(format!("{url}: {e}")))?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let (status, bytes) = send(&client, request).await?;
    if !status.is_success() {
        return Err(ClientError::Transport(format!("{url} answered {status}")));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| ClientError::Decode(e.to_string()))
}

/// Sends `request` and reads the whole answer.
async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, Bytes), ClientError> {
    let response = client
        .request(request)
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .to_bytes();
    Ok((status, bytes))
}

/// JSON-RPC over HTTP.
pub struct RpcClient {
    url: String,
    client: Client<HttpConnector, Full<Bytes>>,
    next_id: AtomicU64,
}

impl RpcClient {
    /// `url` like `http://127.0.0.1:8899`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            next_id: AtomicU64::new(1),
        }
    }

    /// Posts a raw body and returns the parsed JSON answer.
    pub async fn post(&self, body: impl Into<Bytes>) -> Result<Value, ClientError> {
        let request = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (_, bytes) = send(&self.client, request).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Calls `method` with positional `params`; returns `result`.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let mut answer = self.post(body.to_string()).await?;
        if let Some(error) = answer.get("error") {
            return Err(ClientError::Rpc {
                code: error["code"].as_i64().unwrap_or_default(),
                message: error["message"].as_str().unwrap_or_default().to_string(),
                data: error.get("data").cloned(),
            });
        }
        answer
            .get_mut("result")
            .map(Value::take)
            .ok_or_else(|| ClientError::Decode(format!("no result in {answer}")))
    }

    /// [`RpcClient::call`], decoding the result.
    pub async fn call_as<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ClientError> {
        let result = self.call(method, params).await?;
        serde_json::from_value(result).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// `sendTransaction` (base64), naming the sending instance.
    pub async fn send_transaction(
        &self,
        tx: &Transaction,
        instance: Option<&str>,
        skip_preflight: bool,
    ) -> Result<String, ClientError> {
        let bytes = bincode::serialize(tx).map_err(|e| ClientError::Decode(e.to_string()))?;
        let config = SendTransactionConfig {
            encoding: Some("base64".into()),
            skip_preflight,
            instance: instance.map(str::to_string),
        };
        self.call_as(
            "sendTransaction",
            json!([
                base64::engine::general_purpose::STANDARD.encode(bytes),
                config
            ]),
        )
        .await
    }

    /// An account's data (`getAccountInfo`, base64) at `commitment`;
    /// `None` when there is no such account.
    pub async fn account_data(
        &self,
        pubkey: &solana_pubkey::Pubkey,
        commitment: &str,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let result = self
            .call(
                "getAccountInfo",
                json!([pubkey.to_string(), { "encoding": "base64", "commitment": commitment }]),
            )
            .await?;
        let value = &result["value"];
        if value.is_null() {
            return Ok(None);
        }
        let encoded = value["data"][0]
            .as_str()
            .ok_or_else(|| ClientError::Decode(format!("no base64 data in {value}")))?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map(Some)
            .map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// The newest blockhash at `processed` commitment.
    pub async fn latest_blockhash(&self) -> Result<solana_hash::Hash, ClientError> {
        let result = self
            .call("getLatestBlockhash", json!([{ "commitment": "processed" }]))
            .await?;
        result["value"]["blockhash"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ClientError::Decode(format!("no blockhash in {result}")))
    }

    pub async fn submit_block(
        &self,
        block: &SubmitBlock,
    ) -> Result<SubmitBlockResult, ClientError> {
        self.call_as(SUBMIT_BLOCK, json!([block])).await
    }

    pub async fn publish_contact_info(
        &self,
        contact: &SignedContactInfo,
    ) -> Result<(), ClientError> {
        self.call(PUBLISH_CONTACT_INFO, json!([contact]))
            .await
            .map(|_| ())
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One websocket subscription.
pub struct Subscription {
    socket: Socket,
    pub id: u64,
}

impl Subscription {
    /// Connects to `ws_url` (like `ws://127.0.0.1:8899`) and subscribes.
    pub async fn open(ws_url: &str, method: &str) -> Result<Self, ClientError> {
        use futures_util::{SinkExt, StreamExt};
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let call = json!({ "jsonrpc": "2.0", "id": 1, "method": method });
        socket
            .send(Message::Text(call.to_string().into()))
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        loop {
            let message = socket.next().await.ok_or(ClientError::Closed)?;
            let message = message.map_err(|e| ClientError::Transport(e.to_string()))?;
            if let Message::Text(text) = message {
                let answer: Value =
                    serde_json::from_str(&text).map_err(|e| ClientError::Decode(e.to_string()))?;
                let id = answer["result"].as_u64().ok_or_else(|| {
                    ClientError::Decode(format!("subscription refused: {answer}"))
                })?;
                return Ok(Self { socket, id });
            }
        }
    }

    /// The next notification's `result`.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<T, ClientError> {
        use futures_util::StreamExt;
        loop {
            let message = self.socket.next().await.ok_or(ClientError::Closed)?;
            match message.map_err(|e| ClientError::Transport(e.to_string()))? {
                Message::Text(text) => {
                    let mut value: Value = serde_json::from_str(&text)
                        .map_err(|e| ClientError::Decode(e.to_string()))?;
                    if value["params"]["subscription"].as_u64() != Some(self.id) {
                        continue;
                    }
                    let result = value["params"]["result"].take();
                    return serde_json::from_value(result)
                        .map_err(|e| ClientError::Decode(e.to_string()));
                }
                Message::Close(_) => return Err(ClientError::Closed),
                _ => continue,
            }
        }
    }
}

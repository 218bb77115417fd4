//! The node's own JSON-RPC: what only the node knows (`getHealth`,
//! `getIdentity`, `getSlot`, `getVersion`) is answered here; every other
//! method is passed through to the cluster, so agave-style tools pointed at
//! the node work.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::Bytes,
    extract::State,
    http::StatusCode,
    routing::{get, post},
    Router,
};
use serde_json::{json, Value};
use tokio::sync::watch;
use towerlock_wire::client::RpcClient;

use super::driver::Published;
use crate::health::Health;

#[derive(Clone)]
struct RpcState {
    published: watch::Receiver<Published>,
    cluster: Arc<RpcClient>,
    max_behind: u64,
}

/// Serves the node's RPC on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    published: watch::Receiver<Published>,
    cluster_url: String,
    max_behind: u64,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = RpcState {
        published,
        cluster: Arc::new(RpcClient::new(cluster_url)),
        max_behind,
    };
    let app = Router::new()
        .route("/", post(handle))
        .route("/health", get(health))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// How far the node is behind the cluster, if known.
async fn behind(state: &RpcState) -> Option<u64> {
    let ours = state.published.borrow().status.slot;
    let theirs = state
        .cluster
        .call("getSlot", json!([{ "commitment": "processed" }]))
        .await
        .ok()?
        .as_u64()?;
    Some(theirs.saturating_sub(ours))
}

/// The node's own health: agave's `getHealth` judgement of itself.
async fn health_of(state: &RpcState) -> Health {
    let behind = behind(state).await;
    let caught_up = state.published.borrow().caught_up;
    Health::judge(behind, caught_up, state.max_behind)
}

async fn health(State(state): State<RpcState>) -> &'static str {
    match health_of(&state).await {
        Health::Ok => "ok",
        Health::Behind { .. } => "behind",
        Health::Unknown => "unknown",
    }
}

fn ok(id: &Value, result: Value) -> Value {
    json!({ "jsonrpc": "2.0", "result": result, "id": id })
}

fn error(id: &Value, code: i64, message: String, data: Option<Value>) -> Value {
    let mut error = json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({ "jsonrpc": "2.0", "error": error, "id": id })
}

async fn handle(State(state): State<RpcState>, body: Bytes) -> (StatusCode, String) {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        let answer = error(&Value::Null, -32700, "Parse error".into(), None);
        return (StatusCode::OK, answer.to_string());
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let method = request.get("method").and_then(Value::as_str).unwrap_or("");
    let status = state.published.borrow().status.clone();
    let answer = match method {
        "getIdentity" => ok(&id, json!({ "identity": status.identity.to_string() })),
        "getSlot" => ok(&id, json!(status.slot)),
        "getVersion" => ok(
            &id,
            json!({ "solana-core": towerlock_wire::api::SOLANA_CORE_VERSION,
                    "feature-set": towerlock_wire::api::FEATURE_SET,
                    "towerlock": env!("CARGO_PKG_VERSION") }),
        ),
        "getHealth" => match health_of(&state).await {
            Health::Ok => ok(&id, json!("ok")),
            Health::Behind { slots } => error(
                &id,
                -32005,
                format!("Node is behind by {slots} slots"),
                Some(json!({ "numSlotsBehind": slots })),
            ),
            Health::Unknown => error(
                &id,
                -32005,
                "Node is unhealthy".into(),
                Some(json!({ "numSlotsBehind": null })),
            ),
        },
        // Everything else is the cluster's to answer.
        _ => match state.cluster.post(body).await {
            Ok(answer) => answer,
            Err(err) => error(&id, -32603, format!("cluster unreachable: {err}"), None),
        },
    };
    (StatusCode::OK, answer.to_string())
}

/// The address a listener bound to, for logs and the contact info.
pub fn local_addr(listener: &tokio::net::TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

#[cfg(test)]
mod tests {
    use super::Health;

    #[test]
    fn health_is_ok_only_when_caught_up_and_near_the_tip() {
        assert_eq!(Health::judge(Some(3), true, 128), Health::Ok);
        assert_eq!(Health::judge(Some(128), true, 128), Health::Ok);
        assert_eq!(
            Health::judge(Some(129), true, 128),
            Health::Behind { slots: 129 }
        );
        // Far behind says by how much, caught up or not.
        assert_eq!(
            Health::judge(Some(500), false, 128),
            Health::Behind { slots: 500 }
        );
        // Near the tip but not caught up yet: not "behind by 0 slots".
        assert_eq!(Health::judge(Some(0), false, 128), Health::Unknown);
        // The cluster did not answer.
        assert_eq!(Health::judge(None, true, 128), Health::Unknown);
    }
}

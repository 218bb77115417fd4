//! The validator service: the node and the servers around it (admin socket,
//! node RPC, metrics) under one [`run`], which owns every task.
//!
//! Shutdown stops the node first — between two actions, so a store in
//! flight finishes — then drains the servers. No task outlives `run`.

use std::{future::Future, path::PathBuf, sync::Arc};

use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinSet,
};

use crate::{
    admin::{self, AdminServer, NodeStatus, ServeError},
    metrics::Metrics,
    node::{self, handle::LogFilterSetter, NodeConfig, NodeExit, NodeHandle, Published},
};

/// The node and where its servers listen, all bound or opened already.
pub struct ServiceConfig {
    pub node: NodeConfig,
    /// Holds the admin socket, `admin.rpc`.
    pub ledger: PathBuf,
    pub admin: admin::ServerConfig,
    /// The node's own JSON-RPC (`--rpc-port`).
    pub rpc_listener: Option<TcpListener>,
    /// Prometheus metrics at `/metrics` (`--metrics-addr`).
    pub metrics_listener: Option<TcpListener>,
    pub set_log_filter: Option<LogFilterSetter>,
    /// Unix time the etcd client certificate expires, for the metrics.
    pub cert_expiry: Option<i64>,
}

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The admin socket could not be opened (another validator running on
    /// this ledger, permissions).
    #[error("cannot open the admin socket: {0}")]
    Admin(#[from] ServeError),
    /// The node stopped for a reason of its own.
    #[error(transparent)]
    Node(#[from] NodeExit),
}

/// Runs the node and its servers until the node stops or `shutdown`
/// resolves.
pub async fn run(
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let node = config.node;
    let (published_tx, published) = watch::channel(Published {
        status: NodeStatus {
            identity: solana_signer::Signer::pubkey(&node.identity),
            vote_account: Some(node.vote_account),
            instance: node.storage.instance().id.to_string(),
            ..NodeStatus::default()
        },
        contact: None,
        caught_up: false,
    });
    let metrics = Arc::new(Metrics::default());
    if let Some(expiry) = config.cert_expiry {
        metrics.set_cert_expiry(expiry);
    }
    let (stop, _) = watch::channel(false);
    let stopped = || {
        let mut stop = stop.subscribe();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    };
    let mut servers = JoinSet::new();

    // The admin socket comes first, so that it answers "starting" during
    // start-up (agave's behaviour).
    let admin_server = AdminServer::bind(&config.ledger, config.admin).await?;
    tracing::info!(socket = %admin_server.socket_path().display(), "admin RPC");
    let (commands, commands_rx) = mpsc::channel(16);
    let handler = Arc::new(NodeHandle::new(
        commands,
        published.clone(),
        node.rpc_addr,
        config.set_log_filter,
    ));
    servers.spawn(admin_server.run(handler, stopped()));
    if let Some(listener) = config.rpc_listener {
        let serve = node::rpc::serve(
            listener,
            published.clone(),
            node.cluster_url.clone(),
            node.health_check_slot_distance,
            stopped(),
        );
        servers.spawn(async move {
            if let Err(err) = serve.await {
                tracing::warn!(error = %err, "the node RPC stopped");
            }
        });
    }
    if let Some(listener) = config.metrics_listener {
        servers.spawn(serve_metrics(listener, metrics.clone(), stopped()));
    }

    let result = node::run(node, commands_rx, published_tx, metrics, shutdown).await;
    stop.send_replace(true);
    while servers.join_next().await.is_some() {}
    Ok(result?)
}

async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { metrics.render() }
        }),
    );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics");
    }
    if let Err(err) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(error = %err, "the metrics server stopped");
    }
}

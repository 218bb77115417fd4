//! The admin server: a unix socket at `<ledger>/admin.rpc` answering
//! [`AdminRequest`]s by calling an [`AdminHandler`].
//!
//! Shape (as mini-redis): [`AdminServer::bind`] claims the socket,
//! [`AdminServer::run`] serves until the `shutdown` future completes, then
//! removes the socket, tells every connection to stop after its current
//! request, and waits for them (up to a deadline). [`serve`] does both.

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::framing::{Frame, FrameDecoder};
use super::handler::{AdminError, AdminHandler};
use super::keypair::read_keypair_file;
use super::protocol::{
    error_response, socket_path, success_response, AdminRequest, Call, RpcError,
};

/// Options of the admin server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Accept keypair files (named by `setIdentity`, `addAuthorizedVoter`)
    /// that group or others may access. Off by default.
    pub allow_insecure_keypair_files: bool,
    /// How long [`AdminServer::run`] waits, after shutdown, for connections
    /// to finish their current request before dropping them.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            allow_insecure_keypair_files: false,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the admin socket could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A live process answers on the socket.
    #[error("another validator is running with ledger {}: {} answers", ledger.display(), socket.display())]
    AlreadyRunning {
        /// The ledger directory.
        ledger: PathBuf,
        /// Its admin socket.
        socket: PathBuf,
    },
    /// Something other than a socket is at the socket's path.
    #[error("{} exists and is not a socket; move it away", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The ledger directory is missing or unusable, or the socket could not be created.
    #[error("cannot create the admin socket {}: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
}

/// Serves the admin RPC on `<ledger>/admin.rpc` with the default
/// [`ServerConfig`] until `shutdown` completes.
pub async fn serve(
    ledger: &Path,
    handler: Arc<dyn AdminHandler>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    AdminServer::bind(ledger, ServerConfig::default())
        .await?
        .run(handler, shutdown)
        .await;
    Ok(())
}

/// A bound admin socket, not yet serving. Connections made now wait in the
/// backlog until [`run`](Self::run). Dropping it removes the socket.
#[derive(Debug)]
pub struct AdminServer {
    listener: UnixListener,
    guard: SocketGuard,
    config: ServerConfig,
}

impl AdminServer {
    /// Creates `<ledger>/admin.rpc` with mode 0600.
    ///
    /// A stale socket (no process answers on it) is replaced; a live one is
    /// left alone and [`ServeError::AlreadyRunning`] returned. The socket is
    /// created in a private directory and renamed into place, so that it is
    /// never reachable with wider permissions.
    pub async fn bind(ledger: &Path, config: ServerConfig) -> Result<Self, ServeError> {
        let path = socket_path(ledger);
        let io_error = |source| ServeError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(metadata) if metadata.file_type().is_socket() => {
                match UnixStream::connect(&path).await {
                    Ok(_) => {
                        return Err(ServeError::AlreadyRunning {
                            ledger: ledger.to_path_buf(),
                            socket: path,
                        })
                    }
                    Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => {
                        info!(socket = %path.display(), "replacing a stale admin socket");
                    }
                    Err(err) => return Err(io_error(err)),
                }
            }
            Ok(_) => return Err(ServeError::NotASocket { path }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error(err)),
        }

        static NEXT: AtomicU64 = AtomicU64::new(0);
        let private_dir = ledger.join(format!(
            ".admin.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&private_dir)
            .map_err(io_error)?;
        let bound = (|| {
            let temporary = private_dir.join(super::protocol::SOCKET_FILE_NAME);
            let listener = UnixListener::bind(&temporary)?;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&temporary, &path)?;
            let inode = std::fs::symlink_metadata(&path)?.ino();
            io::Result::Ok((listener, inode))
        })();
        let _ = std::fs::remove_dir_all(&private_dir);
        let (listener, inode) = bound.map_err(io_error)?;
        info!(socket = %path.display(), "admin RPC listening");
        Ok(Self {
            listener,
            guard: SocketGuard { path, inode },
            config,
        })
    }

    /// The socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.guard.path
    }

    /// Serves until `shutdown` completes, then removes the socket and drains
    /// the connections.
    pub async fn run(self, handler: Arc<dyn AdminHandler>, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            guard,
            config,
        } = self;
        let context = Arc::new(Context {
            handler,
            allow_insecure_keypair_files: config.allow_insecure_keypair_files,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(connection(stream, context.clone(), stop_rx.clone()));
                    }
                    Err(err) => {
                        // Out of file descriptors, usually: back off rather than spin.
                        warn!("admin RPC accept failed: {err}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(listener);
        drop(guard);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(config.drain_timeout, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                "admin RPC: {} connection(s) still busy after {:?}; dropping them",
                connections.len(),
                config.drain_timeout
            );
            connections.shutdown().await;
        }
        info!("admin RPC stopped");
    }
}

/// Removes the socket file when dropped, if it is still ours.
#[derive(Debug)]
struct SocketGuard {
    path: PathBuf,
    inode: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(metadata) if metadata.ino() == self.inode => {
                if let Err(err) = std::fs::remove_file(&self.path) {
                    warn!(socket = %self.path.display(), "cannot remove the admin socket: {err}");
                }
            }
            _ => debug!(socket = %self.path.display(), "admin socket already gone or replaced"),
        }
    }
}

struct Context {
    handler: Arc<dyn AdminHandler>,
    allow_insecure_keypair_files: bool,
}

/// Serves one connection: frames in, one response line per frame out.
async fn connection(stream: UnixStream, context: Arc<Context>, mut stop: watch::Receiver<bool>) {
    let (mut reader, mut writer) = stream.into_split();
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        loop {
            if *stop.borrow() {
                return;
            }
            let response = match decoder.next_frame() {
                Ok(Some(frame)) => answer_frame(frame, &context).await,
                Ok(None) => break,
                Err(oversized) => {
                    warn!("admin RPC: {oversized}; closing the connection");
                    let error = RpcError::parse_error(oversized);
                    let _ = write_line(&mut writer, &error_response(Value::Null, &error)).await;
                    return;
                }
            };
            if let Some(response) = response {
                if let Err(err) = write_line(&mut writer, &response).await {
                    debug!("admin RPC: client went away: {err}");
                    return;
                }
            }
        }
        tokio::select! {
            read = reader.read(&mut buf) => match read {
                Ok(0) => return,
                Ok(n) => decoder.push(&buf[..n]),
                Err(err) => {
                    debug!("admin RPC: read failed: {err}");
                    return;
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn write_line(writer: &mut (impl AsyncWriteExt + Unpin), value: &Value) -> io::Result<()> {
    let mut line = serde_json::to_vec(value).expect("a JSON value serializes");
    line.push(b'\n');
    writer.write_all(&line).await
}

/// The response to one frame, or `None` when it was only notifications.
async fn answer_frame(frame: Frame, context: &Context) -> Option<Value> {
    let bytes = match frame {
        Frame::Garbage(bytes) => {
            let shown: String = String::from_utf8_lossy(&bytes).chars().take(40).collect();
            let error = RpcError::parse_error(format!("not a JSON object: {shown:?}"));
            return Some(error_response(Value::Null, &error));
        }
        Frame::Value(bytes) => bytes,
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Err(err) => Some(error_response(Value::Null, &RpcError::parse_error(err))),
        Ok(Value::Array(calls)) if calls.is_empty() => Some(error_response(
            Value::Null,
            &RpcError::invalid_request("empty batch"),
        )),
        Ok(Value::Array(calls)) => {
            let mut responses = Vec::new();
            for call in calls {
                responses.extend(answer_call(call, context).await);
            }
            (!responses.is_empty()).then_some(Value::Array(responses))
        }
        Ok(call) => answer_call(call, context).await,
    }
}

async fn answer_call(value: Value, context: &Context) -> Option<Value> {
    let call = match Call::from_value(&value) {
        Ok(call) => call,
        Err(bad) => {
            debug!("admin RPC: bad call: {}", bad.error.message);
            return (!bad.notification).then(|| error_response(bad.id, &bad.error));
        }
    };
    let method = call.request.method();
    if call.request.is_mutating() {
        info!(method, "admin RPC request");
    } else {
        debug!(method, "admin RPC request");
    }
    let outcome = execute(call.request, context).await;
    if let Err(err) = &outcome {
        if *err != AdminError::Starting {
            warn!(method, "admin RPC request failed: {err}");
        }
    }
    let id = call.id?;
    Some(match outcome {
        Ok(result) => success_response(id, result),
        Err(err) => error_response(id, &err.to_rpc_error()),
    })
}

async fn execute(request: AdminRequest, context: &Context) -> Result<Value, AdminError> {
    fn to_value(value: impl serde::Serialize) -> Result<Value, AdminError> {
        serde_json::to_value(value).map_err(|err| AdminError::Failed(err.to_string()))
    }
    let handler = &*context.handler;
    let allow_insecure = context.allow_insecure_keypair_files;
    // File reads are blocking: off the async workers.
    let read_keypair = |path: &Path| {
        let path = path.to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || read_keypair_file(&path, allow_insecure))
                .await
                .map_err(|err| AdminError::Failed(format!("reading the keypair file: {err}")))?
                .map_err(AdminError::from)
        }
    };
    Ok(match request {
        AdminRequest::Exit => to_value(handler.exit().await?)?,
        AdminRequest::Pid => to_value(handler.pid())?,
        AdminRequest::StartTime => to_value(handler.start_time())?,
        AdminRequest::StartProgress => to_value(handler.start_progress())?,
        AdminRequest::ContactInfo => to_value(handler.contact_info().await?)?,
        AdminRequest::RpcAddress => to_value(handler.rpc_address().await?)?,
        AdminRequest::SetIdentity {
            keypair_path,
            require_tower,
        } => {
            let keypair = read_keypair(&keypair_path).await?;
            to_value(
                handler
                    .set_identity(keypair.keypair(), require_tower)
                    .await?,
            )?
        }
        AdminRequest::SetIdentityFromBytes {
            keypair,
            require_tower,
        } => to_value(
            handler
                .set_identity(keypair.keypair(), require_tower)
                .await?,
        )?,
        AdminRequest::AddAuthorizedVoter { keypair_path } => {
            let keypair = read_keypair(&keypair_path).await?;
            to_value(handler.add_authorized_voter(keypair.keypair()).await?)?
        }
        AdminRequest::AddAuthorizedVoterFromBytes { keypair } => {
            to_value(handler.add_authorized_voter(keypair.keypair()).await?)?
        }
        AdminRequest::RemoveAllAuthorizedVoters => {
            to_value(handler.remove_all_authorized_voters().await?)?
        }
        AdminRequest::SetLogFilter { filter } => to_value(handler.set_log_filter(filter).await?)?,
        AdminRequest::TowerlockStatus => to_value(handler.status().await?)?,
    })
}

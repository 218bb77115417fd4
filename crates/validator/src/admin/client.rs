//! The admin client: one connection to `<ledger>/admin.rpc`, typed methods
//! for every [`AdminRequest`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

use super::keypair::KeypairBytes;
use super::protocol::{socket_path, AdminRequest, ContactInfoView, NodeStatus, Response, RpcError};

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// There is no socket: no validator uses this ledger (or never did).
    #[error("no validator is running with ledger {}: {} does not exist", ledger.display(), socket.display())]
    NoSocket {
        /// The ledger directory.
        ledger: PathBuf,
        /// Its admin socket path.
        socket: PathBuf,
    },
    /// The socket exists but nobody listens: its validator stopped without removing it.
    #[error("the validator that used {} is not running", ledger.display())]
    Stale {
        /// The ledger directory.
        ledger: PathBuf,
        /// Its admin socket path.
        socket: PathBuf,
    },
    /// The caller may not use the socket.
    #[error("permission denied on {}: run as the validator's user", socket.display())]
    PermissionDenied {
        /// The admin socket path.
        socket: PathBuf,
    },
    /// Another connection failure.
    #[error("cannot connect to {}: {source}", socket.display())]
    Connect {
        /// The admin socket path.
        socket: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// The validator closed the connection before answering.
    #[error("the validator closed the admin connection before answering {method}")]
    Closed {
        /// The method that got no answer.
        method: &'static str,
    },
    /// Reading or writing the connection failed.
    #[error("the admin connection failed during {method}: {source}")]
    Io {
        /// The method in progress.
        method: &'static str,
        /// The reason.
        source: io::Error,
    },
    /// The validator answered with an error.
    #[error("{method} failed: {error}")]
    Rpc {
        /// The method.
        method: &'static str,
        /// The validator's error.
        error: RpcError,
    },
    /// The validator's answer is not what the method returns.
    #[error("unexpected answer to {method}: {detail}")]
    BadResponse {
        /// The method.
        method: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl ClientError {
    /// The validator's JSON-RPC error, when it answered with one.
    pub fn rpc_error(&self) -> Option<&RpcError> {
        match self {
            Self::Rpc { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the connection is unusable (as opposed to one request failing).
    pub fn is_connection_error(&self) -> bool {
        !matches!(self, Self::Rpc { .. } | Self::BadResponse { .. })
    }
}

/// A connection to a validator's admin socket. Calls are sequential.
#[derive(Debug)]
pub struct AdminClient {
    socket: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl AdminClient {
    /// Connects to the validator using `ledger`.
    pub async fn connect(ledger: &Path) -> Result<Self, ClientError> {
        let socket = socket_path(ledger);
        let stream = match UnixStream::connect(&socket).await {
            Ok(stream) => stream,
            Err(err) => {
                let (ledger, socket) = (ledger.to_path_buf(), socket);
                return Err(match err.kind() {
                    io::ErrorKind::NotFound => ClientError::NoSocket { ledger, socket },
                    io::ErrorKind::ConnectionRefused => ClientError::Stale { ledger, socket },
                    io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { socket },
                    _ => ClientError::Connect {
                        socket,
                        source: err,
                    },
                });
            }
        };
        let (reader, writer) = stream.into_split();
        Ok(Self {
            socket,
            reader: BufReader::new(reader),
            writer,
            next_id: 1,
        })
    }

    /// The socket this client is connected to.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// Sends `request` and returns its raw JSON result.
    pub async fn call(&mut self, request: &AdminRequest) -> Result<Value, ClientError> {
        let method = request.method();
        let id = self.next_id;
        self.next_id += 1;
        let io_error = |source| ClientError::Io { method, source };
        let mut line = request.to_call(id).to_string().into_bytes();
        line.push(b'\n');
        self.writer.write_all(&line).await.map_err(io_error)?;

        let mut answer = String::new();
        if self.reader.read_line(&mut answer).await.map_err(io_error)? == 0 {
            return Err(ClientError::Closed { method });
        }
        let bad = |detail: String| ClientError::BadResponse { method, detail };
        let value: Value = serde_json::from_str(&answer).map_err(|err| bad(err.to_string()))?;
        let response = Response::from_value(value).map_err(bad)?;
        if response.id != id {
            return Err(bad(format!("id {} instead of {id}", response.id)));
        }
        response
            .outcome
            .map_err(|error| ClientError::Rpc { method, error })
    }

    async fn typed<T: DeserializeOwned>(
        &mut self,
        request: AdminRequest,
    ) -> Result<T, ClientError> {
        let method = request.method();
        let value = self.call(&request).await?;
        serde_json::from_value(value).map_err(|err| ClientError::BadResponse {
            method,
            detail: err.to_string(),
        })
    }

    /// `exit`.
    pub async fn exit(&mut self) -> Result<(), ClientError> {
        self.call(&AdminRequest::Exit).await.map(drop)
    }

    /// `pid`.
    pub async fn pid(&mut self) -> Result<u32, ClientError> {
        self.typed(AdminRequest::Pid).await
    }

    /// `startTime`.
    pub async fn start_time(&mut self) -> Result<SystemTime, ClientError> {
        self.typed(AdminRequest::StartTime).await
    }

    /// `startProgress`, as text (agave's struct-like variants come out as JSON).
    pub async fn start_progress(&mut self) -> Result<String, ClientError> {
        Ok(match self.call(&AdminRequest::StartProgress).await? {
            Value::String(progress) => progress,
            other => other.to_string(),
        })
    }

    /// `contactInfo`.
    pub async fn contact_info(&mut self) -> Result<ContactInfoView, ClientError> {
        self.typed(AdminRequest::ContactInfo).await
    }

    /// `rpcAddress`.
    pub async fn rpc_address(&mut self) -> Result<Option<SocketAddr>, ClientError> {
        self.typed(AdminRequest::RpcAddress).await
    }

    /// `setIdentity`: the validator reads `keypair_path` (give it absolute).
    pub async fn set_identity(
        &mut self,
        keypair_path: &Path,
        require_tower: bool,
    ) -> Result<(), ClientError> {
        let request = AdminRequest::SetIdentity {
            keypair_path: keypair_path.to_path_buf(),
            require_tower,
        };
        self.call(&request).await.map(drop)
    }

    /// `setIdentityFromBytes`.
    pub async fn set_identity_from_bytes(
        &mut self,
        keypair: &KeypairBytes,
        require_tower: bool,
    ) -> Result<(), ClientError> {
        let request = AdminRequest::SetIdentityFromBytes {
            keypair: keypair.clone(),
            require_tower,
        };
        self.call(&request).await.map(drop)
    }

    /// `addAuthorizedVoter`: the validator reads `keypair_path` (give it absolute).
    pub async fn add_authorized_voter(&mut self, keypair_path: &Path) -> Result<(), ClientError> {
        let request = AdminRequest::AddAuthorizedVoter {
            keypair_path: keypair_path.to_path_buf(),
        };
        self.call(&request).await.map(drop)
    }

    /// `addAuthorizedVoterFromBytes`.
    pub async fn add_authorized_voter_from_bytes(
        &mut self,
        keypair: &KeypairBytes,
    ) -> Result<(), ClientError> {
        let request = AdminRequest::AddAuthorizedVoterFromBytes {
            keypair: keypair.clone(),
        };
        self.call(&request).await.map(drop)
    }

    /// `removeAllAuthorizedVoters`.
    pub async fn remove_all_authorized_voters(&mut self) -> Result<(), ClientError> {
        self.call(&AdminRequest::RemoveAllAuthorizedVoters)
            .await
            .map(drop)
    }

    /// `setLogFilter`.
    pub async fn set_log_filter(&mut self, filter: &str) -> Result<(), ClientError> {
        let request = AdminRequest::SetLogFilter {
            filter: filter.to_string(),
        };
        self.call(&request).await.map(drop)
    }

    /// `towerlockStatus`.
    pub async fn status(&mut self) -> Result<NodeStatus, ClientError> {
        self.typed(AdminRequest::TowerlockStatus).await
    }
}

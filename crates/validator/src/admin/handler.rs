//! What the node provides to the admin server.

use std::net::SocketAddr;
use std::time::SystemTime;

use async_trait::async_trait;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;

use super::keypair::KeypairFileError;
use super::protocol::{ContactInfoView, NodeStatus, RpcError, STARTING_MESSAGE};

/// Why the node did not do what an admin request asked. Each variant maps to
/// one JSON-RPC error (see [`AdminError::to_rpc_error`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The node is still starting; agave's answer is to retry later.
    #[error("{STARTING_MESSAGE}")]
    Starting,
    /// The request cannot be satisfied as given (a keypair that is not the
    /// authorized voter, a log filter that does not parse, …): the caller's mistake.
    #[error("{0}")]
    InvalidParams(String),
    /// The identity's tower cannot be used (none stored with
    /// `require_tower`, corrupt, another node's): the node is unchanged.
    #[error("Unable to load tower file for identity {identity}: {reason}")]
    TowerUnavailable { identity: Pubkey, reason: String },
    /// Alpenglow: the identity's vote history is missing or older than its
    /// landed votes (agave's rule; `--do-not-require-vote-history` lifts
    /// it): the node is unchanged.
    #[error("Unable to load vote history for identity {identity}: {reason}")]
    VoteHistoryUnavailable { identity: Pubkey, reason: String },
    /// Storage did not answer the takeover: whether the fence moved is
    /// unknown. The node is unchanged; run the command again.
    #[error("cannot tell whether the takeover of {identity} happened ({reason}): the fence may have moved; run set-identity again")]
    OutcomeUnknown { identity: Pubkey, reason: String },
    /// The node is shutting down, or stopped before answering.
    #[error("the node is shutting down")]
    Stopped,
    /// Anything else the node tried and could not do; nothing was changed.
    #[error("{0}")]
    Failed(String),
}

impl AdminError {
    /// The JSON-RPC error: [`Starting`](Self::Starting) and
    /// [`InvalidParams`](Self::InvalidParams) are `-32602` (as agave answers
    /// both), [`Failed`](Self::Failed) is `-32603`.
    pub fn to_rpc_error(&self) -> RpcError {
        match self {
            Self::Starting | Self::InvalidParams(_) => RpcError::invalid_params(self.to_string()),
            Self::TowerUnavailable { .. }
            | Self::VoteHistoryUnavailable { .. }
            | Self::OutcomeUnknown { .. }
            | Self::Stopped
            | Self::Failed(_) => RpcError::internal(self.to_string()),
        }
    }
}

impl From<KeypairFileError> for AdminError {
    fn from(err: KeypairFileError) -> Self {
        Self::InvalidParams(err.to_string())
    }
}

/// The node's side of the admin RPC. The server calls it for each request;
/// the node answers [`AdminError::Starting`] from the methods it cannot serve
/// yet.
///
/// Keypairs arrive already read and checked (the server reads keypair files
/// named by `setIdentity` and `addAuthorizedVoter`).
#[async_trait]
pub trait AdminHandler: Send + Sync {
    /// `exit`: begin an orderly shutdown and return at once (the response is
    /// sent before the node goes away).
    async fn exit(&self) -> Result<(), AdminError>;

    /// `pid`: the process id.
    fn pid(&self) -> u32 {
        std::process::id()
    }

    /// `startTime`: when the process started.
    fn start_time(&self) -> SystemTime;

    /// `startProgress`: agave's `ValidatorStartProgress` name, e.g.
    /// `"Initializing"`, `"WaitingForSupermajority"`, `"Running"`.
    fn start_progress(&self) -> String;

    /// `contactInfo`: what the node publishes in gossip.
    async fn contact_info(&self) -> Result<ContactInfoView, AdminError>;

    /// `rpcAddress`: the node's JSON-RPC address, if it serves one.
    async fn rpc_address(&self) -> Result<Option<SocketAddr>, AdminError>;

    /// `setIdentity` / `setIdentityFromBytes`: take over as `keypair` (acquire
    /// the fence, load its tower — failing, with nothing changed, when none
    /// exists and `require_tower` is set), switch keys, publish a new contact
    /// info. Returns once the node votes as the new identity at its next bank.
    async fn set_identity(&self, keypair: Keypair, require_tower: bool) -> Result<(), AdminError>;

    /// `addAuthorizedVoter` / `addAuthorizedVoterFromBytes`.
    async fn add_authorized_voter(&self, keypair: Keypair) -> Result<(), AdminError>;

    /// `removeAllAuthorizedVoters`.
    async fn remove_all_authorized_voters(&self) -> Result<(), AdminError>;

    /// `setLogFilter`: replace the log filter (an `EnvFilter` directive).
    async fn set_log_filter(&self, filter: String) -> Result<(), AdminError>;

    /// `towerlockStatus`: the status shown by `monitor`.
    async fn status(&self) -> Result<NodeStatus, AdminError>;
}

//! The admin RPC of the validator, on the unix socket `<ledger>/admin.rpc`.
//!
//! It speaks agave's protocol so that agave's habits and scripts carry over:
//! JSON-RPC 2.0 with positional params, agave's method names, requests
//! framed by brace matching and responses ending with `\n`.
//!
//! - [`protocol`]: [`AdminRequest`], one type per request shared by server and
//!   client, and the result types;
//! - [`framing`]: agave's framing, without IO;
//! - [`handler`]: [`AdminHandler`], what the node implements;
//! - [`server`]: [`serve`] / [`AdminServer`], the socket and its connections;
//! - [`client`]: [`AdminClient`], typed calls with clear connection errors;
//! - [`cli`]: the subcommands ([`AdminCommand`]) and their [`run`].
//!
//! The node itself (what `setIdentity` does to the fence, the tower and the
//! keys) is not here: it arrives through [`AdminHandler`].

pub mod cli;
pub mod client;
pub mod framing;
pub mod handler;
pub mod keypair;
pub mod protocol;
pub mod server;

pub use cli::{run, run_with, AdminCommand, AuthorizedVoterCommand, Console};
pub use client::{AdminClient, ClientError};
pub use handler::{AdminError, AdminHandler};
pub use keypair::{KeypairBytes, KeypairError};
pub use protocol::{
    socket_path, AdminRequest, ContactInfoView, NodeStatus, Role, RpcError, StoreFailures,
};
pub use server::{serve, AdminServer, ServeError, ServerConfig};

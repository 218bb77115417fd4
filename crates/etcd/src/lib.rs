//! The shared connection layer to etcd: flags, mutual TLS, and errors that
//! name their cause.
//!
//! Every binary that talks to etcd takes the same agave flags ([`EtcdArgs`],
//! flattened into its clap command), turns them into a plain [`EtcdConfig`]
//! and calls [`connect`], which reads the PEM files, builds etcd-client's
//! options (TLS always on: CA, client identity, domain name; connect and
//! per-request deadlines) and verifies the connection with a `status` request.
//! Failures come back as an [`EtcdError`] whose message is one sentence naming
//! the cause: unreachable endpoint, server certificate not signed by the CA,
//! client certificate rejected, host name not in the certificate, plaintext
//! server, expired certificate, unreadable or non-PEM file, timeout.
//!
//! A process that keeps running (the tower storage) uses [`Endpoints`]
//! instead: one client per endpoint, each made lazily, so that an endpoint
//! down at start is used once it is back; `connect`'s per-endpoint check is
//! then for diagnosis only ([`Endpoints::check_each`]).
//!
//! [`is_outcome_unknown`] tells a storage layer whether a failed request may
//! still have been applied (transport failure, timeout) or was certainly not
//! (a definite answer from etcd).
//!
//! [`setup_access`] turns on etcd's access control: one user and role per
//! staked identity, limited to the keys under `<prefix><identity>/`, a
//! read-only user, and `root`; [`is_permission_denied`] recognises its
//! refusals.
//!
//! This crate owns no runtime, holds no state and knows nothing of towers or
//! fences; key layout and transactions belong to the storage layer.

mod access;
mod config;
mod connect;
mod endpoints;
mod error;
mod probe;

pub use access::{setup_access, AccessPlan, AccessReport};
pub use config::{EtcdArgs, EtcdConfig, DEFAULT_DOMAIN_NAME, DEFAULT_TIMEOUT_MS};
pub use connect::{classify_request_error, connect, connect_without_client_cert, TlsMaterial};
pub use endpoints::Endpoints;
pub use error::{
    describe_chain, is_outcome_unknown, is_permission_denied, is_transport, EtcdError,
};

/// Re-exported so that users need not depend on etcd-client themselves.
pub use etcd_client;

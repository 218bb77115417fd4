//! The node: decisions (pure) and the driver that acts on them.
//!
//! - [`forks`]: the banks replayed so far, as a fork tree;
//! - [`decide`]: may the node vote, what it votes for, whether another
//!   instance took its identity (pure functions);
//! - [`schedule`]: the identity's leader slots;
//! - [`vote`]: persist-before-send in types;
//! - [`driver`]: the one loop that touches tower, storage and network;
//! - [`handle`]: the admin RPC's view of the node;
//! - [`rpc`]: the node's own JSON-RPC.

pub mod decide;
pub mod driver;
pub mod forks;
pub mod handle;
pub mod rpc;
pub mod schedule;
pub mod vote;

pub use driver::{run, Command, NodeConfig, NodeExit, Published, UnavailablePolicy};
pub use handle::NodeHandle;

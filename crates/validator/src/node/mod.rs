//! The node: a pure state machine that decides, and the driver that acts.
//!
//! - [`machine`]: every decision — when to vote, take over, produce, skip,
//!   exit — as a sans-IO state machine with its step tests and randomized
//!   simulation;
//! - [`decide`]: the pure functions it uses (may this identity vote, what to
//!   vote for, is that contact info a newer instance of us);
//! - [`forks`]: the banks replayed so far, as a fork tree;
//! - [`schedule`]: the identity's leader slots;
//! - [`slot_history`]: the cluster's SlotHistory, which places a restored
//!   tower's old votes;
//! - [`vote`]: persist-before-send in types;
//! - [`votor`]: the Alpenglow validator's Votor decisions as a sans-IO
//!   state machine, persisting the vote history before each vote;
//! - [`driver`]: pumps events into the machine; [`executor`] carries out
//!   its actions (storage, cluster), `streams` and `startup` the cluster IO;
//! - [`handle`]: the admin RPC's view of the node;
//! - [`rpc`]: the node's own JSON-RPC.

pub mod decide;
pub mod driver;
pub mod executor;
pub mod forks;
pub mod handle;
pub mod machine;
pub mod rpc;
pub mod schedule;
pub mod slot_history;
mod startup;
mod streams;
pub mod vote;
pub mod votor;

pub use driver::{run, AdminRequest, NodeConfig, Published};
pub use handle::NodeHandle;
pub use machine::{Command, NodeExit, NodeMachine, UnavailablePolicy};

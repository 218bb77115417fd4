//! The sentinel: monitoring-triggered failover for a primary/secondary pair.
//!
//! Runs beside the secondary and promotes it when the active node stops
//! voting. What it promises:
//!
//! - it watches only what any operator can see: standard Solana JSON-RPC
//!   (`getSlot`, `getVoteAccounts`, `getClusterNodes`, `getHealth`), agave's
//!   admin socket, and — read-only — the fence in etcd;
//! - it promotes only through the local node's admin socket (`setIdentity`
//!   with `require_tower`), one promotion at a time, and never without a
//!   fence: the etcd fence, or a `--fence-command` (STONITH) that exited 0;
//! - every decision is made by the pure [`decision::Detector`] (no IO, no
//!   clock), which the tests replay over long generated traces.
//!
//! What it leaves to others: safety itself. With the etcd fence, a false
//! promotion costs one failover and never a double vote, because every vote
//! and every leader slot of the old node is fenced (`towerlock-validator`).
//! The sentinel only decides when.

pub mod decision;

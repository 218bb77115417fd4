//! The audit trail of a local cluster, and the safety checks run over it.
//!
//! `event` is the trail's line format (DESIGN.md §7), shared by the cluster that
//! writes it and the checker that reads it.

pub mod event;

pub use event::Event;

//! `wait-for-restart-window`: wait until it is a good moment to restart the
//! node or fail over to another machine.

pub mod decision;

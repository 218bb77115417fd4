//! Panicking conveniences for tests, over `towerlock-lab` (which does the
//! work and returns typed errors). Only tests depend on this crate.
//!
//! A test that needs etcd fails — never skips — when etcd is missing: the
//! panic carries the lab's sentence saying how to install it.
//!
//! - [`EtcdProcess`]: the lab's etcd whose fallible methods panic with the
//!   lab's sentence; everything else comes from the lab's type (`Deref`).
//! - [`Must`]: `.must()` on any lab result, panicking with the error's
//!   sentence (and log tail) rather than its `Debug` form.
//! - [`lab`]: the lab itself, for end-to-end tests.

use std::ops::{Deref, DerefMut};
use std::path::PathBuf;

pub mod solana_py;
pub mod vote_history;

pub use towerlock_lab as lab;
pub use towerlock_lab::{log_tail, EtcdOptions, LabError, ETCD_MISSING};

/// Unwraps a lab result, panicking with the error's message.
pub trait Must<T> {
    /// The value, or a panic with the error's sentence.
    fn must(self) -> T;
}

impl<T> Must<T> for Result<T, LabError> {
    #[track_caller]
    fn must(self) -> T {
        self.unwrap_or_else(|err| panic!("{err}"))
    }
}

/// A running etcd for one test (the lab's), dropped with the test.
#[derive(Debug)]
pub struct EtcdProcess(towerlock_lab::EtcdProcess);

impl EtcdProcess {
    /// Starts etcd with the seed's mutual TLS; panics if it cannot.
    pub async fn start() -> Self {
        Self(towerlock_lab::EtcdProcess::start().await.must())
    }

    /// Starts a plaintext etcd; panics if it cannot.
    pub async fn start_plaintext() -> Self {
        Self(towerlock_lab::EtcdProcess::start_plaintext().await.must())
    }

    /// Starts etcd as `options` say; panics if it cannot.
    pub async fn start_with(options: EtcdOptions) -> Self {
        Self(towerlock_lab::EtcdProcess::start_with(options).await.must())
    }

    /// A connected client; panics if it cannot connect.
    pub async fn client(&self) -> towerlock_etcd::etcd_client::Client {
        self.0.client().await.must()
    }

    /// Kills and restarts etcd on the same data and ports; panics if it
    /// does not come back.
    pub async fn restart(&mut self) {
        self.0.restart().await.must()
    }

    /// SIGSTOP; panics if etcd is not running.
    pub fn pause(&self) {
        self.0.pause().must()
    }

    /// SIGCONT; panics if etcd is not running.
    pub fn resume(&self) {
        self.0.resume().must()
    }
}

impl Deref for EtcdProcess {
    type Target = towerlock_lab::EtcdProcess;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for EtcdProcess {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// A loopback port that was free a moment ago; panics if none can be bound.
pub fn free_port() -> u16 {
    towerlock_lab::free_port().must()
}

/// The `etcd` binary on PATH; panics with how to install it when absent.
pub fn etcd_binary() -> PathBuf {
    towerlock_lab::etcd_binary().must()
}

/// The `towerlock-validator` built beside `towerlock` (where `cargo build
/// --workspace` puts both); panics with how to build it when it is missing.
pub fn validator_beside(towerlock: &std::path::Path) -> std::path::PathBuf {
    let validator = towerlock.with_file_name("towerlock-validator");
    assert!(
        validator.is_file(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        validator.display()
    );
    validator
}

/// A benchmark's final `key=value` line, as the bench tests read it.
pub struct BenchFigures {
    line: String,
    figures: std::collections::HashMap<String, String>,
}

impl BenchFigures {
    /// The last line of a bench's standard output.
    pub fn from_stdout(stdout: &str) -> Self {
        let line = stdout.lines().last().unwrap_or_default().to_string();
        let figures = line
            .split_whitespace()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { line, figures }
    }

    /// The whole line (for assertion messages).
    pub fn line(&self) -> &str {
        &self.line
    }

    /// A figure as printed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.figures.get(key).map(String::as_str)
    }

    /// A figure that must be present and a finite number.
    pub fn number(&self, key: &str) -> f64 {
        let value: f64 = self
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", self.line))
            .parse()
            .unwrap_or_else(|e| panic!("{key} in {:?}: {e}", self.line));
        assert!(value.is_finite(), "{key}={value} in {:?}", self.line);
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn must_panics_with_the_sentence() {
        let panic = std::panic::catch_unwind(|| Err::<(), _>(LabError::EtcdMissing).must())
            .expect_err("must panic, never skip");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert_eq!(message, ETCD_MISSING);
    }
}

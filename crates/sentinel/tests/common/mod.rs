//! What the sentinel's live tests share: the validator binary, and a
//! sentinel running in-process beside the spare with its events.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use towerlock_lab::{now_ms, Lab, ValidatorProcess};
use towerlock_sentinel::{Config, Entry, Event, Report};

pub const WAIT: Duration = Duration::from_secs(60);

pub fn validator_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join("towerlock-validator");
    assert!(
        bin.is_file(),
        "{} is missing: run `cargo build -p towerlock-validator` first",
        bin.display()
    );
    bin
}

/// A sentinel running in-process beside `spare`.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Report, towerlock_sentinel::SentinelError>>,
    events: UnboundedReceiver<Entry>,
}

impl Running {
    pub async fn finish(self) -> Report {
        let _ = self.stop.send(());
        self.task.await.expect("joins").expect("the sentinel ran")
    }

    /// Waits for an entry of `event` matching `ok`; returns it.
    pub async fn wait_for(&mut self, event: Event, ok: impl Fn(&Entry) -> bool) -> Entry {
        let found = tokio::time::timeout(WAIT, async {
            while let Some(entry) = self.events.recv().await {
                if entry.event == event && ok(&entry) {
                    return Some(entry);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(entry)) => entry,
            _ => panic!("no {event:?} entry within {WAIT:?}"),
        }
    }

    /// Every entry received so far.
    pub fn drain(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        while let Ok(entry) = self.events.try_recv() {
            out.push(entry);
        }
        out
    }
}

pub fn config(lab: &Lab, spare: &ValidatorProcess, fenced: bool) -> Config {
    let mut config = Config::new(
        spare.ledger.clone(),
        lab.cluster.identity_file(),
        lab.cluster.url.clone(),
    );
    if fenced {
        config.etcd = Some(lab.etcd.config());
    }
    config.timeline = Some(lab.dir.join(format!("timeline-{}.jsonl", now_ms())));
    config
}

pub fn start(config: Config) -> Running {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, events) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(towerlock_sentinel::run_with_events(
        config,
        async move {
            let _ = stopped.await;
        },
        Some(tx),
    ));
    Running { stop, task, events }
}

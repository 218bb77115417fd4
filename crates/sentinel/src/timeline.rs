//! The timeline: one JSON object per line for every decision that changes
//! the sentinel's state, and for each phase of a promotion.
//!
//! ```text
//! {"ts_ms":…,"event":"decision","state":"suspect","reason":"suspect (1/3): …","slot":…,"last_vote":…}
//! {"ts_ms":…,"event":"detected","reason":"last vote … stalled …","bad_checks":3,"since_ms":…}
//! {"ts_ms":…,"event":"promotion_sent","dry_run":false}
//! {"ts_ms":…,"event":"takeover_committed","ms_since_detected":…}
//! {"ts_ms":…,"event":"promotion_failed","reason":"…","retry_in_ms":…}
//! {"ts_ms":…,"event":"first_vote_sent","slot":…,"ms_since_detected":…}
//! {"ts_ms":…,"event":"first_vote_landed","slot":…,"ms_since_detected":…}
//! ```
//!
//! `ts_ms` is wall-clock milliseconds since the Unix epoch. Entries also go
//! to an optional channel, for callers running the sentinel in-process.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::SentinelError;

/// One timeline line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub ts_ms: u64,
    pub event: Event,
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The sentinel started (its settings).
    Started,
    /// The decision's state changed.
    Decision,
    /// Enough bad checks and no veto: a promotion begins.
    Detected,
    /// The fence command exited 0.
    Fenced,
    /// `setIdentity` was sent (or, in a dry run, would have been).
    PromotionSent,
    /// `setIdentity` returned: the local node holds the fence.
    TakeoverCommitted,
    /// The promotion failed; retried after a backoff.
    PromotionFailed,
    /// The local node sent its first vote as the identity.
    FirstVoteSent,
    /// That vote (or a later one) shows in the vote account.
    FirstVoteLanded,
}

impl Entry {
    pub fn new(ts_ms: u64, event: Event) -> Self {
        Self {
            ts_ms,
            event,
            fields: Map::new(),
        }
    }

    /// Adds a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.fields.get(key).and_then(Value::as_u64)
    }
}

/// Where entries go.
pub struct Timeline {
    file: Option<(PathBuf, std::fs::File)>,
    channel: Option<tokio::sync::mpsc::UnboundedSender<Entry>>,
}

impl Timeline {
    pub fn open(
        path: Option<&Path>,
        channel: Option<tokio::sync::mpsc::UnboundedSender<Entry>>,
    ) -> Result<Self, SentinelError> {
        let file = match path {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|source| SentinelError::Timeline {
                        path: path.to_path_buf(),
                        source,
                    })?;
                Some((path.to_path_buf(), file))
            }
            None => None,
        };
        Ok(Self { file, channel })
    }

    /// Writes one line (one `write`), logs it, and passes it on.
    pub fn record(&mut self, entry: Entry) {
        let line = serde_json::to_string(&entry).expect("entries serialize");
        tracing::info!(target: "towerlock_sentinel::timeline", "{line}");
        if let Some((path, file)) = self.file.as_mut() {
            if let Err(err) = file.write_all(format!("{line}\n").as_bytes()) {
                tracing::error!("cannot append to the timeline {}: {err}", path.display());
            }
        }
        if let Some(channel) = &self.channel {
            let _ = channel.send(entry);
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reads a timeline file back (for tests and tools).
pub fn read(path: &Path) -> std::io::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect())
}

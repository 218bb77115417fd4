//! The cluster's audit trail, followed as it grows: each refresh reads only
//! the bytes appended since the last one (a torn last line waits for its
//! end), and waits scan only the events they have not seen yet.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use towerlock_audit::event::{BlockEvent, Event, VoteEvent};

use crate::{wait_until, LabError};

/// A reader of `audit.jsonl` that remembers how far it got.
#[derive(Debug)]
pub struct AuditTrail {
    path: PathBuf,
    state: Mutex<Followed>,
}

#[derive(Debug, Default)]
struct Followed {
    /// Bytes of the file consumed so far (complete lines and `partial`).
    offset: u64,
    /// The start of a line whose end has not been written yet.
    partial: Vec<u8>,
    /// Every complete event so far, in trail order.
    events: Vec<Event>,
}

impl AuditTrail {
    /// Follows the trail at `path` (which need not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            state: Mutex::new(Followed::default()),
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn state(&self) -> MutexGuard<'_, Followed> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads what was appended since the last refresh.
    fn refresh(&self) -> Result<MutexGuard<'_, Followed>, LabError> {
        let mut state = self.state();
        let mut file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(state),
            Err(err) => return Err(LabError::io("open the audit trail", &self.path)(err)),
        };
        let read_error = |err| LabError::io("read the audit trail", &self.path)(err);
        let len = file.metadata().map_err(read_error)?.len();
        if len < state.offset {
            // A new trail in its place: start over.
            *state = Followed::default();
        }
        if len == state.offset {
            return Ok(state);
        }
        file.seek(SeekFrom::Start(state.offset))
            .map_err(read_error)?;
        let mut bytes = std::mem::take(&mut state.partial);
        let read = file.read_to_end(&mut bytes).map_err(read_error)?;
        state.offset += read as u64;
        let complete = bytes
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |at| at + 1);
        state.partial = bytes.split_off(complete);
        let text = String::from_utf8_lossy(&bytes);
        let parsed = text.lines().filter_map(|line| Event::from_line(line).ok());
        state.events.extend(parsed);
        Ok(state)
    }

    /// Applies `f` to every event so far.
    pub fn with_events<T>(&self, f: impl FnOnce(&[Event]) -> T) -> Result<T, LabError> {
        Ok(f(&self.refresh()?.events))
    }

    /// Every event so far.
    pub fn events(&self) -> Result<Vec<Event>, LabError> {
        self.with_events(<[Event]>::to_vec)
    }

    /// Every vote received so far.
    pub fn votes(&self) -> Result<Vec<VoteEvent>, LabError> {
        self.with_events(|events| events.iter().filter_map(as_vote).cloned().collect())
    }

    /// Every block one of our leaders submitted so far.
    pub fn blocks(&self) -> Result<Vec<BlockEvent>, LabError> {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(|e| match e {
                    Event::Block(b) => Some(b.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// Accepted votes sent by `instance`, in trail order.
    pub fn accepted_votes(&self, instance: &str) -> Result<Vec<VoteEvent>, LabError> {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(as_vote)
                .filter(|v| is_accepted_from(v, instance))
                .cloned()
                .collect()
        })
    }

    /// Landed votes of either consensus sent by `instance`, in trail order.
    pub fn landed_votes(&self, instance: &str) -> Result<Vec<LandedVote>, LabError> {
        self.with_events(|events| {
            events
                .iter()
                .filter_map(as_landed)
                .filter(|v| v.instance == instance)
                .collect()
        })
    }

    /// Waits for the `n`th event (counting from 1) of the whole trail that
    /// `pick` picks; returns what it picked. Each check looks only at the
    /// events that arrived since the previous one.
    pub async fn wait_for_nth<T>(
        &self,
        deadline: Duration,
        what: &str,
        n: usize,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, LabError> {
        let mut seen = 0;
        let mut found = 0;
        wait_until(deadline, what, async || {
            let state = self.refresh()?;
            for event in &state.events[seen..] {
                seen += 1;
                if let Some(picked) = pick(event) {
                    found += 1;
                    if found >= n {
                        return Ok(Some(picked));
                    }
                }
            }
            Ok(None)
        })
        .await
    }

    /// Waits for the first event that `pick` picks; returns what it picked.
    pub async fn wait_for<T>(
        &self,
        deadline: Duration,
        what: &str,
        pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T, LabError> {
        self.wait_for_nth(deadline, what, 1, pick).await
    }
}

/// The vote in `event`, if it is one.
pub fn as_vote(event: &Event) -> Option<&VoteEvent> {
    match event {
        Event::Vote(v) => Some(v),
        _ => None,
    }
}

/// A vote that landed, of either consensus: a TowerSync the vote program
/// accepted, or a Votor vote the cluster counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedVote {
    pub instance: String,
    pub ts_ms: u64,
    /// The slot voted for (a TowerSync's newest lockout).
    pub slot: u64,
}

/// The landed vote in `event`, if it is one.
pub fn as_landed(event: &Event) -> Option<LandedVote> {
    match event {
        Event::Vote(v) if v.result == "ok" => Some(LandedVote {
            instance: v.instance.clone(),
            ts_ms: v.ts_ms,
            slot: voted_slot(v),
        }),
        Event::VotorVote(v) if v.result == "ok" => Some(LandedVote {
            instance: v.instance.clone(),
            ts_ms: v.ts_ms,
            slot: v.slot,
        }),
        _ => None,
    }
}

fn is_accepted_from(vote: &VoteEvent, instance: &str) -> bool {
    vote.instance == instance && vote.result == "ok"
}

/// Banks in `events` strictly between two slots, on every fork.
pub fn banks_between(events: &[Event], after: u64, before: u64) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Bank(b) if b.slot > after && b.slot < before))
        .count()
}

/// The slot a vote is for: the newest slot of its lockouts.
pub fn voted_slot(vote: &VoteEvent) -> u64 {
    vote.lockouts.last().map(|l| l.0).unwrap_or(0)
}

/// Milliseconds since the Unix epoch (the trail's clock).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn bank(slot: u64) -> String {
        format!(
            r#"{{"kind":"bank","slot":{slot},"parent":{},"hash":"h","leader":"l","ts_ms":0}}"#,
            slot.saturating_sub(1)
        )
    }

    #[test]
    fn reads_only_complete_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let trail = AuditTrail::new(&path);
        assert!(trail.events().unwrap().is_empty(), "no file yet");
        let mut file = fs::File::create(&path).unwrap();
        let second = bank(2);
        write!(file, "{}\n{}", bank(1), &second[..10]).unwrap();
        assert_eq!(trail.events().unwrap().len(), 1, "the torn line waits");
        writeln!(file, "{}", &second[10..]).unwrap();
        assert_eq!(trail.events().unwrap().len(), 2);
        writeln!(file, "{}", bank(3)).unwrap();
        let slots: Vec<u64> = trail
            .events()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::Bank(b) => Some(b.slot),
                _ => None,
            })
            .collect();
        assert_eq!(slots, [1, 2, 3]);
    }

    #[tokio::test]
    async fn waits_for_the_nth_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut file = fs::File::create(&path).unwrap();
        for slot in 1..=5 {
            writeln!(file, "{}", bank(slot)).unwrap();
        }
        let trail = AuditTrail::new(&path);
        let third = trail
            .wait_for_nth(Duration::from_secs(1), "banks", 3, |e| match e {
                Event::Bank(b) => Some(b.slot),
                _ => None,
            })
            .await
            .unwrap();
        assert_eq!(third, 3);
        let events = trail.events().unwrap();
        assert_eq!(banks_between(&events, 1, 4), 2);
    }
}

//! The `<identity>/instance` record, in towerlock's format (docs/architecture.md
//! §2 and §7), so that `towerlock fence status`, the sentinel and
//! towerlock-validator read the holder this crate writes, and the reverse.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The record format towerlock writes (`towerlock_storage::RECORD_FORMAT`),
/// and the newest this crate reads.
pub const RECORD_FORMAT: u32 = 2;

/// Who holds the fence: a random 128-bit id fresh for every process (unlike
/// agave's wall-clock milliseconds, two starts never share one), and where
/// it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    #[serde(default = "first_format")]
    pub format: u32,
    /// 16 random bytes, hex.
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    /// Milliseconds since the Unix epoch when this instance started.
    pub started_at_ms: u64,
}

fn first_format() -> u32 {
    1
}

impl InstanceRecord {
    /// A record for this process with a fresh random id.
    pub fn for_this_process() -> Self {
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown-host".to_string());
        let started_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            format: RECORD_FORMAT,
            id: hex::encode(id),
            host,
            pid: std::process::id(),
            version: concat!("agave+towerlock-agave ", env!("CARGO_PKG_VERSION")).to_string(),
            started_at_ms,
        }
    }

    /// The exact bytes stored in etcd; fenced writes compare against them.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an instance record always serializes")
    }
}

impl fmt::Display for InstanceRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instance {} (host {}, pid {}, version {})",
            self.id, self.host, self.pid, self.version
        )
    }
}

/// The format of a stored record, when it is a JSON object (format 1 had
/// none); `None` for a foreign value such as agave's 8-byte milliseconds.
pub fn record_format(bytes: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct Format {
        #[serde(default = "first_format")]
        format: u32,
    }
    serde_json::from_slice::<Format>(bytes)
        .ok()
        .map(|f| f.format)
}

/// A stored holder for messages: the record, or what the value is.
pub fn describe_holder(bytes: Option<&[u8]>) -> String {
    match bytes {
        None => "nobody (the instance key was deleted)".to_string(),
        Some(bytes) => match serde_json::from_slice::<InstanceRecord>(bytes) {
            Ok(record) => record.to_string(),
            Err(_) => format!("a foreign instance value {}", hex::encode(bytes)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_has_towerlocks_fields_and_format() {
        let record = InstanceRecord::for_this_process();
        let json: serde_json::Value = serde_json::from_slice(&record.to_bytes()).unwrap();
        let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["format", "host", "id", "pid", "started_at_ms", "version"]
        );
        assert_eq!(json["format"], 2);
        assert_eq!(json["id"].as_str().unwrap().len(), 32);
        assert_ne!(record.id, InstanceRecord::for_this_process().id);
    }

    #[test]
    fn formats_are_read_from_json_and_foreign_values_have_none() {
        assert_eq!(record_format(br#"{"format":3,"id":"x"}"#), Some(3));
        assert_eq!(record_format(br#"{"id":"x"}"#), Some(1));
        assert_eq!(record_format(&1_700_000_000_000u64.to_le_bytes()), None);
        assert!(describe_holder(Some(&[1, 2])).contains("foreign instance value 0102"));
    }
}

//! What every process the lab owns needs: signals and the end of its log.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::LabError;

/// Sends `signal` to the running process `pid` (named `what` in errors).
pub(crate) fn signal(what: &str, pid: Option<u32>, signal: libc::c_int) -> Result<(), LabError> {
    let not_running = || LabError::NotRunning {
        what: what.to_string(),
    };
    let pid = pid.ok_or_else(not_running)?;
    let pid = libc::pid_t::try_from(pid).map_err(|_| not_running())?;
    // SAFETY: a plain syscall on a child we own and have not reaped.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(not_running())
    }
}

/// The last `lines` lines of a log file (reads at most its last 64 KiB);
/// `(no log)` when it cannot be read. For error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

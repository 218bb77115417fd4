//! `--log FILE`: the log goes to a file that is reopened on SIGUSR1, so
//! that logrotate can move it away and signal the process (agave's
//! behaviour), without a restart and without losing a line.

use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

/// A log file that can be reopened under its name. Clones share the file.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    /// Opens `path` for appending, creating it (mode 0640) if missing.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            file: Arc::new(Mutex::new(append(path)?)),
        })
    }

    /// Opens the file under its name again: after a rotation moved the old
    /// one away, later lines go to a new file. Lines written meanwhile went
    /// to the old one.
    pub fn reopen(&self) -> io::Result<()> {
        let fresh = append(&self.path)?;
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.flush();
        *file = fresh;
        Ok(())
    }

    /// Reopens the file on every SIGUSR1 until the runtime stops. Must be
    /// called inside a tokio runtime.
    pub fn reopen_on_sigusr1(&self) -> io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let log = self.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                match log.reopen() {
                    Ok(()) => tracing::info!(path = %log.path.display(), "log file reopened"),
                    // Keep writing to the old file: a log line is worth
                    // more than the rotation.
                    Err(err) => eprintln!(
                        "cannot reopen the log file {}: {err}; still writing to the old one",
                        log.path.display()
                    ),
                }
            }
        });
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

/// One write to the log file (tracing makes one per event).
pub struct LogWriter(Arc<Mutex<File>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogFile {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter(self.file.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    #[test]
    fn a_reopened_log_writes_to_a_new_file_and_loses_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("validator.log");
        let log = LogFile::open(&path).unwrap();
        writeln!(log.make_writer(), "before rotation").unwrap();
        let rotated = dir.path().join("validator.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        writeln!(log.make_writer(), "after the move").unwrap();
        log.reopen().unwrap();
        writeln!(log.make_writer(), "after reopening").unwrap();
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap(),
            "before rotation\nafter the move\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after reopening\n");
    }
}

//! A `towerlock-validator` process the lab owns: started with a command
//! line it remembers (so that it can be restarted as it was), frozen,
//! thawed, killed, and asked for its status over the admin RPC.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use towerlock_validator::admin::{AdminClient, NodeStatus, Role};

use crate::process::{log_tail, signal};
use crate::{wait_until, LabError};

/// Lines of a validator's log carried by errors.
const TAIL_LINES: usize = 30;

/// A `towerlock-validator` process; killed when dropped.
pub struct ValidatorProcess {
    /// Its name in the lab (its ledger's file name).
    pub name: String,
    /// Its ledger directory (holds `admin.rpc`).
    pub ledger: PathBuf,
    /// The file receiving its stdout and stderr.
    pub log: PathBuf,
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl ValidatorProcess {
    /// Starts `bin --ledger <ledger> <args…>`, logging to `<ledger>.log`.
    pub fn spawn(
        bin: &Path,
        name: &str,
        ledger: PathBuf,
        args: &[String],
    ) -> Result<Self, LabError> {
        let mut process = Self {
            name: name.to_string(),
            log: ledger.with_extension("log"),
            ledger,
            bin: bin.to_path_buf(),
            args: args.to_vec(),
            child: None,
            status: None,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> Result<(), LabError> {
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(LabError::io("open the validator log", &self.log))?;
        let err = out
            .try_clone()
            .map_err(LabError::io("open the validator log", &self.log))?;
        let child = Command::new(&self.bin)
            .arg("--ledger")
            .arg(&self.ledger)
            .args(&self.args)
            .env("RUST_LOG", "info,towerlock_validator=debug")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(LabError::io("start", &self.bin))?;
        self.child = Some(child);
        self.status = None;
        Ok(())
    }

    /// Kills the process (if running) and starts it again with the same
    /// ledger and arguments; its log goes on in the same file.
    pub fn restart(&mut self) -> Result<(), LabError> {
        self.resume_quietly();
        self.kill();
        self.start()
    }

    /// Kills the process (if running) and starts it again with `args`
    /// instead (e.g. a fault that restarts a node with a skewed clock); later
    /// restarts keep them.
    pub fn restart_with(&mut self, args: Vec<String>) -> Result<(), LabError> {
        self.args = args;
        self.restart()
    }

    /// The arguments it runs with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The process id, while it has not been reaped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Its whole log so far (for assertions about what it said).
    pub fn log_text(&self) -> String {
        fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Why it stopped: the last `error:` line of its log, if any.
    pub fn exit_reason(&self) -> Option<String> {
        self.log_text()
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map(str::to_string)
    }

    /// Its exit status, once it has exited (reaps it).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.status = Some(status);
            }
        }
        self.status
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// [`LabError::ValidatorExited`] if it has exited.
    fn check_running(&mut self) -> Result<(), LabError> {
        match self.try_status() {
            None => Ok(()),
            Some(status) => Err(LabError::ValidatorExited {
                name: self.name.clone(),
                status,
                log_tail: self.log_tail(TAIL_LINES),
            }),
        }
    }

    /// Waits for the process to exit; returns its status.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Result<ExitStatus, LabError> {
        let what = format!("{} to exit", self.name);
        wait_until(deadline, &what, async || Ok(self.try_status())).await
    }

    /// SIGSTOP: the node freezes with its connections open.
    pub fn pause(&self) -> Result<(), LabError> {
        signal(&self.name, self.running_pid(), libc::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> Result<(), LabError> {
        signal(&self.name, self.running_pid(), libc::SIGCONT)
    }

    fn resume_quietly(&self) {
        let _ = self.resume();
    }

    fn running_pid(&self) -> Option<u32> {
        self.status.is_none().then(|| self.pid()).flatten()
    }

    /// SIGKILL and reap. Idempotent.
    pub fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            if let Ok(status) = child.wait() {
                self.status.get_or_insert(status);
            }
        }
    }

    /// A connection to its admin socket.
    pub async fn admin_client(&self) -> Result<AdminClient, LabError> {
        AdminClient::connect(&self.ledger)
            .await
            .map_err(|source| LabError::Admin {
                name: self.name.clone(),
                method: "connect",
                source,
            })
    }

    /// Its status (`towerlockStatus`, what `monitor` shows).
    pub async fn status(&self) -> Result<NodeStatus, LabError> {
        let mut client = self.admin_client().await?;
        client.status().await.map_err(|source| LabError::Admin {
            name: self.name.clone(),
            method: "towerlockStatus",
            source,
        })
    }

    /// Waits until its status satisfies `ready` (described by `what`);
    /// returns that status. Fails at once if the process exits; an admin
    /// socket not open yet counts as "not yet".
    pub async fn wait_status(
        &mut self,
        deadline: Duration,
        what: &str,
        mut ready: impl FnMut(&NodeStatus) -> bool,
    ) -> Result<NodeStatus, LabError> {
        let what = format!("{}: {what}", self.name);
        wait_until(deadline, &what, async || {
            self.check_running()?;
            match self.status().await {
                Ok(status) if ready(&status) => Ok(Some(status)),
                Ok(_) | Err(LabError::Admin { .. }) => Ok(None),
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Waits until it plays `role`; returns its status then.
    pub async fn wait_role(
        &mut self,
        role: Role,
        deadline: Duration,
    ) -> Result<NodeStatus, LabError> {
        self.wait_status(deadline, &format!("role {role}"), |s| s.role == role)
            .await
    }

    /// Its instance id (the admin socket answers as soon as it is open).
    pub async fn instance(&mut self, deadline: Duration) -> Result<String, LabError> {
        let status = self
            .wait_status(deadline, "an instance id", |s| !s.instance.is_empty())
            .await?;
        Ok(status.instance)
    }

    /// Once it holds the fence (voting, or fenced but skipping votes): the
    /// last vote of the tower its latest takeover loaded.
    pub async fn loaded_last_vote(&mut self, deadline: Duration) -> Result<Option<u64>, LabError> {
        let status = self
            .wait_status(deadline, "holding the fence", |s| {
                matches!(s.role, Role::Voting | Role::SkipVote)
            })
            .await?;
        Ok(status.loaded_last_vote)
    }

    /// Waits until the admin RPC serves requests that need a running node
    /// (it answers "retry once start up is complete" until then).
    pub async fn wait_ready(&mut self, deadline: Duration) -> Result<(), LabError> {
        let what = format!("{}: the admin RPC to serve a running node", self.name);
        wait_until(deadline, &what, async || {
            self.check_running()?;
            let Ok(mut client) = self.admin_client().await else {
                return Ok(None);
            };
            Ok(client.contact_info().await.ok().map(drop))
        })
        .await
    }

    /// Runs the validator binary's admin command line against this node
    /// (`--ledger L <args…>`), as an operator would.
    pub async fn admin(&self, args: &[&str]) -> Result<Output, LabError> {
        tokio::process::Command::new(&self.bin)
            .arg("--ledger")
            .arg(&self.ledger)
            .args(args)
            .output()
            .await
            .map_err(LabError::io("run", &self.bin))
    }
}

impl Drop for ValidatorProcess {
    fn drop(&mut self) {
        self.resume_quietly();
        self.kill();
    }
}

//! The admin subcommands of `towerlock-validator --ledger L <subcommand>`,
//! as agave's: each connects to `L/admin.rpc`, makes its calls, and prints
//! one result or one clear error.

use std::future::Future;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::Subcommand;

use super::client::{AdminClient, ClientError};
use super::keypair::{read_keypair_file, KeypairBytes};
use super::protocol::{socket_path, NodeStatus};

/// Admin subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum AdminCommand {
    /// Switch the running validator to another identity (with etcd, this takes over its tower lock).
    SetIdentity {
        /// Fail, changing nothing, if no tower exists for the new identity.
        #[arg(long)]
        require_tower: bool,
        /// The new identity's keypair file; read as JSON from stdin when omitted.
        #[arg(value_name = "KEYPAIR")]
        keypair: Option<PathBuf>,
    },
    /// Wait for a restart window, ask the validator to exit, and wait until
    /// it has (agave's `exit`). An orderly exit releases the tower fence.
    Exit {
        /// Ask the validator to exit at once instead of waiting for a
        /// restart window.
        #[arg(short, long)]
        force: bool,
        /// Do not wait for the validator to exit once asked.
        #[arg(long)]
        no_wait_for_exit: bool,
        /// How long to wait for the validator to exit once asked, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        timeout: u64,
        #[command(flatten)]
        window: ExitWindowArgs,
    },
    /// Print the validator's contact info.
    ContactInfo,
    /// Manage the validator's authorized voters.
    #[command(subcommand)]
    AuthorizedVoter(AuthorizedVoterCommand),
    /// Show the validator's status, refreshed every second, until Ctrl-C.
    Monitor,
    /// Change the validator's log filter, e.g. `info,towerlock_validator=debug`.
    SetLogFilter {
        /// The filter.
        filter: String,
    },
    /// Print the validator's process id.
    Pid,
    /// Print the validator's JSON-RPC address.
    RpcAddress,
}

/// The restart window `exit` waits for unless `--force` (agave's flags and
/// defaults, as `wait-for-restart-window`).
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct ExitWindowArgs {
    /// Minimum time the identity must have no leader slot, in minutes
    #[arg(long, value_name = "MINUTES", default_value_t = 10.0,
          value_parser = crate::restart_window::parse_minutes)]
    pub min_idle_time: f64,
    /// Wait while at least this percentage of the stake is delinquent
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0,
          value_parser = crate::restart_window::parse_percent)]
    pub max_delinquent_stake: f64,
    /// Accepted for compatibility with agave (this validator takes no
    /// snapshots)
    #[arg(long)]
    pub skip_new_snapshot_check: bool,
    /// Do not wait for the node to be healthy
    #[arg(long)]
    pub skip_health_check: bool,
}

impl Default for ExitWindowArgs {
    /// agave's defaults, as on a command line without these flags.
    fn default() -> Self {
        Self {
            min_idle_time: 10.0,
            max_delinquent_stake: 5.0,
            skip_new_snapshot_check: false,
            skip_health_check: false,
        }
    }
}

impl ExitWindowArgs {
    fn wait_args(&self) -> crate::restart_window::WaitForRestartWindowArgs {
        crate::restart_window::WaitForRestartWindowArgs {
            min_idle_time: self.min_idle_time,
            max_delinquent_stake: self.max_delinquent_stake,
            skip_new_snapshot_check: self.skip_new_snapshot_check,
            skip_health_check: self.skip_health_check,
            ..crate::restart_window::WaitForRestartWindowArgs::new()
        }
    }
}

/// `authorized-voter` subcommands.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum AuthorizedVoterCommand {
    /// Add an authorized voter keypair.
    Add {
        /// The voter's keypair file; read as JSON from stdin when omitted.
        #[arg(value_name = "KEYPAIR")]
        keypair: Option<PathBuf>,
    },
    /// Remove all authorized voters.
    RemoveAll,
}

/// Where a command reads and writes.
pub struct Console<'a> {
    /// Keypairs come from here when no file is named.
    pub stdin: &'a mut (dyn Read + Send),
    /// Results go here.
    pub stdout: &'a mut (dyn Write + Send),
    /// Whether `stdout` is a terminal: `monitor` then redraws one screen,
    /// otherwise it prints one line per refresh; `exit` shows a spinner.
    pub terminal: bool,
}

/// Runs `command` against the validator using `ledger`, on the process's
/// stdin and stdout, until done or Ctrl-C.
pub async fn run(ledger: &Path, command: AdminCommand) -> anyhow::Result<ExitCode> {
    let mut stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let console = Console {
        stdin: &mut stdin,
        stdout: &mut stdout,
        terminal,
    };
    let interrupt = async {
        // Only polled by the commands that wait; Ctrl-C keeps its default
        // meaning for the others.
        let _ = tokio::signal::ctrl_c().await;
    };
    run_with(ledger, command, console, interrupt).await
}

/// A keypair for the validator: a file it reads itself (by absolute path),
/// or the bytes piped on stdin.
enum KeypairArgument {
    File(std::path::PathBuf),
    Bytes(KeypairBytes),
}

/// The keypair argument and the pubkey to report (a file this user cannot
/// read is named by its path).
fn keypair_argument(
    path: Option<std::path::PathBuf>,
    stdin: &mut (dyn Read + Send),
) -> anyhow::Result<(KeypairArgument, String)> {
    Ok(match path {
        Some(path) => {
            let path = absolute_keypair_path(&path)?;
            let pubkey = read_keypair_file(&path, true).ok().map(|k| k.pubkey());
            let shown = pubkey.map_or_else(|| path.display().to_string(), |p| p.to_string());
            (KeypairArgument::File(path), shown)
        }
        None => {
            let bytes = read_keypair_stdin(stdin)?;
            let shown = bytes.pubkey().to_string();
            (KeypairArgument::Bytes(bytes), shown)
        }
    })
}

/// How `exit` goes: agave's flags.
struct ExitPlan<'a> {
    force: bool,
    wait_for_exit: bool,
    timeout: u64,
    window: &'a ExitWindowArgs,
}

/// What `exit` prints when done (agave's words).
fn plan_done(no_wait_for_exit: bool) -> &'static str {
    if no_wait_for_exit {
        "Exit requested"
    } else {
        "Validator exited"
    }
}

/// `exit`: unless `force`, wait for a restart window; ask the validator to
/// exit; unless told not to, wait until it has.
async fn exit(
    ledger: &Path,
    plan: ExitPlan<'_>,
    terminal: bool,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut client = AdminClient::connect(ledger).await?;
    let pid = client.pid().await?;
    if !plan.force {
        wait_for_window(ledger, plan.window).await?;
    }
    match client.exit().await {
        // A validator may be gone before its answer is written.
        Ok(()) | Err(ClientError::Closed { .. } | ClientError::Io { .. }) => {}
        Err(err) => return Err(err.into()),
    }
    if plan.wait_for_exit {
        let timeout = plan.timeout;
        wait_for_exit(
            ledger,
            pid,
            Duration::from_secs(timeout),
            terminal,
            interrupt,
        )
        .await?;
    }
    Ok(())
}

/// [`run`] with the given console; `interrupt` stops `monitor` and the wait of `exit`.
pub async fn run_with(
    ledger: &Path,
    command: AdminCommand,
    console: Console<'_>,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<ExitCode> {
    let out = console.stdout;
    match command {
        AdminCommand::SetIdentity {
            require_tower,
            keypair,
        } => {
            let (keypair, pubkey) = keypair_argument(keypair, console.stdin)?;
            let mut client = AdminClient::connect(ledger).await?;
            match keypair {
                KeypairArgument::File(path) => client.set_identity(&path, require_tower).await?,
                KeypairArgument::Bytes(bytes) => {
                    client
                        .set_identity_from_bytes(&bytes, require_tower)
                        .await?
                }
            }
            writeln!(out, "New validator identity: {pubkey}")?;
        }
        AdminCommand::AuthorizedVoter(AuthorizedVoterCommand::Add { keypair }) => {
            let (keypair, pubkey) = keypair_argument(keypair, console.stdin)?;
            let mut client = AdminClient::connect(ledger).await?;
            match keypair {
                KeypairArgument::File(path) => client.add_authorized_voter(&path).await?,
                KeypairArgument::Bytes(bytes) => {
                    client.add_authorized_voter_from_bytes(&bytes).await?
                }
            }
            writeln!(out, "Added authorized voter: {pubkey}")?;
        }
        AdminCommand::AuthorizedVoter(AuthorizedVoterCommand::RemoveAll) => {
            let mut client = AdminClient::connect(ledger).await?;
            client.remove_all_authorized_voters().await?;
            writeln!(out, "All authorized voters removed")?;
        }
        AdminCommand::Exit {
            force,
            no_wait_for_exit,
            timeout,
            window,
        } => {
            let plan = ExitPlan {
                force,
                wait_for_exit: !no_wait_for_exit,
                timeout,
                window: &window,
            };
            exit(ledger, plan, console.terminal, interrupt).await?;
            writeln!(out, "{}", plan_done(no_wait_for_exit))?;
        }
        AdminCommand::ContactInfo => {
            let mut client = AdminClient::connect(ledger).await?;
            writeln!(out, "{}", client.contact_info().await?)?;
        }
        AdminCommand::Monitor => monitor(ledger, out, console.terminal, interrupt).await?,
        AdminCommand::SetLogFilter { filter } => {
            let mut client = AdminClient::connect(ledger).await?;
            client.set_log_filter(&filter).await?;
        }
        AdminCommand::Pid => {
            let mut client = AdminClient::connect(ledger).await?;
            writeln!(out, "{}", client.pid().await?)?;
        }
        AdminCommand::RpcAddress => {
            let mut client = AdminClient::connect(ledger).await?;
            match client.rpc_address().await? {
                Some(address) => writeln!(out, "{address}")?,
                None => bail!(
                    "the validator using {} serves no JSON-RPC",
                    ledger.display()
                ),
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The validator reads keypair files itself, from its own working
/// directory: send it an absolute path.
fn absolute_keypair_path(path: &Path) -> anyhow::Result<PathBuf> {
    std::fs::canonicalize(path)
        .with_context(|| format!("cannot read keypair file {}", path.display()))
}

/// Reads a solana-keygen JSON keypair from `stdin`.
pub fn read_keypair_stdin(stdin: &mut (dyn Read + Send)) -> anyhow::Result<KeypairBytes> {
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .context("cannot read the keypair from stdin")?;
    if text.trim().is_empty() {
        bail!("no keypair on stdin: name a KEYPAIR file or pipe the keypair JSON in");
    }
    KeypairBytes::from_json(&text).map_err(|err| anyhow!("the keypair on stdin is unusable: {err}"))
}

/// Waits until the node is in a restart window, showing why it waits on
/// stderr; an error when it cannot be in this epoch.
async fn wait_for_window(ledger: &Path, window: &ExitWindowArgs) -> anyhow::Result<()> {
    use crate::restart_window::{self as rw, NodeRpc, Outcome, Report};
    let rpc = NodeRpc::new(rw::resolve_rpc_url(ledger).await?);
    let args = window.wait_args();
    let mut status = rw::status::for_stderr();
    let outcome =
        rw::wait_for_restart_window(&rpc, &args, &mut *status, &mut std::io::sink()).await?;
    if !matches!(outcome, Outcome::Ready { .. }) {
        let report = Report {
            outcome: &outcome,
            timeout: None,
        };
        bail!("not asking the validator to exit: {report} (pass --force to exit at once)");
    }
    Ok(())
}

/// Waits until process `pid` is gone and nothing answers on the socket.
async fn wait_for_exit(
    ledger: &Path,
    pid: u32,
    timeout: Duration,
    terminal: bool,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let spinner = terminal.then(|| {
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(120));
        spinner
    });
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    tokio::pin!(interrupt);
    let outcome = loop {
        tokio::select! {
            _ = &mut interrupt => break Err(anyhow!("stopped waiting; the validator (pid {pid}) was asked to exit")),
            _ = poll.tick() => {}
        }
        if !process_alive(pid) && !socket_answers(ledger).await {
            break Ok(());
        }
        let waited = started.elapsed();
        if waited >= timeout {
            break Err(anyhow!(
                "the validator (pid {pid}) is still running {} s after it was asked to exit",
                timeout.as_secs()
            ));
        }
        if let Some(spinner) = &spinner {
            spinner.set_message(format!(
                "Waiting for the validator (pid {pid}) to exit… {} s",
                waited.as_secs()
            ));
        }
    };
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    outcome
}

/// Whether process `pid` exists and is not a zombie (Linux `/proc`; elsewhere: unknown, so `false`).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may itself hold ") ".
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        Err(_) => false,
    }
}

async fn socket_answers(ledger: &Path) -> bool {
    tokio::net::UnixStream::connect(socket_path(ledger))
        .await
        .is_ok()
}

/// Refreshes the status every second until `interrupt`. Fails only when no
/// validator answers at the start; later losses are shown and retried.
async fn monitor(
    ledger: &Path,
    out: &mut (dyn Write + Send),
    terminal: bool,
    interrupt: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut client = Some(AdminClient::connect(ledger).await?);
    let mut refresh = tokio::time::interval(Duration::from_secs(1));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(interrupt);
    loop {
        tokio::select! {
            _ = &mut interrupt => break,
            _ = refresh.tick() => {}
        }
        let status = match client.as_mut() {
            Some(connected) => connected.status().await,
            None => match AdminClient::connect(ledger).await {
                Ok(mut connected) => {
                    let status = connected.status().await;
                    client = Some(connected);
                    status
                }
                Err(err) => Err(err),
            },
        };
        if let Err(err) = &status {
            if err.is_connection_error() {
                client = None;
            }
        }
        let text = match (&status, terminal) {
            (Ok(status), true) => format!("\x1b[H\x1b[2J{}", status_screen(ledger, status)),
            (Ok(status), false) => status_line(status),
            (Err(err), true) => format!("\x1b[H\x1b[2J{}", error_screen(ledger, err)),
            (Err(err), false) => err.to_string(),
        };
        writeln!(out, "{text}")?;
        out.flush()?;
    }
    Ok(())
}

fn optional<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn latency(status: &NodeStatus) -> String {
    status
        .last_store_latency_ms
        .map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"))
}

/// One screen of `monitor` (on a terminal).
pub fn status_screen(ledger: &Path, status: &NodeStatus) -> String {
    let slot = match (status.cluster_slot, status.behind_by()) {
        (Some(cluster), Some(behind)) => {
            format!("{} (cluster {cluster}, behind by {behind})", status.slot)
        }
        _ => format!("{} (cluster slot unknown)", status.slot),
    };
    let fence = match status.fence_token {
        Some(token) => token.to_string(),
        None => "none (not fenced)".to_string(),
    };
    [
        format!("towerlock-validator  ledger {}", ledger.display()),
        String::new(),
        format!("Identity:       {}", status.identity),
        format!("Vote account:   {}", optional(status.vote_account)),
        format!("Role:           {}", status.role),
        format!("Slot:           {slot}"),
        format!("Last vote:      {}", optional(status.last_vote_slot)),
        format!("Root:           {}", optional(status.root)),
        format!("Fence token:    {fence}"),
        format!("Store latency:  {}", latency(status)),
        format!(
            "Leader slots:   {} produced, {} skipped",
            status.leader_slots_produced, status.leader_slots_skipped
        ),
        String::new(),
        "Refreshed every second; Ctrl-C to quit.".to_string(),
    ]
    .join("\n")
}

fn error_screen(ledger: &Path, err: &ClientError) -> String {
    format!(
        "towerlock-validator  ledger {}\n\n{err}\n\nRetrying every second; Ctrl-C to quit.",
        ledger.display()
    )
}

/// One line of `monitor` (when stdout is not a terminal).
pub fn status_line(status: &NodeStatus) -> String {
    format!(
        "slot={} cluster_slot={} behind={} role={} identity={} vote_account={} last_vote={} root={} fence={} store_latency={} leader_produced={} leader_skipped={}",
        status.slot,
        optional(status.cluster_slot),
        optional(status.behind_by()),
        status.role.to_string().replace(' ', "-"),
        status.identity,
        optional(status.vote_account),
        optional(status.last_vote_slot),
        optional(status.root),
        optional(status.fence_token),
        latency(status).replace(' ', ""),
        status.leader_slots_produced,
        status.leader_slots_skipped,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: AdminCommand,
    }

    fn parse(args: &[&str]) -> AdminCommand {
        Cli::try_parse_from(std::iter::once("towerlock-validator").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    #[test]
    fn agave_command_lines_parse() {
        assert_eq!(
            parse(&["set-identity", "--require-tower", "id.json"]),
            AdminCommand::SetIdentity {
                require_tower: true,
                keypair: Some("id.json".into())
            }
        );
        assert_eq!(
            parse(&["set-identity"]),
            AdminCommand::SetIdentity {
                require_tower: false,
                keypair: None
            }
        );
        let AdminCommand::Exit {
            force,
            no_wait_for_exit,
            window,
            ..
        } = parse(&["exit", "-f", "--no-wait-for-exit", "--min-idle-time", "2"])
        else {
            panic!("not an exit");
        };
        assert!(force && no_wait_for_exit);
        assert_eq!(window.min_idle_time, 2.0);
        assert_eq!(window.max_delinquent_stake, 5.0, "agave's default");
        assert_eq!(
            parse(&["authorized-voter", "add", "v.json"]),
            AdminCommand::AuthorizedVoter(AuthorizedVoterCommand::Add {
                keypair: Some("v.json".into())
            })
        );
        assert_eq!(
            parse(&["authorized-voter", "remove-all"]),
            AdminCommand::AuthorizedVoter(AuthorizedVoterCommand::RemoveAll)
        );
        assert_eq!(parse(&["contact-info"]), AdminCommand::ContactInfo);
        assert_eq!(parse(&["monitor"]), AdminCommand::Monitor);
        assert_eq!(parse(&["rpc-address"]), AdminCommand::RpcAddress);
        assert_eq!(parse(&["pid"]), AdminCommand::Pid);
        assert_eq!(
            parse(&["set-log-filter", "debug"]),
            AdminCommand::SetLogFilter {
                filter: "debug".into()
            }
        );
    }

    #[test]
    fn stdin_keypair() {
        let keypair = solana_keypair::Keypair::new();
        let json = super::super::keypair::keypair_json(&keypair);
        let parsed = read_keypair_stdin(&mut std::io::Cursor::new(format!("{json}\n"))).unwrap();
        assert_eq!(parsed.pubkey(), solana_signer::Signer::pubkey(&keypair));
        let err = read_keypair_stdin(&mut std::io::Cursor::new("")).unwrap_err();
        assert!(err.to_string().starts_with("no keypair on stdin"), "{err}");
        let err = read_keypair_stdin(&mut std::io::Cursor::new("[1,2,3]")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the keypair on stdin is unusable: invalid keypair: expected 64 bytes, got 3"
        );
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}

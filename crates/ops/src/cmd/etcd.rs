//! `towerlock etcd check`: is this etcd fit to hold towers?
//!
//! Connects as a validator would (mutual TLS, the same flags), then reports
//! each endpoint's version and status, the members and the leader, the
//! database size against its quota, whether compaction appears to run, and
//! the latency of the fenced write/read a validator does before every vote.
//! Any failure exits 1 with one sentence naming its cause; so does an
//! endpoint that fails while the others pass (after the full report).
//!
//! It first reads the CA and client certificates: each one's expiry is
//! printed, one that expires within `EXPIRY_WARNING_DAYS` is a warning, an
//! expired one a failure. Under etcd's access control (`setup-access`) the
//! scratch keys lie under `<prefix><CN>/` when the client certificate's
//! common name is an identity, and an operation the certificate's user may
//! not do is reported as such rather than failing the check.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use towerlock_certs::{CertKind, CertificateInfo, Expiry};
use towerlock_etcd::etcd_client::{
    AlarmAction, AlarmType, Client, Compare, CompareOp, GetOptions, StatusResponse, Txn, TxnOp,
    WatchOptions,
};
use towerlock_etcd::{
    classify_request_error, connect, is_permission_denied, EtcdArgs, EtcdConfig, EtcdError,
};

/// etcd's default backend quota (`--quota-backend-bytes`): 2 GiB.
const DEFAULT_QUOTA_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Above this revision, an etcd that has never compacted most likely has
/// auto-compaction off: with the seed's `--auto-compaction-mode revision`,
/// etcd compacts every 5 minutes, and a validator writes far fewer than this
/// many revisions in 5 minutes (one per vote, 2.5 per second).
const NEVER_COMPACTED_SUSPICIOUS: i64 = 10_000;

/// Number of fenced write/read rounds timed on the scratch key.
const ROUNDS: usize = 10;

/// Check an etcd cluster: reachability, TLS, compaction, latency.
#[derive(Debug, clap::Args)]
pub struct EtcdCmd {
    #[command(subcommand)]
    command: EtcdCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EtcdCommand {
    /// Check etcd as a validator sees it: TLS, members, size, compaction,
    /// latency, certificate expiry.
    ///
    /// Connects as a validator would (mutual TLS) and reports version,
    /// members, leader, database size against quota, compaction and the
    /// latency of a fenced write/read on a scratch key (deleted afterwards;
    /// under the identity's own keys when the client certificate is an
    /// identity's). Prints when the CA and client certificates expire and
    /// warns within 30 days. Exits 1 with the cause when etcd cannot be used
    /// or a certificate has expired.
    Check(CheckArgs),
    /// Turn on etcd's access control: each identity's certificate reaches
    /// only its own keys.
    ///
    /// Run with the root certificate (root.pem): a user and role per staked
    /// identity, limited to the keys under
    /// <prefix><PUBKEY>/, a read-only user for the sentinel and fence
    /// status, and root as administrator. Safe to run again; more identities
    /// are added.
    SetupAccess(super::etcd_access::SetupAccessArgs),
}

#[derive(Debug, clap::Args)]
#[command(mut_arg("etcd_endpoint", |arg| arg.required(true)))]
struct CheckArgs {
    #[command(flatten)]
    etcd: EtcdArgs,

    /// etcd's --quota-backend-bytes, for the size check (etcd 3.4 does not
    /// report it).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_QUOTA_BYTES)]
    quota_bytes: u64,
}

impl EtcdCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            EtcdCommand::Check(args) => check(args).await,
            EtcdCommand::SetupAccess(args) => super::etcd_access::setup_access(args).await,
        }
    }
}

/// The library's errors are complete sentences: report them without a chain.
fn sentence(err: EtcdError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

async fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = EtcdConfig::from(args.etcd);
    let (mut warnings, scratch) = report_certificates(&config)?;
    let failed = check_endpoints(&config).await?;
    let mut client = connect(&config).await.map_err(sentence)?;
    let status = client
        .status()
        .await
        .map_err(|e| sentence(classify_request_error(&e, &config)))?;

    warnings.extend(report_members(&mut client, &config, &status).await?);
    warnings.extend(report_size(&mut client, &config, &status, args.quota_bytes).await?);
    let revision = status.header().map(|h| h.revision()).unwrap_or(0);
    warnings.extend(report_compaction(&mut client, &config, &scratch, revision).await?);
    warnings.extend(report_latency(&mut client, &config, &scratch).await?);
    Ok(conclude(&warnings, &failed, config.endpoints.len()))
}

/// Where the check may write: under the identity's own keys when the client
/// certificate is an identity's (access control allows nothing else).
struct Scratch {
    /// `<prefix>` or `<prefix><PUBKEY>/`.
    base: String,
    /// The identity, when the client certificate is one's.
    identity: Option<String>,
}

/// Prints the expiry of the CA and client certificates; returns the
/// warnings and where the scratch keys go. Fails when one has expired.
fn report_certificates(config: &EtcdConfig) -> anyhow::Result<(Vec<String>, Scratch)> {
    let mut warnings = Vec::new();
    let mut scratch = Scratch {
        base: config.key_prefix.clone(),
        identity: None,
    };
    println!("certificates:");
    for (what, path) in [
        ("CA certificate", &config.ca_cert_file),
        ("client certificate", &config.cert_file),
    ] {
        let info = CertificateInfo::read(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let expiry = info.expiry_now();
        let date = info.not_after.date();
        println!(
            "  {} ({what}, CN {}): valid until {date} UTC, {expiry}",
            path.display(),
            info.common_name
        );
        // The CA cannot be renewed alone: every certificate it signed goes
        // with it.
        let fix = if info.is_ca {
            "make a new CA and certificates (towerlock certs init in a new directory) and move \
             etcd and every client to them"
        } else {
            "renew it from the CA with `towerlock certs renew`"
        };
        match expiry {
            Expiry::Expired { .. } => anyhow::bail!(
                "the {what} {} (CN {}) expired on {date}: {fix}",
                path.display(),
                info.common_name
            ),
            Expiry::ExpiresSoon { days_left } => warnings.push(format!(
                "the {what} {} (CN {}) expires in {days_left} days, on {date}: {fix} before then",
                path.display(),
                info.common_name
            )),
            Expiry::Valid { .. } => {}
        }
        if what == "client certificate" && CertKind::identity(&info.common_name).is_ok() {
            scratch.base = format!("{}{}/", config.key_prefix, info.common_name);
            scratch.identity = Some(info.common_name);
        }
    }
    Ok((warnings, scratch))
}

/// Connects to every endpoint on its own, so that one bad member is named,
/// and prints a line for each. Returns the failures (one sentence each);
/// fails when no endpoint can be used, or the only one cannot.
async fn check_endpoints(config: &EtcdConfig) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut failed = Vec::new();
    for endpoint in &config.endpoints {
        let single = EtcdConfig {
            endpoints: vec![endpoint.clone()],
            ..config.clone()
        };
        match connect(&single).await {
            Ok(mut one) => {
                let status = one
                    .status()
                    .await
                    .map_err(|e| sentence(classify_request_error(&e, &single)))?;
                lines.push(endpoint_line(endpoint, &status));
            }
            Err(err) if config.endpoints.len() == 1 => return Err(sentence(err)),
            Err(err) => {
                lines.push(format!("  {endpoint}: FAILED: {err}"));
                failed.push(format!("endpoint {endpoint} failed: {err}"));
            }
        }
    }
    if failed.len() == config.endpoints.len() {
        let first = failed.first().cloned().unwrap_or_default();
        anyhow::bail!("no etcd endpoint could be used; {first}");
    }
    println!("endpoints:");
    for line in lines {
        println!("{line}");
    }
    Ok(failed)
}

fn endpoint_line(endpoint: &str, status: &StatusResponse) -> String {
    let member = status.header().map(|h| h.member_id()).unwrap_or(0);
    format!(
        "  {endpoint}: etcd {}, member {member:x}{}, raft term {}, db {}",
        status.version(),
        if status.leader() == member {
            " (leader)"
        } else {
            ""
        },
        status.raft_term(),
        bytes(status.db_size().max(0) as u64),
    )
}

/// Prints the members and the leader; returns the warnings.
async fn report_members(
    client: &mut Client,
    config: &EtcdConfig,
    status: &StatusResponse,
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let members = client
        .member_list()
        .await
        .map_err(|e| sentence(classify_request_error(&e, config)))?;
    let leader = status.leader();
    println!("members: {}", members.members().len());
    for member in members.members() {
        println!(
            "  {} {:x} {}{}{}",
            if member.name().is_empty() {
                "(unstarted)"
            } else {
                member.name()
            },
            member.id(),
            member.client_urls().join(","),
            if member.id() == leader {
                " (leader)"
            } else {
                ""
            },
            if member.is_learner() {
                " (learner)"
            } else {
                ""
            },
        );
    }
    match members.members().iter().find(|m| m.id() == leader) {
        Some(m) => println!("leader: {} ({:x})", m.name(), m.id()),
        None if leader == 0 => {
            println!("leader: none");
            warnings.push("the cluster has no leader: writes will fail".into());
        }
        None => println!("leader: {leader:x}"),
    }
    if members.members().len() == 2 {
        warnings
            .push("a 2-member etcd cluster stops when either member fails: use 1, 3 or 5".into());
    }
    Ok(warnings)
}

/// Prints the database size against the quota (a server flag that 3.4 does
/// not report) and checks the alarms; returns the warnings.
async fn report_size(
    client: &mut Client,
    config: &EtcdConfig,
    status: &StatusResponse,
    quota_bytes: u64,
) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    let db = status.db_size().max(0) as u64;
    let in_use = status.raft_used_db_size().max(0) as u64;
    let used = db as f64 / quota_bytes.max(1) as f64 * 100.0;
    println!(
        "db size: {} (in use {}) of quota {} ({used:.1}%)",
        bytes(db),
        bytes(in_use),
        bytes(quota_bytes)
    );
    if used >= 80.0 {
        warnings.push(format!(
            "the database is at {used:.0}% of its quota: compact and defragment, or raise --quota-backend-bytes"
        ));
    }
    let alarms = client
        .alarm(AlarmAction::Get, AlarmType::None, None)
        .await
        .map_err(|e| sentence(classify_request_error(&e, config)))?;
    for alarm in alarms.alarms() {
        warnings.push(format!(
            "alarm {:?} raised on member {:x}: writes may be refused",
            alarm.alarm(),
            alarm.member_id()
        ));
    }
    Ok(warnings)
}

/// Prints what can be said about compaction; returns the warnings.
async fn report_compaction(
    client: &mut Client,
    config: &EtcdConfig,
    scratch: &Scratch,
    revision: i64,
) -> anyhow::Result<Vec<String>> {
    let Some(compaction) = compaction(client, config, scratch, revision).await? else {
        println!(
            "compaction: unknown (this certificate's user may not read {}: permission denied)",
            scratch.base
        );
        return Ok(vec![format!(
            "etcd's access control does not let this certificate's user read {}: a validator \
             needs the certificate of its identity, the sentinel the reader's",
            scratch.base
        )]);
    };
    println!("compaction: {}", compaction.describe());
    if !matches!(compaction, Compaction::On { .. }) {
        println!(
            "  the seed starts etcd with: --auto-compaction-retention 2 --auto-compaction-mode revision"
        );
    }
    Ok(compaction.warning().into_iter().collect())
}

/// Times and prints the fenced write/read a validator makes before each
/// vote (the read alone when this certificate may not write); returns the
/// warnings.
async fn report_latency(
    client: &mut Client,
    config: &EtcdConfig,
    scratch: &Scratch,
) -> anyhow::Result<Vec<String>> {
    let latency = fenced_latency(client, config, scratch).await?;
    let mut warnings = Vec::new();
    match latency.write {
        Some((median, max)) => println!(
            "fenced write (txn with compare): median {}, max {} over {ROUNDS} rounds",
            ms(median),
            ms(max)
        ),
        None => {
            println!(
                "fenced write: not allowed to this certificate's user under {} (permission denied): \
                 a read-only certificate",
                scratch.base
            );
            if let Some(identity) = &scratch.identity {
                warnings.push(format!(
                    "the certificate of identity {identity} may not write its own keys: \
                     run towerlock etcd setup-access --identity {identity} with the root certificate"
                ));
            }
        }
    }
    println!(
        "read (linearizable get):         median {}, max {}",
        ms(latency.read_median),
        ms(latency.read_max)
    );
    Ok(warnings)
}

/// The verdict: warnings leave the exit status at 0; a failed endpoint sets
/// it to 1 even when the others passed.
fn conclude(warnings: &[String], failed: &[String], endpoints: usize) -> ExitCode {
    for warning in warnings {
        println!("warning: {warning}");
    }
    if !failed.is_empty() {
        for failure in failed {
            eprintln!("error: {failure}");
        }
        println!(
            "FAILED: {} of {endpoints} endpoints cannot be used",
            failed.len()
        );
        return ExitCode::FAILURE;
    }
    if warnings.is_empty() {
        println!("ok: etcd is ready for tower storage");
    } else {
        println!("ok, with {} warning(s)", warnings.len());
    }
    ExitCode::SUCCESS
}

/// What can be said about compaction from the outside.
///
/// etcd 3.4 does not report its flags over the API, and the compact revision
/// is not in any response header. It is visible in two ways: a read at a
/// compacted revision fails with "required revision has been compacted", and
/// a watch from such a revision is cancelled with the compact revision. So:
/// compacted at some point → on (manual compaction looks the same); never
/// compacted but many revisions → apparently off; otherwise unknown (a fresh
/// etcd with the seed's flags compacts for the first time 5 minutes after
/// start).
#[derive(Debug)]
enum Compaction {
    On { compacted: i64, revision: i64 },
    AppearsOff { revision: i64 },
    Unknown { revision: i64 },
}

impl Compaction {
    fn describe(&self) -> String {
        match self {
            Compaction::On {
                compacted: 0,
                revision,
            } => format!("on (history has been compacted; current revision {revision})"),
            Compaction::On {
                compacted,
                revision,
            } => format!(
                "on (history compacted up to revision {compacted}; current revision {revision})"
            ),
            Compaction::AppearsOff { revision } => format!(
                "appears OFF (nothing compacted at revision {revision}; an auto-compacting etcd compacts every 5 minutes)"
            ),
            Compaction::Unknown { revision } => format!(
                "unknown (nothing compacted yet at revision {revision}; etcd 3.4 does not report its flags, \
                 and with --auto-compaction-mode revision it first compacts 5 minutes after start)"
            ),
        }
    }

    fn warning(&self) -> Option<String> {
        match self {
            Compaction::AppearsOff { .. } => Some(
                "compaction seems off: every tower store adds a revision and etcd will fill its quota; \
                 start etcd with --auto-compaction-retention 2 --auto-compaction-mode revision"
                    .into(),
            ),
            Compaction::On {
                compacted,
                revision,
            } if *compacted > 0 && revision - compacted > 1_000_000 => Some(format!(
                "etcd keeps {} revisions of history: compaction may be lagging",
                revision - compacted
            )),
            _ => None,
        }
    }
}

/// `None` when this certificate's user may not read the probe key.
async fn compaction(
    client: &mut Client,
    config: &EtcdConfig,
    scratch: &Scratch,
    revision: i64,
) -> anyhow::Result<Option<Compaction>> {
    let probe_key = format!("{}towerlock-check/compaction-probe", scratch.base);
    let compacted = match client
        .get(probe_key.as_str(), Some(GetOptions::new().with_revision(1)))
        .await
    {
        Ok(_) => false,
        Err(err) if err.to_string().contains("compacted") => true,
        Err(err) if is_permission_denied(&err) => return Ok(None),
        Err(err) => return Err(sentence(classify_request_error(&err, config))),
    };
    if !compacted {
        return Ok(Some(judge(None, revision)));
    }
    // A watch from revision 1 is cancelled with the compact revision.
    let mut compacted_to = 0;
    let watched = async {
        let mut stream = client
            .watch(
                probe_key.as_str(),
                Some(WatchOptions::new().with_start_revision(1)),
            )
            .await?;
        while let Some(response) = stream.message().await? {
            if response.compact_revision() > 0 {
                compacted_to = response.compact_revision();
                break;
            }
            if response.canceled() {
                break;
            }
        }
        Ok::<_, towerlock_etcd::etcd_client::Error>(())
    };
    let _ = tokio::time::timeout(config.request_timeout, watched).await;
    Ok(Some(judge(Some(compacted_to), revision)))
}

/// `compacted`: `None` when nothing was ever compacted, else the compact
/// revision (0 when it could not be read).
fn judge(compacted: Option<i64>, revision: i64) -> Compaction {
    match compacted {
        Some(compacted) => Compaction::On {
            compacted,
            revision,
        },
        None if revision > NEVER_COMPACTED_SUSPICIOUS => Compaction::AppearsOff { revision },
        None => Compaction::Unknown { revision },
    }
}

struct Latency {
    /// Median and max of the fenced writes; `None` when this certificate
    /// may not write.
    write: Option<(Duration, Duration)>,
    read_median: Duration,
    read_max: Duration,
}

/// Times the fence a validator uses: create a scratch key under
/// `scratch.base`, then rounds of `txn(mod_revision == token && value ==
/// last) put` and a `get`; deletes the key afterwards, also on failure.
/// When this certificate may not write, times the reads alone.
async fn fenced_latency(
    client: &mut Client,
    config: &EtcdConfig,
    scratch: &Scratch,
) -> anyhow::Result<Latency> {
    let key = format!(
        "{}towerlock-check/{}-{}",
        scratch.base,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let fail = |e: towerlock_etcd::etcd_client::Error| sentence(classify_request_error(&e, config));
    let created = client
        .txn(
            Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.as_str(), "0", None)]),
        )
        .await;
    let created = match created {
        Err(err) if is_permission_denied(&err) => return read_rounds(client, config, &key).await,
        other => other.map_err(fail)?,
    };
    if !created.succeeded() {
        anyhow::bail!("the scratch key {key} exists already: another check is running?");
    }
    let token = created.header().map(|h| h.revision()).unwrap_or(0);
    let result = fenced_rounds(client, config, &key, token).await;
    let deleted = client.delete(key.as_str(), None).await;
    let latency = result?;
    deleted.map_err(fail)?;
    Ok(latency)
}

/// Times reads of `key` alone.
async fn read_rounds(
    client: &mut Client,
    config: &EtcdConfig,
    key: &str,
) -> anyhow::Result<Latency> {
    let mut reads = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        client
            .get(key, None)
            .await
            .map_err(|e| sentence(classify_request_error(&e, config)))?;
        reads.push(started.elapsed());
    }
    reads.sort();
    Ok(Latency {
        write: None,
        read_median: reads[reads.len() / 2],
        read_max: reads[reads.len() - 1],
    })
}

async fn fenced_rounds(
    client: &mut Client,
    config: &EtcdConfig,
    key: &str,
    mut token: i64,
) -> anyhow::Result<Latency> {
    let fail = |e: towerlock_etcd::etcd_client::Error| sentence(classify_request_error(&e, config));
    let mut last = "0".to_string();
    let mut writes = Vec::with_capacity(ROUNDS);
    let mut reads = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        let value = round.to_string();
        let started = Instant::now();
        let response = client
            .txn(
                Txn::new()
                    .when([
                        Compare::mod_revision(key, CompareOp::Equal, token),
                        Compare::value(key, CompareOp::Equal, last.as_str()),
                    ])
                    .and_then([TxnOp::put(key, value.as_str(), None)])
                    .or_else([TxnOp::get(key, None)]),
            )
            .await
            .map_err(fail)?;
        writes.push(started.elapsed());
        if !response.succeeded() {
            anyhow::bail!(
                "the fenced write on the scratch key {key} failed its compare: something else wrote it"
            );
        }
        token = response.header().map(|h| h.revision()).unwrap_or(token);
        last = value;

        let started = Instant::now();
        let got = client.get(key, None).await.map_err(fail)?;
        reads.push(started.elapsed());
        if got.kvs().first().map(|kv| kv.value()) != Some(last.as_bytes()) {
            anyhow::bail!(
                "the read after the fenced write on {key} did not return what was written"
            );
        }
    }
    writes.sort();
    reads.sort();
    Ok(Latency {
        write: Some((writes[writes.len() / 2], writes[writes.len() - 1])),
        read_median: reads[reads.len() / 2],
        read_max: reads[reads.len() - 1],
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_judgement() {
        assert!(matches!(judge(None, 5), Compaction::Unknown { .. }));
        assert!(judge(None, 5).warning().is_none());
        let off = judge(None, NEVER_COMPACTED_SUSPICIOUS + 1);
        assert!(matches!(off, Compaction::AppearsOff { .. }));
        assert!(off
            .warning()
            .unwrap()
            .contains("--auto-compaction-mode revision"));
        assert!(judge(Some(100), 102).warning().is_none());
        assert!(judge(Some(0), 5_000_000).warning().is_none());
        assert!(judge(Some(1), 5_000_000).warning().is_some());
        assert!(judge(Some(0), 7).describe().starts_with("on"));
    }

    #[test]
    fn a_failed_endpoint_sets_the_exit_status() {
        let warnings = vec!["w".to_string()];
        assert_eq!(conclude(&warnings, &[], 2), ExitCode::SUCCESS);
        let failed = vec!["endpoint x failed".to_string()];
        assert_eq!(conclude(&[], &failed, 2), ExitCode::FAILURE);
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2 * 1024 * 1024 * 1024), "2.0 GiB");
        assert_eq!(bytes(20 * 1024), "20.0 KiB");
    }
}

//! `towerlock certs`: the seed's TLS certificates without cfssl, one client
//! certificate per staked identity, and renewal from the existing CA.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::Context;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_certs::{CertKind, CertOptions, Issued, SeedCertPaths};

/// Make, add and renew the TLS certificates that etcd and the validators use.
#[derive(Debug, clap::Args)]
pub struct CertsCmd {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CertsCommand {
    /// Write a new CA and the certificates it signs.
    ///
    /// etcd's server certificate (etcd.pem), the members' peer certificate
    /// (etcd-peer.pem), one client certificate per --identity
    /// (validator-<PUBKEY>.pem, common name the pubkey) or, without
    /// --identity, the seed's shared validator.pem, the read-only reader.pem
    /// and the root.pem of etcd's root user. Keys are mode 0600.
    Init(InitArgs),
    /// Issue more client certificates from the existing CA.
    ///
    /// For a new staked identity, the reader or root, from etcd-ca.pem and
    /// etcd-ca-key.pem in --dir; every other file stays as it is.
    Add(AddArgs),
    /// Reissue chosen certificates from the existing CA, before they expire.
    ///
    /// Signed by etcd-ca.pem and etcd-ca-key.pem in --dir, each keeps its
    /// common name and hosts (unless --hosts) and gets a new validity; every
    /// other file stays byte for byte. Each pair is written to temporary
    /// files and renamed into place. The CA itself is not renewed: a new CA
    /// means new certificates everywhere (certs init in a new directory).
    Renew(RenewArgs),
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "certs")]
    dir: PathBuf,

    /// Host names and IP addresses by which validators reach etcd (comma
    /// separated); each goes into etcd's certificate.
    #[arg(
        long,
        value_name = "HOST,...",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1"
    )]
    hosts: Vec<String>,

    /// Host names and IP addresses by which the members of a multi-member
    /// etcd reach each other (comma separated); each goes into the peer
    /// certificate (etcd-peer.pem) [default: the --hosts].
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    peer_hosts: Option<Vec<String>>,

    /// A staked identity (base-58 pubkey, or its keypair file): it gets
    /// validator-<PUBKEY>.pem, shared by its primary and secondary. Repeat
    /// for each identity. Without it: the seed's shared validator.pem.
    #[arg(long, value_name = "PUBKEY|KEYPAIR-FILE")]
    identity: Vec<String>,

    /// Validity of the certificates, in days.
    #[arg(long, value_name = "N", default_value_t = towerlock_certs::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,

    /// Replace existing certificate files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true)
    .args(["identity", "reader", "root"])))]
struct AddArgs {
    /// Directory holding the CA (etcd-ca.pem, etcd-ca-key.pem).
    #[arg(long, value_name = "DIR", default_value = "certs")]
    dir: PathBuf,

    /// A staked identity (base-58 pubkey, or its keypair file): writes
    /// validator-<PUBKEY>.pem. Repeat for each identity.
    #[arg(long, value_name = "PUBKEY|KEYPAIR-FILE")]
    identity: Vec<String>,

    /// The read-only client certificate (reader.pem, CN towerlock-reader).
    #[arg(long)]
    reader: bool,

    /// The certificate of etcd's root user (root.pem, CN root).
    #[arg(long)]
    root: bool,

    /// Validity, in days.
    #[arg(long, value_name = "N", default_value_t = towerlock_certs::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,

    /// Replace existing certificate files.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).multiple(true)
    .args(["identity", "server", "peer", "validator", "reader", "root", "all"])))]
struct RenewArgs {
    /// Directory holding the CA and the certificates.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    dir: PathBuf,

    /// Renew validator-<PUBKEY>.pem of this identity (pubkey or keypair
    /// file). Repeat for each identity.
    #[arg(long, value_name = "PUBKEY|KEYPAIR-FILE")]
    identity: Vec<String>,

    /// Renew etcd's server certificate (etcd.pem).
    #[arg(long)]
    server: bool,

    /// Renew the members' peer certificate (etcd-peer.pem).
    #[arg(long)]
    peer: bool,

    /// Renew the seed's shared validator certificate (validator.pem).
    #[arg(long)]
    validator: bool,

    /// Renew the reader's certificate (reader.pem).
    #[arg(long)]
    reader: bool,

    /// Renew the root certificate (root.pem).
    #[arg(long)]
    root: bool,

    /// Renew every certificate in --dir but the CA.
    #[arg(long, conflicts_with_all = ["identity", "server", "peer", "validator", "reader", "root"])]
    all: bool,

    /// New hosts for the server and peer certificates (comma separated)
    /// [default: those of the certificate renewed].
    #[arg(long, value_name = "HOST,...", value_delimiter = ',')]
    hosts: Option<Vec<String>>,

    /// Validity of the renewed certificates, in days from now.
    #[arg(long, value_name = "N", default_value_t = towerlock_certs::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
}

impl CertsCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            CertsCommand::Init(args) => init(args),
            CertsCommand::Add(args) => add(args),
            CertsCommand::Renew(args) => renew(args),
        }
    }
}

/// The library's errors are complete sentences: report them without a chain.
fn sentence(err: towerlock_certs::CertError) -> anyhow::Error {
    anyhow::anyhow!("{err}")
}

/// A staked identity as its base-58 pubkey: given as such, or read from a
/// keypair file (solana-keygen's JSON).
pub fn identity_pubkey(given: &str) -> anyhow::Result<String> {
    if let Ok(pubkey) = Pubkey::from_str(given) {
        return Ok(pubkey.to_string());
    }
    let path = Path::new(given);
    if !path.exists() {
        anyhow::bail!(
            "identity {given:?} is neither a base-58 pubkey nor an existing keypair file"
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the keypair file {given}"))?;
    let bytes: Vec<u8> = serde_json::from_str(&text)
        .ok()
        .with_context(|| format!("{given} is not a keypair file (a JSON array of 64 numbers)"))?;
    let keypair = solana_keypair::Keypair::try_from(bytes.as_slice())
        .ok()
        .with_context(|| format!("{given} is not a keypair file (a JSON array of 64 numbers)"))?;
    Ok(keypair.pubkey().to_string())
}

fn identities(given: &[String]) -> anyhow::Result<Vec<String>> {
    let mut pubkeys = Vec::new();
    for identity in given {
        let pubkey = identity_pubkey(identity)?;
        if !pubkeys.contains(&pubkey) {
            pubkeys.push(pubkey);
        }
    }
    Ok(pubkeys)
}

fn clean(hosts: &[String]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect()
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let hosts = clean(&args.hosts);
    let peer_hosts = args.peer_hosts.as_deref().map(clean);
    let identities = identities(&args.identity)?;
    let options = CertOptions {
        hosts: hosts.clone(),
        peer_hosts: peer_hosts.clone(),
        identities: identities.clone(),
        days: args.days,
        force: args.force,
    };
    let paths = towerlock_certs::write_seed_certs(&args.dir, &options).map_err(sentence)?;
    let clients: Vec<CertKind> = if identities.is_empty() {
        vec![CertKind::SeedClient]
    } else {
        identities
            .iter()
            .map(|pubkey| CertKind::Identity(pubkey.clone()))
            .collect()
    };
    print!("{}", report(&paths, &hosts, args.days, &clients));
    print!(
        "{}",
        peer_report(&paths, peer_hosts.as_deref().unwrap_or(&hosts))
    );
    print!("{}", access_report(&paths, &identities));
    Ok(ExitCode::SUCCESS)
}

fn add(args: AddArgs) -> anyhow::Result<ExitCode> {
    let mut kinds: Vec<CertKind> = identities(&args.identity)?
        .into_iter()
        .map(CertKind::Identity)
        .collect();
    if args.reader {
        kinds.push(CertKind::Reader);
    }
    if args.root {
        kinds.push(CertKind::Root);
    }
    let issued =
        towerlock_certs::issue(&args.dir, &kinds, &[], args.days, args.force).map_err(sentence)?;
    println!(
        "Issued from the CA in {}, valid for {} days:",
        shown(&args.dir),
        args.days
    );
    print_issued(&args.dir, &issued);
    Ok(ExitCode::SUCCESS)
}

fn renew(args: RenewArgs) -> anyhow::Result<ExitCode> {
    let kinds = if args.all {
        towerlock_certs::CertKind::present_in(&args.dir).map_err(sentence)?
    } else {
        let mut kinds: Vec<CertKind> = identities(&args.identity)?
            .into_iter()
            .map(CertKind::Identity)
            .collect();
        let flags = [
            (args.server, CertKind::Server),
            (args.peer, CertKind::Peer),
            (args.validator, CertKind::SeedClient),
            (args.reader, CertKind::Reader),
            (args.root, CertKind::Root),
        ];
        kinds.extend(flags.into_iter().filter(|(on, _)| *on).map(|(_, k)| k));
        kinds
    };
    if kinds.is_empty() {
        anyhow::bail!("no certificate to renew in {}", shown(&args.dir));
    }
    let hosts = args.hosts.as_deref().map(clean);
    let renewed =
        towerlock_certs::renew(&args.dir, &kinds, hosts.as_deref(), args.days).map_err(sentence)?;
    println!(
        "Renewed from the CA in {}, valid for {} days (every other file is unchanged):",
        shown(&args.dir),
        args.days
    );
    print_issued(&args.dir, &renewed);
    println!(
        "Copy each renewed pair where the old one was used and restart what reads it \
         (etcd reads its own certificate only at start)."
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints each certificate written, and a note when the CA expires before
/// them (clients stop trusting them when the CA expires).
fn print_issued(dir: &Path, issued: &[Issued]) {
    let ca = towerlock_certs::CertificateInfo::read(&dir.join(towerlock_certs::CA_CERT_FILE));
    let outlived = issued.iter().any(|one| {
        let info = towerlock_certs::CertificateInfo::read(&one.cert_path);
        matches!((&ca, info), (Ok(ca), Ok(info)) if info.not_after > ca.not_after)
    });
    if let (Ok(ca), true) = (&ca, outlived) {
        println!(
            "note: the CA expires on {}, before these certificates: they are trusted only until \
             then; plan a new CA (certs init in a new directory) before that day",
            ca.not_after.date()
        );
    }
    for one in issued {
        let hosts = if one.hosts.is_empty() {
            String::new()
        } else {
            format!(", hosts {}", one.hosts.join(", "))
        };
        println!(
            "  {}, {}  {} (CN {}{hosts})",
            shown(&one.cert_path),
            shown(&one.key_path),
            one.kind,
            one.common_name,
        );
    }
}

/// The peer pair, for an etcd of several members.
fn peer_report(paths: &SeedCertPaths, peer_hosts: &[String]) -> String {
    format!(
        "
For an etcd of several members: {}, {}  the members' peer certificate and key          (0600), valid for {}; add to each member
            --peer-cert-file={} --peer-key-file={} --peer-client-cert-auth --peer-trusted-ca-file={}
",
        shown(&paths.peer_cert()),
        shown(&paths.peer_key()),
        peer_hosts.join(", "),
        shown(&paths.peer_cert()),
        shown(&paths.peer_key()),
        shown(&paths.ca_cert()),
    )
}

/// The reader's and root's pairs, and how access control uses them.
fn access_report(paths: &SeedCertPaths, identities: &[String]) -> String {
    let pair = |kind: CertKind| {
        format!(
            "{}, {}",
            shown(&paths.dir.join(kind.cert_file())),
            shown(&paths.dir.join(kind.key_file()))
        )
    };
    let mut out = format!(
        "\nAccess control in etcd:\n  {}  read-only client (CN {}): the sentinel, fence status\n  \
         {}  etcd's root user (CN root): towerlock etcd setup-access only; keep it off the validators\n",
        pair(CertKind::Reader),
        towerlock_certs::READER_COMMON_NAME,
        pair(CertKind::Root),
    );
    if !identities.is_empty() {
        out.push_str(&format!(
            "  limit each identity to its own keys: towerlock etcd setup-access {} \
             <etcd flags with --etcd-cert-file {} --etcd-key-file {}>\n",
            identities
                .iter()
                .map(|i| format!("--identity {i}"))
                .collect::<Vec<_>>()
                .join(" "),
            shown(&paths.dir.join(CertKind::Root.cert_file())),
            shown(&paths.dir.join(CertKind::Root.key_file())),
        ));
    }
    out
}

fn report(paths: &SeedCertPaths, hosts: &[String], days: u32, clients: &[CertKind]) -> String {
    let p = |path: PathBuf| shown(&path);
    let host = hosts
        .iter()
        .find(|h| h.parse::<std::net::IpAddr>().is_ok())
        .or_else(|| hosts.first())
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let url = if host.contains(':') {
        format!("https://[{host}]:2379")
    } else {
        format!("https://{host}:2379")
    };
    let endpoint = url.trim_start_matches("https://").to_string();
    // The client checks etcd's certificate for this name (default localhost).
    let domain = if hosts.iter().any(|h| h == "localhost") {
        String::new()
    } else {
        let name = hosts
            .iter()
            .find(|h| h.parse::<std::net::IpAddr>().is_err())
            .unwrap_or(&host);
        format!(" --etcd-domain-name {name}")
    };
    let mut out = files_report(paths, hosts, days, clients);
    let client = clients.first().cloned().unwrap_or(CertKind::SeedClient);
    let (cert, key) = (
        p(paths.dir.join(client.cert_file())),
        p(paths.dir.join(client.key_file())),
    );
    out.push_str("\nNext steps:\n");
    out.push_str("1. Start etcd:\n");
    out.push_str(&format!(
        "   etcd --auto-compaction-retention 2 --auto-compaction-mode revision \\\n   \
         --cert-file={} --key-file={} \\\n   \
         --client-cert-auth \\\n   \
         --trusted-ca-file={} \\\n   \
         --listen-client-urls={url} \\\n   \
         --advertise-client-urls={url}\n",
        p(paths.server_cert()),
        p(paths.server_key()),
        p(paths.ca_cert()),
    ));
    out.push_str("2. Check its TLS setup (on success curl shows a 404 response):\n");
    out.push_str(&format!(
        "   curl --cacert {} {url}/ --cert {cert} --key {key}\n",
        p(paths.ca_cert()),
    ));
    out.push_str("3. Check etcd as a validator sees it:\n");
    out.push_str(&format!(
        "   towerlock etcd check --etcd-endpoint {endpoint} --etcd-cacert-file {} \
         --etcd-cert-file {cert} --etcd-key-file {key}{domain}\n",
        p(paths.ca_cert()),
    ));
    out
}

/// What was written and where each file goes.
fn files_report(
    paths: &SeedCertPaths,
    hosts: &[String],
    days: u32,
    clients: &[CertKind],
) -> String {
    let p = |path: PathBuf| shown(&path);
    let mut out = format!(
        "Wrote certificates valid for {days} days; etcd's certificate is valid for {}:\n",
        hosts.join(", ")
    );
    out.push_str(&format!(
        "  {}  CA certificate: copy to the etcd machine and to both validators\n",
        p(paths.ca_cert())
    ));
    out.push_str(&format!(
        "  {}  CA private key (0600): keep it off the validators\n",
        p(paths.ca_key())
    ));
    out.push_str(&format!(
        "  {}, {}  etcd's certificate and key (0600): the etcd machine only\n",
        p(paths.server_cert()),
        p(paths.server_key())
    ));
    for client in clients {
        let whose = match client {
            CertKind::Identity(pubkey) => {
                format!("identity {pubkey}'s certificate and key (0600): its primary and secondary")
            }
            _ => "the validators' certificate and key (0600): both validators".to_string(),
        };
        out.push_str(&format!(
            "  {}, {}  {whose}\n",
            p(paths.dir.join(client.cert_file())),
            p(paths.dir.join(client.key_file())),
        ));
    }
    out
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

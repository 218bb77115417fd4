//! `towerlock certs`: the seed's TLS certificates, without cfssl.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use towerlock_certs::{CertOptions, SeedCertPaths};

/// Make the TLS certificates that etcd and the validators use.
#[derive(Debug, clap::Args)]
pub struct CertsCmd {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CertsCommand {
    /// Write a CA, etcd's server certificate and the validators' client
    /// certificate under the seed's file names (etcd-ca.pem, etcd.pem,
    /// validator.pem and their -key.pem files; keys mode 0600).
    Init(InitArgs),
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

    /// Validity of the certificates, in days.
    #[arg(long, value_name = "N", default_value_t = towerlock_certs::DEFAULT_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,

    /// Replace existing certificate files.
    #[arg(long)]
    force: bool,
}

impl CertsCmd {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            CertsCommand::Init(args) => init(args),
        }
    }
}

fn init(args: InitArgs) -> anyhow::Result<ExitCode> {
    let hosts: Vec<String> = args
        .hosts
        .iter()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .collect();
    let peer_hosts = args.peer_hosts.as_ref().map(|peers| {
        peers
            .iter()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect::<Vec<_>>()
    });
    let options = CertOptions {
        hosts: hosts.clone(),
        peer_hosts: peer_hosts.clone(),
        identities: Vec::new(),
        days: args.days,
        force: args.force,
    };
    // The library's errors are complete sentences: report them without a chain.
    let paths = towerlock_certs::write_seed_certs(&args.dir, &options)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    print!("{}", report(&paths, &hosts, args.days));
    print!(
        "{}",
        peer_report(&paths, peer_hosts.as_deref().unwrap_or(&hosts))
    );
    Ok(ExitCode::SUCCESS)
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

fn report(paths: &SeedCertPaths, hosts: &[String], days: u32) -> String {
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
    let mut out = String::new();
    out.push_str(&format!(
        "Wrote certificates valid for {days} days; etcd's certificate is valid for {}:\n",
        hosts.join(", ")
    ));
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
    out.push_str(&format!(
        "  {}, {}  the validators' certificate and key (0600): both validators\n",
        p(paths.client_cert()),
        p(paths.client_key())
    ));
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
        "   curl --cacert {} {url}/ --cert {} --key {}\n",
        p(paths.ca_cert()),
        p(paths.client_cert()),
        p(paths.client_key()),
    ));
    out.push_str("3. Check etcd as a validator sees it:\n");
    out.push_str(&format!(
        "   towerlock etcd check --etcd-endpoint {endpoint} --etcd-cacert-file {} \
         --etcd-cert-file {} --etcd-key-file {}{domain}\n",
        p(paths.ca_cert()),
        p(paths.client_cert()),
        p(paths.client_key()),
    ));
    out
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

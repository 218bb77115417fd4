//! How to reach etcd: agave's command-line flags and the plain config they make.

use std::path::PathBuf;
use std::time::Duration;

/// Default `--etcd-domain-name`: the name etcd's certificate must carry.
pub const DEFAULT_DOMAIN_NAME: &str = "localhost";
/// Default `--etcd-timeout-ms`: the deadline of every request.
pub const DEFAULT_TIMEOUT_MS: u64 = 2000;

/// The etcd connection flags shared by every binary (agave's names).
///
/// TLS is always on: the three file flags are required. Flatten it into a
/// command with `#[command(flatten)]`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(
    id = "etcd",
    multiple = true,
    requires_all = ["etcd_endpoint", "etcd_cacert_file", "etcd_cert_file", "etcd_key_file"]
)]
pub struct EtcdArgs {
    /// etcd gRPC endpoint HOST:PORT (repeat for an etcd cluster).
    #[arg(long = "etcd-endpoint", value_name = "HOST:PORT", required = false)]
    pub etcd_endpoint: Vec<String>,

    /// Host name that etcd's server certificate must be valid for.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_DOMAIN_NAME)]
    pub etcd_domain_name: String,

    /// PEM file of the CA that signed etcd's certificate (the seed's etcd-ca.pem).
    #[arg(long, value_name = "FILE", required = false)]
    pub etcd_cacert_file: PathBuf,

    /// PEM file of this client's certificate (the seed's validator.pem).
    #[arg(long, value_name = "FILE", required = false)]
    pub etcd_cert_file: PathBuf,

    /// PEM file of this client's private key (the seed's validator-key.pem).
    #[arg(long, value_name = "FILE", required = false)]
    pub etcd_key_file: PathBuf,

    /// Prefix of every key this program reads or writes.
    #[arg(long, value_name = "PREFIX", default_value = "")]
    pub etcd_key_prefix: String,

    /// Deadline of each etcd request, and of connecting, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub etcd_timeout_ms: u64,
}

/// Everything needed to connect to etcd; usable without clap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `HOST:PORT` of each etcd member (an `https://` prefix is accepted).
    pub endpoints: Vec<String>,
    /// Host name that etcd's server certificate must be valid for.
    pub domain_name: String,
    /// The CA certificate (PEM) that signed etcd's server certificate.
    pub ca_cert_file: PathBuf,
    /// This client's certificate (PEM).
    pub cert_file: PathBuf,
    /// This client's private key (PEM).
    pub key_file: PathBuf,
    /// Prefix of every key (may be empty).
    pub key_prefix: String,
    /// Deadline of each request.
    pub request_timeout: Duration,
    /// Deadline of establishing a connection (TCP and TLS handshake).
    pub connect_timeout: Duration,
}

impl EtcdConfig {
    /// A config with the default domain name, no key prefix and default
    /// deadlines.
    pub fn new(
        endpoints: Vec<String>,
        ca_cert_file: impl Into<PathBuf>,
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        let timeout = Duration::from_millis(DEFAULT_TIMEOUT_MS);
        Self {
            endpoints,
            domain_name: DEFAULT_DOMAIN_NAME.to_string(),
            ca_cert_file: ca_cert_file.into(),
            cert_file: cert_file.into(),
            key_file: key_file.into(),
            key_prefix: String::new(),
            request_timeout: timeout,
            connect_timeout: timeout,
        }
    }

    /// Sets both the request and the connect deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self.connect_timeout = timeout;
        self
    }

    /// Sets the domain name the server certificate must be valid for.
    pub fn with_domain_name(mut self, domain_name: impl Into<String>) -> Self {
        self.domain_name = domain_name.into();
        self
    }

    /// Sets the key prefix.
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// `key` under the configured prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{}", self.key_prefix, key)
    }
}

impl From<EtcdArgs> for EtcdConfig {
    fn from(args: EtcdArgs) -> Self {
        let timeout = Duration::from_millis(args.etcd_timeout_ms);
        Self {
            endpoints: args.etcd_endpoint,
            domain_name: args.etcd_domain_name,
            ca_cert_file: args.etcd_cacert_file,
            cert_file: args.etcd_cert_file,
            key_file: args.etcd_key_file,
            key_prefix: args.etcd_key_prefix,
            request_timeout: timeout,
            connect_timeout: timeout,
        }
    }
}

impl From<&EtcdArgs> for EtcdConfig {
    fn from(args: &EtcdArgs) -> Self {
        args.clone().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        etcd: EtcdArgs,
    }

    #[test]
    fn parses_agave_flags_with_defaults() {
        let cli = Cli::try_parse_from([
            "x",
            "--etcd-endpoint",
            "127.0.0.1:2379",
            "--etcd-endpoint",
            "10.0.0.2:2379",
            "--etcd-cacert-file",
            "certs/etcd-ca.pem",
            "--etcd-cert-file",
            "certs/validator.pem",
            "--etcd-key-file",
            "certs/validator-key.pem",
        ])
        .unwrap();
        let config = EtcdConfig::from(cli.etcd);
        assert_eq!(config.endpoints, vec!["127.0.0.1:2379", "10.0.0.2:2379"]);
        assert_eq!(config.domain_name, "localhost");
        assert_eq!(config.key_prefix, "");
        assert_eq!(config.request_timeout, Duration::from_millis(2000));
        assert_eq!(config.key("a/tower"), "a/tower");
    }

    #[test]
    fn tls_files_and_endpoint_are_required() {
        assert!(Cli::try_parse_from(["x", "--etcd-endpoint", "h:1"]).is_err());
        assert!(Cli::try_parse_from([
            "x",
            "--etcd-cacert-file",
            "a",
            "--etcd-cert-file",
            "b",
            "--etcd-key-file",
            "c"
        ])
        .is_err());
    }
}

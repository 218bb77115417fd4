//! agave's old command-line flags for etcd tower storage, for agave v3.1's
//! validator (clap 2), and the storage they select. The patch to agave's
//! `validator` crate is two calls into this module: [`args`] in
//! `commands/run/args.rs`, [`tower_storage`] in `commands/run/execute.rs`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use clap::{Arg, ArgMatches};
use solana_core::consensus::tower_storage::{FileTowerStorage, TowerStorage};
use towerlock_etcd::{EtcdConfig, DEFAULT_DOMAIN_NAME, DEFAULT_TIMEOUT_MS};

use crate::{EtcdTowerStorage, FenceError};

/// `--tower-storage`, agave's old flag: `file` (agave's default) or `etcd`.
pub const TOWER_STORAGE: &str = "tower_storage";
/// `--etcd-endpoint HOST:PORT`, repeatable.
pub const ETCD_ENDPOINT: &str = "etcd_endpoint";
/// `--etcd-domain-name`, default `localhost`.
pub const ETCD_DOMAIN_NAME: &str = "etcd_domain_name";
/// `--etcd-cacert-file`.
pub const ETCD_CACERT_FILE: &str = "etcd_cacert_file";
/// `--etcd-cert-file`.
pub const ETCD_CERT_FILE: &str = "etcd_cert_file";
/// `--etcd-key-file`.
pub const ETCD_KEY_FILE: &str = "etcd_key_file";

/// The deadline of every etcd call: towerlock's `--etcd-timeout-ms` default.
pub const ETCD_TIMEOUT: Duration = Duration::from_millis(DEFAULT_TIMEOUT_MS);

/// agave's etcd flags as agave had them (1.10–2.0), for `App::args`.
pub fn args<'a, 'b>() -> Vec<Arg<'a, 'b>> {
    vec![
        Arg::with_name(TOWER_STORAGE)
            .long("tower-storage")
            .possible_values(&["file", "etcd"])
            .default_value("file")
            .takes_value(true)
            .help("Where to store the tower"),
        Arg::with_name(ETCD_ENDPOINT)
            .long("etcd-endpoint")
            .required_if(TOWER_STORAGE, "etcd")
            .value_name("HOST:PORT")
            .takes_value(true)
            .multiple(true)
            .number_of_values(1)
            .help("etcd gRPC endpoint to connect with"),
        Arg::with_name(ETCD_DOMAIN_NAME)
            .long("etcd-domain-name")
            .required_if(TOWER_STORAGE, "etcd")
            .value_name("DOMAIN")
            .default_value(DEFAULT_DOMAIN_NAME)
            .takes_value(true)
            .help("domain name against which to verify the etcd server's TLS certificate"),
        Arg::with_name(ETCD_CACERT_FILE)
            .long("etcd-cacert-file")
            .required_if(TOWER_STORAGE, "etcd")
            .value_name("FILE")
            .takes_value(true)
            .help("verify the TLS certificate of the etcd endpoint using this CA bundle"),
        Arg::with_name(ETCD_KEY_FILE)
            .long("etcd-key-file")
            .required_if(TOWER_STORAGE, "etcd")
            .value_name("FILE")
            .takes_value(true)
            .help("TLS key file to use when establishing a connection to the etcd endpoint"),
        Arg::with_name(ETCD_CERT_FILE)
            .long("etcd-cert-file")
            .required_if(TOWER_STORAGE, "etcd")
            .value_name("FILE")
            .takes_value(true)
            .help("TLS certificate to use when establishing a connection to the etcd endpoint"),
    ]
}

/// Why the flags do not make a tower storage.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `--tower-storage etcd` without one of the etcd flags (clap's
    /// `required_if` normally says so first).
    #[error("--tower-storage etcd needs {flag}")]
    Missing { flag: &'static str },
    /// An unknown `--tower-storage` value (clap's `possible_values` normally
    /// says so first).
    #[error("--tower-storage {0}: expected file or etcd")]
    UnknownStorage(String),
    /// etcd could not be reached with these flags.
    #[error("--tower-storage etcd: {0}")]
    Etcd(#[from] FenceError),
}

/// The etcd config the flags in `matches` give (`None` for file storage).
pub fn etcd_config(matches: &ArgMatches) -> Result<Option<EtcdConfig>, CliError> {
    match matches.value_of(TOWER_STORAGE).unwrap_or("file") {
        "file" => Ok(None),
        "etcd" => {
            let endpoints: Vec<String> = matches
                .values_of(ETCD_ENDPOINT)
                .ok_or(CliError::Missing {
                    flag: "--etcd-endpoint",
                })?
                .map(str::to_string)
                .collect();
            let file = |name: &str, flag: &'static str| {
                matches
                    .value_of(name)
                    .map(PathBuf::from)
                    .ok_or(CliError::Missing { flag })
            };
            let config = EtcdConfig::new(
                endpoints,
                file(ETCD_CACERT_FILE, "--etcd-cacert-file")?,
                file(ETCD_CERT_FILE, "--etcd-cert-file")?,
                file(ETCD_KEY_FILE, "--etcd-key-file")?,
            )
            .with_domain_name(
                matches
                    .value_of(ETCD_DOMAIN_NAME)
                    .unwrap_or(DEFAULT_DOMAIN_NAME),
            )
            .with_timeout(ETCD_TIMEOUT);
            Ok(Some(config))
        }
        other => Err(CliError::UnknownStorage(other.to_string())),
    }
}

/// The tower storage the flags select: agave's `FileTowerStorage` in
/// `tower_path` (as unpatched agave), or the fenced etcd storage, connected.
pub fn tower_storage(
    matches: &ArgMatches,
    tower_path: PathBuf,
) -> Result<Arc<dyn TowerStorage>, CliError> {
    match etcd_config(matches)? {
        None => Ok(Arc::new(FileTowerStorage::new(tower_path))),
        Some(config) => Ok(Arc::new(EtcdTowerStorage::new(&config)?)),
    }
}

#[cfg(test)]
mod tests {
    use clap::App;

    use super::*;

    fn parse(line: &[&str]) -> Result<ArgMatches<'static>, clap::Error> {
        App::new("agave-validator")
            .args(&args())
            .get_matches_from_safe(line.iter().copied())
    }

    #[test]
    fn the_seeds_flags_make_an_etcd_config() {
        let matches = parse(&[
            "agave-validator",
            "--tower-storage",
            "etcd",
            "--etcd-cacert-file",
            "certs/etcd-ca.pem",
            "--etcd-cert-file",
            "certs/validator.pem",
            "--etcd-key-file",
            "certs/validator-key.pem",
            "--etcd-endpoint",
            "127.0.0.1:2379",
            "--etcd-endpoint",
            "10.0.0.6:2379",
        ])
        .unwrap();
        let config = etcd_config(&matches).unwrap().unwrap();
        assert_eq!(config.endpoints, ["127.0.0.1:2379", "10.0.0.6:2379"]);
        assert_eq!(config.domain_name, "localhost");
        assert_eq!(config.ca_cert_file, PathBuf::from("certs/etcd-ca.pem"));
        assert_eq!(config.cert_file, PathBuf::from("certs/validator.pem"));
        assert_eq!(config.key_file, PathBuf::from("certs/validator-key.pem"));
        assert_eq!(config.key_prefix, "");
        assert_eq!(config.request_timeout, Duration::from_millis(2000));
    }

    #[test]
    fn file_storage_stays_agaves_default() {
        let matches = parse(&["agave-validator"]).unwrap();
        assert_eq!(etcd_config(&matches).unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let storage = tower_storage(&matches, dir.path().to_path_buf()).unwrap();
        let missing = storage
            .load(&solana_pubkey::Pubkey::new_unique())
            .unwrap_err();
        assert!(missing.is_file_missing(), "{missing}");
    }

    #[test]
    fn etcd_without_its_tls_files_is_refused_by_clap() {
        let err = parse(&[
            "agave-validator",
            "--tower-storage",
            "etcd",
            "--etcd-endpoint",
            "127.0.0.1:2379",
        ])
        .unwrap_err();
        assert_eq!(err.kind, clap::ErrorKind::MissingRequiredArgument);
        assert!(parse(&["agave-validator", "--tower-storage", "s3"]).is_err());
    }
}

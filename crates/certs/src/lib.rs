//! TLS certificates for etcd and the validators, made without cfssl.
//!
//! The seed sets etcd up with mutual TLS: one certificate authority signs the
//! etcd server's certificate and the validators' client certificate, and each
//! side authenticates the other with it. This crate makes that set with
//! [`rcgen`] (P-256 keys) and writes it under the seed's file names, so that the
//! seed's own `etcd` and `curl` command lines work unchanged:
//!
//! | file                | what                                              |
//! |---------------------|---------------------------------------------------|
//! | `etcd-ca.pem`       | the CA certificate (both sides trust it)          |
//! | `etcd-ca-key.pem`   | the CA private key (keep it off the validators)   |
//! | `etcd.pem`          | etcd's server certificate (serverAuth, hosts SAN) |
//! | `etcd-key.pem`      | its private key                                   |
//! | `validator.pem`     | the validators' client certificate (clientAuth)   |
//! | `validator-key.pem` | its private key                                   |
//! | `etcd-peer.pem`     | the members' peer certificate (server+clientAuth) |
//! | `etcd-peer-key.pem` | its private key                                   |
//! | `validator-<PUBKEY>.pem` | one staked identity's client certificate, CN the pubkey |
//! | `validator-<PUBKEY>-key.pem` | its private key                          |
//! | `reader.pem`        | the read-only client (sentinel, `fence status`), CN `towerlock-reader` |
//! | `reader-key.pem`    | its private key                                   |
//! | `root.pem`          | etcd's `root` user (`etcd setup-access`), CN `root` |
//! | `root-key.pem`      | its private key                                   |
//!
//! The first six are the seed's; the peer pair is what a multi-member etcd
//! adds (`--peer-cert-file`, `--peer-key-file`, `--peer-client-cert-auth`).
//! With identities ([`CertOptions::identities`]) each staked identity gets a
//! certificate of its own, shared by its primary and secondary, instead of
//! the shared `validator.pem`: etcd takes the user from a client
//! certificate's common name, so access can be limited per identity.
//!
//! [`issue`] adds certificates signed by an existing CA, [`renew`] reissues
//! chosen ones (keeping their common names and hosts) without touching the
//! others, and [`CertificateInfo::read`] says when a certificate expires
//! ([`EXPIRY_WARNING_DAYS`]).
//!
//! Private keys are written with mode 0600. Existing files are never
//! overwritten unless asked ([`CertOptions::force`]); a refused write writes
//! nothing at all.
//!
//! Tests also need broken sets: [`write_seed_certs_with`] takes an explicit
//! [`Validity`] (e.g. [`Validity::expired`]), and every call makes a fresh,
//! unrelated CA, so two directories hold two certificate sets that do not trust
//! each other.
//!
//! This crate does no networking and knows nothing of etcd's flags beyond the
//! file names.

mod info;
mod issue;

pub use info::{CertInfoError, CertificateInfo, Expiry, EXPIRY_WARNING_DAYS};
pub use issue::{
    issue, renew, CertAuthority, CertKind, Issued, READER_CERT_FILE, READER_COMMON_NAME,
    READER_KEY_FILE, ROOT_CERT_FILE, ROOT_COMMON_NAME, ROOT_KEY_FILE,
};

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

/// File name of the CA certificate.
pub const CA_CERT_FILE: &str = "etcd-ca.pem";
/// File name of the CA private key.
pub const CA_KEY_FILE: &str = "etcd-ca-key.pem";
/// File name of etcd's server certificate.
pub const SERVER_CERT_FILE: &str = "etcd.pem";
/// File name of etcd's server private key.
pub const SERVER_KEY_FILE: &str = "etcd-key.pem";
/// File name of the validators' client certificate.
pub const CLIENT_CERT_FILE: &str = "validator.pem";
/// File name of the validators' client private key.
pub const CLIENT_KEY_FILE: &str = "validator-key.pem";

/// Every file [`write_seed_certs`] writes, in the order it writes them.
pub const SEED_FILES: [&str; 6] = [
    CA_CERT_FILE,
    CA_KEY_FILE,
    SERVER_CERT_FILE,
    SERVER_KEY_FILE,
    CLIENT_CERT_FILE,
    CLIENT_KEY_FILE,
];

/// File name of the etcd members' peer certificate (not in the seed: a
/// multi-member etcd needs it for `--peer-cert-file`).
pub const PEER_CERT_FILE: &str = "etcd-peer.pem";
/// File name of the peer certificate's private key.
pub const PEER_KEY_FILE: &str = "etcd-peer-key.pem";
/// The peer files [`SeedCerts::write`] writes after the seed's.
pub const PEER_FILES: [&str; 2] = [PEER_CERT_FILE, PEER_KEY_FILE];

/// The seed's hosts: etcd on the local machine.
pub const DEFAULT_HOSTS: [&str; 2] = ["localhost", "127.0.0.1"];

/// Default validity of generated certificates, in days.
pub const DEFAULT_DAYS: u32 = 365;

/// Errors of certificate generation and writing.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No host names were given for the server certificate.
    #[error("no hosts given for the etcd server certificate")]
    NoHosts,
    /// A host is neither an IP address nor a valid DNS name.
    #[error("host {host:?} is neither an IP address nor a valid DNS name")]
    InvalidHost {
        /// The host as given.
        host: String,
    },
    /// A validity of zero days was asked for.
    #[error("the validity must be at least one day, got {days}")]
    InvalidDays {
        /// The number of days given.
        days: u32,
    },
    /// rcgen refused to generate a key or certificate.
    #[error("cannot generate the {what}: {source}")]
    Generate {
        /// Which key or certificate.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// Certificate files exist already and overwriting was not allowed.
    #[error(
        "refusing to overwrite existing {} in {}: pass --force to replace them",
        files.join(", "),
        dir.display()
    )]
    AlreadyExists {
        /// The directory.
        dir: PathBuf,
        /// The file names that exist.
        files: Vec<String>,
    },
    /// An identity is not a base-58 public key.
    #[error("identity {identity:?} is not a base-58 public key")]
    InvalidIdentity {
        /// The identity as given.
        identity: String,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The CA files cannot sign.
    #[error("the CA in {} (etcd-ca.pem, etcd-ca-key.pem) cannot be used: {reason}", dir.display())]
    BadCa {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A certificate to renew does not exist.
    #[error("cannot renew {what}: {} does not exist", path.display())]
    NothingToRenew {
        /// Which certificate.
        what: String,
        /// Its file.
        path: PathBuf,
    },
    /// A certificate to renew cannot be read.
    #[error(transparent)]
    Info(CertInfoError),
    /// A file or directory could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

/// What [`write_seed_certs`] makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertOptions {
    /// Host names and IP addresses by which clients reach etcd; each becomes a
    /// subject alternative name of the server certificate.
    pub hosts: Vec<String>,
    /// Hosts by which etcd members reach each other (the peer
    /// certificate's SANs); `None`: the same as `hosts`.
    pub peer_hosts: Option<Vec<String>>,
    /// Staked identities (base-58 pubkeys), each getting a client
    /// certificate of its own (`validator-<PUBKEY>.pem`) instead of the
    /// seed's shared `validator.pem`; empty: the seed's.
    pub identities: Vec<String>,
    /// Validity of every certificate, in days from now.
    pub days: u32,
    /// Overwrite existing files.
    pub force: bool,
}

impl Default for CertOptions {
    fn default() -> Self {
        Self {
            hosts: DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect(),
            peer_hosts: None,
            identities: Vec::new(),
            days: DEFAULT_DAYS,
            force: false,
        }
    }
}

/// The validity period of generated certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Valid from an hour ago (clock skew between machines) for `days` days.
    pub fn days(days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }

    /// Valid for ten days that ended yesterday: every certificate is expired.
    pub fn expired() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - Duration::days(11),
            not_after: now - Duration::days(1),
        }
    }
}

/// Paths of a written certificate set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedCertPaths {
    /// The directory holding the files.
    pub dir: PathBuf,
}

impl SeedCertPaths {
    /// Paths of the seed's file names in `dir` (the files need not exist).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    /// `etcd-ca.pem`.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(CA_CERT_FILE)
    }
    /// `etcd-ca-key.pem`.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join(CA_KEY_FILE)
    }
    /// `etcd.pem`.
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join(SERVER_CERT_FILE)
    }
    /// `etcd-key.pem`.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join(SERVER_KEY_FILE)
    }
    /// `validator.pem`.
    pub fn client_cert(&self) -> PathBuf {
        self.dir.join(CLIENT_CERT_FILE)
    }
    /// `validator-key.pem`.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join(CLIENT_KEY_FILE)
    }
    /// `etcd-peer.pem`.
    pub fn peer_cert(&self) -> PathBuf {
        self.dir.join(PEER_CERT_FILE)
    }
    /// `etcd-peer-key.pem`.
    pub fn peer_key(&self) -> PathBuf {
        self.dir.join(PEER_KEY_FILE)
    }
    /// All six paths, in [`SEED_FILES`] order.
    pub fn all(&self) -> Vec<PathBuf> {
        SEED_FILES.iter().map(|f| self.dir.join(f)).collect()
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedKeyPem {
    /// The certificate, PEM (`CERTIFICATE`).
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8 `PRIVATE KEY`).
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKeyPem")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// A complete certificate set in memory.
#[derive(Debug, Clone)]
pub struct SeedCerts {
    /// The certificate authority.
    pub ca: CertifiedKeyPem,
    /// etcd's server certificate (CN `etcd`, serverAuth, hosts as SANs).
    pub server: CertifiedKeyPem,
    /// The validators' client certificate (CN `validator`, clientAuth).
    pub client: CertifiedKeyPem,
    /// The etcd members' peer certificate (CN `etcd-peer`, serverAuth and
    /// clientAuth, the members' hosts as SANs).
    pub peer: CertifiedKeyPem,
}

impl SeedCerts {
    /// Makes a fresh CA and the server and client certificates it signs.
    pub fn generate(hosts: &[String], validity: Validity) -> Result<Self, CertError> {
        Self::generate_with(hosts, validity, validity, validity)
    }

    /// Like [`SeedCerts::generate`] with a validity for each certificate
    /// (e.g. only the server's expired). The peer certificate carries the
    /// same hosts as the server's.
    pub fn generate_with(
        hosts: &[String],
        ca_validity: Validity,
        server_validity: Validity,
        client_validity: Validity,
    ) -> Result<Self, CertError> {
        let validities = [ca_validity, server_validity, client_validity];
        Self::generate_full(hosts, hosts, validities)
    }

    /// Like [`SeedCerts::generate`], for an etcd cluster whose members
    /// reach each other at `peer_hosts` (each a SAN of the peer
    /// certificate).
    pub fn generate_for_members(
        hosts: &[String],
        peer_hosts: &[String],
        validity: Validity,
    ) -> Result<Self, CertError> {
        Self::generate_full(hosts, peer_hosts, [validity; 3])
    }

    /// `validities`: CA, server, client (the peer's is the server's).
    fn generate_full(
        hosts: &[String],
        peer_hosts: &[String],
        [ca_validity, server_validity, client_validity]: [Validity; 3],
    ) -> Result<Self, CertError> {
        if hosts.is_empty() || peer_hosts.is_empty() {
            return Err(CertError::NoHosts);
        }
        let sans = |hosts: &[String]| hosts.iter().map(|h| san(h)).collect::<Result<Vec<_>, _>>();
        let (server_sans, peer_sans) = (sans(hosts)?, sans(peer_hosts)?);

        let ca_key = new_key("CA key")?;
        let mut ca_params = base_params("etcd-ca", ca_validity);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|source| CertError::Generate {
                what: "CA certificate",
                source,
            })?;
        let ca = CertifiedKeyPem {
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        };
        let issuer = Issuer::new(ca_params, ca_key);
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let leaf = |what, cn, sans, validity, usages| {
            leaf(&issuer, what, base_params(cn, validity), sans, usages)
        };
        Ok(Self {
            ca,
            server: leaf(
                "server certificate",
                "etcd",
                server_sans,
                server_validity,
                vec![ServerAuth],
            )?,
            client: leaf(
                "client certificate",
                "validator",
                vec![],
                client_validity,
                vec![ClientAuth],
            )?,
            peer: leaf(
                "peer certificate",
                "etcd-peer",
                peer_sans,
                server_validity,
                vec![ServerAuth, ClientAuth],
            )?,
        })
    }

    /// Writes the six seed files and the two peer files into `dir`
    /// (created if missing). Without `force`, refuses when any of them
    /// exists, and then writes nothing.
    pub fn write(&self, dir: &Path, force: bool) -> Result<SeedCertPaths, CertError> {
        fs::create_dir_all(dir).map_err(|source| CertError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if !force {
            let existing: Vec<String> = SEED_FILES
                .iter()
                .chain(&PEER_FILES)
                .filter(|f| dir.join(f).symlink_metadata().is_ok())
                .map(|f| f.to_string())
                .collect();
            if !existing.is_empty() {
                return Err(CertError::AlreadyExists {
                    dir: dir.to_path_buf(),
                    files: existing,
                });
            }
        }
        self.write_files(dir, true)
    }

    /// Writes the files, `validator.pem` and its key only if `seed_client`.
    fn write_files(&self, dir: &Path, seed_client: bool) -> Result<SeedCertPaths, CertError> {
        fs::create_dir_all(dir).map_err(|source| CertError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let contents: [(&str, &str, bool); 8] = [
            (CA_CERT_FILE, &self.ca.cert_pem, false),
            (CA_KEY_FILE, &self.ca.key_pem, true),
            (SERVER_CERT_FILE, &self.server.cert_pem, false),
            (SERVER_KEY_FILE, &self.server.key_pem, true),
            (CLIENT_CERT_FILE, &self.client.cert_pem, false),
            (CLIENT_KEY_FILE, &self.client.key_pem, true),
            (PEER_CERT_FILE, &self.peer.cert_pem, false),
            (PEER_KEY_FILE, &self.peer.key_pem, true),
        ];
        for (name, pem, secret) in contents {
            if !seed_client && (name == CLIENT_CERT_FILE || name == CLIENT_KEY_FILE) {
                continue;
            }
            write_file(&dir.join(name), pem, secret)?;
        }
        Ok(SeedCertPaths::in_dir(dir))
    }
}

/// Makes a fresh certificate set valid for `options.days` days and writes it
/// into `dir`: the seed's files (without `validator.pem` when identities are
/// given), the peer pair, one pair per identity, the reader's and root's.
/// Without `options.force`, refuses when any of them exists, and then writes
/// nothing.
pub fn write_seed_certs(dir: &Path, options: &CertOptions) -> Result<SeedCertPaths, CertError> {
    if options.days == 0 {
        return Err(CertError::InvalidDays { days: 0 });
    }
    let mut extra = options
        .identities
        .iter()
        .map(|identity| CertKind::identity(identity))
        .collect::<Result<Vec<_>, _>>()?;
    extra.extend([CertKind::Reader, CertKind::Root]);
    let mut kinds = vec![CertKind::Server, CertKind::Peer];
    if options.identities.is_empty() {
        kinds.push(CertKind::SeedClient);
    }
    kinds.extend(extra.iter().cloned());
    let peer_hosts = options.peer_hosts.as_ref().unwrap_or(&options.hosts);
    let validity = Validity::days(options.days);
    let certs = SeedCerts::generate_for_members(&options.hosts, peer_hosts, validity)?;
    if !options.force {
        let mut files: Vec<String> = vec![CA_CERT_FILE.into(), CA_KEY_FILE.into()];
        files.retain(|f| dir.join(f).symlink_metadata().is_ok());
        if let Err(CertError::AlreadyExists { files: more, .. }) =
            issue::refuse_existing(dir, &kinds)
        {
            files.extend(more);
        }
        if !files.is_empty() {
            return Err(CertError::AlreadyExists {
                dir: dir.to_path_buf(),
                files,
            });
        }
    }
    let ca = CertAuthority::from_pem(&certs.ca.cert_pem, &certs.ca.key_pem).map_err(|reason| {
        CertError::BadCa {
            dir: dir.to_path_buf(),
            reason,
        }
    })?;
    let extra = extra
        .into_iter()
        .map(|kind| {
            let pem = ca.issue(&kind, &kind.common_name(), &[], validity)?;
            Ok((kind, pem))
        })
        .collect::<Result<Vec<_>, CertError>>()?;
    let paths = certs.write_files(dir, options.identities.is_empty())?;
    for (kind, pem) in extra {
        write_file(&dir.join(kind.key_file()), &pem.key_pem, true)?;
        write_file(&dir.join(kind.cert_file()), &pem.cert_pem, false)?;
    }
    Ok(paths)
}

/// Like [`write_seed_certs`] with an explicit validity (e.g.
/// [`Validity::expired`] for tests); overwrites existing files.
pub fn write_seed_certs_with(
    dir: &Path,
    hosts: &[String],
    validity: Validity,
) -> Result<SeedCertPaths, CertError> {
    SeedCerts::generate(hosts, validity)?.write(dir, true)
}

/// A certificate signed by `issuer` for `sans` with `usages`.
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    what: &'static str,
    mut params: CertificateParams,
    sans: Vec<SanType>,
    usages: Vec<ExtendedKeyUsagePurpose>,
) -> Result<CertifiedKeyPem, CertError> {
    let key = new_key(what)?;
    params.subject_alt_names = sans;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages;
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| CertError::Generate { what, source })?;
    Ok(CertifiedKeyPem {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn new_key(what: &'static str) -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|source| CertError::Generate { what, source })
}

fn base_params(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "towerlock");
    params.distinguished_name = name;
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params
}

fn san(host: &str) -> Result<SanType, CertError> {
    let host = host.trim();
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        });
    if !valid {
        return Err(CertError::InvalidHost {
            host: host.to_string(),
        });
    }
    host.to_string()
        .try_into()
        .map(SanType::DnsName)
        .map_err(|_| CertError::InvalidHost {
            host: host.to_string(),
        })
}

fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), CertError> {
    let io_err = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut open = fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = open.open(path).map_err(io_err)?;
    // An existing file keeps its mode on open: set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err)?;
    }
    file.write_all(contents.as_bytes()).map_err(io_err)?;
    file.sync_all().map_err(io_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn writes_the_seed_files_with_private_keys_0600() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_seed_certs(dir.path(), &CertOptions::default()).unwrap();
        for path in paths.all() {
            let text = fs::read_to_string(&path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}", path.display());
        }
        #[cfg(unix)]
        {
            assert_eq!(mode(&paths.ca_key()), 0o600);
            assert_eq!(mode(&paths.server_key()), 0o600);
            assert_eq!(mode(&paths.client_key()), 0o600);
            assert_eq!(mode(&paths.ca_cert()), 0o644);
        }
    }

    #[test]
    fn refuses_to_overwrite_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SERVER_KEY_FILE), "mine").unwrap();
        let err = write_seed_certs(dir.path(), &CertOptions::default()).unwrap_err();
        match err {
            CertError::AlreadyExists { files, .. } => assert_eq!(files, vec![SERVER_KEY_FILE]),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            fs::read_to_string(dir.path().join(SERVER_KEY_FILE)).unwrap(),
            "mine"
        );
        assert!(!dir.path().join(CA_CERT_FILE).exists());

        let options = CertOptions {
            force: true,
            ..CertOptions::default()
        };
        write_seed_certs(dir.path(), &options).unwrap();
        assert_ne!(
            fs::read_to_string(dir.path().join(SERVER_KEY_FILE)).unwrap(),
            "mine"
        );
        #[cfg(unix)]
        assert_eq!(mode(&dir.path().join(SERVER_KEY_FILE)), 0o600);
    }

    #[test]
    fn rejects_bad_hosts_and_days() {
        let dir = tempfile::tempdir().unwrap();
        let options = CertOptions {
            hosts: vec!["bad host!".into()],
            ..CertOptions::default()
        };
        assert!(matches!(
            write_seed_certs(dir.path(), &options),
            Err(CertError::InvalidHost { .. })
        ));
        let options = CertOptions {
            hosts: vec![],
            ..CertOptions::default()
        };
        assert!(matches!(
            write_seed_certs(dir.path(), &options),
            Err(CertError::NoHosts)
        ));
        let options = CertOptions {
            days: 0,
            ..CertOptions::default()
        };
        assert!(matches!(
            write_seed_certs(dir.path(), &options),
            Err(CertError::InvalidDays { days: 0 })
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn writes_a_peer_certificate_for_the_members() {
        let dir = tempfile::tempdir().unwrap();
        let options = CertOptions {
            peer_hosts: Some(vec!["10.0.0.1".into(), "etcd-2.example".into()]),
            ..CertOptions::default()
        };
        let paths = write_seed_certs(dir.path(), &options).unwrap();
        let peer = fs::read_to_string(paths.peer_cert()).unwrap();
        assert!(peer.contains("BEGIN CERTIFICATE"));
        assert!(fs::read_to_string(paths.server_cert()).unwrap() != peer);
        #[cfg(unix)]
        assert_eq!(mode(&paths.peer_key()), 0o600);
        let err = write_seed_certs(dir.path(), &options).unwrap_err();
        assert!(matches!(err, CertError::AlreadyExists { files, .. } if files.len() == 12));
    }

    #[test]
    fn accepts_ipv6_and_dns_hosts() {
        let hosts = vec!["::1".to_string(), "etcd.example.org".to_string()];
        let certs = SeedCerts::generate(&hosts, Validity::days(1)).unwrap();
        assert!(certs.server.cert_pem.contains("BEGIN CERTIFICATE"));
        assert!(certs.client.key_pem.contains("BEGIN PRIVATE KEY"));
    }
}

//! Certificates issued from an existing CA: one client certificate per
//! staked identity, the reader's and root's, and renewals that replace one
//! pair without touching the others.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{ExtendedKeyUsagePurpose, Issuer, KeyPair};

use crate::info::CertificateInfo;
use crate::{
    base_params, leaf, san, write_file, CertError, CertifiedKeyPem, Validity, CA_CERT_FILE,
    CA_KEY_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE, PEER_CERT_FILE, PEER_KEY_FILE,
    SERVER_CERT_FILE, SERVER_KEY_FILE,
};

/// File name of the read-only client certificate (sentinel, `fence status`).
pub const READER_CERT_FILE: &str = "reader.pem";
/// File name of the reader's private key.
pub const READER_KEY_FILE: &str = "reader-key.pem";
/// Common name of the reader's certificate: its etcd user.
pub const READER_COMMON_NAME: &str = "towerlock-reader";
/// File name of the certificate of etcd's `root` user (`etcd setup-access`).
pub const ROOT_CERT_FILE: &str = "root.pem";
/// File name of the root certificate's private key.
pub const ROOT_KEY_FILE: &str = "root-key.pem";
/// Common name of the root certificate: etcd's administrator user.
pub const ROOT_COMMON_NAME: &str = "root";

/// One certificate of a set, by what it is for. Each has its file names, a
/// common name (etcd's user name for a client certificate) and its uses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertKind {
    /// etcd's server certificate (`etcd.pem`, CN `etcd`, the hosts as SANs).
    Server,
    /// The members' peer certificate (`etcd-peer.pem`, CN `etcd-peer`).
    Peer,
    /// The seed's shared validator certificate (`validator.pem`, CN
    /// `validator`).
    SeedClient,
    /// One staked identity's certificate, shared by its primary and
    /// secondary (`validator-<PUBKEY>.pem`, CN the base-58 pubkey).
    Identity(String),
    /// The read-only client (`reader.pem`, CN `towerlock-reader`).
    Reader,
    /// etcd's administrator (`root.pem`, CN `root`).
    Root,
}

impl CertKind {
    /// The certificate of the identity `pubkey` (base 58); refused when it
    /// does not look like one (it names files and an etcd user).
    pub fn identity(pubkey: &str) -> Result<Self, CertError> {
        const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let valid = (32..=44).contains(&pubkey.len()) && pubkey.chars().all(|c| BASE58.contains(c));
        if !valid {
            return Err(CertError::InvalidIdentity {
                identity: pubkey.to_string(),
            });
        }
        Ok(Self::Identity(pubkey.to_string()))
    }

    /// The certificate's file name.
    pub fn cert_file(&self) -> String {
        match self {
            CertKind::Server => SERVER_CERT_FILE.into(),
            CertKind::Peer => PEER_CERT_FILE.into(),
            CertKind::SeedClient => CLIENT_CERT_FILE.into(),
            CertKind::Identity(pubkey) => format!("validator-{pubkey}.pem"),
            CertKind::Reader => READER_CERT_FILE.into(),
            CertKind::Root => ROOT_CERT_FILE.into(),
        }
    }

    /// The private key's file name.
    pub fn key_file(&self) -> String {
        match self {
            CertKind::Server => SERVER_KEY_FILE.into(),
            CertKind::Peer => PEER_KEY_FILE.into(),
            CertKind::SeedClient => CLIENT_KEY_FILE.into(),
            CertKind::Identity(pubkey) => format!("validator-{pubkey}-key.pem"),
            CertKind::Reader => READER_KEY_FILE.into(),
            CertKind::Root => ROOT_KEY_FILE.into(),
        }
    }

    /// The common name a new certificate of this kind gets.
    pub fn common_name(&self) -> String {
        match self {
            CertKind::Server => "etcd".into(),
            CertKind::Peer => "etcd-peer".into(),
            CertKind::SeedClient => "validator".into(),
            CertKind::Identity(pubkey) => pubkey.clone(),
            CertKind::Reader => READER_COMMON_NAME.into(),
            CertKind::Root => ROOT_COMMON_NAME.into(),
        }
    }

    /// Whether its subject alternative names are hosts (server and peer).
    pub fn has_hosts(&self) -> bool {
        matches!(self, CertKind::Server | CertKind::Peer)
    }

    fn usages(&self) -> Vec<ExtendedKeyUsagePurpose> {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        match self {
            CertKind::Server => vec![ServerAuth],
            CertKind::Peer => vec![ServerAuth, ClientAuth],
            _ => vec![ClientAuth],
        }
    }

    /// Every kind whose certificate file exists in `dir` (the CA aside), in
    /// a stable order.
    pub fn present_in(dir: &Path) -> Result<Vec<CertKind>, CertError> {
        let entries = fs::read_dir(dir).map_err(|source| CertError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut kinds = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = match name.as_str() {
                SERVER_CERT_FILE => Some(CertKind::Server),
                PEER_CERT_FILE => Some(CertKind::Peer),
                CLIENT_CERT_FILE => Some(CertKind::SeedClient),
                READER_CERT_FILE => Some(CertKind::Reader),
                ROOT_CERT_FILE => Some(CertKind::Root),
                other => other
                    .strip_prefix("validator-")
                    .and_then(|rest| rest.strip_suffix(".pem"))
                    .filter(|pubkey| !pubkey.ends_with("-key"))
                    .and_then(|pubkey| CertKind::identity(pubkey).ok()),
            };
            kinds.extend(kind);
        }
        kinds.sort();
        Ok(kinds)
    }
}

impl fmt::Display for CertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertKind::Server => write!(f, "etcd's server certificate"),
            CertKind::Peer => write!(f, "the members' peer certificate"),
            CertKind::SeedClient => write!(f, "the shared validator certificate"),
            CertKind::Identity(pubkey) => write!(f, "the certificate of identity {pubkey}"),
            CertKind::Reader => write!(f, "the reader's certificate"),
            CertKind::Root => write!(f, "the root certificate"),
        }
    }
}

/// The CA of a certificate directory (`etcd-ca.pem`, `etcd-ca-key.pem`),
/// ready to sign.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Reads the CA certificate and key from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CertError> {
        let read = |name: &str| {
            let path = dir.join(name);
            fs::read_to_string(&path).map_err(|source| CertError::Read { path, source })
        };
        let (cert_pem, key_pem) = (read(CA_CERT_FILE)?, read(CA_KEY_FILE)?);
        Self::from_pem(&cert_pem, &key_pem).map_err(|reason| CertError::BadCa {
            dir: dir.to_path_buf(),
            reason,
        })
    }

    /// The CA from its certificate and key (PEM); the error is the reason.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("the key: {e}"))?;
        let info = CertificateInfo::from_pem(cert_pem.as_bytes())?;
        if !info.is_ca {
            return Err("the certificate is not a CA".into());
        }
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| e.to_string())?;
        Ok(Self { issuer })
    }

    /// A new certificate of `kind` for `common_name`, with `hosts` as its
    /// subject alternative names (server and peer only).
    pub fn issue(
        &self,
        kind: &CertKind,
        common_name: &str,
        hosts: &[String],
        validity: Validity,
    ) -> Result<CertifiedKeyPem, CertError> {
        let sans = if kind.has_hosts() {
            if hosts.is_empty() {
                return Err(CertError::NoHosts);
            }
            hosts
                .iter()
                .map(|h| san(h))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        leaf(
            &self.issuer,
            "certificate",
            base_params(common_name, validity),
            sans,
            kind.usages(),
        )
    }
}

/// One certificate written by [`issue`] or [`renew`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// What it is.
    pub kind: CertKind,
    /// The certificate file.
    pub cert_path: PathBuf,
    /// The key file.
    pub key_path: PathBuf,
    /// Its common name.
    pub common_name: String,
    /// Its hosts (server and peer).
    pub hosts: Vec<String>,
}

/// Issues new certificates of `kinds` from the CA in `dir`, valid for
/// `days`; server and peer certificates get `hosts`. Without `force`,
/// refuses when any of the files exists, and then writes nothing.
pub fn issue(
    dir: &Path,
    kinds: &[CertKind],
    hosts: &[String],
    days: u32,
    force: bool,
) -> Result<Vec<Issued>, CertError> {
    if days == 0 {
        return Err(CertError::InvalidDays { days });
    }
    if !force {
        refuse_existing(dir, kinds)?;
    }
    let ca = CertAuthority::load(dir)?;
    let plans = kinds
        .iter()
        .map(|kind| (kind.clone(), kind.common_name(), hosts.to_vec()))
        .collect();
    sign_and_write(dir, &ca, plans, Validity::days(days))
}

/// Reissues the certificates of `kinds` in `dir` from its CA, valid for
/// `days`: each keeps the common name and hosts of the certificate it
/// replaces, unless `hosts` is given (server and peer). Every other file
/// stays as it is. Each pair is written to temporary files and renamed into
/// place, so a failure never leaves half a pair.
pub fn renew(
    dir: &Path,
    kinds: &[CertKind],
    hosts: Option<&[String]>,
    days: u32,
) -> Result<Vec<Issued>, CertError> {
    if days == 0 {
        return Err(CertError::InvalidDays { days });
    }
    let ca = CertAuthority::load(dir)?;
    let mut plans = Vec::new();
    for kind in kinds {
        let path = dir.join(kind.cert_file());
        if !path.exists() {
            return Err(CertError::NothingToRenew {
                what: kind.to_string(),
                path,
            });
        }
        let old = CertificateInfo::read(&path).map_err(CertError::Info)?;
        let hosts = match hosts {
            Some(hosts) if kind.has_hosts() => hosts.to_vec(),
            _ => old.hosts,
        };
        plans.push((kind.clone(), old.common_name, hosts));
    }
    sign_and_write(dir, &ca, plans, Validity::days(days))
}

/// Signs every plan first (nothing is written if one fails), then writes
/// each pair.
fn sign_and_write(
    dir: &Path,
    ca: &CertAuthority,
    plans: Vec<(CertKind, String, Vec<String>)>,
    validity: Validity,
) -> Result<Vec<Issued>, CertError> {
    let mut signed = Vec::new();
    for (kind, common_name, hosts) in plans {
        let pem = ca.issue(&kind, &common_name, &hosts, validity)?;
        signed.push((kind, common_name, hosts, pem));
    }
    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut issued = Vec::new();
    for (kind, common_name, hosts, pem) in signed {
        let (cert_path, key_path) = (dir.join(kind.cert_file()), dir.join(kind.key_file()));
        write_pair(&cert_path, &key_path, &pem)?;
        issued.push(Issued {
            hosts: if kind.has_hosts() { hosts } else { Vec::new() },
            kind,
            cert_path,
            key_path,
            common_name,
        });
    }
    Ok(issued)
}

/// Refuses when a file of `kinds` exists in `dir`.
pub(crate) fn refuse_existing(dir: &Path, kinds: &[CertKind]) -> Result<(), CertError> {
    let existing: Vec<String> = kinds
        .iter()
        .flat_map(|kind| [kind.cert_file(), kind.key_file()])
        .filter(|file| dir.join(file).symlink_metadata().is_ok())
        .collect();
    if existing.is_empty() {
        Ok(())
    } else {
        Err(CertError::AlreadyExists {
            dir: dir.to_path_buf(),
            files: existing,
        })
    }
}

/// Writes both files of a pair to temporary names next to them, then
/// renames both into place and syncs the directory. If the second rename
/// fails, the first file is put back as it was (from a hard link made
/// before), so the pair on disk is either the old one or the new one.
fn write_pair(cert_path: &Path, key_path: &Path, pem: &CertifiedKeyPem) -> Result<(), CertError> {
    let beside = |path: &Path, what: &str| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        path.with_file_name(format!(".{name}.{}.{what}", std::process::id()))
    };
    let (cert_temp, key_temp, key_old) = (
        beside(cert_path, "new"),
        beside(key_path, "new"),
        beside(key_path, "old"),
    );
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CertError::Io { path, source }
    };
    let result = write_file(&key_temp, &pem.key_pem, true)
        .and_then(|()| write_file(&cert_temp, &pem.cert_pem, false))
        .and_then(|()| {
            let had_key = key_path.exists();
            if had_key {
                fs::hard_link(key_path, &key_old).map_err(io(key_path))?;
            }
            fs::rename(&key_temp, key_path).map_err(io(key_path))?;
            if let Err(err) = fs::rename(&cert_temp, cert_path).map_err(io(cert_path)) {
                let _ = if had_key {
                    fs::rename(&key_old, key_path)
                } else {
                    fs::remove_file(key_path)
                };
                return Err(err);
            }
            Ok(())
        });
    for temp in [&key_temp, &cert_temp, &key_old] {
        let _ = fs::remove_file(temp);
    }
    result?;
    if let Some(parent) = cert_path.parent() {
        if let Ok(dir) = fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{write_seed_certs, CertOptions};

    const A: &str = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin";

    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read(e.path()).unwrap())
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn identity_certificates_are_named_after_the_pubkey() {
        let dir = tempfile::tempdir().unwrap();
        let options = CertOptions {
            identities: vec![A.into()],
            ..CertOptions::default()
        };
        write_seed_certs(dir.path(), &options).unwrap();
        let kind = CertKind::identity(A).unwrap();
        assert_eq!(kind.cert_file(), format!("validator-{A}.pem"));
        let info = CertificateInfo::read(&dir.path().join(kind.cert_file())).unwrap();
        assert_eq!(info.common_name, A);
        assert!(!dir.path().join(CLIENT_CERT_FILE).exists());
        let reader = CertificateInfo::read(&dir.path().join(READER_CERT_FILE)).unwrap();
        assert_eq!(reader.common_name, READER_COMMON_NAME);
        let root = CertificateInfo::read(&dir.path().join(ROOT_CERT_FILE)).unwrap();
        assert_eq!(root.common_name, ROOT_COMMON_NAME);
        let present = CertKind::present_in(dir.path()).unwrap();
        assert_eq!(
            present,
            vec![
                CertKind::Server,
                CertKind::Peer,
                kind,
                CertKind::Reader,
                CertKind::Root
            ]
        );
        for bad in ["../etc/passwd", "0OIl", ""] {
            assert!(matches!(
                CertKind::identity(bad),
                Err(CertError::InvalidIdentity { .. })
            ));
        }
    }

    #[test]
    fn renew_keeps_names_and_hosts_and_touches_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let options = CertOptions {
            hosts: vec!["etcd.example".into(), "10.0.0.5".into()],
            identities: vec![A.into()],
            days: 10,
            ..CertOptions::default()
        };
        write_seed_certs(dir.path(), &options).unwrap();
        let before = files(dir.path());
        let old = CertificateInfo::read(&dir.path().join(SERVER_CERT_FILE)).unwrap();

        let renewed = renew(dir.path(), &[CertKind::Server], None, 400).unwrap();
        assert_eq!(renewed.len(), 1);
        let new = CertificateInfo::read(&dir.path().join(SERVER_CERT_FILE)).unwrap();
        assert_eq!(new.common_name, "etcd");
        assert_eq!(new.hosts, old.hosts);
        assert!(new.not_after > old.not_after + time::Duration::days(300));
        let after = files(dir.path());
        assert_eq!(before.len(), after.len(), "no temporary file left");
        for ((name, old), (_, new)) in before.iter().zip(&after) {
            let renewed = name == SERVER_CERT_FILE || name == SERVER_KEY_FILE;
            assert_eq!(old != new, renewed, "{name}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(SERVER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let hosts = vec!["etcd-2.example".to_string()];
        renew(dir.path(), &[CertKind::Server], Some(&hosts), 5).unwrap();
        let new = CertificateInfo::read(&dir.path().join(SERVER_CERT_FILE)).unwrap();
        assert_eq!(new.hosts, hosts);

        let err = renew(dir.path(), &[CertKind::SeedClient], None, 5).unwrap_err();
        assert!(matches!(err, CertError::NothingToRenew { .. }), "{err}");
    }

    #[test]
    fn a_pair_that_cannot_be_written_leaves_the_old_pair() {
        let dir = tempfile::tempdir().unwrap();
        write_seed_certs(dir.path(), &CertOptions::default()).unwrap();
        let before = files(dir.path());
        // A directory where the certificate goes: its rename must fail.
        let kind = CertKind::identity(A).unwrap();
        fs::create_dir(dir.path().join(kind.cert_file())).unwrap();
        fs::write(dir.path().join(kind.cert_file()).join("x"), "x").unwrap();
        fs::write(dir.path().join(kind.key_file()), "old key").unwrap();
        let err = issue(dir.path(), std::slice::from_ref(&kind), &[], 5, true).unwrap_err();
        assert!(matches!(err, CertError::Io { .. }), "{err}");
        assert_eq!(
            fs::read_to_string(dir.path().join(kind.key_file())).unwrap(),
            "old key"
        );
        let after: Vec<_> = files_without(dir.path(), &kind);
        assert_eq!(
            before, after,
            "no other file touched, no temporary file left"
        );
    }

    fn files_without(dir: &Path, kind: &CertKind) -> Vec<(String, Vec<u8>)> {
        let mut all = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != kind.cert_file() && name != kind.key_file() {
                all.push((name, fs::read(entry.path()).unwrap()));
            }
        }
        all.sort();
        all
    }

    #[test]
    fn issue_refuses_existing_files_and_needs_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let err = issue(dir.path(), &[CertKind::Reader], &[], 5, false).unwrap_err();
        assert!(matches!(err, CertError::Read { .. }), "{err}");
        write_seed_certs(dir.path(), &CertOptions::default()).unwrap();
        let kind = CertKind::identity(A).unwrap();
        issue(dir.path(), std::slice::from_ref(&kind), &[], 5, false).unwrap();
        let before = files(dir.path());
        let err = issue(dir.path(), &[kind, CertKind::Reader], &[], 5, false).unwrap_err();
        assert!(matches!(err, CertError::AlreadyExists { .. }), "{err}");
        assert_eq!(before, files(dir.path()));
    }
}

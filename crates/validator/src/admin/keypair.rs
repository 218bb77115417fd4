//! Keypairs as the admin RPC carries them: solana-keygen JSON (an array of 64
//! numbers, secret half then public half), either inline in a request or in a
//! file that the server reads.

use std::fmt;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;

/// Length of a keypair in bytes: a 32-byte secret seed, then the 32-byte public key.
pub const KEYPAIR_LENGTH: usize = 64;

/// The 64 bytes of a keypair, checked to be consistent (the public half is the
/// one the secret half derives).
///
/// Unlike [`Keypair`] it is `Clone` and `PartialEq`, so requests that carry one
/// can be compared in tests. Its `Debug` shows the public key only, and the
/// bytes are overwritten when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct KeypairBytes([u8; KEYPAIR_LENGTH]);

/// Why some bytes or some text are not a keypair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeypairError {
    /// The array does not hold exactly 64 bytes.
    #[error("invalid keypair: expected {KEYPAIR_LENGTH} bytes, got {len}")]
    WrongLength {
        /// How many bytes were given.
        len: usize,
    },
    /// The text is not a JSON array of numbers from 0 to 255.
    #[error("invalid keypair: expected a JSON array of {KEYPAIR_LENGTH} numbers from 0 to 255 ({reason})")]
    NotByteArray {
        /// What the JSON parser said.
        reason: String,
    },
    /// The public half is not the key that the secret half derives.
    #[error("invalid keypair: its public half does not match its secret half")]
    Mismatch,
}

/// Why a keypair file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeypairFileError {
    /// The file could not be read.
    #[error("cannot read keypair file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Group or other users may access the file, and the server does not allow that.
    #[error(
        "keypair file {} is accessible by group or others (mode {mode:04o}); run `chmod 600` on it",
        path.display()
    )]
    Insecure {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The path names a symbolic link: the file itself must be named, so
    /// that what is checked is what is read.
    #[error("keypair file {} is a symbolic link; name the file it points to", path.display())]
    Symlink {
        /// The path.
        path: PathBuf,
    },
    /// The path is not a regular file (a directory, a FIFO, a device).
    #[error("keypair file {} is not a regular file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
    },
    /// The file is far larger than any keypair file.
    #[error("keypair file {} is {len} bytes; a keypair file is under {MAX_KEYPAIR_FILE_LEN} bytes", path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The file's content is not a keypair.
    #[error("keypair file {}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with its content.
        source: KeypairError,
    },
}

impl KeypairBytes {
    /// The bytes of `keypair`.
    pub fn from_keypair(keypair: &Keypair) -> Self {
        Self(keypair.to_bytes())
    }

    /// Checks that `bytes` are 64 bytes forming a consistent keypair.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, KeypairError> {
        let array: [u8; KEYPAIR_LENGTH] = bytes
            .try_into()
            .map_err(|_| KeypairError::WrongLength { len: bytes.len() })?;
        Keypair::try_from(&array[..]).map_err(|_| KeypairError::Mismatch)?;
        Ok(Self(array))
    }

    /// Parses solana-keygen JSON: an array of 64 numbers (whitespace around it is ignored).
    pub fn from_json(text: &str) -> Result<Self, KeypairError> {
        let bytes: Vec<u8> =
            serde_json::from_str(text.trim()).map_err(|err| KeypairError::NotByteArray {
                reason: err.to_string(),
            })?;
        Self::from_slice(&bytes)
    }

    /// The keypair.
    pub fn keypair(&self) -> Keypair {
        Keypair::try_from(&self.0[..]).expect("checked when constructed")
    }

    /// The public key.
    pub fn pubkey(&self) -> Pubkey {
        self.keypair().pubkey()
    }

    /// The raw bytes, secret half first.
    pub fn as_bytes(&self) -> &[u8; KEYPAIR_LENGTH] {
        &self.0
    }
}

impl fmt::Debug for KeypairBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeypairBytes({})", self.pubkey())
    }
}

impl Drop for KeypairBytes {
    fn drop(&mut self) {
        for byte in self.0.iter_mut() {
            // SAFETY: `byte` is a valid, aligned, exclusive reference.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

/// Longest keypair file accepted (solana-keygen writes about 230 bytes).
pub const MAX_KEYPAIR_FILE_LEN: u64 = 4096;

/// Reads a solana-keygen JSON keypair file.
///
/// The file is opened once, without following a symbolic link and without
/// blocking on a FIFO; what is checked (a regular file, its size, its mode)
/// is what is read. Unless `allow_insecure` is set, a file whose mode grants
/// any access to group or others is refused: whoever can read it can vote or
/// produce blocks as that identity. Blocking IO: async callers run it with
/// `spawn_blocking`.
pub fn read_keypair_file(
    path: &Path,
    allow_insecure: bool,
) -> Result<KeypairBytes, KeypairFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file_error = |source: io::Error| match source.raw_os_error() {
        Some(libc_eloop) if libc_eloop == ELOOP => KeypairFileError::Symlink {
            path: path.to_path_buf(),
        },
        _ => KeypairFileError::Read {
            path: path.to_path_buf(),
            source,
        },
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW | O_NONBLOCK)
        .open(path)
        .map_err(file_error)?;
    let metadata = file.metadata().map_err(file_error)?;
    if !metadata.is_file() {
        return Err(KeypairFileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if metadata.len() > MAX_KEYPAIR_FILE_LEN {
        return Err(KeypairFileError::TooLarge {
            path: path.to_path_buf(),
            len: metadata.len(),
        });
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if !allow_insecure && mode & 0o077 != 0 {
        return Err(KeypairFileError::Insecure {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    file.take(MAX_KEYPAIR_FILE_LEN)
        .read_to_string(&mut text)
        .map_err(file_error)?;
    KeypairBytes::from_json(&text).map_err(|source| KeypairFileError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

// Linux's values (the validator runs on Linux).
const O_NOFOLLOW: i32 = 0o400000;
const O_NONBLOCK: i32 = 0o4000;
const ELOOP: i32 = 40;

/// Writes `keypair` as solana-keygen JSON with mode 0600 (as solana-keygen does).
pub fn write_keypair_file(keypair: &Keypair, path: &Path) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(keypair_json(keypair).as_bytes())?;
    file.sync_all()
}

/// solana-keygen's JSON for `keypair`.
pub fn keypair_json(keypair: &Keypair) -> String {
    serde_json::to_string(&keypair.to_bytes().to_vec()).expect("a byte vector serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let keypair = Keypair::new();
        let parsed = KeypairBytes::from_json(&format!("  {}\n", keypair_json(&keypair))).unwrap();
        assert_eq!(parsed.pubkey(), keypair.pubkey());
        assert_eq!(
            format!("{parsed:?}"),
            format!("KeypairBytes({})", keypair.pubkey())
        );
    }

    #[test]
    fn keypair_files_are_read_once_as_regular_files_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let keypair = Keypair::new();
        let path = dir.path().join("id.json");
        write_keypair_file(&keypair, &path).unwrap();
        assert_eq!(
            read_keypair_file(&path, false).unwrap().pubkey(),
            keypair.pubkey()
        );

        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = read_keypair_file(&link, false).unwrap_err();
        assert!(matches!(err, KeypairFileError::Symlink { .. }), "{err}");

        let err = read_keypair_file(dir.path(), false).unwrap_err();
        assert!(matches!(err, KeypairFileError::NotRegular { .. }), "{err}");

        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; 10_000]).unwrap();
        std::fs::set_permissions(&big, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = read_keypair_file(&big, false).unwrap_err();
        assert!(
            matches!(err, KeypairFileError::TooLarge { len: 10_000, .. }),
            "{err}"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_keypair_file(&path, false).unwrap_err();
        assert!(
            matches!(err, KeypairFileError::Insecure { mode: 0o644, .. }),
            "{err}"
        );
        assert!(read_keypair_file(&path, true).is_ok());

        // A FIFO does not block the reader: it is refused as not regular.
        let fifo = dir.path().join("fifo.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = read_keypair_file(&fifo, false).unwrap_err();
        assert!(matches!(err, KeypairFileError::NotRegular { .. }), "{err}");
    }

    #[test]
    fn rejects_bad_keypairs() {
        assert_eq!(
            KeypairBytes::from_slice(&[1; 10]),
            Err(KeypairError::WrongLength { len: 10 })
        );
        let mut bytes = Keypair::new().to_bytes();
        bytes[40] ^= 1;
        assert_eq!(
            KeypairBytes::from_slice(&bytes),
            Err(KeypairError::Mismatch)
        );
        assert!(matches!(
            KeypairBytes::from_json("[1, 300]"),
            Err(KeypairError::NotByteArray { .. })
        ));
        assert!(matches!(
            KeypairBytes::from_json("hello"),
            Err(KeypairError::NotByteArray { .. })
        ));
    }

    #[test]
    fn file_permissions_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        let keypair = Keypair::new();
        write_keypair_file(&keypair, &path).unwrap();
        assert_eq!(
            read_keypair_file(&path, false).unwrap().pubkey(),
            keypair.pubkey()
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_keypair_file(&path, false).unwrap_err();
        assert!(
            matches!(err, KeypairFileError::Insecure { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert_eq!(
            read_keypair_file(&path, true).unwrap().pubkey(),
            keypair.pubkey()
        );

        let missing = dir.path().join("missing.json");
        assert!(matches!(
            read_keypair_file(&missing, false),
            Err(KeypairFileError::Read { .. })
        ));
    }
}

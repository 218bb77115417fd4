//! The etcd client certificate's end of validity: a metric, and a warning
//! while there is time to renew it (both validators of a pair usually share
//! one, and lose etcd together when it expires).

use std::path::Path;

use towerlock_certs::{CertInfoError, CertificateInfo, Expiry};

/// When the certificate at `path` expires (unix seconds), and the warning
/// to log when that is within [`towerlock_certs::EXPIRY_WARNING_DAYS`]
/// days or past.
pub fn read(path: &Path) -> Result<(i64, Option<String>), CertInfoError> {
    let info = CertificateInfo::read(path)?;
    let warning = match info.expiry_now() {
        Expiry::Valid { .. } => None,
        expiry => Some(format!(
            "the etcd client certificate {} {expiry}: renew it with `towerlock certs renew` before etcd refuses this validator",
            path.display()
        )),
    };
    Ok((info.not_after.unix_timestamp(), warning))
}

#[cfg(test)]
mod tests {
    use super::*;
    use towerlock_certs::{write_seed_certs_with, Validity};

    fn client_cert(dir: &Path, validity: Validity) -> std::path::PathBuf {
        write_seed_certs_with(dir, &["localhost".to_string()], validity)
            .unwrap()
            .client_cert()
    }

    #[test]
    fn warns_within_thirty_days_and_after_expiry_only() {
        let long = tempfile::tempdir().unwrap();
        let (expiry, warning) = read(&client_cert(long.path(), Validity::days(365))).unwrap();
        assert_eq!(warning, None);
        let in_a_year = time::OffsetDateTime::now_utc() + time::Duration::days(365);
        assert!((expiry - in_a_year.unix_timestamp()).abs() < 5);

        let soon = tempfile::tempdir().unwrap();
        let (_, warning) = read(&client_cert(soon.path(), Validity::days(10))).unwrap();
        let warning = warning.expect("a warning 10 days before");
        assert!(
            warning.contains("expires in 9 days") || warning.contains("expires in 10 days"),
            "{warning}"
        );
        assert!(warning.contains("towerlock certs renew"), "{warning}");

        let past = tempfile::tempdir().unwrap();
        let (_, warning) = read(&client_cert(past.path(), Validity::expired())).unwrap();
        assert!(warning.unwrap().contains("EXPIRED"));
    }
}

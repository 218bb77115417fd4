//! Votor's certificates and their thresholds, as shares of all stake.
//!
//! A certificate forms once the stake behind its votes reaches the
//! threshold (exactly 60 % is enough). Each voter's stake counts once per
//! certificate, whatever mix of votes it sent.

pub use towerlock_wire::votor::{CertificateKind, VotorCertificate as Certificate};

/// Notarization, notarize-fallback, skip and finalization: 60 %.
pub const CERTIFICATE_PERCENT: u64 = 60;
/// Fast finalization: 80 % notarize for one block.
pub const FAST_FINALIZATION_PERCENT: u64 = 80;
/// SafeToNotar: 40 % notarize for the block alone…
pub const SAFE_TO_NOTAR_PERCENT: u64 = 40;
/// …or 20 % for it with 60 % skip and notarize-for-it together.
pub const SAFE_TO_NOTAR_MIN_PERCENT: u64 = 20;
/// SafeToSkip: 40 % skip plus notarize for other blocks than the top one.
pub const SAFE_TO_SKIP_PERCENT: u64 = 40;

/// The threshold of a kind, in percent of all stake.
pub fn threshold_percent(kind: CertificateKind) -> u64 {
    match kind {
        CertificateKind::FastFinalization => FAST_FINALIZATION_PERCENT,
        CertificateKind::Notarization
        | CertificateKind::NotarizeFallback
        | CertificateKind::Skip
        | CertificateKind::Finalization => CERTIFICATE_PERCENT,
    }
}

/// Whether `stake` is at least `percent` % of `total` (exact, no rounding).
pub fn reaches(stake: u64, total: u64, percent: u64) -> bool {
    u128::from(stake) * 100 >= u128::from(total) * u128::from(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_met_exactly_at_the_share() {
        assert!(reaches(60, 100, 60));
        assert!(!reaches(59, 100, 60));
        assert!(reaches(3, 5, 60));
        assert!(!reaches(2, 3, 80));
        assert!(reaches(u64::MAX, u64::MAX, 80));
        assert_eq!(threshold_percent(CertificateKind::FastFinalization), 80);
        assert_eq!(threshold_percent(CertificateKind::Skip), 60);
    }
}

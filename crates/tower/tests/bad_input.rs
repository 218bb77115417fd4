//! Every way a saved tower can be wrong gets its own error, and nothing panics.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_tower::{SavedTower, Tower, TowerError};

fn saved_for(keypair: &Keypair) -> SavedTower {
    let mut tower = Tower::new(keypair.pubkey());
    for slot in 1..40 {
        let _ = tower.record_vote(
            slot,
            Hash::new_from_array([slot as u8; 32]),
            Hash::default(),
            1,
        );
    }
    SavedTower::new(&tower, keypair).unwrap()
}

#[test]
fn truncated_bytes_are_corrupt() {
    let keypair = Keypair::new();
    let bytes = saved_for(&keypair).to_bytes();
    for len in [0, 3, 4, 60, 80, bytes.len() - 1] {
        let err = SavedTower::from_bytes(&bytes[..len], &keypair.pubkey()).unwrap_err();
        assert!(
            matches!(err, TowerError::Corrupt { .. }),
            "len {len}: {err:?}"
        );
    }
}

#[test]
fn trailing_bytes_are_corrupt() {
    let keypair = Keypair::new();
    let mut bytes = saved_for(&keypair).to_bytes();
    bytes.push(0);
    let err = SavedTower::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
    assert!(matches!(err, TowerError::Corrupt { .. }), "{err:?}");
}

#[test]
fn hostile_length_prefix_is_refused_without_allocating() {
    let keypair = Keypair::new();
    let mut bytes = 1u32.to_le_bytes().to_vec();
    bytes.extend([0; 64]);
    bytes.extend(u64::MAX.to_le_bytes()); // data "length"
    bytes.extend([0; 16]);
    let err = SavedTower::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
    assert!(matches!(err, TowerError::Corrupt { .. }), "{err:?}");
}

#[test]
fn unknown_version_tag_is_corrupt() {
    let keypair = Keypair::new();
    let mut bytes = saved_for(&keypair).to_bytes();
    bytes[0] = 7;
    let err = SavedTower::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
    assert!(matches!(err, TowerError::Corrupt { .. }), "{err:?}");
}

#[test]
fn tampered_data_fails_the_signature() {
    let keypair = Keypair::new();
    let mut bytes = saved_for(&keypair).to_bytes();
    // Flip a bit inside the lockout stack (well past tag, signature, length).
    let at = 4 + 64 + 8 + 32 + 8 + 8 + 32 + 32 + 1 + 8;
    bytes[at] ^= 1;
    let err = SavedTower::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
    assert_eq!(
        err,
        TowerError::InvalidSignature {
            expected: keypair.pubkey()
        }
    );
}

#[test]
fn another_nodes_tower_is_refused_and_named() {
    let ours = Keypair::new();
    let theirs = Keypair::new();
    let bytes = saved_for(&theirs).to_bytes();
    let err = SavedTower::from_bytes(&bytes, &ours.pubkey()).unwrap_err();
    assert_eq!(
        err,
        TowerError::WrongTower {
            expected: ours.pubkey(),
            found: theirs.pubkey()
        }
    );
}

#[test]
fn signing_another_nodes_tower_is_refused() {
    let ours = Keypair::new();
    let tower = Tower::new(Keypair::new().pubkey());
    let err = SavedTower::new(&tower, &ours).unwrap_err();
    assert!(matches!(err, TowerError::WrongTower { .. }), "{err:?}");
}

#[test]
fn garbage_never_panics() {
    let keypair = Keypair::new();
    let bytes = saved_for(&keypair).to_bytes();
    // Every single-byte corruption is an error, never a panic or a success.
    for at in (0..bytes.len()).step_by(7) {
        let mut bad = bytes.clone();
        bad[at] = bad[at].wrapping_add(0x41);
        assert!(
            SavedTower::from_bytes(&bad, &keypair.pubkey()).is_err(),
            "byte {at}"
        );
        let _ = SavedTower::claimed_node(&bad, false);
        let _ = SavedTower::from_legacy_bytes(&bad, &keypair.pubkey());
    }
}

#[test]
fn a_signed_tower_that_breaks_the_lockout_rules_is_corrupt() {
    use towerlock_tower::Lockout;
    let keypair = Keypair::new();
    for lockouts in [
        // Confirmations not decreasing.
        vec![
            Lockout::new_with_confirmation_count(5, 1),
            Lockout::new_with_confirmation_count(6, 2),
        ],
        // Zero confirmations.
        vec![Lockout::new_with_confirmation_count(5, 0)],
        // More confirmations than a tower can hold.
        vec![Lockout::new_with_confirmation_count(5, 40)],
    ] {
        let tower = Tower::from_landed(keypair.pubkey(), lockouts, None, Hash::default());
        let bytes = SavedTower::new(&tower, &keypair).unwrap().to_bytes();
        let err = SavedTower::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
        assert!(matches!(err, TowerError::Corrupt { .. }), "{err:?}");
    }
}

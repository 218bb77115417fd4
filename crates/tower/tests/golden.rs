//! The saved-tower bytes, derived by hand from the layout in docs/architecture.md §7 (and
//! agave's compact `TowerSync` encoding for the last vote), not from our encoder.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_signer::Signer;
use towerlock_tower::{Recorded, SavedTower, SavedTowerFormat, Tower, VoteTransaction};

const NOW: i64 = 1_700_000_000;

fn keypair() -> Keypair {
    Keypair::new_from_array([7; 32])
}

fn u64le(v: u64) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The fields shared by `Tower1_14_11` and `Tower1_7_14` up to `last_vote`,
/// for a tower with lockouts (5,2),(6,1), no root, default vote-state fields.
fn tower_prefix(node: &[u8; 32]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(node); // node_pubkey
    b.extend(u64le(8)); // threshold_depth (usize = u64)
    b.extend([0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0xE5, 0x3F]); // 2/3 as f64
    b.extend([0; 32]); // vote_state.node_pubkey
    b.extend([0; 32]); // vote_state.authorized_withdrawer
    b.push(0); // commission
    b.extend(u64le(2)); // votes: VecDeque length
    b.extend(u64le(5));
    b.extend(2u32.to_le_bytes()); // (slot 5, confirmations 2)
    b.extend(u64le(6));
    b.extend(1u32.to_le_bytes()); // (slot 6, confirmations 1)
    b.push(0); // root_slot: None
    b.extend(u64le(0)); // authorized_voters: empty BTreeMap
    b.extend([0; 32 * 48]); // prior_voters.buf: 32 × (pubkey, u64, u64)
    b.extend(u64le(31)); // prior_voters.idx
    b.push(1); // prior_voters.is_empty
    b.extend(u64le(0)); // epoch_credits: empty
    b.extend(u64le(0)); // vote_state.last_timestamp.slot
    b.extend(0i64.to_le_bytes()); // vote_state.last_timestamp.timestamp
    b
}

fn last_timestamp() -> Vec<u8> {
    let mut b = u64le(6);
    b.extend(NOW.to_le_bytes());
    b
}

fn expected_current_data(node: &[u8; 32]) -> Vec<u8> {
    let mut b = tower_prefix(node);
    b.extend(3u32.to_le_bytes()); // last_vote: VoteTransaction::TowerSync
    b.extend(u64::MAX.to_le_bytes()); // compact root: none
    b.push(2); // short_vec length
    b.extend([5, 2]); // offset 5 from 0 (varint), confirmations 2
    b.extend([1, 1]); // offset 1, confirmations 1
    b.extend([0xAA; 32]); // hash of slot 6
    b.push(1); // timestamp: Some
    b.extend(NOW.to_le_bytes());
    b.extend([0; 32]); // block_id
    b.extend(last_timestamp());
    b
}

fn sample_tower() -> Tower {
    let mut tower = Tower::new(keypair().pubkey());
    for slot in [5, 6] {
        let hash = Hash::new_from_array([0xAA; 32]);
        assert!(matches!(
            tower.record_vote(slot, hash, Hash::default(), NOW),
            Recorded::Vote(_)
        ));
    }
    tower
}

fn wrap(tag: u32, signature: &[u8], data: &[u8]) -> Vec<u8> {
    let mut b = tag.to_le_bytes().to_vec();
    b.extend_from_slice(signature);
    b.extend(u64le(data.len() as u64));
    b.extend_from_slice(data);
    b
}

#[test]
fn current_format_is_byte_identical_to_the_layout() {
    let keypair = keypair();
    let node = keypair.pubkey().to_bytes();
    let saved = SavedTower::new(&sample_tower(), &keypair).unwrap();

    let data = expected_current_data(&node);
    let signature = keypair.sign_message(&data);
    let expected = wrap(1, signature.as_ref(), &data);

    assert_eq!(saved.to_bytes(), expected);
    assert_eq!(saved.format(), SavedTowerFormat::Current);
}

#[test]
fn current_format_round_trips() {
    let keypair = keypair();
    let saved = SavedTower::new(&sample_tower(), &keypair).unwrap();
    let read = SavedTower::from_bytes(&saved.to_bytes(), &keypair.pubkey()).unwrap();
    assert_eq!(read.tower(), saved.tower());
    assert_eq!(read.to_bytes(), saved.to_bytes());
    assert_eq!(read.tower().last_voted_slot(), Some(6));
}

fn expected_1_7_14_data(node: &[u8; 32]) -> Vec<u8> {
    let mut b = tower_prefix(node);
    b.extend(u64le(2)); // last_vote: Vote { slots: [5, 6], .. }
    b.extend(u64le(5));
    b.extend(u64le(6));
    b.extend([0xAA; 32]);
    b.push(1);
    b.extend(NOW.to_le_bytes());
    b.extend(last_timestamp());
    b
}

#[test]
fn old_formats_read() {
    let keypair = keypair();
    let data = expected_1_7_14_data(&keypair.pubkey().to_bytes());
    let signature = keypair.sign_message(&data);

    // The old file `tower-<pubkey>.bin`: a bare SavedTower1_7_14.
    let mut bare = signature.as_ref().to_vec();
    bare.extend(u64le(data.len() as u64));
    bare.extend_from_slice(&data);
    let legacy = SavedTower::from_legacy_bytes(&bare, &keypair.pubkey()).unwrap();
    assert_eq!(legacy.format(), SavedTowerFormat::Legacy1_7_14);

    // The same inside SavedTowerVersions, tag 0.
    let versioned = wrap(0, signature.as_ref(), &data);
    let read = SavedTower::from_bytes(&versioned, &keypair.pubkey()).unwrap();
    assert_eq!(read.format(), SavedTowerFormat::Versioned1_7_14);

    for saved in [legacy, read] {
        let tower = saved.tower();
        let stack: Vec<_> = tower
            .lockouts()
            .iter()
            .map(|l| (l.slot(), l.confirmation_count()))
            .collect();
        assert_eq!(stack, vec![(5, 2), (6, 1)]);
        assert!(matches!(tower.last_vote(), VoteTransaction::Vote(_)));
        assert_eq!(tower.last_voted_slot(), Some(6));
        assert_eq!(tower.last_vote().timestamp(), Some(NOW));
    }
}

#[test]
fn a_continued_old_tower_is_saved_in_the_current_format() {
    let keypair = keypair();
    let data = expected_1_7_14_data(&keypair.pubkey().to_bytes());
    let versioned = wrap(0, keypair.sign_message(&data).as_ref(), &data);
    let mut tower = SavedTower::from_bytes(&versioned, &keypair.pubkey())
        .unwrap()
        .into_tower();
    let _ = tower.record_vote(7, Hash::default(), Hash::default(), NOW);
    let saved = SavedTower::new(&tower, &keypair).unwrap();
    assert_eq!(saved.format(), SavedTowerFormat::Current);
    assert_eq!(saved.to_bytes()[..4], 1u32.to_le_bytes());
}

//! agave `Tower`s with votes, for tests. agave 3.1 builds a tower with
//! votes only from a `Bank` or with its `dev-context-only-utils` feature
//! (which would rebuild half of agave); so the tower is encoded here as the
//! `Tower1_14_11` bytes agave persists (docs/architecture.md §7) and
//! decoded by agave itself (`TowerVersions::V1_14_11` →
//! `convert_to_current`). Signing is agave's `SavedTower::new`.

#![allow(dead_code)]

use solana_core::consensus::{
    tower_storage::{SavedTower, SavedTowerVersions},
    Tower, TowerVersions,
};
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;

/// agave's tower of `node` having voted on `slots` (ascending, one fork),
/// with root 0.
pub fn tower_with_votes(node: &Pubkey, slots: &[u64]) -> Tower {
    let mut data = Vec::new();
    let put_u64 = |data: &mut Vec<u8>, value: u64| data.extend_from_slice(&value.to_le_bytes());
    data.extend_from_slice(node.as_ref()); // node_pubkey
    put_u64(&mut data, 8); // threshold_depth
    data.extend_from_slice(&(2f64 / 3f64).to_le_bytes()); // threshold_size
                                                          // vote_state: VoteState1_14_11
    data.extend_from_slice(node.as_ref()); // node_pubkey
    data.extend_from_slice(node.as_ref()); // authorized_withdrawer
    data.push(0); // commission
    put_u64(&mut data, slots.len() as u64); // votes
    for (index, slot) in slots.iter().enumerate() {
        put_u64(&mut data, *slot);
        data.extend_from_slice(&((slots.len() - index) as u32).to_le_bytes());
    }
    data.push(1); // root_slot: Some(0)
    put_u64(&mut data, 0);
    put_u64(&mut data, 0); // authorized_voters: empty map
    data.extend_from_slice(&[0; 32 * 48]); // prior_voters.buf
    put_u64(&mut data, 31); // prior_voters.idx
    data.push(1); // prior_voters.is_empty
    put_u64(&mut data, 0); // epoch_credits: none
    put_u64(&mut data, 0); // last_timestamp.slot
    put_u64(&mut data, 0); // last_timestamp.timestamp
                           // last_vote: VoteTransaction::Vote { slots, hash, timestamp: None }
    data.extend_from_slice(&0u32.to_le_bytes());
    put_u64(&mut data, slots.len() as u64);
    for slot in slots {
        put_u64(&mut data, *slot);
    }
    data.extend_from_slice(&[slots.last().copied().unwrap_or(0) as u8; 32]);
    data.push(0);
    put_u64(&mut data, 0); // last_timestamp.slot
    put_u64(&mut data, 0); // last_timestamp.timestamp
    let versions = bincode::deserialize(&data)
        .map(TowerVersions::V1_14_11)
        .expect("a Tower1_14_11");
    versions.convert_to_current()
}

/// What agave's voting service hands to `TowerStorage::store` after
/// `keypair` voted on `slots`: agave's `SavedTower::new`, signed.
pub fn voted(keypair: &Keypair, slots: &[u64]) -> SavedTowerVersions {
    let tower = tower_with_votes(&keypair.pubkey(), slots);
    SavedTower::new(&tower, keypair)
        .expect("the tower is the keypair's")
        .into()
}

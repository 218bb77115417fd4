//! The saved-tower decoder must refuse any input with an error, never panic
//! or allocate without bound: `cargo fuzz run saved_tower` (nightly).
#![no_main]

use libfuzzer_sys::fuzz_target;
use solana_pubkey::Pubkey;
use towerlock_tower::SavedTower;

fuzz_target!(|data: &[u8]| {
    let key = Pubkey::new_from_array([7; 32]);
    let _ = SavedTower::from_bytes(data, &key);
    let _ = SavedTower::from_legacy_bytes(data, &key);
    if let Ok(node) = SavedTower::claimed_node(data, false) {
        // A tower that verifies re-encodes to the same bytes.
        if let Ok(saved) = SavedTower::from_bytes(data, &node) {
            assert_eq!(saved.to_bytes(), data);
        }
    }
});

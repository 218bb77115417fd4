//! agave's `vote_history-<pubkey>.bin`: golden bytes derived by hand from
//! agave-votor 4.x (`vote_history.rs`, `vote_history_storage.rs`) and
//! agave-votor-messages (`wire.rs`: `VotePayloadToSign`), not from our encoder;
//! then every way a file can be bad, one error each.

use std::collections::{BTreeMap, BTreeSet};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_tower::vote_history::{
    Block, SavedVoteHistory, VoteHistory, VoteHistoryError, VotePayload,
    MAX_SAVED_VOTE_HISTORY_BYTES,
};

fn keypair() -> Keypair {
    Keypair::new_from_array([7; 32])
}

fn other_keypair() -> Keypair {
    Keypair::new_from_array([9; 32])
}

const AA: Hash = Hash::new_from_array([0xaa; 32]);
const BB: Hash = Hash::new_from_array([0xbb; 32]);

fn block5() -> Block {
    Block {
        slot: 5,
        block_id: AA,
    }
}

/// One member or entry in every container of `VoteHistory`, two in `skipped`
/// (to pin the order we write) and in `votes_cast[5]` (a `Vec`: order kept).
fn small_history(node: Pubkey) -> VoteHistory {
    let mut h = VoteHistory::new(node, 4);
    h.voted.insert(5);
    h.voted_notar.insert(5, AA);
    h.voted_notar_fallback.insert(6, BTreeSet::from([BB]));
    h.voted_skip_fallback.insert(7);
    h.skipped.extend([7, 6]);
    h.its_over.insert(5);
    h.votes_cast.insert(
        5,
        vec![
            VotePayload::Notar {
                block: block5(),
                shred_version: 0,
            },
            VotePayload::Finalize {
                slot: 5,
                shred_version: 0,
            },
        ],
    );
    h.votes_cast.insert(
        6,
        vec![VotePayload::Skip {
            slot: 6,
            shred_version: 0x0102,
        }],
    );
    h.notarized_blocks.insert(block5());
    h.parent_ready_slots.insert(8, BTreeSet::from([block5()]));
    h
}

/// `small_history(0x11…11)` as wincode's default configuration writes it:
/// fixed-width little-endian integers, `u64` lengths, sets and maps as a count
/// and then their members (here ascending), `VotePayloadToSign`'s tag a `u8`
/// (`#[wincode(tag_encoding = "u8")]`, tags 1…6).
fn small_history_hex() -> String {
    let aa = "aa".repeat(32);
    let bb = "bb".repeat(32);
    [
        "11".repeat(32), // node_pubkey: 32 raw bytes
        // voted: HashSet<Slot> = {5}
        "0100000000000000".into(),
        "0500000000000000".into(),
        // voted_notar: HashMap<Slot, BlockId> = {5: aa…}
        "0100000000000000".into(),
        "0500000000000000".into(),
        aa.clone(),
        // voted_notar_fallback: HashMap<Slot, HashSet<BlockId>> = {6: {bb…}}
        "0100000000000000".into(),
        "0600000000000000".into(),
        "0100000000000000".into(),
        bb,
        // voted_skip_fallback = {7}
        "0100000000000000".into(),
        "0700000000000000".into(),
        // skipped = {6, 7}
        "0200000000000000".into(),
        "0600000000000000".into(),
        "0700000000000000".into(),
        // its_over = {5}
        "0100000000000000".into(),
        "0500000000000000".into(),
        // votes_cast: HashMap<Slot, Vec<VotePayloadToSign>>, 2 entries
        "0200000000000000".into(),
        "0500000000000000".into(), // slot 5, 2 votes:
        "0200000000000000".into(),
        "01".into(), // Notar { block: (5, aa…), shred_version: 0 }
        "0500000000000000".into(),
        aa.clone(),
        "0000".into(),
        "02".into(), // Finalize { slot: 5, shred_version: 0 }
        "0500000000000000".into(),
        "0000".into(),
        "0600000000000000".into(), // slot 6, 1 vote:
        "0100000000000000".into(),
        "03".into(), // Skip { slot: 6, shred_version: 0x0102 }
        "0600000000000000".into(),
        "0201".into(),
        // notarized_blocks: HashSet<Block> = {(5, aa…)}
        "0100000000000000".into(),
        "0500000000000000".into(),
        aa.clone(),
        // parent_ready_slots: HashMap<Slot, HashSet<Block>> = {8: {(5, aa…)}}
        "0100000000000000".into(),
        "0800000000000000".into(),
        "0100000000000000".into(),
        "0500000000000000".into(),
        aa,
        // root
        "0400000000000000".into(),
    ]
    .concat()
}

/// `SavedVoteHistoryVersions::Current(SavedVoteHistory { signature, data })`:
/// the `u32` variant index 0, the 64 signature bytes, `data` as a `u64`
/// length and the bytes (`node_pubkey` is `#[wincode(skip)]`).
fn envelope(signature: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0, 0];
    bytes.extend_from_slice(signature);
    bytes.extend((data.len() as u64).to_le_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn signed_by(keypair: &Keypair, data: &[u8]) -> Vec<u8> {
    envelope(keypair.sign_message(data).as_ref(), data)
}

fn corrupt_reason(result: Result<SavedVoteHistory, VoteHistoryError>) -> String {
    match result {
        Err(VoteHistoryError::Corrupt { reason }) => reason,
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn history_encodes_to_the_hand_derived_bytes() {
    let history = small_history(Pubkey::new_from_array([0x11; 32]));
    let golden = hex::decode(small_history_hex()).unwrap();
    // 32 pubkey + 16 voted + 48 voted_notar + 56 voted_notar_fallback
    // + 16 voted_skip_fallback + 24 skipped + 16 its_over
    // + 105 votes_cast (8 + 16 + 43 + 11 + 16 + 11) + 48 notarized_blocks
    // + 64 parent_ready_slots + 8 root.
    assert_eq!(golden.len(), 433, "the hand count of the layout");
    assert_eq!(hex::encode(history.encode()), small_history_hex());
    assert_eq!(VoteHistory::decode(&golden).unwrap(), history);
}

#[test]
fn an_empty_history_is_the_pubkey_nine_zero_counts_and_the_root() {
    // agave's `VoteHistory::new(pubkey, 42)`.
    let history = VoteHistory::new(Pubkey::new_from_array([0x22; 32]), 42);
    let expected = [
        "22".repeat(32),
        "00".repeat(8 * 9),
        "2a00000000000000".into(),
    ]
    .concat();
    assert_eq!(hex::encode(history.encode()), expected);
}

#[test]
fn saved_history_is_the_current_envelope_around_the_signed_data() {
    let keypair = keypair();
    let history = small_history(keypair.pubkey());
    let saved = SavedVoteHistory::new(&history, &keypair).unwrap();
    let data = history.encode();
    assert_eq!(saved.data(), &data[..]);
    assert_eq!(saved.to_bytes(), signed_by(&keypair, &data));
    assert_eq!(&saved.to_bytes()[..4], &[0, 0, 0, 0]);
    assert_eq!(saved.to_bytes().len(), 4 + 64 + 8 + data.len());
}

#[test]
fn round_trip() {
    let keypair = keypair();
    let history = small_history(keypair.pubkey());
    let saved = SavedVoteHistory::new(&history, &keypair).unwrap();
    let read = SavedVoteHistory::from_bytes(&saved.to_bytes(), &keypair.pubkey()).unwrap();
    assert_eq!(read, saved);
    assert_eq!(read.history(), &history);
    assert_eq!(read.to_bytes(), saved.to_bytes());
    assert_eq!(
        SavedVoteHistory::claimed_node(&saved.to_bytes()).unwrap(),
        keypair.pubkey()
    );
}

#[test]
fn members_in_hash_order_are_read_and_the_signed_bytes_kept() {
    // agave writes `skipped` in its hasher's order, say 7 then 6.
    let keypair = keypair();
    let mut data = small_history(keypair.pubkey()).encode();
    let golden_skipped = hex::decode("020000000000000006000000000000000700000000000000").unwrap();
    let at = data
        .windows(golden_skipped.len())
        .position(|w| w == golden_skipped)
        .unwrap();
    data[at + 8..at + 16].copy_from_slice(&7u64.to_le_bytes());
    data[at + 16..at + 24].copy_from_slice(&6u64.to_le_bytes());
    let bytes = signed_by(&keypair, &data);
    let read = SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()).unwrap();
    assert_eq!(read.history(), &small_history(keypair.pubkey()));
    assert_eq!(read.to_bytes(), bytes, "export writes the bytes as signed");
}

#[test]
fn last_voted_slot_is_the_newest_slot_with_any_vote() {
    let history = small_history(Pubkey::new_unique());
    assert_eq!(history.last_voted_slot(), Some(7));
    assert_eq!(
        VoteHistory::new(Pubkey::new_unique(), 3).last_voted_slot(),
        None
    );
    assert_eq!(history.votes().count(), 3);
}

#[test]
fn truncated_file_is_corrupt() {
    let keypair = keypair();
    let bytes = SavedVoteHistory::new(&small_history(keypair.pubkey()), &keypair)
        .unwrap()
        .to_bytes();
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(
        &bytes[..bytes.len() - 1],
        &keypair.pubkey(),
    ));
    // The length prefix is checked against the bytes left before reading.
    assert_eq!(
        reason,
        "data claims 433 elements at offset 68, but the 432 bytes left hold at most 432"
    );
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(
        &bytes[..10],
        &keypair.pubkey(),
    ));
    assert!(
        reason.starts_with("truncated: signature needs 64 bytes"),
        "{reason}"
    );
}

#[test]
fn truncated_data_is_corrupt_even_when_signed() {
    let keypair = keypair();
    let data = small_history(keypair.pubkey()).encode();
    let bytes = signed_by(&keypair, &data[..data.len() - 3]);
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()));
    assert!(
        reason.starts_with("truncated: root needs 8 bytes"),
        "{reason}"
    );
}

#[test]
fn trailing_bytes_are_corrupt() {
    let keypair = keypair();
    let mut bytes = SavedVoteHistory::new(&small_history(keypair.pubkey()), &keypair)
        .unwrap()
        .to_bytes();
    bytes.push(0);
    let err = SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "saved vote history is corrupt: 1 trailing bytes after the saved vote history (which ends at offset 509)"
    );

    let mut data = small_history(keypair.pubkey()).encode();
    data.extend([1, 2]);
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(
        &signed_by(&keypair, &data),
        &keypair.pubkey(),
    ));
    assert!(
        reason.starts_with("2 trailing bytes after the vote history"),
        "{reason}"
    );
}

#[test]
fn a_huge_length_prefix_is_refused_before_anything_is_allocated() {
    let keypair = keypair();
    // The data length of the envelope.
    let mut bytes = signed_by(&keypair, &[0; 16]);
    bytes[68..76].copy_from_slice(&u64::MAX.to_le_bytes());
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()));
    assert_eq!(
        reason,
        "data claims 18446744073709551615 elements at offset 68, but the 16 bytes left hold at most 16"
    );

    // A count inside the signed history: `votes_cast` claims 2^62 entries.
    let mut data = VoteHistory::new(keypair.pubkey(), 0).encode();
    let votes_cast_at = 32 + 6 * 8;
    data[votes_cast_at..votes_cast_at + 8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(
        &signed_by(&keypair, &data),
        &keypair.pubkey(),
    ));
    assert!(
        reason.starts_with("votes_cast claims 4611686018427387904 elements"),
        "{reason}"
    );
}

#[test]
fn more_bytes_than_a_history_may_have_are_refused_unread() {
    let keypair = keypair();
    let bytes = vec![0; MAX_SAVED_VOTE_HISTORY_BYTES as usize + 1];
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()));
    assert!(
        reason.contains("more than a vote history may be"),
        "{reason}"
    );
}

#[test]
fn unknown_tags_are_corrupt() {
    let keypair = keypair();
    let mut bytes = SavedVoteHistory::new(&small_history(keypair.pubkey()), &keypair)
        .unwrap()
        .to_bytes();
    bytes[0] = 1;
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()));
    assert_eq!(
        reason,
        "unknown version tag 1 (agave 4.x writes 0, Current)"
    );

    // The Finalize vote (tag 2) in votes_cast[5] becomes tag 7.
    let mut data = small_history(keypair.pubkey()).encode();
    let finalize = hex::decode("0205000000000000000000").unwrap();
    let at = data.windows(11).position(|w| w == finalize).unwrap();
    data[at] = 7;
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(
        &signed_by(&keypair, &data),
        &keypair.pubkey(),
    ));
    assert_eq!(reason, "unknown vote tag 7 (agave knows 1 to 6)");
}

#[test]
fn a_repeated_set_member_is_corrupt() {
    let keypair = keypair();
    let mut data = small_history(keypair.pubkey()).encode();
    let skipped = hex::decode("020000000000000006000000000000000700000000000000").unwrap();
    let at = data.windows(24).position(|w| w == skipped).unwrap();
    data[at + 16..at + 24].copy_from_slice(&6u64.to_le_bytes());
    let reason = corrupt_reason(SavedVoteHistory::from_bytes(
        &signed_by(&keypair, &data),
        &keypair.pubkey(),
    ));
    assert_eq!(reason, "skipped: 6 appears twice");
}

#[test]
fn tampered_history_fails_the_signature() {
    let keypair = keypair();
    let mut bytes = SavedVoteHistory::new(&small_history(keypair.pubkey()), &keypair)
        .unwrap()
        .to_bytes();
    let last = bytes.len() - 8;
    bytes[last] ^= 1; // root 4 → 5
    let err = SavedVoteHistory::from_bytes(&bytes, &keypair.pubkey()).unwrap_err();
    assert_eq!(
        err,
        VoteHistoryError::InvalidSignature {
            expected: keypair.pubkey()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "saved vote history signature does not verify for {}",
            keypair.pubkey()
        )
    );
}

#[test]
fn another_nodes_history_is_foreign() {
    let (ours, theirs) = (keypair(), other_keypair());
    let bytes = SavedVoteHistory::new(&small_history(theirs.pubkey()), &theirs)
        .unwrap()
        .to_bytes();
    let err = SavedVoteHistory::from_bytes(&bytes, &ours.pubkey()).unwrap_err();
    assert_eq!(
        err,
        VoteHistoryError::WrongVoteHistory {
            expected: ours.pubkey(),
            found: theirs.pubkey()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "saved vote history belongs to {}, not to {}",
            theirs.pubkey(),
            ours.pubkey()
        )
    );
}

#[test]
fn our_history_signed_by_another_key_fails_the_signature() {
    let (ours, theirs) = (keypair(), other_keypair());
    let bytes = signed_by(&theirs, &small_history(ours.pubkey()).encode());
    assert_eq!(
        SavedVoteHistory::from_bytes(&bytes, &ours.pubkey()).unwrap_err(),
        VoteHistoryError::InvalidSignature {
            expected: ours.pubkey()
        }
    );
}

#[test]
fn another_nodes_history_signed_by_us_is_foreign() {
    let (ours, theirs) = (keypair(), other_keypair());
    let bytes = signed_by(&ours, &small_history(theirs.pubkey()).encode());
    assert_eq!(
        SavedVoteHistory::from_bytes(&bytes, &ours.pubkey()).unwrap_err(),
        VoteHistoryError::WrongVoteHistory {
            expected: ours.pubkey(),
            found: theirs.pubkey()
        }
    );
}

#[test]
fn a_keypair_signs_only_its_own_history() {
    let (ours, theirs) = (keypair(), other_keypair());
    assert_eq!(
        SavedVoteHistory::new(&small_history(theirs.pubkey()), &ours).unwrap_err(),
        VoteHistoryError::WrongVoteHistory {
            expected: ours.pubkey(),
            found: theirs.pubkey()
        }
    );
}

#[test]
fn every_vote_kind_round_trips() {
    let keypair = keypair();
    let block = block5();
    let mut history = VoteHistory::new(keypair.pubkey(), 0);
    history.votes_cast = BTreeMap::from([(
        5,
        vec![
            VotePayload::Genesis {
                block,
                shred_version: 1,
            },
            VotePayload::Notar {
                block,
                shred_version: 2,
            },
            VotePayload::NotarFallback {
                block,
                shred_version: 3,
            },
            VotePayload::Skip {
                slot: 5,
                shred_version: 4,
            },
            VotePayload::SkipFallback {
                slot: 5,
                shred_version: 5,
            },
            VotePayload::Finalize {
                slot: 5,
                shred_version: 6,
            },
        ],
    )]);
    let saved = SavedVoteHistory::new(&history, &keypair).unwrap();
    let read = SavedVoteHistory::from_bytes(&saved.to_bytes(), &keypair.pubkey()).unwrap();
    assert_eq!(read.history(), &history);
    let kinds: Vec<&str> = read.history().votes().map(|v| v.kind()).collect();
    assert_eq!(
        kinds,
        [
            "genesis",
            "notarize",
            "notarize-fallback",
            "skip",
            "skip-fallback",
            "finalize"
        ]
    );
}

//! Votor alone: certificates at exactly their thresholds, fast and slow
//! finalization, skips when a leader is silent, fallbacks, and a long run
//! of synthetic voters finalizing slot after slot.

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_wire::votor::{VotorBlock, VotorVote, VotorVoteMessage};

use super::*;

const GENESIS: Hash = Hash::new_from_array([7; 32]);

/// A validator voting over "RPC" (the test), with its keys.
struct External {
    identity: Keypair,
    vote_account: Pubkey,
}

impl External {
    fn new(seed: u8) -> Self {
        Self {
            identity: Keypair::new_from_array([seed; 32]),
            vote_account: Pubkey::new_from_array([seed.wrapping_add(100); 32]),
        }
    }
    fn voter(&self, stake: u64) -> Voter {
        Voter {
            identity: self.identity.pubkey(),
            vote_account: self.vote_account,
            stake,
            synthetic: false,
        }
    }
    fn vote(&self, votor: &mut Votor, vote: VotorVote) -> Vec<VotorEvent> {
        let message = VotorVoteMessage::new_signed(&self.identity, self.vote_account, vote, "t");
        let (result, events) = votor.receive(&message, vote.slot());
        assert_eq!(result, Ok(Added::New), "{vote:?}");
        events
    }
}

fn synthetic(n: u8, stake: u64) -> Vec<Voter> {
    (0..n)
        .map(|i| Voter {
            identity: Pubkey::new_from_array([200 + i; 32]),
            vote_account: Pubkey::new_from_array([220 + i; 32]),
            stake,
            synthetic: true,
        })
        .collect()
}

fn block_id(slot: u64) -> Hash {
    crate::core::hashv(&[b"test-block", &slot.to_le_bytes()])
}

fn leader() -> Pubkey {
    Pubkey::new_from_array([1; 32])
}

/// Ends `slot`: timeouts, then the leader's block unless `silent`.
fn end_slot(votor: &mut Votor, slot: u64, silent: bool) -> Vec<VotorEvent> {
    let mut events = votor.tick(slot);
    if silent {
        return events;
    }
    if let Some((parent_slot, parent_block_id)) = votor.leader_parent(slot, &leader()) {
        events.extend(votor.on_block(VotorBlock {
            slot,
            block_id: block_id(slot),
            parent_slot,
            parent_block_id,
            leader: leader(),
        }));
    }
    events
}

fn certificates(events: &[VotorEvent]) -> Vec<(CertificateKind, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            VotorEvent::Certificate(c) => Some((c.kind, c.slot)),
            _ => None,
        })
        .collect()
}

fn finalized(events: &[VotorEvent]) -> Vec<(u64, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            VotorEvent::Finalized { slot, fast, .. } => Some((*slot, *fast)),
            _ => None,
        })
        .collect()
}

fn notarize(slot: u64) -> VotorVote {
    VotorVote::Notarize {
        slot,
        block_id: block_id(slot),
    }
}

/// Three validators of 60, 20 and 20 (or `a`, `b`, `c`) stake, no synthetic.
fn three(a: u64, b: u64, c: u64) -> (Votor, [External; 3]) {
    let v = [External::new(1), External::new(2), External::new(3)];
    let votor = Votor::new(
        vec![v[0].voter(a), v[1].voter(b), v[2].voter(c)],
        GENESIS,
        100,
    );
    (votor, v)
}

#[test]
fn notarization_forms_at_exactly_sixty_percent_and_fast_finalization_at_eighty() {
    let (mut votor, [a, b, _c]) = three(60, 20, 20);
    let events = a.vote(&mut votor, notarize(1));
    assert_eq!(certificates(&events), [(CertificateKind::Notarization, 1)]);
    assert!(finalized(&events).is_empty());
    let events = b.vote(&mut votor, notarize(1));
    assert_eq!(
        certificates(&events),
        [(CertificateKind::FastFinalization, 1)]
    );
    assert_eq!(finalized(&events), [(1, true)]);
    assert_eq!(votor.finalized(), (1, block_id(1)));

    let (mut votor, [a, b, _c]) = three(59, 21, 20);
    assert!(certificates(&a.vote(&mut votor, notarize(1))).is_empty());
    assert_eq!(
        certificates(&b.vote(&mut votor, notarize(1))),
        [
            (CertificateKind::Notarization, 1),
            (CertificateKind::FastFinalization, 1)
        ],
        "59 + 21 = 80 %: both at once"
    );
}

#[test]
fn fast_finalization_needs_eighty_percent_exactly() {
    let (mut votor, [a, b, _c]) = three(60, 19, 21);
    a.vote(&mut votor, notarize(1));
    let events = b.vote(&mut votor, notarize(1));
    assert!(certificates(&events).is_empty(), "79 %: {events:?}");
    assert_eq!(votor.finalized().0, 0);
}

#[test]
fn slow_finalization_is_a_finalization_certificate_and_a_notarization() {
    let (mut votor, [a, b, c]) = three(40, 20, 40);
    a.vote(&mut votor, notarize(2));
    let events = b.vote(&mut votor, notarize(2));
    assert_eq!(certificates(&events), [(CertificateKind::Notarization, 2)]);
    a.vote(&mut votor, VotorVote::Finalize { slot: 2 });
    let events = c.vote(&mut votor, VotorVote::Finalize { slot: 2 });
    assert_eq!(certificates(&events), [(CertificateKind::Finalization, 2)]);
    assert_eq!(finalized(&events), [(2, false)]);
    assert_eq!(votor.finalized(), (2, block_id(2)));
}

#[test]
fn a_finalization_certificate_waits_for_the_notarization() {
    let (mut votor, [a, b, c]) = three(40, 20, 40);
    a.vote(&mut votor, VotorVote::Finalize { slot: 3 });
    let events = b.vote(&mut votor, VotorVote::Finalize { slot: 3 });
    assert_eq!(certificates(&events), [(CertificateKind::Finalization, 3)]);
    assert!(finalized(&events).is_empty());
    a.vote(&mut votor, notarize(3));
    let events = c.vote(&mut votor, notarize(3));
    assert_eq!(finalized(&events), [(3, false)]);
}

#[test]
fn skip_and_notarize_fallback_certificates_count_both_kinds_of_vote() {
    let (mut votor, [a, b, c]) = three(20, 40, 40);
    a.vote(&mut votor, VotorVote::Skip { slot: 5 });
    let events = b.vote(&mut votor, VotorVote::SkipFallback { slot: 5 });
    assert_eq!(certificates(&events), [(CertificateKind::Skip, 5)]);
    let block = block_id(6);
    c.vote(&mut votor, notarize(6));
    let events = a.vote(
        &mut votor,
        VotorVote::NotarizeFallback {
            slot: 6,
            block_id: block,
        },
    );
    assert_eq!(
        certificates(&events),
        [(CertificateKind::NotarizeFallback, 6)],
        "40 + 20 = 60 %"
    );
    assert!(!votor.has_certificate(CertificateKind::Notarization, 6, Some(block)));
}

#[test]
fn synthetic_voters_holding_most_stake_finalize_each_block_fast() {
    let mut votor = Votor::new(synthetic(20, 5), GENESIS, 100);
    for slot in 1..=8 {
        let events = end_slot(&mut votor, slot, false);
        assert_eq!(finalized(&events), [(slot, true)], "slot {slot}");
    }
}

#[test]
fn with_seventy_percent_synthetic_blocks_are_finalized_slowly() {
    let silent = External::new(9);
    let mut voters = synthetic(7, 10);
    voters.push(silent.voter(30));
    let mut votor = Votor::new(voters, GENESIS, 100);
    for slot in 1..=8 {
        let events = end_slot(&mut votor, slot, false);
        let kinds = certificates(&events);
        assert!(kinds.contains(&(CertificateKind::Notarization, slot)));
        assert!(kinds.contains(&(CertificateKind::Finalization, slot)));
        assert!(!kinds.contains(&(CertificateKind::FastFinalization, slot)));
        assert_eq!(finalized(&events), [(slot, false)]);
    }
}

#[test]
fn a_silent_leader_window_is_skipped_and_the_next_builds_past_it() {
    let mut votor = Votor::new(synthetic(10, 10), GENESIS, 100);
    for slot in 1..=3 {
        end_slot(&mut votor, slot, false);
    }
    let mut skipped = vec![];
    for slot in 4..=7 {
        let events = end_slot(&mut votor, slot, slot == 4);
        skipped.extend(certificates(&events));
        assert_eq!(votor.block(slot), None, "nothing to build on in {slot}");
    }
    let events = end_slot(&mut votor, 8, false);
    skipped.extend(certificates(&events));
    for slot in 4..=7 {
        assert!(skipped.contains(&(CertificateKind::Skip, slot)), "{slot}");
    }
    let block = votor.block(8).expect("slot 8 has a block");
    assert_eq!((block.parent_slot, block.parent_block_id), (3, block_id(3)));
    assert_eq!(finalized(&events), [(8, true)]);
}

#[test]
fn a_block_on_an_unready_parent_is_not_notarized_and_gets_skipped() {
    let mut votor = Votor::new(synthetic(10, 10), GENESIS, 100);
    for slot in 1..=3 {
        end_slot(&mut votor, slot, false);
    }
    votor.tick(4);
    // Window start 4 on slot 2: slot 3 is notarized, so 2 is not ready.
    let events = votor.on_block(VotorBlock {
        slot: 4,
        block_id: block_id(4),
        parent_slot: 2,
        parent_block_id: block_id(2),
        leader: leader(),
    });
    assert!(certificates(&events).is_empty(), "{events:?}");
    let events = votor.tick(5);
    assert_eq!(certificates(&events), [(CertificateKind::Skip, 4)]);
}

#[test]
fn synthetic_voters_fall_back_to_skip_when_a_large_validator_skips() {
    let big = External::new(4);
    let mut voters = synthetic(11, 5);
    voters.push(big.voter(45));
    let mut votor = Votor::new(voters, GENESIS, 100);
    let events = end_slot(&mut votor, 1, false);
    assert!(
        certificates(&events).is_empty(),
        "55 % notarize: no certificate"
    );
    let events = big.vote(&mut votor, VotorVote::Skip { slot: 1 });
    let fallbacks = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                VotorEvent::SyntheticVote {
                    vote: VotorVote::SkipFallback { slot: 1 },
                    ..
                }
            )
        })
        .count();
    assert_eq!(fallbacks, 11, "SafeToSkip: 45 % skip");
    assert!(certificates(&events).contains(&(CertificateKind::Skip, 1)));
    // The validator's notarize-fallback (SafeToNotar: 55 % notarize) makes
    // the block certified: a later window may build on it.
    let events = big.vote(
        &mut votor,
        VotorVote::NotarizeFallback {
            slot: 1,
            block_id: block_id(1),
        },
    );
    assert!(certificates(&events).contains(&(CertificateKind::NotarizeFallback, 1)));
    assert_eq!(votor.parent_ready(4), None, "slots 2 and 3 are open");
}

#[test]
fn refusals_name_their_reason() {
    let (mut votor, [a, _b, _c]) = three(60, 20, 20);
    let mut message = VotorVoteMessage::new_signed(&a.identity, a.vote_account, notarize(1), "t");
    message.instance = "other".into();
    let (result, _) = votor.receive(&message, 1);
    assert!(matches!(result, Err(VotorVoteError::BadSignature { .. })));
    let stranger = External::new(50);
    let message =
        VotorVoteMessage::new_signed(&stranger.identity, stranger.vote_account, notarize(1), "t");
    let (result, _) = votor.receive(&message, 1);
    assert!(matches!(
        result,
        Err(VotorVoteError::UnknownIdentity { .. })
    ));
    let message = VotorVoteMessage::new_signed(&a.identity, Pubkey::new_unique(), notarize(1), "t");
    let (result, _) = votor.receive(&message, 1);
    assert!(matches!(
        result,
        Err(VotorVoteError::WrongVoteAccount { .. })
    ));
    let message = VotorVoteMessage::new_signed(&a.identity, a.vote_account, notarize(500), "t");
    let (result, _) = votor.receive(&message, 1);
    assert!(matches!(result, Err(VotorVoteError::SlotTooFar { .. })));
    a.vote(&mut votor, VotorVote::Skip { slot: 2 });
    let message = VotorVoteMessage::new_signed(&a.identity, a.vote_account, notarize(2), "t");
    let (result, _) = votor.receive(&message, 2);
    assert_eq!(
        result,
        Err(VotorVoteError::Conflicting(Conflict::NotarizeAfterSkip))
    );
    assert_eq!(result.unwrap_err().name(), "ConflictingVote");
}

#[test]
fn synthetic_voters_finalize_steadily_over_many_slots() {
    let mut votor = Votor::new(synthetic(20, 5), GENESIS, 100);
    let mut finalized_slots = 0;
    for slot in 1..=3000 {
        let events = end_slot(&mut votor, slot, slot % 97 == 0);
        finalized_slots += finalized(&events).len();
        let (finalized, _) = votor.finalized();
        assert!(
            slot - finalized <= 8,
            "slot {slot}: finalized only {finalized}"
        );
    }
    // A silent slot also loses the rest of its window (nothing to build on).
    assert!(finalized_slots > 2800, "{finalized_slots}");
    assert!(
        votor.blocks().len() <= 8,
        "pruned: {}",
        votor.blocks().len()
    );
    assert!(votor.certificates().count() <= 4 * (POOL_KEPT_SLOTS as usize + 8));
}

//! The vote program's checks on real vote transactions, each verdict recorded
//! in the audit trail with the vote program's error name.

mod common;

use common::Fixture;
use solana_signer::Signer;
use towerlock_audit::VoteResult;
use towerlock_wire::vote;

fn ready() -> Fixture {
    let mut f = Fixture::new(Fixture::default_options());
    f.step(20);
    f
}

#[test]
fn an_accepted_vote_lands_in_the_next_block_of_its_fork() {
    let mut f = ready();
    let tip = f.cluster.tip();
    let identity = f.keys.identity.insecure_clone();
    let tx = f.vote(&identity, &identity, &[(tip, 1)], None);
    assert_eq!(f.send(&tx), VoteResult::Accepted);
    let event = f.last_vote_event().clone();
    assert_eq!(event.lockouts, vec![(tip, 1)]);
    assert_eq!(event.identity, identity.pubkey().to_string());
    assert_eq!(event.voter, identity.pubkey().to_string());
    assert_eq!(event.vote_account, f.vote_account().to_string());
    assert_eq!(event.instance, "test-instance");
    assert_eq!(event.signature, tx.signatures[0].to_string());
    assert_eq!(
        f.landed_last_vote(),
        None,
        "not landed before the next block"
    );
    f.step_until_new_tip(tip);
    assert_eq!(f.landed_last_vote(), Some(tip));
}

#[test]
fn rejects_a_bad_signature() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let mut tx = f.vote(&identity, &identity, &[(f.cluster.tip(), 1)], None);
    let mut bytes: [u8; 64] = tx.signatures[0].into();
    bytes[10] ^= 1;
    tx.signatures[0] = bytes.into();
    assert_eq!(f.send(&tx), "SignatureFailure");
}

#[test]
fn rejects_a_voter_that_is_not_authorized() {
    let mut f = ready();
    // The secondary identity votes for itself: the guide's setup before
    // `--authorized-voter validator-keypair.json` is given.
    let secondary = f.keys.secondary_identity.insecure_clone();
    let tx = f.vote(&secondary, &secondary, &[(f.cluster.tip(), 1)], None);
    assert_eq!(f.send(&tx), "MissingRequiredSignature");
    // With the staked identity as authorized voter it is fine.
    let identity = f.keys.identity.insecure_clone();
    let tx = f.vote(&secondary, &identity, &[(f.cluster.tip(), 1)], None);
    assert_eq!(f.send(&tx), VoteResult::Accepted);
}

#[test]
fn rejects_an_unknown_slot_and_a_wrong_hash() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let tip = f.cluster.tip();
    // A slot that has no bank (the slot in progress).
    let unknown = f.cluster.current_slot();
    let tx = f.vote(&identity, &identity, &[(tip, 2), (unknown, 1)], None);
    assert_eq!(f.send(&tx), "SlotsMismatch");
    // A real slot with another bank's hash.
    let parent = f.cluster.bank(tip).unwrap().parent;
    let wrong = {
        let bank = f.cluster.bank(parent).unwrap();
        let tower_sync = vote::tower_sync(&[(tip, 1)], None, bank.hash, bank.block_id);
        vote::vote_transaction(
            &identity,
            &identity,
            &f.vote_account(),
            tower_sync,
            f.cluster.bank(tip).unwrap().blockhash,
        )
    };
    assert_eq!(f.send(&wrong), "SlotHashMismatch");
}

#[test]
fn rejects_a_lockout_conflict() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let first = f.cluster.tip();
    // Locked out for 2^5 = 32 slots.
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(first, 5)], None)),
        VoteResult::Accepted
    );
    let next = f.step_until_new_tip(first);
    assert!(next <= first + 32);
    // Dropping `first` while it is still locked out at `next`.
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(next, 1)], None)),
        "LockoutConflict"
    );
    // Keeping it is fine.
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(first, 5), (next, 1)], None)),
        VoteResult::Accepted
    );
}

#[test]
fn rejects_a_root_rollback() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let first = f.cluster.tip();
    let root = f.cluster.bank(first).unwrap().parent;
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(first, 1)], Some(root))),
        VoteResult::Accepted
    );
    let next = f.step_until_new_tip(first);
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(first, 2), (next, 1)], None)),
        "RootRollBack"
    );
}

#[test]
fn rejects_a_replayed_vote_as_too_old() {
    // Two instances voting with one vote account: the second vote for a
    // slot not newer than the stored last vote fails.
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let tip = f.cluster.tip();
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(tip, 1)], None)),
        VoteResult::Accepted
    );
    assert_eq!(
        f.send(&f.vote(&identity, &identity, &[(tip, 1)], None)),
        "VoteTooOld"
    );
}

#[test]
fn rejects_a_stale_blockhash() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let old = f.vote(&identity, &identity, &[(f.cluster.tip(), 1)], None);
    f.step(200);
    assert_eq!(f.send(&old), "BlockhashNotFound");
}

#[test]
fn every_verdict_is_one_audit_line() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let before = f.events.len();
    let tip = f.cluster.tip();
    f.send(&f.vote(&identity, &identity, &[(tip, 1)], None));
    f.send(&f.vote(&identity, &identity, &[(tip, 1)], None));
    let lines: Vec<String> = f.events[before..].iter().map(|e| e.to_line()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains(r#""result":"ok""#), "{}", lines[0]);
    assert!(
        lines[1].contains(r#""result":"VoteTooOld""#),
        "{}",
        lines[1]
    );
}

#[test]
fn a_transaction_that_is_not_a_vote_is_recorded_too() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    // A signed transaction whose only instruction is not the vote program's.
    let instruction = solana_vote_interface::instruction::tower_sync(
        &f.vote_account(),
        &identity.pubkey(),
        Default::default(),
    );
    let mut not_a_vote = instruction.clone();
    not_a_vote.program_id = solana_pubkey::Pubkey::new_unique();
    let tx = solana_transaction::Transaction::new_signed_with_payer(
        &[not_a_vote],
        Some(&identity.pubkey()),
        &[&identity],
        f.cluster.bank(f.cluster.tip()).unwrap().blockhash,
    );
    let count = |f: &Fixture| {
        f.events
            .iter()
            .filter(|e| matches!(e, towerlock_audit::event::Event::Vote(_)))
            .count()
    };
    let votes_before = count(&f);
    let result = f.send(&tx);
    assert_eq!(result, "InvalidProgramForExecution");
    assert_eq!(count(&f), votes_before + 1, "one trail line");
    let event = f.last_vote_event();
    assert_eq!(event.identity, identity.pubkey().to_string());
    assert!(event.lockouts.is_empty());
}

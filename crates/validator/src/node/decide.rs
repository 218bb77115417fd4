//! The node's decisions, as pure functions: whether it may vote at all, what
//! it votes for, and whether another instance has taken its identity.

use std::fmt;

use solana_pubkey::Pubkey;
use towerlock_tower::{Slot, ThresholdDecision, Tower};
use towerlock_wire::api::{SignedContactInfo, VoteAccountState};

use super::forks::ForkView;

/// Why a node that replays does not vote (agave's "hot spare").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HotSpareReason {
    /// The vote account is not in the banks seen so far.
    NoVoteAccount { vote_account: Pubkey },
    /// The vote account names another node (the secondary before failover).
    NotTheNode { vote_account: Pubkey, node: Pubkey },
    /// No keypair for the vote account's authorized voter is loaded.
    NoVoterKeypair { vote_account: Pubkey, voter: Pubkey },
    /// Started with `--start-as-hot-spare`: it may vote, once told to.
    AwaitingSetIdentity,
}

impl fmt::Display for HotSpareReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoVoteAccount { vote_account } => {
                write!(f, "vote account {vote_account} not found")
            }
            Self::NotTheNode { vote_account, node } => {
                write!(f, "vote account {vote_account} belongs to node {node}")
            }
            Self::NoVoterKeypair {
                vote_account,
                voter,
            } => write!(
                f,
                "no keypair loaded for {voter}, the authorized voter of {vote_account}"
            ),
            Self::AwaitingSetIdentity => write!(
                f,
                "started as a hot spare: waiting for set-identity to take over"
            ),
        }
    }
}

/// Whether `identity` may vote with `vote_account`: it must be the account's
/// node, and the account's authorized voter must be among `voters`.
pub fn may_vote(
    identity: &Pubkey,
    vote_account: &Pubkey,
    state: Option<&VoteAccountState>,
    voters: &[Pubkey],
) -> Result<Pubkey, HotSpareReason> {
    let state = state.ok_or(HotSpareReason::NoVoteAccount {
        vote_account: *vote_account,
    })?;
    if state.node_pubkey != *identity {
        return Err(HotSpareReason::NotTheNode {
            vote_account: *vote_account,
            node: state.node_pubkey,
        });
    }
    voters
        .iter()
        .find(|voter| **voter == state.authorized_voter)
        .copied()
        .ok_or(HotSpareReason::NoVoterKeypair {
            vote_account: *vote_account,
            voter: state.authorized_voter,
        })
}

/// What to vote for next.
#[derive(Debug, Clone, PartialEq)]
pub enum VoteChoice {
    Vote {
        slot: Slot,
    },
    /// Nothing newer than the last vote.
    NothingNew,
    /// Every candidate is locked out by an earlier vote on another fork.
    LockedOut {
        candidate: Slot,
    },
    /// Too little stake has confirmed the vote at threshold depth.
    BelowThreshold {
        candidate: Slot,
        threshold_slot: Slot,
    },
}

/// Picks the bank to vote for: the cluster's heaviest fork (its tip) when the
/// tower allows it, else the newest bank on the fork of the last vote.
///
/// Stake for the threshold check is what the cluster reports as confirmed:
/// two thirds voted for the confirmed slot and so for its ancestors.
pub fn choose_vote(tower: &Tower, forks: &ForkView) -> VoteChoice {
    let is_ancestor = |slot: Slot, of: Slot| is_ancestor(forks, slot, of);
    let mut candidates = vec![forks.tip];
    if let Some(last) = tower.last_voted_slot() {
        if let Some(newest) = forks.newest_descendant(last) {
            candidates.push(newest);
        }
    }
    let mut outcome = VoteChoice::NothingNew;
    for candidate in candidates {
        if forks.get(candidate).is_none() || !tower.is_recent(candidate) {
            continue;
        }
        if tower.is_locked_out(candidate, |s| is_ancestor(s, candidate)) {
            outcome = VoteChoice::LockedOut { candidate };
            continue;
        }
        let confirmed = forks.confirmed;
        let confirmed_on_fork = forks.is_ancestor_or_self(confirmed, candidate);
        let voted_stake = |slot: Slot| {
            u64::from(confirmed_on_fork && (slot == confirmed || is_ancestor(slot, confirmed)))
        };
        match tower.check_vote_stake_threshold(candidate, voted_stake, 1) {
            ThresholdDecision::Passed => return VoteChoice::Vote { slot: candidate },
            ThresholdDecision::Failed { slot, .. } => {
                outcome = VoteChoice::BelowThreshold {
                    candidate,
                    threshold_slot: slot,
                }
            }
        }
    }
    outcome
}

/// Whether `slot`, a vote (or the root) of a tower, is an ancestor of `of`.
///
/// Votes older than every bank the node has replayed (a tower from before
/// an outage), or below a gap in the replay (a partition), cannot be walked
/// to. As agave anchors a restored tower, the cluster's SlotHistory places
/// them: a slot it holds is on the rooted chain, an ancestor of every bank
/// descending from the root; a slot it lacks is on a dead fork, and the vote
/// keeps its lockout.
fn is_ancestor(forks: &ForkView, slot: Slot, of: Slot) -> bool {
    forks.is_ancestor(slot, of)
        || (forks.rooted_in_history(slot) == Some(true)
            && forks.is_ancestor_or_self(forks.root, of))
}

/// Whether a vote of `tower` lies at or below the cluster's root but the
/// replay cannot walk from the root down to it (older than every bank held,
/// below a gap, or on a dead fork), and no SlotHistory covers it yet: then
/// the node needs the cluster's SlotHistory to know where that vote stands.
pub fn needs_slot_history(tower: &Tower, forks: &ForkView) -> bool {
    tower.lockouts().iter().map(|l| l.slot()).any(|slot| {
        slot <= forks.root
            && !forks.is_ancestor_or_self(slot, forks.root)
            && forks.rooted_in_history(slot).is_none()
    })
}

/// agave's duplicate-instance rule: another instance publishing our identity
/// with a newer outset has taken over, and this one must stop.
pub fn is_newer_instance_of(
    identity: &Pubkey,
    our_instance: &str,
    our_outset: u64,
    contact: &SignedContactInfo,
) -> bool {
    contact.verify() == Some(*identity)
        && contact.info.instance != our_instance
        && contact.info.outset > our_outset
}

/// Why a takeover refuses the tower it found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TowerRefusal {
    /// `set-identity --require-tower` and no tower is stored.
    #[error("no tower is stored for it, and one is required")]
    Missing,
    /// No tower is stored, but the vote account has landed votes: a tower
    /// rebuilt from them would lack every vote sent but not landed.
    #[error(
        "no tower is stored for it, but its vote account has landed votes up to slot {landed}; \
         a tower rebuilt from them would lack the votes sent but not landed \
         (restore the tower with `towerlock tower import`, or allow a rebuild with --allow-tower-rebuild)"
    )]
    MissingWithLandedVotes { landed: Slot },
    /// The stored tower is older than the votes that landed: it is not the
    /// last tower this identity voted with.
    #[error(
        "the stored tower's last vote is {stored:?}, older than the vote account's landed vote at slot {landed} \
         (restore the newest tower with `towerlock tower import`, or allow a rebuild with --allow-tower-rebuild)"
    )]
    Behind { stored: Option<Slot>, landed: Slot },
}

/// Whether a takeover may go on with the tower storage holds: `stored` is
/// `None` when no tower is stored, else the stored tower's last vote;
/// `landed` is the vote account's last landed vote. A tower is never
/// invented where one was lost, unless the operator allows a rebuild; an
/// identity that never voted starts with a fresh tower.
pub fn tower_verdict(
    stored: Option<Option<Slot>>,
    landed: Option<Slot>,
    require_tower: bool,
    allow_rebuild: bool,
) -> Result<(), TowerRefusal> {
    match (stored, landed) {
        (None, _) if require_tower => Err(TowerRefusal::Missing),
        (None, Some(landed)) if !allow_rebuild => {
            Err(TowerRefusal::MissingWithLandedVotes { landed })
        }
        (Some(stored), Some(landed)) if stored < Some(landed) && !allow_rebuild => {
            Err(TowerRefusal::Behind { stored, landed })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use solana_hash::Hash;
    use solana_slot_history::SlotHistory;
    use towerlock_wire::api::{ContactAddresses, ContactInfo};

    use super::super::forks::tests::notification;
    use super::*;

    fn state(node: &Pubkey, voter: &Pubkey) -> VoteAccountState {
        VoteAccountState {
            vote_pubkey: Pubkey::new_unique(),
            node_pubkey: *node,
            authorized_voter: *voter,
            lockouts: vec![],
            root_slot: None,
            last_vote: None,
            credits: 0,
            activated_stake: 1,
        }
    }

    #[test]
    fn only_the_node_with_its_voter_keypair_votes() {
        let identity = Pubkey::new_unique();
        let secondary = Pubkey::new_unique();
        let vote_account = Pubkey::new_unique();
        let account = state(&identity, &identity);
        assert_eq!(
            may_vote(&identity, &vote_account, Some(&account), &[identity]),
            Ok(identity)
        );
        // The secondary before failover: its identity is not the node.
        assert!(matches!(
            may_vote(&secondary, &vote_account, Some(&account), &[identity]),
            Err(HotSpareReason::NotTheNode { .. })
        ));
        // The right identity but no voter keypair (authorized-voter remove-all).
        assert!(matches!(
            may_vote(&identity, &vote_account, Some(&account), &[]),
            Err(HotSpareReason::NoVoterKeypair { .. })
        ));
        assert!(matches!(
            may_vote(&identity, &vote_account, None, &[identity]),
            Err(HotSpareReason::NoVoteAccount { .. })
        ));
    }

    fn view(banks: &[(Slot, Slot)], tip: Slot, confirmed: Slot) -> ForkView {
        let mut view = ForkView::default();
        for &(slot, parent) in banks {
            let mut n = notification(slot, parent);
            n.tip = tip;
            n.confirmed = confirmed;
            view.insert(&n);
        }
        view
    }

    fn vote(tower: &mut Tower, slot: Slot) {
        let _ = tower.record_vote(slot, Hash::default(), Hash::default(), 0);
    }

    #[test]
    fn votes_the_tip_unless_locked_out_then_stays_on_its_fork() {
        // 0 - 1 - 2 - 3        (our fork)
        //       \ 4 - 5        (the cluster's tip)
        let forks = view(&[(0, 0), (1, 0), (2, 1), (3, 2), (4, 1), (5, 4)], 5, 1);
        let mut tower = Tower::new(Pubkey::new_unique());
        assert_eq!(choose_vote(&tower, &forks), VoteChoice::Vote { slot: 5 });

        vote(&mut tower, 2);
        vote(&mut tower, 3);
        // Slot 2 (2 confirmations) is locked out through 6: 5 is refused,
        // and there is nothing newer on our fork.
        assert_eq!(
            choose_vote(&tower, &forks),
            VoteChoice::LockedOut { candidate: 5 }
        );

        let mut forks = forks;
        let mut n = notification(6, 3);
        n.tip = 5;
        forks.insert(&n);
        assert_eq!(choose_vote(&tower, &forks), VoteChoice::Vote { slot: 6 });
    }

    /// The SlotHistory of a root whose chain holds `chain` (ascending).
    fn history(chain: impl IntoIterator<Item = Slot>) -> SlotHistory {
        let mut history = SlotHistory::default();
        for slot in chain.into_iter().filter(|s| *s > 0) {
            history.add(slot);
        }
        history
    }

    #[test]
    fn a_tower_older_than_every_replayed_bank_is_anchored_in_the_slot_history() {
        // The tower voted 1..=40; the node comes back to banks 100..=105
        // only (the replay starts at the cluster's root, 99).
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 1..=40 {
            vote(&mut tower, slot);
        }
        let back = |history: Option<SlotHistory>| {
            let mut view = ForkView::default();
            for slot in 99..=105u64 {
                let mut n = notification(slot, slot - 1);
                n.confirmed = 103;
                n.root = 99;
                view.insert(&n);
            }
            if let Some(history) = history {
                view.set_slot_history(history);
            }
            view
        };
        // Nothing says where its votes are: locked out, and it asks.
        let unknown = back(None);
        assert!(needs_slot_history(&tower, &unknown));
        assert_eq!(
            choose_vote(&tower, &unknown),
            VoteChoice::LockedOut { candidate: 105 }
        );
        // They are on the rooted chain: ancestors of every live bank.
        let rooted = back(Some(history(0..=99)));
        assert!(!needs_slot_history(&tower, &rooted));
        assert_eq!(choose_vote(&tower, &rooted), VoteChoice::Vote { slot: 105 });
        // 20..=40 were on a fork the cluster abandoned: 20's lockout (21
        // confirmations) still holds.
        let forked = back(Some(history((0..20).chain(41..=99))));
        assert!(!needs_slot_history(&tower, &forked));
        assert_eq!(
            choose_vote(&tower, &forked),
            VoteChoice::LockedOut { candidate: 105 }
        );
    }

    #[test]
    fn a_node_back_from_a_partition_places_its_votes_across_the_gap() {
        // The node replayed 0..=20 and voted 1..=20; a partition; the replay
        // resumes at 60 (the cluster's root): 21..=59 never come, so the walk
        // down from 70 stops at 60, above votes the node still holds.
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 1..=20 {
            vote(&mut tower, slot);
        }
        let build = |history: Option<SlotHistory>| {
            let mut view = ForkView::default();
            let chain = (0..=20u64).map(|s| (s, s.saturating_sub(1)));
            for (slot, parent) in chain.chain((60..=70u64).map(|s| (s, s - 1))) {
                let mut n = notification(slot, parent);
                n.confirmed = slot.saturating_sub(1);
                n.root = if slot >= 60 { 60 } else { 0 };
                view.insert(&n);
            }
            if let Some(history) = history {
                view.set_slot_history(history);
            }
            view
        };
        let gap = build(None);
        assert!(needs_slot_history(&tower, &gap));
        // Nothing says where its votes are: its lockouts hold, as TowerBFT
        // requires.
        assert_eq!(
            choose_vote(&tower, &gap),
            VoteChoice::LockedOut { candidate: 70 }
        );
        // The cluster rooted them.
        assert_eq!(
            choose_vote(&tower, &build(Some(history(0..=60)))),
            VoteChoice::Vote { slot: 70 }
        );
        // The cluster rooted another fork from 10 on.
        assert_eq!(
            choose_vote(&tower, &build(Some(history((0..10).chain(21..=60))))),
            VoteChoice::LockedOut { candidate: 70 }
        );
    }

    #[test]
    fn nothing_new_after_voting_the_tip() {
        let forks = view(&[(0, 0), (1, 0), (2, 1)], 2, 1);
        let mut tower = Tower::new(Pubkey::new_unique());
        vote(&mut tower, 2);
        assert_eq!(choose_vote(&tower, &forks), VoteChoice::NothingNew);
    }

    #[test]
    fn threshold_uses_the_confirmed_slot() {
        let chain: Vec<(Slot, Slot)> = (0..=12u64).map(|s| (s, s.saturating_sub(1))).collect();
        let mut tower = Tower::new(Pubkey::new_unique());
        for slot in 1..=9 {
            vote(&mut tower, slot);
        }
        // Voting 10 puts slot 2 at depth 8: it needs confirmation.
        let unconfirmed = view(&chain[..=10], 10, 1);
        assert_eq!(
            choose_vote(&tower, &unconfirmed),
            VoteChoice::BelowThreshold {
                candidate: 10,
                threshold_slot: 2
            }
        );
        let confirmed = view(&chain[..=10], 10, 8);
        assert_eq!(
            choose_vote(&tower, &confirmed),
            VoteChoice::Vote { slot: 10 }
        );
    }

    #[test]
    fn a_tower_is_never_invented_where_one_was_lost() {
        use TowerRefusal::*;
        // An identity that never voted starts fresh.
        assert_eq!(tower_verdict(None, None, false, false), Ok(()));
        assert_eq!(tower_verdict(None, None, true, false), Err(Missing));
        // Landed votes but no tower: refused unless a rebuild is allowed.
        assert_eq!(
            tower_verdict(None, Some(40), false, false),
            Err(MissingWithLandedVotes { landed: 40 })
        );
        assert_eq!(tower_verdict(None, Some(40), false, true), Ok(()));
        assert_eq!(tower_verdict(None, Some(40), true, true), Err(Missing));
        // A stored tower at or past the landed votes is the one to use.
        assert_eq!(
            tower_verdict(Some(Some(41)), Some(40), false, false),
            Ok(())
        );
        assert_eq!(tower_verdict(Some(Some(40)), Some(40), true, false), Ok(()));
        assert_eq!(tower_verdict(Some(None), None, false, false), Ok(()));
        // An older one is not.
        assert_eq!(
            tower_verdict(Some(Some(39)), Some(40), false, false),
            Err(Behind {
                stored: Some(39),
                landed: 40
            })
        );
        assert_eq!(
            tower_verdict(Some(None), Some(40), true, false),
            Err(Behind {
                stored: None,
                landed: 40
            })
        );
        assert_eq!(tower_verdict(Some(Some(39)), Some(40), false, true), Ok(()));
    }

    #[test]
    fn a_newer_outset_of_our_identity_means_exit() {
        let keypair = solana_keypair::Keypair::new();
        use solana_signer::Signer;
        let contact = |instance: &str, outset: u64| {
            ContactInfo {
                pubkey: keypair.pubkey(),
                outset,
                instance: instance.into(),
                version: "t".into(),
                addresses: ContactAddresses::default(),
            }
            .sign(&keypair)
        };
        let me = keypair.pubkey();
        assert!(is_newer_instance_of(&me, "a", 10, &contact("b", 11)));
        assert!(!is_newer_instance_of(&me, "a", 10, &contact("b", 9)));
        assert!(!is_newer_instance_of(&me, "a", 10, &contact("a", 11)));
        let mut forged = contact("b", 11);
        forged.info.outset = 12;
        assert!(
            !is_newer_instance_of(&me, "a", 10, &forged),
            "bad signature"
        );
    }
}

//! The vote pool of one slot: who voted what, the stake behind each
//! certificate, and which certificates formed.
//!
//! The pool keeps what a correct voter may send in one slot and refuses the
//! rest as conflicting (so a certificate never counts a voter twice against
//! itself): one notarize, or a skip, not both; notarize-fallback and
//! skip-fallback beside either (Votor allows skip + notarize-fallback and
//! notarize + skip-fallback); no finalize beside a skip or skip-fallback.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use solana_hash::Hash;
use solana_pubkey::Pubkey;
use towerlock_wire::votor::VotorVote;

use super::certificate::{
    reaches, threshold_percent, Certificate, CertificateKind, SAFE_TO_NOTAR_MIN_PERCENT,
    SAFE_TO_NOTAR_PERCENT, SAFE_TO_SKIP_PERCENT,
};

/// Why the pool did not take a vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("the voter already notarized another block in this slot")]
    OtherBlock,
    #[error("the voter already skipped this slot, so it may not notarize it")]
    NotarizeAfterSkip,
    #[error("the voter already notarized in this slot, so it may not skip it")]
    SkipAfterNotarize,
    #[error("the voter skipped this slot, so it may not finalize it")]
    FinalizeAfterSkip,
    #[error("the voter finalized this slot, so it may not skip it")]
    SkipAfterFinalize,
}

/// What adding a vote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Counted for the first time.
    New,
    /// The same vote was counted before.
    Repeat,
}

/// One slot's votes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotPool {
    notarize: BTreeMap<Pubkey, Hash>,
    notarize_fallback: BTreeMap<Pubkey, BTreeSet<Hash>>,
    skip: BTreeSet<Pubkey>,
    skip_fallback: BTreeSet<Pubkey>,
    finalize: BTreeSet<Pubkey>,
    /// Certificates formed, each once.
    formed: BTreeSet<(CertificateKind, Option<Hash>)>,
}

impl SlotPool {
    /// Takes `voter`'s vote, or says why it conflicts with its earlier ones.
    pub fn add(&mut self, voter: Pubkey, vote: &VotorVote) -> Result<Added, Conflict> {
        let added = |new: bool| if new { Added::New } else { Added::Repeat };
        match *vote {
            VotorVote::Notarize { block_id, .. } => {
                if self.skip.contains(&voter) {
                    return Err(Conflict::NotarizeAfterSkip);
                }
                match self.notarize.get(&voter) {
                    Some(known) if *known == block_id => Ok(Added::Repeat),
                    Some(_) => Err(Conflict::OtherBlock),
                    None => {
                        self.notarize.insert(voter, block_id);
                        Ok(Added::New)
                    }
                }
            }
            VotorVote::Skip { .. } => {
                if self.notarize.contains_key(&voter) {
                    return Err(Conflict::SkipAfterNotarize);
                }
                if self.finalize.contains(&voter) {
                    return Err(Conflict::SkipAfterFinalize);
                }
                Ok(added(self.skip.insert(voter)))
            }
            VotorVote::NotarizeFallback { block_id, .. } => Ok(added(
                self.notarize_fallback
                    .entry(voter)
                    .or_default()
                    .insert(block_id),
            )),
            VotorVote::SkipFallback { .. } => {
                if self.finalize.contains(&voter) {
                    return Err(Conflict::SkipAfterFinalize);
                }
                Ok(added(self.skip_fallback.insert(voter)))
            }
            VotorVote::Finalize { .. } => {
                if self.skip.contains(&voter) || self.skip_fallback.contains(&voter) {
                    return Err(Conflict::FinalizeAfterSkip);
                }
                Ok(added(self.finalize.insert(voter)))
            }
        }
    }

    /// Every block someone notarized or notarize-fallbacked.
    fn blocks(&self) -> BTreeSet<Hash> {
        self.notarize
            .values()
            .copied()
            .chain(self.notarize_fallback.values().flatten().copied())
            .collect()
    }

    /// Stake notarizing `block`.
    pub fn notarize_stake(&self, block: &Hash, stake: &impl Fn(&Pubkey) -> u64) -> u64 {
        self.notarize
            .iter()
            .filter(|(_, b)| *b == block)
            .map(|(v, _)| stake(v))
            .sum()
    }

    /// Stake skipping (skip or skip-fallback; each voter once).
    pub fn skip_stake(&self, stake: &impl Fn(&Pubkey) -> u64) -> u64 {
        self.skip.union(&self.skip_fallback).map(stake).sum()
    }

    /// The stake behind each certificate of the slot, and whether it
    /// reached its threshold; returns those that formed now (each once).
    pub fn new_certificates(
        &mut self,
        slot: u64,
        total: u64,
        stake: &impl Fn(&Pubkey) -> u64,
    ) -> Vec<Certificate> {
        let mut candidates: Vec<(CertificateKind, Option<Hash>, u64)> = vec![];
        for block in self.blocks() {
            let notarize = self.notarize_stake(&block, stake);
            let fallback: u64 = self
                .notarize
                .iter()
                .filter(|(_, b)| **b == block)
                .map(|(v, _)| *v)
                .chain(
                    self.notarize_fallback
                        .iter()
                        .filter(|(_, blocks)| blocks.contains(&block))
                        .map(|(v, _)| *v),
                )
                .collect::<BTreeSet<Pubkey>>()
                .iter()
                .map(stake)
                .sum();
            candidates.push((CertificateKind::Notarization, Some(block), notarize));
            candidates.push((CertificateKind::FastFinalization, Some(block), notarize));
            candidates.push((CertificateKind::NotarizeFallback, Some(block), fallback));
        }
        candidates.push((CertificateKind::Skip, None, self.skip_stake(stake)));
        let finalize = self.finalize.iter().map(stake).sum();
        candidates.push((CertificateKind::Finalization, None, finalize));
        let mut formed = vec![];
        for (kind, block_id, behind) in candidates {
            // A notarization is a notarize-fallback certificate too: one
            // is enough.
            let redundant = kind == CertificateKind::NotarizeFallback
                && self
                    .formed
                    .contains(&(CertificateKind::Notarization, block_id));
            if redundant {
                continue;
            }
            if reaches(behind, total, threshold_percent(kind))
                && self.formed.insert((kind, block_id))
            {
                formed.push(Certificate {
                    kind,
                    slot,
                    block_id,
                });
            }
        }
        formed
    }

    /// The certificates formed so far.
    pub fn certificates(&self, slot: u64) -> impl Iterator<Item = Certificate> + '_ {
        self.formed
            .iter()
            .map(move |&(kind, block_id)| Certificate {
                kind,
                slot,
                block_id,
            })
    }

    /// Whether a certificate of `kind` formed (for `block`, when it names one).
    pub fn has(&self, kind: CertificateKind, block: Option<Hash>) -> bool {
        self.formed.contains(&(kind, block))
    }

    /// The block with a notarization certificate, if any.
    pub fn notarized(&self) -> Option<Hash> {
        self.formed
            .iter()
            .find(|(kind, _)| *kind == CertificateKind::Notarization)
            .and_then(|(_, block)| *block)
    }

    /// The block with a notarize-fallback (or notarization) certificate.
    pub fn certified_block(&self) -> Option<Hash> {
        self.formed
            .iter()
            .find(|(kind, _)| {
                matches!(
                    kind,
                    CertificateKind::Notarization | CertificateKind::NotarizeFallback
                )
            })
            .and_then(|(_, block)| *block)
    }

    /// Blocks that are SafeToNotar (the paper's definition): notarize for it
    /// ≥ 40 %, or ≥ 20 % with skip and notarize-for-it ≥ 60 % together.
    pub fn safe_to_notar(&self, total: u64, stake: &impl Fn(&Pubkey) -> u64) -> Vec<Hash> {
        let skip = self.skip_stake(stake);
        self.notarize
            .values()
            .copied()
            .collect::<BTreeSet<Hash>>()
            .into_iter()
            .filter(|block| {
                let notarize = self.notarize_stake(block, stake);
                reaches(notarize, total, SAFE_TO_NOTAR_PERCENT)
                    || (reaches(notarize, total, SAFE_TO_NOTAR_MIN_PERCENT)
                        && reaches(
                            skip + notarize,
                            total,
                            super::certificate::CERTIFICATE_PERCENT,
                        ))
            })
            .collect()
    }

    /// SafeToSkip: skip plus notarize for every block but the most
    /// notarized one reaches 40 % (no block can be notarized any more).
    pub fn safe_to_skip(&self, total: u64, stake: &impl Fn(&Pubkey) -> u64) -> bool {
        let by_block: Vec<u64> = self
            .notarize
            .values()
            .copied()
            .collect::<BTreeSet<Hash>>()
            .iter()
            .map(|block| self.notarize_stake(block, stake))
            .collect();
        let all: u64 = by_block.iter().sum();
        let top = by_block.iter().copied().max().unwrap_or(0);
        reaches(
            self.skip_stake(stake) + all - top,
            total,
            SAFE_TO_SKIP_PERCENT,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(i: u8) -> Pubkey {
        Pubkey::new_from_array([i; 32])
    }

    fn notarize(block: u8) -> VotorVote {
        VotorVote::Notarize {
            slot: 1,
            block_id: Hash::new_from_array([block; 32]),
        }
    }

    #[test]
    fn conflicting_votes_are_refused_and_allowed_pairs_taken() {
        let mut pool = SlotPool::default();
        let v = voter(1);
        assert_eq!(pool.add(v, &notarize(1)), Ok(Added::New));
        assert_eq!(pool.add(v, &notarize(1)), Ok(Added::Repeat));
        assert_eq!(pool.add(v, &notarize(2)), Err(Conflict::OtherBlock));
        assert_eq!(
            pool.add(v, &VotorVote::Skip { slot: 1 }),
            Err(Conflict::SkipAfterNotarize)
        );
        assert_eq!(
            pool.add(v, &VotorVote::SkipFallback { slot: 1 }),
            Ok(Added::New)
        );
        assert_eq!(
            pool.add(v, &VotorVote::Finalize { slot: 1 }),
            Err(Conflict::FinalizeAfterSkip)
        );
        let w = voter(2);
        assert_eq!(pool.add(w, &VotorVote::Skip { slot: 1 }), Ok(Added::New));
        assert_eq!(pool.add(w, &notarize(1)), Err(Conflict::NotarizeAfterSkip));
        let fallback = VotorVote::NotarizeFallback {
            slot: 1,
            block_id: Hash::new_from_array([1; 32]),
        };
        assert_eq!(pool.add(w, &fallback), Ok(Added::New));
        let x = voter(3);
        assert_eq!(
            pool.add(x, &VotorVote::Finalize { slot: 1 }),
            Ok(Added::New)
        );
        assert_eq!(
            pool.add(x, &VotorVote::Skip { slot: 1 }),
            Err(Conflict::SkipAfterFinalize)
        );
    }
}

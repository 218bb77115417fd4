//! The cluster in Alpenglow mode: the slot clock drives [`Votor`] instead
//! of TowerBFT's synthetic towers. Banks, the ledger and the RPC stay the
//! cluster's; Votor says what a leader builds on and what is final, and the
//! root follows its finalizations (so `finalized` commitment, the SlotHistory
//! sysvar and pruning mean what they mean under TowerBFT). The confirmed slot
//! is the newest notarized block on the tip's fork.
//!
//! A synthetic validator's notarize vote also enters its vote account's
//! tower, so `getVoteAccounts` shows it voting and earning credits.

use solana_pubkey::Pubkey;

use super::*;

impl Cluster {
    /// Ends the current slot under Votor: timeouts first (a slot without a
    /// block by now is skipped), then the leader's block, built on what
    /// Votor says it may build on (ours: the block our leader submitted).
    pub(super) fn end_slot_votor(&mut self, now_ms: u64) -> Outputs {
        self.slot_hashes_memo = None;
        let slot = self.next_slot;
        self.next_slot += 1;
        let leader = self.leader_of(slot);
        let mut out = Outputs::default();
        let events = self.votor_mut().tick(slot);
        self.apply_votor(events, now_ms, &mut out);
        let produced = if self.ours.iter().any(|v| v.identity == leader) {
            self.take_our_block(slot, leader, now_ms, &mut out)
                .map(|(parent, block_id, _)| (parent, block_id))
        } else {
            self.synthetic_block(slot, &leader)
        };
        self.pending_blocks.retain(|s, _| *s > slot);
        match produced {
            Some((parent, block_id)) => {
                let parent_block_id = self.banks[&parent].block_id;
                self.freeze(slot, parent, block_id, leader, true, now_ms, &mut out);
                let block = VotorBlock {
                    slot,
                    block_id,
                    parent_slot: parent,
                    parent_block_id,
                    leader,
                };
                let events = self.votor_mut().on_block(block);
                self.apply_votor(events, now_ms, &mut out);
            }
            None => self.stats.skipped_slots += 1,
        }
        out.notifications
            .push(Notification::Votor(VotorNotification::Slot {
                slot: self.next_slot,
            }));
        out
    }

    /// A synthetic leader's block: on the parent Votor makes ready (or its
    /// own previous block); none when there is nothing to build on.
    fn synthetic_block(&self, slot: u64, leader: &Pubkey) -> Option<(u64, Hash)> {
        let (parent, _) = self
            .votor
            .as_ref()?
            .leader_parent(slot, leader)
            .filter(|(parent, _)| self.banks.contains_key(parent))?;
        let block_id = hashv(&[
            b"synthetic-block",
            &self.seed,
            &slot.to_le_bytes(),
            &parent.to_le_bytes(),
        ]);
        Some((parent, block_id))
    }

    fn votor_mut(&mut self) -> &mut Votor {
        self.votor.as_mut().expect("an Alpenglow cluster has Votor")
    }

    /// Carries Votor's events out: audit lines, notifications, the
    /// confirmed slot and the root.
    fn apply_votor(&mut self, events: Vec<VotorEvent>, now_ms: u64, out: &mut Outputs) {
        for event in events {
            match event {
                VotorEvent::Block(block) => out
                    .notifications
                    .push(Notification::Votor(VotorNotification::Block(block))),
                VotorEvent::SyntheticVote {
                    voter,
                    vote: VotorVote::Notarize { slot, .. },
                } => {
                    let epoch = self.epochs.epoch(slot);
                    let time_s = self.banks.get(&slot).map_or(0, |b| b.time_ms / 1000) as i64;
                    if let Some(v) = self.synthetic.iter_mut().find(|v| v.identity == voter) {
                        v.record_vote(slot, epoch, time_s);
                    }
                }
                VotorEvent::SyntheticVote { .. } => {}
                VotorEvent::Certificate(certificate) => {
                    out.events.push(Event::Certificate(CertificateEvent {
                        ts_ms: now_ms,
                        certificate: certificate.kind.name().to_string(),
                        slot: certificate.slot,
                        block_id: certificate.block_id.as_ref().map(b58),
                    }));
                    let slot = certificate.slot;
                    if certificate.kind == CertificateKind::Notarization
                        && self.banks.contains_key(&slot)
                        && self.is_ancestor_or_equal(slot, self.tip)
                    {
                        self.confirmed = self.confirmed.max(slot);
                    }
                    out.notifications
                        .push(Notification::Votor(VotorNotification::Certificate(
                            certificate,
                        )));
                }
                VotorEvent::Finalized {
                    slot,
                    block_id,
                    fast,
                } => {
                    out.events.push(Event::Finalized(FinalizedEvent {
                        ts_ms: now_ms,
                        slot,
                        block_id: b58(&block_id),
                        fast,
                    }));
                    if slot > self.root && self.banks.contains_key(&slot) {
                        self.set_root(slot);
                        self.confirmed = self.confirmed.max(slot);
                        out.notifications.push(Notification::Root(slot));
                    }
                    out.notifications
                        .push(Notification::Votor(VotorNotification::Finalized {
                            slot,
                            block_id,
                            fast,
                        }));
                }
            }
        }
    }

    /// A validator's Votor vote: checked and counted by Votor, recorded in
    /// the audit trail whatever the verdict (before what it caused).
    pub fn receive_votor_vote(
        &mut self,
        message: &VotorVoteMessage,
        now_ms: u64,
    ) -> (Result<VotorVoteResult, VotorVoteError>, Outputs) {
        let mut out = Outputs::default();
        let current = self.next_slot;
        let (result, events) = match self.votor.as_mut() {
            Some(votor) => votor.receive(message, current),
            None => (Err(VotorVoteError::NotAlpenglow), vec![]),
        };
        let vote = &message.vote;
        out.events.push(Event::VotorVote(VotorVoteEvent {
            ts_ms: now_ms,
            identity: b58(&message.identity),
            vote_account: b58(&message.vote_account),
            instance: message.instance.clone(),
            vote: vote.kind().to_string(),
            slot: vote.slot(),
            block_id: vote.block_id().as_ref().map(b58),
            signature: b58(&message.signature),
            result: match &result {
                Ok(_) => VoteResult::Accepted,
                Err(e) => VoteResult::Rejected(e.name().to_string()),
            },
        }));
        if let Err(e) = &result {
            tracing::debug!("votor vote of {} refused: {e}", message.identity);
        }
        self.apply_votor(events, now_ms, &mut out);
        (result.map(|_| VotorVoteResult { landed: true }), out)
    }

    /// What a new `votorSubscribe` starts with: every kept block from the
    /// finalized one up, the certificates of those slots, the finalized
    /// block, and the current slot. Empty on a TowerBFT cluster.
    pub fn votor_replay(&self) -> Vec<VotorNotification> {
        let Some(votor) = &self.votor else {
            return vec![];
        };
        let (finalized, block_id) = votor.finalized();
        let mut replay: Vec<VotorNotification> = votor
            .blocks()
            .values()
            .map(|b| VotorNotification::Block(*b))
            .collect();
        replay.extend(
            votor
                .certificates()
                .filter(|c| c.slot >= finalized)
                .map(VotorNotification::Certificate),
        );
        replay.push(VotorNotification::Finalized {
            slot: finalized,
            block_id,
            fast: votor.has_certificate(
                CertificateKind::FastFinalization,
                finalized,
                Some(block_id),
            ),
        });
        replay.push(VotorNotification::Slot {
            slot: self.next_slot,
        });
        replay
    }
}

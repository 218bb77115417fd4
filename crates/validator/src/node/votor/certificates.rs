//! The certificates seen, and what follows from them for voting: which
//! blocks are notarized (a finalize vote needs it), and which parents are
//! ready for a leader window (its first block needs one).

use std::collections::BTreeSet;

use towerlock_tower::{vote_history::Block, Slot};

use super::{
    window::{is_first_in_window, window_start, LEADER_WINDOW},
    Certificate,
};

#[derive(Debug)]
pub(super) struct Certificates {
    /// The block the chain starts from: certified by definition.
    genesis: Block,
    notarized: BTreeSet<Block>,
    notarize_fallback: BTreeSet<Block>,
    skipped: BTreeSet<Slot>,
}

impl Certificates {
    pub(super) fn new(genesis: Block) -> Self {
        Self {
            genesis,
            notarized: BTreeSet::new(),
            notarize_fallback: BTreeSet::new(),
            skipped: BTreeSet::new(),
        }
    }

    /// Keeps what `certificate` certifies (finalization is the machine's).
    pub(super) fn add(&mut self, certificate: Certificate) {
        match certificate {
            Certificate::Notarize(block) | Certificate::FastFinalize(block) => {
                self.notarized.insert(block);
            }
            Certificate::NotarizeFallback(block) => {
                self.notarize_fallback.insert(block);
            }
            Certificate::Skip(slot) => {
                self.skipped.insert(slot);
            }
            Certificate::Finalize(_) => {}
        }
    }

    /// A notarization certificate (or a fast-finalization one, which
    /// implies it): what a finalize vote needs.
    pub(super) fn is_notarized(&self, block: &Block) -> bool {
        self.notarized.contains(block)
    }

    /// The block the chain starts from: the block after it needs a ready
    /// parent whatever its place in the window (agave's first Alpenglow
    /// slot).
    pub(super) fn is_genesis(&self, block: &Block) -> bool {
        *block == self.genesis
    }

    /// A block the next window may build on: notarized or
    /// notarize-fallback certified, or genesis.
    fn is_certified(&self, block: &Block) -> bool {
        *block == self.genesis
            || self.notarized.contains(block)
            || self.notarize_fallback.contains(block)
    }

    /// ParentReady(`slot`, `parent`): `slot` opens a window (or its block
    /// is the chain's first, on genesis), `parent` is certified, and every
    /// slot between them has a skip certificate.
    pub(super) fn is_parent_ready(&self, slot: Slot, parent: &Block) -> bool {
        (is_first_in_window(slot) || self.is_genesis(parent))
            && parent.slot < slot
            && self.is_certified(parent)
            && (parent.slot + 1..slot).all(|between| self.skipped.contains(&between))
    }

    /// Every (window start, parent) with a ready parent, for parents at or
    /// above `root`.
    pub(super) fn ready_parents(&self, root: Slot) -> Vec<(Slot, Block)> {
        let certified = self
            .notarized
            .iter()
            .chain(&self.notarize_fallback)
            .chain(std::iter::once(&self.genesis))
            .filter(|block| block.slot >= root);
        let mut ready = Vec::new();
        for parent in certified {
            // The next window is ready on `parent` if the slots before it
            // are skipped; each window after it, if its own slots are too.
            let mut window = window_start(parent.slot) + LEADER_WINDOW;
            let mut next = parent.slot + 1;
            'windows: loop {
                while next < window {
                    if !self.skipped.contains(&next) {
                        break 'windows;
                    }
                    next += 1;
                }
                ready.push((window, *parent));
                window += LEADER_WINDOW;
            }
        }
        ready
    }

    /// Forgets what lies below the finalized `root`.
    pub(super) fn prune(&mut self, root: Slot) {
        self.notarized.retain(|block| block.slot >= root);
        self.notarize_fallback.retain(|block| block.slot >= root);
        self.skipped.retain(|&slot| slot >= root);
    }
}

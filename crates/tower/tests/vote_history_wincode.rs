//! A cross-check against wincode itself: agave's types declared as agave
//! declares them (`HashSet`, `HashMap`, `#[wincode(tag_encoding = "u8")]` on
//! `VotePayloadToSign`), encoded and decoded by the real `wincode` 0.6.
//! The golden bytes in `vote_history.rs` are derived by hand; this says
//! wincode agrees with them, and that what wincode writes in hash order is
//! what we read.

use std::collections::{HashMap, HashSet};

use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_tower::vote_history::{Block, SavedVoteHistory, VoteHistory, VotePayload};
use wincode::{SchemaRead, SchemaWrite};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
struct AgaveBlock {
    slot: u64,
    block_id: [u8; 32],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, SchemaWrite, SchemaRead)]
#[wincode(tag_encoding = "u8")]
enum AgaveVotePayloadToSign {
    #[wincode(tag = 1)]
    Notar {
        block: AgaveBlock,
        shred_version: u16,
    },
    #[wincode(tag = 2)]
    Finalize { slot: u64, shred_version: u16 },
    #[wincode(tag = 3)]
    Skip { slot: u64, shred_version: u16 },
    #[wincode(tag = 4)]
    NotarFallback {
        block: AgaveBlock,
        shred_version: u16,
    },
    #[wincode(tag = 5)]
    SkipFallback { slot: u64, shred_version: u16 },
    #[wincode(tag = 6)]
    Genesis {
        block: AgaveBlock,
        shred_version: u16,
    },
}

#[derive(Debug, Clone, PartialEq, SchemaWrite, SchemaRead)]
struct AgaveVoteHistory {
    node_pubkey: [u8; 32],
    voted: HashSet<u64>,
    voted_notar: HashMap<u64, [u8; 32]>,
    voted_notar_fallback: HashMap<u64, HashSet<[u8; 32]>>,
    voted_skip_fallback: HashSet<u64>,
    skipped: HashSet<u64>,
    its_over: HashSet<u64>,
    votes_cast: HashMap<u64, Vec<AgaveVotePayloadToSign>>,
    notarized_blocks: HashSet<AgaveBlock>,
    parent_ready_slots: HashMap<u64, HashSet<AgaveBlock>>,
    root: u64,
}

#[derive(Debug, Clone, PartialEq, SchemaWrite, SchemaRead)]
struct AgaveSavedVoteHistory {
    signature: [u8; 64],
    data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, SchemaWrite, SchemaRead)]
enum AgaveSavedVoteHistoryVersions {
    Current(AgaveSavedVoteHistory),
}

fn agave_block(slot: u64, fill: u8) -> AgaveBlock {
    AgaveBlock {
        slot,
        block_id: [fill; 32],
    }
}

/// Many members per container, so that the hash order differs from ours.
fn agave_history(node: Pubkey) -> AgaveVoteHistory {
    let slots = 10..60u64;
    AgaveVoteHistory {
        node_pubkey: node.to_bytes(),
        voted: slots.clone().collect(),
        voted_notar: slots.clone().map(|s| (s, [s as u8; 32])).collect(),
        voted_notar_fallback: slots
            .clone()
            .map(|s| (s, HashSet::from([[1; 32], [s as u8; 32], [200; 32]])))
            .collect(),
        voted_skip_fallback: slots.clone().step_by(3).collect(),
        skipped: slots.clone().step_by(2).collect(),
        its_over: slots.clone().step_by(5).collect(),
        votes_cast: slots
            .clone()
            .map(|s| {
                let block = agave_block(s, s as u8);
                let votes = vec![
                    AgaveVotePayloadToSign::Genesis {
                        block,
                        shred_version: 1,
                    },
                    AgaveVotePayloadToSign::Notar {
                        block,
                        shred_version: 2,
                    },
                    AgaveVotePayloadToSign::NotarFallback {
                        block,
                        shred_version: 3,
                    },
                    AgaveVotePayloadToSign::Skip {
                        slot: s,
                        shred_version: 4,
                    },
                    AgaveVotePayloadToSign::SkipFallback {
                        slot: s,
                        shred_version: 5,
                    },
                    AgaveVotePayloadToSign::Finalize {
                        slot: s,
                        shred_version: 6,
                    },
                ];
                (s, votes)
            })
            .collect(),
        notarized_blocks: slots.clone().map(|s| agave_block(s, 7)).collect(),
        parent_ready_slots: slots
            .map(|s| {
                (
                    s,
                    HashSet::from([agave_block(s - 1, 1), agave_block(s - 2, 2)]),
                )
            })
            .collect(),
        root: 9,
    }
}

fn block(b: &AgaveBlock) -> Block {
    Block {
        slot: b.slot,
        block_id: Hash::new_from_array(b.block_id),
    }
}

fn vote(v: &AgaveVotePayloadToSign) -> VotePayload {
    use AgaveVotePayloadToSign as A;
    match *v {
        A::Notar {
            block: b,
            shred_version,
        } => VotePayload::Notar {
            block: block(&b),
            shred_version,
        },
        A::Finalize {
            slot,
            shred_version,
        } => VotePayload::Finalize {
            slot,
            shred_version,
        },
        A::Skip {
            slot,
            shred_version,
        } => VotePayload::Skip {
            slot,
            shred_version,
        },
        A::NotarFallback {
            block: b,
            shred_version,
        } => VotePayload::NotarFallback {
            block: block(&b),
            shred_version,
        },
        A::SkipFallback {
            slot,
            shred_version,
        } => VotePayload::SkipFallback {
            slot,
            shred_version,
        },
        A::Genesis {
            block: b,
            shred_version,
        } => VotePayload::Genesis {
            block: block(&b),
            shred_version,
        },
    }
}

/// The same history in our types.
fn ours(a: &AgaveVoteHistory) -> VoteHistory {
    VoteHistory {
        node_pubkey: Pubkey::new_from_array(a.node_pubkey),
        voted: a.voted.iter().copied().collect(),
        voted_notar: a
            .voted_notar
            .iter()
            .map(|(s, id)| (*s, Hash::new_from_array(*id)))
            .collect(),
        voted_notar_fallback: a
            .voted_notar_fallback
            .iter()
            .map(|(s, ids)| (*s, ids.iter().map(|id| Hash::new_from_array(*id)).collect()))
            .collect(),
        voted_skip_fallback: a.voted_skip_fallback.iter().copied().collect(),
        skipped: a.skipped.iter().copied().collect(),
        its_over: a.its_over.iter().copied().collect(),
        votes_cast: a
            .votes_cast
            .iter()
            .map(|(s, v)| (*s, v.iter().map(vote).collect()))
            .collect(),
        notarized_blocks: a.notarized_blocks.iter().map(block).collect(),
        parent_ready_slots: a
            .parent_ready_slots
            .iter()
            .map(|(s, p)| (*s, p.iter().map(block).collect()))
            .collect(),
        root: a.root,
    }
}

#[test]
fn we_read_what_wincode_writes_in_hash_order() {
    let keypair = Keypair::new_from_array([7; 32]);
    let agave = agave_history(keypair.pubkey());
    let data = wincode::serialize(&agave).unwrap();
    assert_eq!(VoteHistory::decode(&data).unwrap(), ours(&agave));

    // agave's file: the envelope wincode writes around the signed data.
    let file = wincode::serialize(&AgaveSavedVoteHistoryVersions::Current(
        AgaveSavedVoteHistory {
            signature: keypair.sign_message(&data).into(),
            data: data.clone(),
        },
    ))
    .unwrap();
    let read = SavedVoteHistory::from_bytes(&file, &keypair.pubkey()).unwrap();
    assert_eq!(read.history(), &ours(&agave));
    assert_eq!(read.to_bytes(), file, "exported byte for byte");
}

#[test]
fn wincode_reads_what_we_write() {
    let keypair = Keypair::new_from_array([7; 32]);
    let agave = agave_history(keypair.pubkey());
    let saved = SavedVoteHistory::new(&ours(&agave), &keypair).unwrap();
    let AgaveSavedVoteHistoryVersions::Current(envelope) =
        wincode::deserialize_exact::<AgaveSavedVoteHistoryVersions>(&saved.to_bytes()).unwrap();
    assert_eq!(envelope.signature, <[u8; 64]>::from(*saved.signature()));
    let read: AgaveVoteHistory = wincode::deserialize_exact(&envelope.data).unwrap();
    assert_eq!(read, agave);
}

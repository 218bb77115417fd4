//! The ledger methods: a landed vote is in its block and found by signature,
//! decodable by Solana's own transaction type; agave's errors for blocks
//! that are skipped, cleaned up or not there yet; and the served-methods list
//! is what the RPC answers and what the README lists.

mod common;

use base64::Engine;
use common::{result, Fixture};
use serde_json::{json, Value};
use solana_signer::Signer;
use solana_transaction::Transaction;
use towerlock_cluster::rpc::blocks::{performance_samples, PerformanceSample};
use towerlock_cluster::rpc::methods::{SOLANA_METHODS, SOLANA_SUBSCRIPTIONS};

#[test]
fn a_landed_vote_is_in_its_block_and_found_by_signature() {
    let (mut f, vote, landed) = Fixture::with_landed_vote();
    let signature = vote.signatures[0].to_string();
    let block = f.rpc(
        "getBlock",
        json!([landed, {"encoding": "json", "maxSupportedTransactionVersion": 0}]),
    );
    let block = result(&block);
    let txs = block["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1, "{block}");
    assert_eq!(txs[0]["transaction"]["signatures"][0], signature);
    assert_eq!(txs[0]["version"], "legacy");
    assert_eq!(txs[0]["meta"]["err"], Value::Null);
    assert_eq!(block["parentSlot"], f.cluster.bank(landed).unwrap().parent);
    // base64 is the wire transaction itself.
    let raw = f.rpc("getBlock", json!([landed, {"encoding": "base64"}]));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(
            result(&raw)["transactions"][0]["transaction"][0]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(bincode::deserialize::<Transaction>(&bytes).unwrap(), vote);
    assert!(result(&raw)["transactions"][0].get("version").is_none());
    let signatures = f.rpc(
        "getBlock",
        json!([landed, {"transactionDetails": "signatures", "rewards": false}]),
    );
    assert_eq!(result(&signatures)["signatures"], json!([signature]));
    assert!(result(&signatures).get("rewards").is_none());
    // By signature.
    let found = f.rpc("getTransaction", json!([signature, "base64"]));
    assert_eq!(result(&found)["slot"], landed);
    assert_eq!(result(&found)["blockTime"], block["blockTime"]);
    let time = f.rpc("getBlockTime", json!([landed]));
    assert_eq!(result(&time), &block["blockTime"]);
    let statuses = f.rpc(
        "getSignatureStatuses",
        json!([[signature, f.keys.vote_account.pubkey().to_string() + "1"]]),
    );
    assert_eq!(
        statuses["error"]["code"], -32602,
        "a malformed signature is refused"
    );
    let unknown = solana_signature::Signature::from([7; 64]).to_string();
    let statuses = f.rpc("getSignatureStatuses", json!([[signature, unknown]]));
    let value = &result(&statuses)["value"];
    assert_eq!(value[0]["slot"], landed);
    assert_eq!(value[0]["confirmationStatus"], "finalized");
    assert_eq!(value[0]["confirmations"], Value::Null);
    assert_eq!(value[1], Value::Null);
    // The block is in the finalized ledger.
    let blocks = f.rpc("getBlocks", json!([landed - 2, landed + 2]));
    assert!(result(&blocks).as_array().unwrap().contains(&json!(landed)));
    let limited = f.rpc("getBlocksWithLimit", json!([landed, 2]));
    assert_eq!(result(&limited)[0], landed);
    assert_eq!(result(&limited).as_array().unwrap().len(), 2);
}

#[test]
fn blocks_skipped_cleaned_up_or_not_there_yet_get_agaves_errors() {
    let mut f = Fixture::new(Fixture::default_options());
    f.step(700);
    let root = f.cluster.root();
    let first = result(&f.rpc("getFirstAvailableBlock", json!([])))
        .as_u64()
        .unwrap();
    assert_eq!(result(&f.rpc("minimumLedgerSlot", json!([]))), first);
    assert!(first > 0, "old banks are pruned");
    let answer = f.rpc("getBlock", json!([first - 1]));
    assert_eq!(
        answer["error"],
        json!({"code": -32001, "message": format!("Block {} cleaned up, does not exist on node. First available block: {first}", first - 1)})
    );
    // Our validator leads some slots and never sends a block: skipped.
    let skipped = (first..root)
        .find(|s| f.cluster.bank(*s).is_none())
        .expect("a skipped slot");
    let answer = f.rpc("getBlock", json!([skipped]));
    assert_eq!(answer["error"]["code"], -32007, "{answer}");
    assert_eq!(
        answer["error"]["message"],
        format!("Slot {skipped} was skipped, or missing due to ledger jump to recent snapshot")
    );
    let answer = f.rpc("getBlock", json!([f.cluster.tip()]));
    assert_eq!(
        answer["error"]["code"], -32004,
        "the tip is not finalized: {answer}"
    );
    let answer = f.rpc("getBlocks", json!([root, {"commitment": "processed"}]));
    assert_eq!(
        answer["error"]["message"],
        "Method does not support commitment below `confirmed`"
    );
    let blocks = f.rpc("getBlocks", json!([first]));
    let blocks: Vec<u64> = serde_json::from_value(result(&blocks).clone()).unwrap();
    assert_eq!(blocks.first(), Some(&first));
    assert_eq!(blocks.last(), Some(&root));
    assert!(!blocks.contains(&skipped));
}

#[test]
fn leaders_and_block_production_follow_the_schedule() {
    let mut f = Fixture::new(Fixture::default_options());
    f.step(100);
    let schedule = result(&f.rpc("getLeaderSchedule", json!([]))).clone();
    let leaders = result(&f.rpc("getSlotLeaders", json!([0, 100]))).clone();
    for (slot, leader) in leaders.as_array().unwrap().iter().enumerate() {
        let slots = &schedule[leader.as_str().unwrap()];
        assert!(
            slots.as_array().unwrap().contains(&json!(slot)),
            "slot {slot}"
        );
    }
    let answer = f.rpc("getSlotLeaders", json!([0, 5001]));
    assert_eq!(
        answer["error"],
        json!({"code": -32602, "message": "Invalid limit; max 5000"})
    );
    let root = f.cluster.root();
    let leader = result(&f.rpc("getSlotLeader", json!([]))).clone();
    assert_eq!(leader, leaders[root as usize]);
    let ours = f.keys.identity.pubkey().to_string();
    let production = f.rpc("getBlockProduction", json!([{"identity": ours}]));
    let value = &result(&production)["value"];
    assert_eq!(value["range"], json!({"firstSlot": 0, "lastSlot": root}));
    let led = schedule[&ours]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.as_u64().unwrap() <= root)
        .count();
    // We produce none of our slots (no node sends blocks here), except the
    // genesis block when slot 0 is ours: the cluster makes that one.
    let genesis = usize::from(schedule[&ours].as_array().unwrap().contains(&json!(0)));
    let expected = if led > 0 {
        json!([led, genesis])
    } else {
        Value::Null
    };
    assert_eq!(value["byIdentity"][&ours], expected);
    // Over everybody: every slot has a leader, and the produced ones are the
    // finalized chain's blocks.
    let all = f.rpc("getBlockProduction", json!([]));
    let (mut slots, mut produced) = (0, 0);
    for counts in result(&all)["value"]["byIdentity"]
        .as_object()
        .unwrap()
        .values()
    {
        slots += counts[0].as_u64().unwrap();
        produced += counts[1].as_u64().unwrap();
    }
    assert_eq!(slots, root + 1);
    let blocks = f.rpc("getBlocks", json!([0]));
    assert_eq!(produced as usize, result(&blocks).as_array().unwrap().len());
    // The RPC node is a staked validator (with few slots it may hold none of
    // this epoch's leader slots, so look at the vote accounts, not the schedule).
    let identity = result(&f.rpc("getIdentity", json!([])))["identity"].clone();
    let accounts = result(&f.rpc("getVoteAccounts", json!([]))).clone();
    let nodes: Vec<&Value> = accounts["current"]
        .as_array()
        .unwrap()
        .iter()
        .chain(accounts["delinquent"].as_array().unwrap())
        .map(|a| &a["nodePubkey"])
        .collect();
    assert!(nodes.contains(&&identity), "the RPC node is a validator");
}

#[test]
fn inflation_rewards_are_none_once_an_epoch_ended() {
    let mut f = Fixture::new(Fixture::default_options());
    let vote = f.vote_account().to_string();
    let answer = f.rpc("getInflationReward", json!([[vote]]));
    assert_eq!(
        answer["error"],
        json!({"code": -32004, "message": "Block not available for slot 256"})
    );
    f.step_until_root(256);
    let answer = f.rpc("getInflationReward", json!([[vote], {"epoch": 0}]));
    assert_eq!(result(&answer), &json!([null]));
}

#[test]
fn performance_samples_are_whole_minutes_newest_first() {
    // (slot, time ms, cumulative transactions)
    let banks = [
        (1, 0, 0),
        (2, 30_000, 5),
        (4, 60_000, 9),
        (5, 100_000, 12),
        (7, 125_000, 20),
    ];
    assert_eq!(
        performance_samples(&banks),
        vec![
            PerformanceSample {
                slot: 7,
                num_slots: 3,
                num_transactions: 11,
                period_secs: 65
            },
            PerformanceSample {
                slot: 4,
                num_slots: 3,
                num_transactions: 9,
                period_secs: 60
            },
        ]
    );
    assert!(performance_samples(&banks[..2]).is_empty());
}

#[test]
fn every_listed_method_is_served_and_others_are_not_found() {
    let mut f = Fixture::new(Fixture::default_options());
    for method in SOLANA_METHODS {
        let answer = f.rpc(method, json!([]));
        assert_ne!(answer["error"]["code"], -32601, "{method}: {answer}");
    }
    for method in [
        "getSupply",
        "getProgramAccounts",
        "requestAirdrop",
        "simulateTransaction",
    ] {
        let answer = f.rpc(method, json!([]));
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": 1})
        );
    }
}

#[test]
fn the_readme_lists_every_served_method() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for method in SOLANA_METHODS.iter().chain(SOLANA_SUBSCRIPTIONS) {
        assert!(
            readme.contains(&format!("`{method}`")),
            "README does not list {method}"
        );
    }
}

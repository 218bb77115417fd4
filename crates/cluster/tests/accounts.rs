//! Vote accounts and the SlotHistory sysvar decode with Solana's own types,
//! and say what the rest of the RPC says.

mod common;

use base64::Engine;
use common::Fixture;
use serde_json::{json, Value};
use solana_slot_history::{Check, SlotHistory};
use solana_vote_interface::state::{VoteStateV4, VoteStateVersions};

fn ready() -> Fixture {
    let mut f = Fixture::new(Fixture::default_options());
    f.step(120);
    f
}

fn base64_data(account: &Value) -> Vec<u8> {
    assert_eq!(account["data"][1], "base64", "{account}");
    base64::engine::general_purpose::STANDARD
        .decode(account["data"][0].as_str().unwrap())
        .unwrap()
}

fn decode_vote_state(data: &[u8]) -> VoteStateV4 {
    match bincode::deserialize::<VoteStateVersions>(data).unwrap() {
        VoteStateVersions::V4(state) => *state,
        other => panic!("not a v4 vote state: {other:?}"),
    }
}

#[test]
fn every_listed_vote_account_is_the_vote_programs_account() {
    let mut f = ready();
    let listed = f.rpc("getVoteAccounts", json!([]))["result"].clone();
    let listed: Vec<Value> = ["current", "delinquent"]
        .iter()
        .flat_map(|k| listed[k].as_array().unwrap().clone())
        .collect();
    assert_eq!(listed.len(), 11, "ours and ten synthetic validators");
    let keys: Vec<&str> = listed
        .iter()
        .map(|v| v["votePubkey"].as_str().unwrap())
        .collect();
    let accounts = f.rpc("getMultipleAccounts", json!([keys, {"encoding": "base64"}]));
    let parsed = f.rpc(
        "getMultipleAccounts",
        json!([keys, {"encoding": "jsonParsed"}]),
    );
    let vote_program = solana_vote_interface::program::id().to_string();
    for (i, entry) in listed.iter().enumerate() {
        let account = &accounts["result"]["value"][i];
        assert_eq!(account["owner"], vote_program);
        assert_eq!(account["space"], 3762);
        let state = decode_vote_state(&base64_data(account));
        assert_eq!(state.node_pubkey.to_string(), entry["nodePubkey"]);
        assert_eq!(
            state.votes.back().map_or(0, |v| v.slot()),
            entry["lastVote"].as_u64().unwrap()
        );
        assert_eq!(
            state.root_slot.unwrap_or(0),
            entry["rootSlot"].as_u64().unwrap()
        );
        let credits: Vec<Value> = state
            .epoch_credits
            .iter()
            .map(|c| json!([c.0, c.1, c.2]))
            .collect();
        assert_eq!(json!(credits), entry["epochCredits"]);
        if let Some(last) = state.votes.back() {
            let stamped = state.last_timestamp.slot;
            assert!(
                stamped > 0 && stamped <= last.slot(),
                "timestamp of {stamped}"
            );
        }
        assert!(state.authorized_voters.get_authorized_voter(0).is_some());
        // jsonParsed says the same as the bytes.
        let info = &parsed["result"]["value"][i]["data"]["parsed"]["info"];
        assert_eq!(parsed["result"]["value"][i]["data"]["program"], "vote");
        assert_eq!(info["nodePubkey"], entry["nodePubkey"]);
        assert_eq!(info["rootSlot"], json!(state.root_slot));
        let votes: Vec<Value> = state
            .votes
            .iter()
            .map(|v| json!({"slot": v.slot(), "confirmationCount": v.confirmation_count()}))
            .collect();
        assert_eq!(info["votes"], json!(votes));
        assert_eq!(info["lastTimestamp"]["slot"], state.last_timestamp.slot);
    }
    // The synthetic validators vote: their towers are in their accounts.
    let voted = listed
        .iter()
        .filter(|v| v["lastVote"].as_u64().unwrap() > 0)
        .count();
    assert!(voted >= 10, "{voted} accounts show votes");
}

#[test]
fn identities_have_balances_and_unknown_keys_have_none() {
    let mut f = ready();
    let nodes = f.rpc("getClusterNodes", json!([]))["result"].clone();
    for node in nodes.as_array().unwrap() {
        let balance = f.rpc("getBalance", json!([node["pubkey"]]));
        assert!(
            balance["result"]["value"].as_u64().unwrap() > 0,
            "{balance}"
        );
        let account = f.rpc("getAccountInfo", json!([node["pubkey"]]));
        assert_eq!(
            account["result"]["value"]["owner"],
            "11111111111111111111111111111111"
        );
    }
    let nobody = solana_pubkey::Pubkey::new_unique().to_string();
    assert_eq!(f.rpc("getBalance", json!([nobody]))["result"]["value"], 0);
    let many = f.rpc("getMultipleAccounts", json!([[nobody]]));
    assert_eq!(many["result"]["value"], json!([null]));
    let too_many = vec![nobody; 101];
    let answer = f.rpc("getMultipleAccounts", json!([too_many]));
    assert_eq!(
        answer["error"],
        json!({"code": -32602, "message": "Too many inputs provided; max 100"})
    );
}

#[test]
fn the_slot_history_sysvar_holds_the_rooted_chain() {
    let mut f = Fixture::new(towerlock_cluster::genesis::InitOptions {
        fork_rate: 0.3,
        ..Fixture::default_options()
    });
    f.step(200);
    let answer = f.rpc(
        "getAccountInfo",
        json!(["SysvarS1otHistory11111111111111111111111111", {"encoding": "base64"}]),
    );
    let account = &answer["result"]["value"];
    assert_eq!(
        account["owner"],
        "Sysvar1111111111111111111111111111111111111"
    );
    let data = base64_data(account);
    assert_eq!(data.len(), solana_slot_history::SIZE);
    let history: SlotHistory = bincode::deserialize(&data).unwrap();
    let root = f.cluster.root();
    assert_eq!(history.newest(), root, "finalized: the root bank's history");
    let mut rooted = vec![];
    let mut slot = root;
    while let Some(bank) = f.cluster.bank(slot) {
        rooted.push(slot);
        if bank.parent == slot {
            break;
        }
        slot = bank.parent;
    }
    // Every bank since genesis is still kept, so the chain is known whole.
    assert_eq!(rooted.last(), Some(&0));
    for s in 0..=root {
        let expected = if rooted.contains(&s) {
            Check::Found
        } else {
            Check::NotFound
        };
        assert_eq!(history.check(s), expected, "slot {s}");
    }
    assert_eq!(history.check(root + 1), Check::Future);
    let skipped_or_forked = (1..root).filter(|s| !rooted.contains(s)).count();
    assert!(skipped_or_forked > 0, "the run had forks or skips");
    // Processed: the tip bank's history holds the tip's fork above the root.
    let answer = f.rpc(
        "getAccountInfo",
        json!(["SysvarS1otHistory11111111111111111111111111", {"encoding": "base64", "commitment": "processed"}]),
    );
    let history: SlotHistory =
        bincode::deserialize(&base64_data(&answer["result"]["value"])).unwrap();
    assert_eq!(history.newest(), f.cluster.tip());
    assert_eq!(history.check(f.cluster.tip()), Check::Found);
}

//! Every served method's answer deserializes into agave's own RPC types
//! (`solana-rpc-client-types` and the client types it is built on), the
//! types Solana's Rust client parses answers with; accounts decode into
//! Solana's account, vote state and SlotHistory types.

mod common;

use common::{result, Fixture};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use solana_account_decoder_client_types::UiAccount;
use solana_rpc_client_types::response::{
    Response, RpcBlockProduction, RpcBlockhash, RpcContactInfo, RpcIdentity, RpcInflationReward,
    RpcLeaderSchedule, RpcPerfSample, RpcSimulateTransactionResult, RpcSnapshotSlotInfo,
    RpcVersionInfo, RpcVoteAccountStatus, UiConfirmedBlock,
};
use solana_transaction::Transaction;
use solana_transaction_status_client_types::{
    EncodedConfirmedTransactionWithStatusMeta, TransactionStatus,
};
use solana_vote_interface::state::VoteStateVersions;
use towerlock_cluster::rpc::methods::SOLANA_METHODS;

/// The method's result as agave's type `T`; records that it was checked.
fn typed<T: DeserializeOwned>(
    f: &mut Fixture,
    seen: &mut Vec<String>,
    method: &str,
    params: Value,
) -> T {
    let answer = f.rpc(method, params);
    let value = result(&answer).clone();
    seen.push(method.to_string());
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{method}: {e}: {value}"))
}

#[test]
fn every_served_method_parses_as_agaves_types() {
    let (mut f, vote, landed) = Fixture::with_landed_vote();
    let seen = &mut vec![];
    let votes = cluster_methods(&mut f, seen);
    account_methods(&mut f, seen, &votes, landed);
    ledger_methods(&mut f, seen, &vote, landed);
    other_methods(&mut f, seen, &votes, landed);
    for method in SOLANA_METHODS {
        assert!(seen.iter().any(|m| m == method), "{method} was not parsed");
    }
}

fn cluster_methods(f: &mut Fixture, seen: &mut Vec<String>) -> RpcVoteAccountStatus {
    let slot: u64 = typed(f, seen, "getSlot", json!([]));
    let _: u64 = typed(f, seen, "getBlockHeight", json!([]));
    let _: Value = typed(f, seen, "getEpochInfo", json!([]));
    let _: Value = typed(f, seen, "getEpochSchedule", json!([]));
    let schedule: RpcLeaderSchedule = typed(f, seen, "getLeaderSchedule", json!([]));
    let leader: String = typed(f, seen, "getSlotLeader", json!([]));
    assert!(schedule.contains_key(&leader));
    let leaders: Vec<String> = typed(f, seen, "getSlotLeaders", json!([slot, 4]));
    assert_eq!(leaders[0], leader);
    let votes: RpcVoteAccountStatus = typed(f, seen, "getVoteAccounts", json!([]));
    let nodes: Vec<RpcContactInfo> = typed(f, seen, "getClusterNodes", json!([]));
    // Gossip knows the synthetic validators (ours publishes no contact here).
    assert_eq!(nodes.len(), 10);
    for node in &nodes {
        assert!(votes.current.iter().any(|v| v.node_pubkey == node.pubkey));
    }
    let _: String = typed(f, seen, "getHealth", json!([]));
    let identity: RpcIdentity = typed(f, seen, "getIdentity", json!([]));
    assert!(schedule.contains_key(&identity.identity));
    let _: RpcVersionInfo = typed(f, seen, "getVersion", json!([]));
    let _: String = typed(f, seen, "getGenesisHash", json!([]));
    let _: Response<RpcBlockhash> = typed(f, seen, "getLatestBlockhash", json!([]));
    votes
}

fn account_methods(
    f: &mut Fixture,
    seen: &mut Vec<String>,
    votes: &RpcVoteAccountStatus,
    landed: u64,
) {
    let keys: Vec<String> = votes
        .current
        .iter()
        .map(|v| v.vote_pubkey.clone())
        .collect();
    let accounts: Response<Vec<Option<UiAccount>>> = typed(
        f,
        seen,
        "getMultipleAccounts",
        json!([keys, {"encoding": "base64"}]),
    );
    for (info, account) in votes.current.iter().zip(&accounts.value) {
        let account = account.as_ref().unwrap();
        assert_eq!(
            account.owner,
            solana_vote_interface::program::id().to_string()
        );
        let data = account.data.decode().unwrap();
        match bincode::deserialize(&data).unwrap() {
            VoteStateVersions::V4(state) => {
                assert_eq!(state.node_pubkey.to_string(), info.node_pubkey)
            }
            other => panic!("not a v4 vote state: {other:?}"),
        }
    }
    let history: Response<Option<UiAccount>> = typed(
        f,
        seen,
        "getAccountInfo",
        json!(["SysvarS1otHistory11111111111111111111111111", {"encoding": "base64"}]),
    );
    let data = history.value.unwrap().data.decode().unwrap();
    let history: solana_slot_history::SlotHistory = bincode::deserialize(&data).unwrap();
    assert_eq!(
        history.check(landed),
        solana_slot_history::Check::Found,
        "a finalized block is in the SlotHistory"
    );
    let balance: Response<u64> =
        typed(f, seen, "getBalance", json!([votes.current[0].node_pubkey]));
    assert!(balance.value > 0);
}

fn ledger_methods(f: &mut Fixture, seen: &mut Vec<String>, vote: &Transaction, landed: u64) {
    let block: UiConfirmedBlock = typed(f, seen, "getBlock", json!([landed, {"encoding": "json"}]));
    assert_eq!(block.transactions.unwrap().len(), 1);
    let blocks: Vec<u64> = typed(f, seen, "getBlocks", json!([landed]));
    assert_eq!(blocks[0], landed);
    let limited: Vec<u64> = typed(f, seen, "getBlocksWithLimit", json!([landed, 1]));
    assert_eq!(limited, vec![landed]);
    let time: i64 = typed(f, seen, "getBlockTime", json!([landed]));
    assert_eq!(Some(time), block.block_time);
    let production: Response<RpcBlockProduction> = typed(f, seen, "getBlockProduction", json!([]));
    assert!(!production.value.by_identity.is_empty());
    let first: u64 = typed(f, seen, "getFirstAvailableBlock", json!([]));
    let minimum: u64 = typed(f, seen, "minimumLedgerSlot", json!([]));
    assert_eq!(first, minimum);
    let _: Vec<RpcPerfSample> = typed(f, seen, "getRecentPerformanceSamples", json!([]));
    let signature = vote.signatures[0].to_string();
    let tx: EncodedConfirmedTransactionWithStatusMeta = typed(
        f,
        seen,
        "getTransaction",
        json!([signature, {"encoding": "base64"}]),
    );
    assert_eq!(tx.slot, landed);
    let decoded = tx.transaction.transaction.decode().unwrap();
    assert_eq!(decoded.signatures, vote.signatures);
    let statuses: Response<Vec<Option<TransactionStatus>>> =
        typed(f, seen, "getSignatureStatuses", json!([[signature]]));
    assert_eq!(statuses.value[0].as_ref().unwrap().slot, landed);
}

fn other_methods(
    f: &mut Fixture,
    seen: &mut Vec<String>,
    votes: &RpcVoteAccountStatus,
    landed: u64,
) {
    f.step_until_root(256);
    let keys: Vec<String> = votes
        .current
        .iter()
        .map(|v| v.vote_pubkey.clone())
        .collect();
    let rewards: Vec<Option<RpcInflationReward>> = typed(
        f,
        seen,
        "getInflationReward",
        json!([[keys[0]], {"epoch": 0}]),
    );
    assert_eq!(rewards, vec![None]);

    // The methods that answer with errors: agave's error data types.
    let snapshot = f.rpc("getHighestSnapshotSlot", json!([]));
    assert_eq!(snapshot["error"]["code"], -32008);
    assert!(serde_json::from_value::<RpcSnapshotSlotInfo>(snapshot["result"].clone()).is_err());
    seen.push("getHighestSnapshotSlot".into());
    let identity = f.keys.identity.insecure_clone();
    let stale = f.vote(&identity, &identity, &[(landed - 1, 1)], None);
    let encoded = bs58::encode(bincode::serialize(&stale).unwrap()).into_string();
    let refused = f.rpc("sendTransaction", json!([encoded]));
    let _: RpcSimulateTransactionResult = serde_json::from_value(refused["error"]["data"].clone())
        .unwrap_or_else(|e| panic!("sendTransaction: {e}: {refused}"));
    seen.push("sendTransaction".into());
}

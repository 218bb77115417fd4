//! JSON-RPC answers have the shapes Solana documents: each is compared with
//! the documented example response (same keys, same JSON types), and parsed
//! further where the content matters.

mod common;

use base64::Engine;
use common::Fixture;
use serde_json::{json, Value};
use solana_signer::Signer;
use solana_vote_interface::state::VoteStateVersions;
use towerlock_cluster::rpc::handle_body;

fn call(f: &mut Fixture, method: &str, params: Value) -> Value {
    f.rpc(method, params)
}

fn raw(f: &mut Fixture, body: &str) -> Value {
    handle_body(&mut f.cluster, body.as_bytes(), f.now_ms).0
}

/// Same keys and JSON types as `documented`, recursively (arrays of another
/// length: each element against the documented first element).
fn assert_shape(documented: &Value, actual: &Value, path: &str) {
    match (documented, actual) {
        (Value::Object(d), Value::Object(a)) => {
            let dk: Vec<_> = d.keys().collect();
            let ak: Vec<_> = a.keys().collect();
            assert_eq!(dk, ak, "keys at {path}");
            for (k, v) in d {
                assert_shape(v, &a[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(d), Value::Array(a)) if d.len() == a.len() => {
            // Tuples (and same-length lists): element by element.
            for (i, (d, a)) in d.iter().zip(a).enumerate() {
                assert_shape(d, a, &format!("{path}[{i}]"));
            }
        }
        (Value::Array(d), Value::Array(a)) => {
            if let Some(first) = d.first() {
                for (i, item) in a.iter().enumerate() {
                    assert_shape(first, item, &format!("{path}[{i}]"));
                }
            }
        }
        (Value::Number(d), Value::Number(a)) => {
            assert_eq!(d.is_u64(), a.is_u64(), "integer kind at {path}: {a}");
        }
        (Value::String(_), Value::String(_)) | (Value::Bool(_), Value::Bool(_)) => {}
        (Value::Null, _) => {}
        (d, a) => panic!("type at {path}: documented {d}, got {a}"),
    }
}

fn ready() -> Fixture {
    let mut f = Fixture::new(Fixture::default_options());
    f.step(80);
    f
}

#[test]
fn get_slot_epoch_info_and_schedule() {
    let mut f = ready();
    assert_shape(
        &json!({"jsonrpc":"2.0","result":1234,"id":1}),
        &call(&mut f, "getSlot", json!([{"commitment":"processed"}])),
        "getSlot",
    );
    let info = call(&mut f, "getEpochInfo", json!([]));
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"epoch":27,"slotIndex":2790,"slotsInEpoch":8192,"absoluteSlot":166598,"blockHeight":166500,"transactionCount":22661093},"id":1}),
        &info,
        "getEpochInfo",
    );
    assert_eq!(info["result"]["slotsInEpoch"], 256);
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"slotsPerEpoch":8192,"leaderScheduleSlotOffset":8192,"warmup":true,"firstNormalEpoch":8,"firstNormalSlot":8160},"id":1}),
        &call(&mut f, "getEpochSchedule", json!([])),
        "getEpochSchedule",
    );
    // Commitment levels order: finalized ≤ confirmed ≤ processed.
    let slot = |f: &mut Fixture, c: &str| {
        call(f, "getSlot", json!([{"commitment": c}]))["result"]
            .as_u64()
            .unwrap()
    };
    let (fin, conf, proc_) = (
        slot(&mut f, "finalized"),
        slot(&mut f, "confirmed"),
        slot(&mut f, "processed"),
    );
    assert!(
        fin <= conf && conf <= proc_ && fin > 0,
        "{fin} {conf} {proc_}"
    );
}

#[test]
fn get_leader_schedule() {
    let mut f = ready();
    let identity = f.keys.identity.pubkey().to_string();
    let answer = call(
        &mut f,
        "getLeaderSchedule",
        json!([null, {"identity": identity}]),
    );
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"4Qkev8aNZcqFNSRhQzwyLMFSsi94jHqE8WNVTJzTP99F":[0,1,2,3,4,5,6,7]},"id":1}),
        &json!({"jsonrpc":"2.0","result":{"4Qkev8aNZcqFNSRhQzwyLMFSsi94jHqE8WNVTJzTP99F": answer["result"].get(&identity).cloned().unwrap_or(json!([]))},"id":1}),
        "getLeaderSchedule",
    );
    // Only that identity (or nothing), relative slot indices in rotations of 4.
    let result = answer["result"].as_object().unwrap();
    assert!(result.keys().all(|k| *k == identity));
    let all = call(&mut f, "getLeaderSchedule", json!([]));
    let total: usize = all["result"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(total, 256);
    for slots in all["result"].as_object().unwrap().values() {
        for s in slots.as_array().unwrap() {
            assert!(s.as_u64().unwrap() < 256);
        }
    }
    // A far-away epoch has no schedule.
    assert_eq!(
        call(&mut f, "getLeaderSchedule", json!([100_000]))["result"],
        Value::Null
    );
    assert_eq!(
        call(
            &mut f,
            "getLeaderSchedule",
            json!([null, {"identity": "xyz"}])
        )["error"]["message"],
        "Invalid param: WrongSize"
    );
}

#[test]
fn get_vote_accounts() {
    let mut f = ready();
    let answer = call(&mut f, "getVoteAccounts", json!([]));
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"current":[{"votePubkey":"i7NyKBMJCA9bLM2nsGyAGCKHECuR2L5eh4GqFciuwNT","nodePubkey":"dv2eQHeP4RFrJZ6UeiZWoc3XTtmtZCUKxxCApCDcRNV","activatedStake":38263229364446900u64,"commission":95,"epochVoteAccount":true,"epochCredits":[[905,1403861272,1396949288],[906,1406766600,1403861272]],"lastVote":391573587,"rootSlot":391573556}],"delinquent":[]},"id":1}),
        &answer,
        "getVoteAccounts",
    );
    // Our account has not voted: delinquent; synthetic ones are current.
    let ours = f.vote_account().to_string();
    let delinquent = answer["result"]["delinquent"].as_array().unwrap();
    assert!(delinquent.iter().any(|v| v["votePubkey"] == ours));
    assert_shape(
        &json!({"votePubkey":"","nodePubkey":"","activatedStake":1,"commission":1,"epochVoteAccount":true,"epochCredits":[],"lastVote":1,"rootSlot":1}),
        &delinquent[0],
        "delinquent[0]",
    );
    assert_eq!(answer["result"]["current"].as_array().unwrap().len(), 10);
    let filtered = call(&mut f, "getVoteAccounts", json!([{"votePubkey": ours}]));
    assert_eq!(
        filtered["result"]["delinquent"].as_array().unwrap().len(),
        1
    );
    assert_eq!(filtered["result"]["current"].as_array().unwrap().len(), 0);
}

#[test]
fn get_account_info_returns_the_vote_state() {
    let mut f = ready();
    let ours = f.vote_account().to_string();
    let answer = call(
        &mut f,
        "getAccountInfo",
        json!([ours, {"encoding":"base64"}]),
    );
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"context":{"slot":341197053,"apiVersion":"2.2.16"},"value":{"lamports":88849814690250u64,"data":["","base64"],"owner":"11111111111111111111111111111111","executable":false,"rentEpoch":18446744073709551615u64,"space":0}},"id":1}),
        &answer,
        "getAccountInfo",
    );
    let value = &answer["result"]["value"];
    assert_eq!(
        value["owner"],
        "Vote111111111111111111111111111111111111111"
    );
    assert_eq!(value["space"], 3762);
    let data = base64::engine::general_purpose::STANDARD
        .decode(value["data"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(data.len(), 3762);
    let state: VoteStateVersions = bincode::deserialize(&data).unwrap();
    let VoteStateVersions::V4(state) = state else {
        panic!("not the current version")
    };
    assert_eq!(state.node_pubkey, f.keys.identity.pubkey());
    // Base-58 (the default) refuses more than 128 bytes, as Solana does.
    let answer = call(&mut f, "getAccountInfo", json!([ours]));
    assert_eq!(answer["error"]["code"], -32600);
    assert_eq!(
        answer["error"]["message"],
        "Encoded binary (base 58) data should be less than 128 bytes, please use Base64 encoding."
    );
    // A missing account is null.
    let missing = call(
        &mut f,
        "getAccountInfo",
        json!([solana_pubkey::Pubkey::new_unique().to_string()]),
    );
    assert_eq!(missing["result"]["value"], Value::Null);
}

#[test]
fn latest_blockhash_version_genesis_health_nodes() {
    let mut f = ready();
    let answer = call(&mut f, "getLatestBlockhash", json!([]));
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"context":{"slot":2792,"apiVersion":"2.2.16"},"value":{"blockhash":"EkSnNWid2cvwEVnVx9aBqawnmiCNiDgp3gUdkDPTKN1N","lastValidBlockHeight":3090}},"id":1}),
        &answer,
        "getLatestBlockhash",
    );
    assert_shape(
        &json!({"jsonrpc":"2.0","result":{"solana-core":"2.2.16","feature-set":3294202862u64},"id":1}),
        &call(&mut f, "getVersion", json!([])),
        "getVersion",
    );
    let genesis = call(&mut f, "getGenesisHash", json!([]));
    assert_eq!(genesis["result"], f.cluster.genesis_hash().to_string());
    assert_eq!(call(&mut f, "getHealth", json!([]))["result"], "ok");
    let nodes = call(&mut f, "getClusterNodes", json!([]));
    let keys = [
        "pubkey",
        "gossip",
        "tvu",
        "tpu",
        "tpuQuic",
        "tpuForwards",
        "tpuForwardsQuic",
        "tpuVote",
        "serveRepair",
        "rpc",
        "pubsub",
        "version",
        "featureSet",
        "shredVersion",
    ];
    for node in nodes["result"].as_array().unwrap() {
        let mut expected: Vec<&str> = keys.to_vec();
        expected.sort();
        let mut got: Vec<&str> = node
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        got.sort();
        assert_eq!(got, expected);
    }
}

#[test]
fn errors_as_solana_returns_them() {
    let mut f = ready();
    assert_eq!(
        raw(&mut f, "{nope"),
        json!({"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null})
    );
    assert_eq!(
        raw(&mut f, r#"{"jsonrpc":"1.0","id":7,"method":"getSlot"}"#),
        json!({"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request"},"id":7})
    );
    assert_eq!(
        call(&mut f, "getSlots", json!([])),
        json!({"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":1})
    );
    assert_eq!(
        call(&mut f, "getBlockHeight", json!(["x"]))["error"]["code"],
        -32602
    );
    assert_eq!(
        call(&mut f, "getAccountInfo", json!([])),
        json!({"jsonrpc":"2.0","error":{"code":-32602,"message":"`params` should have at least 1 argument(s)"},"id":1})
    );
    assert_eq!(
        call(&mut f, "getSlot", json!([{}, 2])),
        json!({"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid parameters: Expected from 0 to 1 parameters.","data":"Got: 2"},"id":1})
    );
    assert_eq!(
        call(&mut f, "getAccountInfo", json!(["abc"]))["error"]["message"],
        "Invalid param: WrongSize"
    );
    let slot = call(&mut f, "getSlot", json!([{"minContextSlot": 1_000_000}]));
    assert_eq!(slot["error"]["code"], -32016);
    assert!(slot["error"]["data"]["contextSlot"].is_u64());
    // A batch gets an array back.
    let batch = raw(
        &mut f,
        r#"[{"jsonrpc":"2.0","id":1,"method":"getHealth"},{"jsonrpc":"2.0","id":2,"method":"getSlot"}]"#,
    );
    assert_eq!(batch.as_array().unwrap().len(), 2);
    assert_eq!(batch[0]["result"], "ok");
}

#[test]
fn send_transaction_answers_and_failures() {
    let mut f = ready();
    let identity = f.keys.identity.insecure_clone();
    let tip = f.cluster.tip();
    let encode = |tx: &solana_transaction::Transaction| {
        base64::engine::general_purpose::STANDARD.encode(bincode::serialize(tx).unwrap())
    };
    let ok = f.vote(&identity, &identity, &[(tip, 1)], None);
    let answer = call(
        &mut f,
        "sendTransaction",
        json!([encode(&ok), {"encoding":"base64","instance":"abc"}]),
    );
    assert_eq!(answer["result"], ok.signatures[0].to_string());
    assert_eq!(f.last_vote_event().instance, "abc");
    // Base-58 is the default encoding.
    let again = bs58::encode(bincode::serialize(&ok).unwrap()).into_string();
    let answer = call(&mut f, "sendTransaction", json!([again]));
    assert_shape(
        &json!({"jsonrpc":"2.0","error":{"code":-32002,"message":"Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1","data":{"err":{"InstructionError":[0,{"Custom":1}]},"logs":["Program Vote111111111111111111111111111111111111111 invoke [1]","Program Vote111111111111111111111111111111111111111 failed: custom program error: 0x1"],"accounts":null,"unitsConsumed":2100,"returnData":null}},"id":1}),
        &answer,
        "sendTransaction",
    );
    assert_eq!(
        answer["error"]["message"],
        "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x0"
    );
    assert_eq!(
        answer["error"]["data"]["err"],
        json!({"InstructionError":[0,{"Custom":0}]})
    );
    // With skipPreflight the signature comes back; the verdict is in the trail.
    let answer = call(
        &mut f,
        "sendTransaction",
        json!([encode(&ok), {"encoding":"base64","skipPreflight":true}]),
    );
    assert_eq!(answer["result"], ok.signatures[0].to_string());
    assert_eq!(f.last_vote_event().result, "VoteTooOld");
    // Bad signature.
    let mut bad = f.vote(&identity, &identity, &[(tip, 1)], None);
    let mut sig: [u8; 64] = bad.signatures[0].into();
    sig[0] ^= 0xff;
    bad.signatures[0] = sig.into();
    let answer = call(
        &mut f,
        "sendTransaction",
        json!([encode(&bad), {"encoding":"base64"}]),
    );
    assert_eq!(
        answer["error"],
        json!({"code":-32003,"message":"Transaction signature verification failure"})
    );
    // Not a transaction.
    let answer = call(
        &mut f,
        "sendTransaction",
        json!(["AAAA", {"encoding":"base64"}]),
    );
    assert_eq!(answer["error"]["code"], -32602);
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("failed to deserialize"));
    let answer = call(
        &mut f,
        "sendTransaction",
        json!(["***", {"encoding":"base64"}]),
    );
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid base64 encoding"));
}

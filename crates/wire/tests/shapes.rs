//! The JSON on the wire, byte for byte: what validators and the cluster
//! exchange must keep its shape whatever the Rust types are. Keys, hashes
//! and signatures travel as base-58 strings and are checked at decode.

use serde::{de::DeserializeOwned, Serialize};
use solana_hash::Hash;
use solana_keypair::Keypair;
use solana_pubkey::Pubkey;
use solana_signer::Signer;
use towerlock_wire::api::{
    BankNotification, ContactAddresses, ContactInfo, SendTransactionConfig, SignedContactInfo,
    SlotNotification, SubmitBlock, SubmitBlockResult,
};

/// `[2; 32]` as base-58.
const HASH_2: &str = "8qbHbw2BbbTHBW1sbeqakYXVKRQM8Ne7pLK7m6CVfeR";
/// The pubkey of [`leader`].
const LEADER: &str = "J2xccRtuG43drESLYznHhLhQkLTdfepcKYbiQ9BsJVaf";

fn leader() -> Keypair {
    Keypair::new_from_array([9; 32])
}

/// Decodes `json` and encodes it again: the same bytes.
fn round_trip<T: Serialize + DeserializeOwned>(json: &str) -> T {
    let value: T = serde_json::from_str(json).unwrap();
    assert_eq!(serde_json::to_string(&value).unwrap(), json);
    value
}

#[test]
fn bank_notification() {
    let json = format!(
        concat!(
            r#"{{"slot":7,"parent":5,"hash":"{h}","blockId":"{h}","blockhash":"{h}","#,
            r#""leader":"{l}","blockHeight":6,"root":1,"confirmed":4,"tip":7,"#,
            r#""voteAccounts":[{{"votePubkey":"{l}","nodePubkey":"{l}","authorizedVoter":"{l}","#,
            r#""lockouts":[[5,2],[7,1]],"rootSlot":null,"lastVote":7,"credits":32,"activatedStake":100}}]}}"#,
        ),
        h = HASH_2,
        l = LEADER,
    );
    let bank: BankNotification = round_trip(&json);
    assert_eq!(bank.hash, Hash::new_from_array([2; 32]));
    assert_eq!(bank.block_id, Hash::new_from_array([2; 32]));
    assert_eq!(bank.leader, leader().pubkey());
    assert_eq!(bank.vote_accounts[0].node_pubkey, leader().pubkey());
    assert_eq!(bank.vote_accounts[0].lockouts, vec![(5, 2), (7, 1)]);
}

#[test]
fn a_malformed_key_or_hash_is_refused_at_decode() {
    let good = format!(
        r#"{{"slot":7,"parent":5,"hash":"{HASH_2}","blockId":"{HASH_2}","blockhash":"{HASH_2}","leader":"{LEADER}","blockHeight":6,"root":1,"confirmed":4,"tip":7,"voteAccounts":[]}}"#
    );
    assert!(serde_json::from_str::<BankNotification>(&good).is_ok());
    for bad in [
        good.replacen(LEADER, "not-a-pubkey", 1),
        good.replacen(HASH_2, "0OIl", 1),
        good.replacen(&format!("\"{HASH_2}\""), "7", 1),
    ] {
        let err = serde_json::from_str::<BankNotification>(&bad).unwrap_err();
        assert!(err.is_data(), "{bad}: {err}");
    }
}

#[test]
fn submit_block() {
    let json = concat!(
        r#"{"slot":7,"parent":5,"blockId":"8qbHbw2BbbTHBW1sbeqakYXVKRQM8Ne7pLK7m6CVfeR","#,
        r#""leader":"J2xccRtuG43drESLYznHhLhQkLTdfepcKYbiQ9BsJVaf","instance":"primary","#,
        r#""signature":"2jNzpzMb199N2uGMfHh1CzZSe5rm4UPkmDosc428o2i67jZwQ1JBMBdEvpre8kPWSaiDGyywZx5yu9cyBfyrBeMs"}"#,
    );
    let block = SubmitBlock::new_signed(&leader(), 7, 5, Hash::new_from_array([2; 32]), "primary");
    assert_eq!(serde_json::to_string(&block).unwrap(), json);
    let decoded: SubmitBlock = round_trip(json);
    assert_eq!(
        decoded.verify(),
        Some((leader().pubkey(), Hash::new_from_array([2; 32])))
    );
    let mut forged = decoded;
    forged.slot += 1;
    assert_eq!(forged.verify(), None);
    round_trip::<SubmitBlockResult>(r#"{"slot":7,"duplicate":false}"#);
}

#[test]
fn signed_contact_info() {
    let json = concat!(
        r#"{"pubkey":"J2xccRtuG43drESLYznHhLhQkLTdfepcKYbiQ9BsJVaf","outset":1700000000000000,"#,
        r#""instance":"primary","version":"0.1.0","addresses":{"gossip":null,"tpu":null,"#,
        r#""tpuVote":null,"rpc":"127.0.0.1:8899","pubsub":null},"#,
        r#""signature":"2Qt44iZvZu2keBe7moAcLB6ospZAoNg5Qr5FHiJseBAn4KKJx8ktDdSqB8uEYzkM8a5JjbAiUa9DxPtddjjabrPF"}"#,
    );
    let contact = ContactInfo {
        pubkey: leader().pubkey(),
        outset: 1_700_000_000_000_000,
        instance: "primary".into(),
        version: "0.1.0".into(),
        addresses: ContactAddresses {
            rpc: Some("127.0.0.1:8899".into()),
            ..ContactAddresses::default()
        },
    }
    .sign(&leader());
    assert_eq!(serde_json::to_string(&contact).unwrap(), json);
    let decoded: SignedContactInfo = round_trip(json);
    assert_eq!(decoded.verify(), Some(leader().pubkey()));
    let mut stranger = decoded;
    stranger.info.pubkey = Pubkey::new_from_array([1; 32]);
    assert_eq!(stranger.verify(), None);
}

#[test]
fn send_transaction_config_and_slot_notification() {
    round_trip::<SendTransactionConfig>(
        r#"{"encoding":"base64","skipPreflight":false,"instance":"primary"}"#,
    );
    let config: SendTransactionConfig = serde_json::from_str(r#"{"encoding":"base58"}"#).unwrap();
    assert_eq!(config.instance, None);
    round_trip::<SlotNotification>(r#"{"parent":4,"root":1,"slot":5}"#);
}

#[test]
fn votor_vote_message_and_notifications() {
    use towerlock_wire::votor::{VotorNotification, VotorVote, VotorVoteMessage};
    let message = VotorVoteMessage::new_signed(
        &leader(),
        leader().pubkey(),
        VotorVote::Notarize {
            slot: 12,
            block_id: Hash::new_from_array([2; 32]),
        },
        "a1",
    );
    let json = serde_json::to_string(&message).unwrap();
    let expected = format!(
        r#"{{"vote":{{"kind":"notarize","slot":12,"blockId":"{HASH_2}"}},"identity":"{LEADER}","voteAccount":"{LEADER}","instance":"a1","signature":"{}"}}"#,
        message.signature
    );
    assert_eq!(json, expected);
    let decoded: VotorVoteMessage = round_trip(&json);
    assert!(decoded.verify());
    round_trip::<VotorVote>(r#"{"kind":"skip-fallback","slot":3}"#);
    round_trip::<VotorVote>(&format!(
        r#"{{"kind":"notarize-fallback","slot":3,"blockId":"{HASH_2}"}}"#
    ));
    for json in [
        format!(
            r#"{{"type":"block","slot":13,"blockId":"{HASH_2}","parentSlot":12,"parentBlockId":"{HASH_2}","leader":"{LEADER}"}}"#
        ),
        format!(r#"{{"type":"certificate","kind":"notarization","slot":13,"blockId":"{HASH_2}"}}"#),
        r#"{"type":"certificate","kind":"skip","slot":14}"#.to_string(),
        format!(r#"{{"type":"finalized","slot":13,"blockId":"{HASH_2}","fast":true}}"#),
        r#"{"type":"slot","slot":15}"#.to_string(),
    ] {
        round_trip::<VotorNotification>(&json);
    }
}

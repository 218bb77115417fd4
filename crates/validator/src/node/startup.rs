//! The start-up checks the node makes of the cluster before it runs.

use serde_json::json;
use solana_pubkey::Pubkey;
use towerlock_wire::client::RpcClient;

use super::{driver::bounded, machine::NodeExit};

/// The start-up check that the vote account names this identity as its
/// node: `Err(Ok(exit))` when it does not, `Err(Err(text))` when the
/// cluster did not answer.
pub(super) async fn check_vote_account(
    rpc: &RpcClient,
    identity: &Pubkey,
    vote_account: &Pubkey,
) -> Result<(), Result<NodeExit, String>> {
    let accounts = bounded(
        "getVoteAccounts",
        rpc.call(
            "getVoteAccounts",
            json!([{ "votePubkey": vote_account.to_string(), "keepUnstakedDelinquents": true }]),
        ),
    )
    .await
    .map_err(Err)?;
    let found = ["current", "delinquent"]
        .iter()
        .filter_map(|k| accounts[k].as_array())
        .flatten()
        .find(|a| a["votePubkey"] == vote_account.to_string());
    match found {
        None => Err(Ok(NodeExit::VoteAccountMissing {
            vote_account: *vote_account,
        })),
        Some(account) if account["nodePubkey"] != identity.to_string() => {
            Err(Ok(NodeExit::VoteAccountNotOurs {
                vote_account: *vote_account,
                node: account["nodePubkey"].as_str().unwrap_or("?").to_string(),
                identity: *identity,
            }))
        }
        Some(_) => Ok(()),
    }
}

/// Why the cluster's streams could not be opened: a Solana RPC that is not
/// towerlock's local cluster (it does not know towerlock's own methods)
/// says so; anything else is an unreachable cluster.
pub(super) async fn not_a_towerlock_cluster(rpc: &RpcClient, url: &str) -> Option<NodeExit> {
    use towerlock_wire::{api::PUBLISH_CONTACT_INFO, client::ClientError};
    // The local cluster refuses the empty call as invalid params; a Solana
    // node does not know the method at all.
    let call = rpc.call(PUBLISH_CONTACT_INFO, json!([]));
    match tokio::time::timeout(std::time::Duration::from_secs(2), call).await {
        Ok(Err(ClientError::Rpc { code: -32601, .. })) => {}
        _ => return None,
    }
    let version = bounded("getVersion", rpc.call("getVersion", json!([])))
        .await
        .ok()
        .and_then(|v| v["solana-core"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    Some(NodeExit::NotTowerlockCluster {
        url: url.to_string(),
        version,
    })
}

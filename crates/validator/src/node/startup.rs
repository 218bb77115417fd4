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

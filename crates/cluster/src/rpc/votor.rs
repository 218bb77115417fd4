//! `sendVotorVote`: a validator's signed Votor vote (Alpenglow clusters).
//!
//! The answer is `{"landed": true}` once the cluster counted the vote toward
//! certificates (a repeat lands again and is counted once); a refusal is an
//! error whose message says why and whose `data` is the name the audit trail
//! records: `-32003` for a bad signature, `-32602` for an instance id longer
//! than 64 bytes, `-32000` for the rest (`UnknownIdentity`,
//! `WrongVoteAccount`, `SlotTooOld`, `SlotTooFar`, `ConflictingVote`,
//! `NotAlpenglow`).

use serde_json::{json, Value};
use solana_pubkey::Pubkey;
use towerlock_wire::votor::{VotorLastVote, VotorVoteMessage};

use super::{extend, Params, RpcError};
use crate::core::votor::VotorVoteError;
use crate::core::{Cluster, Outputs};

pub(super) fn send_votor_vote(
    cluster: &mut Cluster,
    params: Params,
    now_ms: u64,
    outputs: &mut Outputs,
) -> Result<Value, RpcError> {
    params.count(1, 1)?;
    let message: VotorVoteMessage = params
        .get(0)?
        .ok_or_else(|| RpcError::invalid_params("invalid type: null, expected a Votor vote"))?;
    let (result, out) = cluster.receive_votor_vote(&message, now_ms);
    extend(outputs, out);
    match result {
        Ok(landed) => Ok(serde_json::to_value(landed).expect("serializes")),
        Err(e) => {
            let code = match e {
                VotorVoteError::BadSignature { .. } => -32003,
                VotorVoteError::InstanceTooLong => -32602,
                _ => -32000,
            };
            Err(RpcError::new(code, e.to_string()).with_data(json!(e.name())))
        }
    }
}

/// `getVotorLastVote [identity]`: the newest slot with a landed Votor vote
/// of that identity (`{"slot": null}` if none, or on a TowerBFT cluster).
pub(super) fn get_votor_last_vote(cluster: &Cluster, params: Params) -> Result<Value, RpcError> {
    params.count(1, 1)?;
    let identity: String = params
        .get(0)?
        .ok_or_else(|| RpcError::invalid_params("invalid type: null, expected an identity"))?;
    let identity: Pubkey = identity
        .parse()
        .map_err(|_| RpcError::invalid_params(format!("{identity:?} is not a base-58 pubkey")))?;
    let slot = cluster
        .votor()
        .and_then(|votor| votor.last_landed(&identity));
    Ok(serde_json::to_value(VotorLastVote { slot }).expect("serializes"))
}

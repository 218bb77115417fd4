"""Calls every served Solana RPC method through the published Python client
(solana-py's AsyncClient and websocket client, solders' typed requests and
responses), which parse each answer strictly, and checks what the answers
say against one another.

Prints one line `checked <method>` per method that passed; exits 1 on the
first failure with the reason.
"""

import argparse
import asyncio
import base64
import json
import sys
import urllib.request

from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Processed
from solana.rpc.core import RPCException
from solana.rpc.websocket_api import SolanaWsClient
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc import responses
from solders.rpc.config import RpcBlockProductionConfig
from solders.rpc.requests import GetBlockProduction, GetBlocksWithLimit, GetHealth, GetHighestSnapshotSlot
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

VOTE_PROGRAM = Pubkey.from_string("Vote111111111111111111111111111111111111111")
SLOT_HISTORY = Pubkey.from_string("SysvarS1otHistory11111111111111111111111111")


def check(method, condition, why):
    if not condition:
        raise AssertionError(f"{method}: {why}")


def done(method):
    print(f"checked {method}", flush=True)


def post(url, body):
    request = urllib.request.Request(url, data=body.encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read().decode()


def typed(url, request, parser):
    """A solders request, its answer parsed by the solders response type."""
    parsed = parser.from_json(post(url, request.to_json()))
    check(type(request).__name__, isinstance(parsed, parser), f"answer did not parse: {parsed}")
    return parsed


def rpc_error_message(exc):
    """The message of the error solders parsed out of a JSON-RPC error."""
    error = exc.args[0] if exc.args else None
    return getattr(error, "message", None)


async def cluster_state(client, url, node):
    epoch = (await client.get_epoch_info()).value
    check("getEpochInfo", epoch.slots_in_epoch > 0, "no slots in the epoch")
    done("getEpochInfo")
    schedule = (await client.get_epoch_schedule()).value
    check("getEpochSchedule", schedule.slots_per_epoch == epoch.slots_in_epoch, "slots per epoch differ")
    done("getEpochSchedule")
    slot = (await client.get_slot(Processed)).value
    if node:
        # A node answers getSlot from its own newest bank and passes
        # getEpochInfo to the cluster: it may trail the cluster's confirmed
        # slot, but it can never lead the cluster's newest.
        tip = (await client.get_epoch_info(Processed)).value.absolute_slot
        check("getSlot", 0 < slot <= tip, f"the node's slot {slot} is not in 1..={tip}, the cluster's newest")
    else:
        check("getSlot", slot >= epoch.absolute_slot, "processed slot behind the confirmed one")
    done("getSlot")
    height = (await client.get_block_height(Processed)).value
    check("getBlockHeight", height > 0, "height 0")
    done("getBlockHeight")
    leaders = (await client.get_leader_schedule()).value
    check("getLeaderSchedule", leaders, "empty schedule")
    done("getLeaderSchedule")
    nodes = (await client.get_cluster_nodes()).value
    check("getClusterNodes", nodes, "no nodes")
    done("getClusterNodes")
    check("getHealth", typed(url, GetHealth(), responses.GetHealthResp).value == "ok", "not ok")
    done("getHealth")
    version = (await client.get_version()).value
    check("getVersion", version.solana_core, "no solana-core version")
    done("getVersion")
    genesis = (await client.get_genesis_hash()).value
    check("getGenesisHash", isinstance(genesis, Hash), "not a hash")
    done("getGenesisHash")
    blockhash = (await client.get_latest_blockhash()).value
    done("getLatestBlockhash")
    raw = post(url, GetHighestSnapshotSlot().to_json())
    parsed = responses.GetHighestSnapshotSlotResp.from_json(raw)
    # solders parses the error into its own error type.
    check("getHighestSnapshotSlot", not isinstance(parsed, responses.GetHighestSnapshotSlotResp), raw)
    check("getHighestSnapshotSlot", json.loads(raw)["error"]["code"] == -32008, f"expected No snapshot: {raw}")
    done("getHighestSnapshotSlot")
    return epoch, leaders, blockhash


async def vote_accounts(client):
    status = (await client.get_vote_accounts()).value
    accounts = status.current + status.delinquent
    check("getVoteAccounts", len(accounts) > 1, "fewer than two vote accounts")
    done("getVoteAccounts")
    keys = [a.vote_pubkey for a in accounts]
    multiple = (await client.get_multiple_accounts(keys)).value
    for info, account in zip(accounts, multiple):
        check("getMultipleAccounts", account is not None, f"{info.vote_pubkey} is no account")
        check("getMultipleAccounts", account.owner == VOTE_PROGRAM, f"{info.vote_pubkey} owner {account.owner}")
        check("getMultipleAccounts", len(account.data) == 3762, f"{info.vote_pubkey} holds {len(account.data)} bytes")
    done("getMultipleAccounts")
    parsed = (await client.get_multiple_accounts_json_parsed(keys)).value
    for info, account in zip(accounts, parsed):
        data = account.data
        check("getMultipleAccounts", data.program == "vote", f"jsonParsed program {data.program}")
        vote = data.parsed["info"]
        check("getMultipleAccounts", vote["nodePubkey"] == str(info.node_pubkey), "jsonParsed node differs")
        last = vote["votes"][-1]["slot"] if vote["votes"] else 0
        check("getMultipleAccounts", last >= info.last_vote, f"jsonParsed last vote {last} < {info.last_vote}")
    one = (await client.get_account_info(keys[0], encoding="base64")).value
    check("getAccountInfo", one.owner == VOTE_PROGRAM and len(one.data) == 3762, "not the vote account")
    history = (await client.get_account_info(SLOT_HISTORY, encoding="base64")).value
    check("getAccountInfo", history is not None and len(history.data) == 131_097, "no SlotHistory sysvar")
    one_parsed = (await client.get_account_info_json_parsed(keys[0])).value
    check("getAccountInfo", one_parsed.data.parsed["type"] == "vote", "jsonParsed is not a vote state")
    done("getAccountInfo")
    balance = (await client.get_balance(accounts[0].node_pubkey)).value
    check("getBalance", balance > 0, "the identity holds nothing")
    done("getBalance")
    return accounts


async def a_block_with_votes(client):
    first = (await client.get_first_available_block()).value
    done("getFirstAvailableBlock")
    minimum = (await client.get_minimum_ledger_slot()).value
    check("minimumLedgerSlot", minimum == first, f"{minimum} != first available {first}")
    done("minimumLedgerSlot")
    slots = (await client.get_blocks(first)).value
    check("getBlocks", slots and slots[0] >= first, f"no blocks from {first}")
    done("getBlocks")
    return slots


async def blocks_and_votes(client, url, slots):
    limited = typed(url, GetBlocksWithLimit(slots[0], 3), responses.GetBlocksWithLimitResp).value
    check("getBlocksWithLimit", list(limited) == list(slots[:3]), f"{limited} vs {slots[:3]}")
    done("getBlocksWithLimit")
    for slot in reversed(slots):
        block = (await client.get_block(slot, "json", max_supported_transaction_version=0)).value
        if block.transactions:
            break
    else:
        raise AssertionError(f"getBlock: none of the blocks {slots[0]}..={slots[-1]} carries a vote transaction")
    tx = block.transactions[0]
    check("getBlock", VOTE_PROGRAM in tx.transaction.message.account_keys, "not a vote transaction")
    signature = tx.transaction.signatures[0]
    raw = (await client.get_block(slot, "base64", max_supported_transaction_version=0)).value
    decoded = raw.transactions[0].transaction
    check("getBlock", isinstance(decoded, VersionedTransaction), "base64 did not decode")
    check("getBlock", decoded.signatures[0] == signature, "base64 and json differ")
    done("getBlock")
    time = (await client.get_block_time(slot)).value
    check("getBlockTime", time == block.block_time, f"{time} != {block.block_time}")
    done("getBlockTime")
    found = (await client.get_transaction(signature, "json", Confirmed, 0)).value
    check("getTransaction", found is not None and found.slot == slot, f"not found in slot {slot}")
    check("getTransaction", found.transaction.meta.err is None, "a landed vote failed")
    done("getTransaction")
    statuses = (await client.get_signature_statuses([signature])).value
    check("getSignatureStatuses", statuses[0] is not None and statuses[0].slot == slot, "no status")
    done("getSignatureStatuses")


async def leaders_and_production(client, url, epoch, leaders):
    leader = (await client.get_slot_leader()).value
    check("getSlotLeader", leader in leaders or str(leader) in map(str, leaders), f"{leader} leads nothing")
    done("getSlotLeader")
    slot = epoch.absolute_slot
    some = (await client.get_slot_leaders(slot, 8)).value
    check("getSlotLeaders", len(some) == 8, f"{len(some)} leaders")
    done("getSlotLeaders")
    production = typed(url, GetBlockProduction(RpcBlockProductionConfig()), responses.GetBlockProductionResp).value
    check("getBlockProduction", production.by_identity, "no leader produced")
    done("getBlockProduction")
    samples = (await client.get_recent_performance_samples(5)).value
    check("getRecentPerformanceSamples", len(samples) <= 5, "more samples than asked")
    done("getRecentPerformanceSamples")


async def the_rest(client, epoch, accounts, blockhash, expect_identity):
    identity = (await client.get_identity()).value.identity
    if expect_identity:
        check("getIdentity", str(identity) == expect_identity, f"{identity} is not {expect_identity}")
    done("getIdentity")
    keys = [a.vote_pubkey for a in accounts[:2]]
    try:
        rewards = (await client.get_inflation_reward(keys)).value
        check("getInflationReward", epoch.epoch > 0 and rewards == [None, None], f"{rewards} in epoch {epoch.epoch}")
    except RPCException as e:
        # In the first epoch no epoch has ended: agave's "Block not available".
        message = rpc_error_message(e) or ""
        check("getInflationReward", epoch.epoch == 0 and "Block not available" in message, f"{e!r}")
    done("getInflationReward")
    payer = Keypair()
    message = Message([transfer(TransferParams(from_pubkey=payer.pubkey(), to_pubkey=payer.pubkey(), lamports=1))], payer.pubkey())
    tx = Transaction([payer], message, blockhash.blockhash)
    try:
        await client.send_raw_transaction(bytes(tx))
        raise AssertionError("sendTransaction: a transfer from an empty account was taken")
    except RPCException as e:
        check("sendTransaction", rpc_error_message(e), f"no JSON-RPC error: {e!r}")
    done("sendTransaction")


def method_not_found(url):
    raw = json.loads(post(url, json.dumps({"jsonrpc": "2.0", "id": 7, "method": "getSupply", "params": []})))
    check("Method not found", raw.get("error", {}).get("code") == -32601, f"{raw}")
    check("Method not found", raw["error"]["message"] == "Method not found", f"{raw}")


async def subscriptions(ws_url, vote_account):
    async with SolanaWsClient(ws_url, request_timeout=20) as ws:
        await ws.slot_subscribe()
        await ws.root_subscribe()
        await ws.vote_subscribe()
        await ws.account_subscribe(pubkey=vote_account, commitment=Processed, encoding="base64")
        seen = {}
        async def collect():
            while len(seen) < 4:
                note = await ws.recv()
                seen.setdefault(type(note).__name__, note)
        await asyncio.wait_for(collect(), 60)
    account = seen["AccountNotification"].result.value
    check("accountSubscribe", account.owner == VOTE_PROGRAM, "not the vote account")
    done("accountSubscribe")
    check("slotSubscribe", seen["SlotNotification"].result.slot > 0, "slot 0")
    done("slotSubscribe")
    check("rootSubscribe", seen["RootNotification"].result >= 0, "no root")
    done("rootSubscribe")
    check("voteSubscribe", seen["VoteNotification"].result.slots, "a vote without slots")
    done("voteSubscribe")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", required=True)
    parser.add_argument("--ws")
    parser.add_argument("--identity", help="the identity getIdentity must answer")
    args = parser.parse_args()
    # Confirmed: the ledger methods refuse processed, and a vote is confirmed
    # long before it is finalized.
    async with AsyncClient(args.http, commitment=Confirmed) as client:
        epoch, leaders, blockhash = await cluster_state(client, args.http, args.identity is not None)
        accounts = await vote_accounts(client)
        slots = await a_block_with_votes(client)
        await blocks_and_votes(client, args.http, slots)
        await leaders_and_production(client, args.http, epoch, leaders)
        await the_rest(client, epoch, accounts, blockhash, args.identity)
    method_not_found(args.http)
    if args.ws:
        ours = [a.vote_pubkey for a in accounts if a.activated_stake > 0]
        await subscriptions(args.ws, ours[0])


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError as e:
        print(f"failed: {e}", file=sys.stderr)
        sys.exit(1)

//! Every method the cluster serves, as one list: the README's table and the
//! tests that call each of them are checked against it.

/// Solana JSON-RPC methods served over HTTP, in Solana's shapes.
pub const SOLANA_METHODS: &[&str] = &[
    "getAccountInfo",
    "getBalance",
    "getBlock",
    "getBlockHeight",
    "getBlockProduction",
    "getBlockTime",
    "getBlocks",
    "getBlocksWithLimit",
    "getClusterNodes",
    "getEpochInfo",
    "getEpochSchedule",
    "getFirstAvailableBlock",
    "getGenesisHash",
    "getHealth",
    "getHighestSnapshotSlot",
    "getIdentity",
    "getInflationReward",
    "getLatestBlockhash",
    "getLeaderSchedule",
    "getMultipleAccounts",
    "getRecentPerformanceSamples",
    "getSignatureStatuses",
    "getSlot",
    "getSlotLeader",
    "getSlotLeaders",
    "getTransaction",
    "getVersion",
    "getVoteAccounts",
    "minimumLedgerSlot",
    "sendTransaction",
];

/// Solana websocket subscriptions (each with its `*Unsubscribe`).
pub const SOLANA_SUBSCRIPTIONS: &[&str] = &[
    "accountSubscribe",
    "rootSubscribe",
    "slotSubscribe",
    "voteSubscribe",
];

/// towerlock's own methods between validators and the cluster.
pub const TOWERLOCK_METHODS: &[&str] = &[
    towerlock_wire::api::SUBMIT_BLOCK,
    towerlock_wire::api::PUBLISH_CONTACT_INFO,
    towerlock_wire::api::BANK_SUBSCRIBE,
    towerlock_wire::api::GOSSIP_SUBSCRIBE,
    towerlock_wire::votor::SEND_VOTOR_VOTE,
    towerlock_wire::votor::GET_VOTOR_LAST_VOTE,
    towerlock_wire::votor::VOTOR_SUBSCRIBE,
];

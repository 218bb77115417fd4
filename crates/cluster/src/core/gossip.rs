//! The gossip hub's table of contact infos.

use std::collections::BTreeMap;

use solana_pubkey::Pubkey;
use towerlock_wire::api::SignedContactInfo;

/// Why a contact info was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// The signature does not verify against the contact info's pubkey.
    #[error("contact info signature does not verify")]
    BadSignature,
    /// The instance id is longer than 64 bytes.
    #[error("instance id longer than 64 bytes")]
    InstanceTooLong,
}

/// Every instance's latest contact info, by (pubkey, instance).
#[derive(Debug, Clone, Default)]
pub struct GossipTable {
    entries: BTreeMap<(Pubkey, String), SignedContactInfo>,
}

impl GossipTable {
    /// Inserts a verified contact info. `Ok(true)` when it changed the table.
    pub fn insert(&mut self, contact: SignedContactInfo) -> Result<bool, GossipError> {
        let pubkey = contact.verify().ok_or(GossipError::BadSignature)?;
        if contact.info.instance.len() > 64 {
            return Err(GossipError::InstanceTooLong);
        }
        let key = (pubkey, contact.info.instance.clone());
        if self.entries.get(&key) == Some(&contact) {
            return Ok(false);
        }
        self.entries.insert(key, contact);
        Ok(true)
    }

    /// Every entry (all instances).
    pub fn all(&self) -> impl Iterator<Item = &SignedContactInfo> {
        self.entries.values()
    }

    /// One entry per pubkey: the instance with the newest outset.
    pub fn nodes(&self) -> BTreeMap<Pubkey, &SignedContactInfo> {
        let mut nodes = BTreeMap::<Pubkey, &SignedContactInfo>::new();
        for ((pubkey, _), contact) in &self.entries {
            let newer = nodes
                .get(pubkey)
                .is_none_or(|current| contact.info.outset >= current.info.outset);
            if newer {
                nodes.insert(*pubkey, contact);
            }
        }
        nodes
    }

    /// The instance with the newest outset for `pubkey`.
    pub fn newest_instance(&self, pubkey: &Pubkey) -> Option<&str> {
        self.nodes()
            .get(pubkey)
            .map(|c| c.info.instance.as_str())
            .map(|s| {
                // Re-borrow from self, not from the temporary map.
                let key = (*pubkey, s.to_string());
                self.entries[&key].info.instance.as_str()
            })
    }
}

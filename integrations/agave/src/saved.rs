//! agave's saved tower at the boundary: the bytes in etcd are exactly what
//! `bincode::serialize(&SavedTowerVersions)` makes (agave's tower file), and
//! a tower comes back through agave's own types and checks.
//!
//! agave keeps `SavedTowerVersions::try_into_tower` private, so
//! [`tower_from_bytes`] does what it does, step by step and with agave's
//! types: decode the signed envelope, verify the signature with the
//! identity's key, decode the tower (`Tower1_14_11`, or `Tower1_7_14` for the
//! old envelope) into agave's `TowerVersions`, convert it to agave's `Tower`,
//! and check that it is the identity's.

use serde::Deserialize;
use solana_core::consensus::{
    tower_storage::SavedTowerVersions, Result as TowerResult, Tower, TowerError, TowerVersions,
};
use solana_pubkey::Pubkey;
use solana_signature::Signature;

/// agave's `SavedTower` and `SavedTower1_7_14` on the wire: a signature over
/// the bincode bytes of the tower. (agave's own structs keep these fields
/// private; the layout is theirs, `serde_bytes` being plain bytes in bincode.)
#[derive(Deserialize)]
struct Signed {
    signature: Signature,
    data: Vec<u8>,
}

/// agave's `SavedTowerVersions`, variant for variant.
#[derive(Deserialize)]
enum SignedVersions {
    V1_17_14(Signed),
    Current(Signed),
}

/// The bytes agave writes for `saved` (its tower file, byte for byte).
pub fn to_bytes(saved: &SavedTowerVersions) -> TowerResult<Vec<u8>> {
    Ok(bincode::serialize(saved)?)
}

/// agave's `Tower` from stored bytes, if they are a saved tower signed by
/// `node_pubkey` and belonging to it: agave's `try_into_tower`.
pub fn tower_from_bytes(bytes: &[u8], node_pubkey: &Pubkey) -> TowerResult<Tower> {
    let (signed, tower) = decode(bytes)?;
    if !signed.signature.verify(node_pubkey.as_ref(), &signed.data) {
        return Err(TowerError::InvalidSignature);
    }
    if tower.node_pubkey != *node_pubkey {
        return Err(TowerError::WrongTower(format!(
            "node_pubkey is {:?} but found tower for {:?}",
            node_pubkey, tower.node_pubkey
        )));
    }
    Ok(tower)
}

/// The node whose tower `bytes` are, after checking that node's signature
/// on them: what a store is fenced by.
pub fn owner(bytes: &[u8]) -> TowerResult<Pubkey> {
    let (_, tower) = decode(bytes)?;
    let owner = tower.node_pubkey;
    tower_from_bytes(bytes, &owner).map(|_| owner)
}

fn decode(bytes: &[u8]) -> TowerResult<(Signed, Tower)> {
    let versions: SignedVersions = bincode::deserialize(bytes)?;
    let (signed, tower) = match versions {
        SignedVersions::V1_17_14(signed) => {
            let tower = bincode::deserialize(&signed.data).map(TowerVersions::V1_7_14)?;
            (signed, tower)
        }
        SignedVersions::Current(signed) => {
            let tower = bincode::deserialize(&signed.data).map(TowerVersions::V1_14_11)?;
            (signed, tower)
        }
    };
    Ok((signed, tower.convert_to_current()))
}

#[cfg(test)]
#[path = "../tests/support/tower.rs"]
mod tower;

#[cfg(test)]
mod tests {
    use solana_core::consensus::tower_storage::{FileTowerStorage, SavedTower, TowerStorage};
    use solana_keypair::Keypair;
    use solana_signer::Signer;

    use super::{tower::*, *};

    #[test]
    fn the_test_tower_is_agaves_tower_with_those_votes() {
        let node = Keypair::new().pubkey();
        let tower = tower_with_votes(&node, &[3, 4, 7]);
        assert_eq!(tower.node_pubkey, node);
        assert_eq!(tower.tower_slots(), vec![3, 4, 7]);
        assert_eq!(tower.last_voted_slot(), Some(7));
        assert_eq!(tower.root(), 0);
    }

    #[test]
    fn bytes_are_agaves_file_and_read_back_as_agave_reads_its_file() {
        let keypair = Keypair::new();
        let saved = voted(&keypair, &[3, 4, 7]);
        let dir = tempfile::tempdir().unwrap();
        let file = FileTowerStorage::new(dir.path().to_path_buf());
        file.store(&saved).unwrap();
        let on_disk = std::fs::read(file.filename(&keypair.pubkey())).unwrap();
        assert_eq!(to_bytes(&saved).unwrap(), on_disk);

        let ours = tower_from_bytes(&on_disk, &keypair.pubkey()).unwrap();
        let agaves = file.load(&keypair.pubkey()).unwrap();
        assert_eq!(ours.tower_slots(), vec![3, 4, 7]);
        assert_eq!(ours.tower_slots(), agaves.tower_slots());
        assert_eq!(ours.last_voted_slot(), agaves.last_voted_slot());
        assert_eq!(ours.root(), agaves.root());
        assert_eq!(owner(&on_disk).unwrap(), keypair.pubkey());
    }

    #[test]
    fn another_nodes_key_and_a_bad_signature_are_refused() {
        let keypair = Keypair::new();
        let bytes = to_bytes(&voted(&keypair, &[5])).unwrap();
        let other = Keypair::new().pubkey();
        assert!(matches!(
            tower_from_bytes(&bytes, &other),
            Err(TowerError::InvalidSignature)
        ));
        let mut forged = bytes.clone();
        forged[4] ^= 1; // in the signature, after the 4-byte variant tag
        assert!(matches!(
            tower_from_bytes(&forged, &keypair.pubkey()),
            Err(TowerError::InvalidSignature)
        ));
        assert!(matches!(owner(&forged), Err(TowerError::InvalidSignature)));
        assert!(matches!(
            tower_from_bytes(b"not a tower", &keypair.pubkey()),
            Err(TowerError::SerializeError(_))
        ));
    }

    #[test]
    fn a_tower_signed_by_one_node_claiming_another_is_a_wrong_tower() {
        // Signed by `signer` but claiming `claimed`: the signature verifies
        // for the signer, the tower is not the signer's.
        let signer = Keypair::new();
        let claimed = Keypair::new();
        let saved: SavedTowerVersions =
            SavedTower::new(&tower_with_votes(&claimed.pubkey(), &[9]), &claimed)
                .unwrap()
                .into();
        let mut bytes = to_bytes(&saved).unwrap();
        let data = bytes[4 + 64 + 8..].to_vec();
        bytes[4..4 + 64].copy_from_slice(signer.sign_message(&data).as_ref());
        assert!(matches!(
            tower_from_bytes(&bytes, &signer.pubkey()),
            Err(TowerError::WrongTower(_))
        ));
        assert!(matches!(owner(&bytes), Err(TowerError::InvalidSignature)));
    }
}

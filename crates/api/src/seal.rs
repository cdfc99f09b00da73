//! Signed seals and exported proof bundles. A seal signs, with the Ed25519 key of the
//! configuration, the RFC 6962 Merkle root of the event hashes up to a position; an export
//! writes a session's events (or the whole log) with the seals, the public key and each event's
//! inclusion proofs, to be verified offline by `cachet verify --file`.

use std::io::Write;

use cachet_domain::dossier::DossierEvent;
use cachet_domain::event::DomainEvent;
use cachet_domain::ids::SessionId;
use cachet_projections::db::ReadDb;
use cachet_store::bundle::{proofs_for, seal_message, BundleEvent, Header, SealRecord, FORMAT};
use cachet_store::merkle::{leaf_hash, Hash, Tree};
use cachet_store::typed::decode;
use cachet_store::{stream_all, EventStore, StoreError};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use futures::TryStreamExt;
use sqlx::Row;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("la clé de scellement doit être 64 chiffres hexadécimaux (32 octets)")]
    BadKey,
    #[error("le journal est vide : rien à sceller")]
    Empty,
    #[error("la position {0} n'existe pas encore dans le journal")]
    BeyondHead(i64),
    #[error("aucun sceau : lancez d'abord « cachet seal »")]
    NoSeal,
    #[error("les sceaux ont été signés par plusieurs clés ; un paquet n'en porte qu'une")]
    SeveralKeys,
    #[error("un événement n'est pas du texte UTF-8 et ne peut pas être exporté")]
    NotText,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("base de données : {0}")]
    Database(#[from] sqlx::Error),
    #[error("écriture du paquet : {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Reads a signing key from its 32-byte seed in hexadecimal.
pub fn parse_key(hex_seed: &str) -> Result<SigningKey, SealError> {
    let bytes: [u8; 32] = hex::decode(hex_seed.trim()).ok().and_then(|b| b.try_into().ok()).ok_or(SealError::BadKey)?;
    Ok(SigningKey::from_bytes(&bytes))
}

async fn hashes_up_to(store: &dyn EventStore, position: i64) -> Result<Vec<Vec<u8>>, SealError> {
    let mut hashes = Vec::new();
    let mut events = stream_all(store, 0);
    while let Some(event) = events.try_next().await? {
        if event.position > position {
            break;
        }
        hashes.push(event.hash);
    }
    Ok(hashes)
}

/// A stored seal and the key that signed it.
pub struct StoredSeal {
    pub record: SealRecord,
    pub public_key: Vec<u8>,
}

/// Seals the log up to `upto` (the head by default). Sealing a position already sealed returns
/// the existing seal.
pub async fn seal(
    store: &dyn EventStore,
    db: &ReadDb,
    key: &SigningKey,
    upto: Option<i64>,
) -> Result<StoredSeal, SealError> {
    let head = store.head().await?.position;
    let position = upto.unwrap_or(head);
    if head == 0 || position == 0 {
        return Err(SealError::Empty);
    }
    if position > head {
        return Err(SealError::BeyondHead(position));
    }
    let hashes = hashes_up_to(store, position).await?;
    let leaves: Vec<Hash> = hashes.iter().map(|h| leaf_hash(h)).collect();
    let root = Tree::new(&leaves).root(leaves.len());
    let signature = key.sign(&seal_message(position, &root)).to_bytes();
    let public_key = key.verifying_key().to_bytes();
    sqlx::query(
        "INSERT INTO seals (position, root, signature, public_key, sealed_at_us) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (position) DO NOTHING",
    )
    .bind(position)
    .bind(root.to_vec())
    .bind(signature.to_vec())
    .bind(public_key.to_vec())
    .bind(Utc::now().timestamp_micros())
    .execute(&db.pool)
    .await?;
    let stored = seals(db).await?;
    stored.into_iter().find(|s| s.record.position == position).ok_or(SealError::NoSeal)
}

/// Every seal, oldest position first.
pub async fn seals(db: &ReadDb) -> Result<Vec<StoredSeal>, SealError> {
    let rows = sqlx::query("SELECT position, root, signature, public_key, sealed_at_us FROM seals ORDER BY position")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            let sealed_at: i64 = row.try_get("sealed_at_us")?;
            Ok(StoredSeal {
                record: SealRecord {
                    position: row.try_get("position")?,
                    root: hex::encode(row.try_get::<Vec<u8>, _>("root")?),
                    signature: hex::encode(row.try_get::<Vec<u8>, _>("signature")?),
                    sealed_at: DateTime::from_timestamp_micros(sealed_at).unwrap_or_default(),
                },
                public_key: row.try_get("public_key")?,
            })
        })
        .collect()
}

/// Checks each stored seal against the log: its position exists (the tail was not truncated)
/// and its root is the root of the events up to it. Returns the first problem, in French.
pub async fn check_seals(store: &dyn EventStore, db: &ReadDb) -> Result<Option<String>, SealError> {
    let seals = seals(db).await?;
    let Some(last) = seals.last() else { return Ok(None) };
    let hashes = hashes_up_to(store, last.record.position).await?;
    let leaves: Vec<Hash> = hashes.iter().map(|h| leaf_hash(h)).collect();
    let mut tree = Tree::new(&leaves);
    for seal in &seals {
        let position = seal.record.position;
        if position as usize > leaves.len() {
            return Ok(Some(format!(
                "le sceau de la position {position} couvre des événements absents : le journal s'arrête à la position {}",
                leaves.len()
            )));
        }
        if hex::encode(tree.root(position as usize)) != seal.record.root {
            return Ok(Some(format!("la racine du sceau de la position {position} ne correspond plus aux événements")));
        }
    }
    Ok(None)
}

/// What an export wrote.
pub struct Exported {
    pub events: usize,
    pub seals: usize,
}

/// Writes the bundle of a session (its stream and its dossiers') or of the whole log.
pub async fn export(
    store: &dyn EventStore,
    db: &ReadDb,
    session: Option<SessionId>,
    out: &mut impl Write,
) -> Result<Exported, SealError> {
    let seals = seals(db).await?;
    let public_key = seals.first().map(|s| s.public_key.clone()).ok_or(SealError::NoSeal)?;
    if seals.iter().any(|s| s.public_key != public_key) {
        return Err(SealError::SeveralKeys);
    }
    let records: Vec<SealRecord> = seals.into_iter().map(|s| s.record).collect();
    let mut hashes = Vec::new();
    let mut selected = Vec::new();
    let mut streams = std::collections::HashSet::new();
    if let Some(session) = session {
        streams.insert(session.as_uuid());
    }
    let mut events = stream_all(store, 0);
    while let Some(event) = events.try_next().await? {
        hashes.push(event.hash.clone());
        let wanted = match session {
            None => true,
            Some(session) => {
                if event.stream_type == DossierEvent::STREAM_TYPE && event.stream_version == 1 {
                    if let Ok(DossierEvent::PreRegistered { session_id, .. }) = decode::<DossierEvent>(&event) {
                        if session_id == session {
                            streams.insert(event.stream_id);
                        }
                    }
                }
                streams.contains(&event.stream_id)
            }
        };
        if wanted {
            selected.push(event);
        }
    }
    let header = Header {
        format: FORMAT.to_owned(),
        public_key: hex::encode(public_key),
        seals: records.clone(),
        session_id: session.map(|s| s.as_uuid()),
        complete: session.is_none(),
        exported_at: Utc::now(),
    };
    serde_json::to_writer(&mut *out, &header)?;
    writeln!(out)?;
    let positions: Vec<i64> = selected.iter().map(|e| e.position).collect();
    let proofs = proofs_for(&hashes, &records, &positions);
    for (event, proofs) in selected.iter().zip(proofs) {
        let line = BundleEvent::new(event, proofs).ok_or(SealError::NotText)?;
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(Exported { events: selected.len(), seals: records.len() })
}

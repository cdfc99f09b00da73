//! The exported proof bundle and its offline verification, with no database.
//!
//! A bundle is JSON Lines: a header (format, the seals' public key, the seals), then one line per
//! event with every stored field, its hashes, and for each seal covering it the RFC 6962 audit
//! path that proves it is under that seal's signed root. Verification recomputes each event's
//! hash from its fields, the chain between consecutive events, each seal's signature, and each
//! inclusion proof; for a complete bundle (positions 1..n) it also recomputes the whole chain
//! from the genesis and each seal's root from every leaf.

use std::io::BufRead;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::hash::{event_hash, HashInput, GENESIS};
use crate::merkle::{leaf_hash, root_from_proof, Hash, Tree};
use crate::StoredEvent;

pub const FORMAT: &str = "cachet-bundle/1";

/// The bytes a seal signs: a domain tag, the sealed position and the Merkle root.
pub fn seal_message(position: i64, root: &[u8]) -> Vec<u8> {
    let mut message = b"cachet-seal/1".to_vec();
    message.extend_from_slice(&position.to_be_bytes());
    message.extend_from_slice(root);
    message
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealRecord {
    pub position: i64,
    /// Hexadecimal.
    pub root: String,
    /// Hexadecimal Ed25519 signature of [`seal_message`].
    pub signature: String,
    pub sealed_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    /// Hexadecimal Ed25519 public key of the seals.
    pub public_key: String,
    pub seals: Vec<SealRecord>,
    /// The session exported, or none for the whole log.
    pub session_id: Option<Uuid>,
    /// True when the bundle holds every event from position 1.
    pub complete: bool,
    pub exported_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub seal_position: i64,
    /// Hexadecimal hashes, bottom up.
    pub path: Vec<String>,
}

/// One event line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    /// The stored payload bytes, as UTF-8 text.
    pub payload: String,
    pub metadata: String,
    pub command_id: Option<Uuid>,
    pub occurred_at_us: i64,
    pub recorded_at_us: i64,
    pub prev_hash: String,
    pub hash: String,
    pub proofs: Vec<Proof>,
}

impl BundleEvent {
    /// The line of a stored event, with its proofs under each seal covering it.
    pub fn new(event: &StoredEvent, proofs: Vec<Proof>) -> Option<Self> {
        Some(Self {
            position: event.position,
            event_id: event.event_id,
            stream_id: event.stream_id,
            stream_type: event.stream_type.clone(),
            stream_version: event.stream_version,
            event_type: event.event_type.clone(),
            schema_version: event.schema_version,
            payload: String::from_utf8(event.payload.clone()).ok()?,
            metadata: String::from_utf8(event.metadata.clone()).ok()?,
            command_id: event.command_id,
            occurred_at_us: event.occurred_at.timestamp_micros(),
            recorded_at_us: event.recorded_at.timestamp_micros(),
            prev_hash: hex::encode(&event.prev_hash),
            hash: hex::encode(&event.hash),
            proofs,
        })
    }

    fn recomputed_hash(&self, prev: &[u8]) -> Hash {
        event_hash(
            prev,
            &HashInput {
                position: self.position,
                event_id: self.event_id,
                stream_id: self.stream_id,
                stream_type: &self.stream_type,
                stream_version: self.stream_version,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                payload: self.payload.as_bytes(),
                metadata: self.metadata.as_bytes(),
                command_id: self.command_id,
                occurred_at_us: self.occurred_at_us,
                recorded_at_us: self.recorded_at_us,
            },
        )
    }
}

/// Audit paths for every seal covering each of `positions`, from the hashes of the whole log
/// (`hashes[i]` is the hash of position i + 1).
pub fn proofs_for(hashes: &[Vec<u8>], seals: &[SealRecord], positions: &[i64]) -> Vec<Vec<Proof>> {
    let leaves: Vec<Hash> = hashes.iter().map(|h| leaf_hash(h)).collect();
    let mut tree = Tree::new(&leaves);
    positions
        .iter()
        .map(|&position| {
            seals
                .iter()
                .filter(|s| s.position >= position && s.position as usize <= leaves.len())
                .map(|s| Proof {
                    seal_position: s.position,
                    path: tree.proof(position as usize - 1, s.position as usize).iter().map(hex::encode).collect(),
                })
                .collect()
        })
        .collect()
}

/// What offline verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub events: usize,
    pub seals: usize,
    /// Events of the dossier asked about that are proven under a seal.
    pub dossier_events_proven: usize,
    /// The first problem, in French; `None` when everything verified.
    pub problem: Option<String>,
}

fn hash32(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

/// Verifies a bundle; `dossier` asks to count that dossier's events proven under a seal.
pub fn verify(reader: impl BufRead, dossier: Option<Uuid>) -> Report {
    let mut report = Report { events: 0, seals: 0, dossier_events_proven: 0, problem: None };
    let fail = |mut report: Report, problem: String| {
        report.problem = Some(problem);
        report
    };
    let mut lines = reader.lines().enumerate();
    let header: Header = match lines.next().map(|(_, l)| l.map(|l| serde_json::from_str(&l))) {
        Some(Ok(Ok(header))) => header,
        _ => return fail(report, "La première ligne n'est pas un en-tête de paquet Cachet lisible.".to_owned()),
    };
    if header.format != FORMAT {
        return fail(report, format!("Format de paquet inconnu : « {} ».", header.format));
    }
    let key = hex::decode(&header.public_key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    let Some(key) = key.and_then(|k| VerifyingKey::from_bytes(&k).ok()) else {
        return fail(report, "La clé publique du paquet est illisible.".to_owned());
    };
    let mut roots = std::collections::BTreeMap::new();
    for seal in &header.seals {
        let root = hash32(&seal.root);
        let signature = hex::decode(&seal.signature).ok().and_then(|s| Signature::from_slice(&s).ok());
        let valid = match (root, signature) {
            (Some(root), Some(signature)) => key.verify(&seal_message(seal.position, &root), &signature).is_ok(),
            _ => false,
        };
        if !valid {
            return fail(
                report,
                format!("Le sceau de la position {} n'est pas signé par la clé du paquet.", seal.position),
            );
        }
        roots.insert(seal.position, root.unwrap_or_default());
        report.seals += 1;
    }

    let mut previous: Option<(i64, Hash)> = None;
    let mut leaves: Vec<Hash> = Vec::new();
    for (number, line) in lines {
        let line_number = number + 1;
        let Ok(line) = line else { return fail(report, format!("Ligne {line_number} illisible.")) };
        let Ok(event) = serde_json::from_str::<BundleEvent>(&line) else {
            return fail(report, format!("Ligne {line_number} : événement illisible ou modifié."));
        };
        let p = event.position;
        let (Some(prev), Some(hash)) = (hash32(&event.prev_hash), hash32(&event.hash)) else {
            return fail(report, format!("Position {p} : empreintes illisibles."));
        };
        if event.recomputed_hash(&prev) != hash {
            return fail(report, format!("Position {p} : le contenu ne correspond pas à son empreinte."));
        }
        if header.complete {
            let expected = previous.map_or(1, |(q, _)| q + 1);
            if p != expected {
                return fail(report, format!("Position {expected} : événement manquant dans un paquet complet."));
            }
            if prev != previous.map_or(GENESIS, |(_, h)| h) {
                return fail(report, format!("Position {p} : le chaînage avec l'événement précédent est rompu."));
            }
        } else if let Some((q, h)) = previous {
            if p <= q {
                return fail(report, format!("Position {p} : l'ordre des événements a été modifié."));
            }
            if q == p - 1 && prev != h {
                return fail(report, format!("Position {p} : le chaînage avec l'événement précédent est rompu."));
            }
        }
        for (&seal_position, root) in roots.range(p..) {
            let proof = event.proofs.iter().find(|pr| pr.seal_position == seal_position);
            let path: Option<Vec<Hash>> = proof.map(|pr| pr.path.iter().map(|h| hash32(h)).collect()).unwrap_or(None);
            let proven =
                path.and_then(|path| root_from_proof(leaf_hash(&hash), p as usize - 1, seal_position as usize, &path));
            if proven != Some(*root) {
                return fail(
                    report,
                    format!(
                        "Position {p} : pas de preuve valide d'inclusion sous le sceau de la position {seal_position}."
                    ),
                );
            }
        }
        if dossier == Some(event.stream_id) && roots.range(p..).next().is_some() {
            report.dossier_events_proven += 1;
        }
        if header.complete {
            leaves.push(leaf_hash(&hash));
        }
        previous = Some((p, hash));
        report.events += 1;
    }
    if header.complete {
        let mut tree = Tree::new(&leaves);
        for (&position, root) in &roots {
            if position as usize > leaves.len() {
                return fail(
                    report,
                    format!(
                        "Le sceau de la position {position} couvre des événements absents du paquet (journal tronqué)."
                    ),
                );
            }
            if tree.root(position as usize) != *root {
                return fail(
                    report,
                    format!("La racine du sceau de la position {position} ne correspond pas aux événements."),
                );
            }
        }
    }
    if dossier.is_some() && report.dossier_events_proven == 0 {
        return fail(report, "Aucun événement de ce dossier n'est prouvé sous un sceau dans ce paquet.".to_owned());
    }
    report
}

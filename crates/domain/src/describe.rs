//! What each dossier event means, in one French sentence, for timelines and auditors.

use crate::deadline::Channel;
use crate::dossier::{DossierEvent, PieceDelivery, PieceReview};
use crate::ids::PieceCode;
use crate::session::SessionConfig;
use crate::time::{format_date, format_instant};

fn label(config: Option<&SessionConfig>, piece: &PieceCode) -> String {
    config.and_then(|c| c.piece(piece)).map_or_else(|| piece.to_string(), |p| p.label.clone())
}

fn test_label(config: Option<&SessionConfig>, test: &crate::ids::TestCode) -> String {
    config.and_then(|c| c.test(test)).map_or_else(|| test.to_string(), |t| t.label.clone())
}

/// One French sentence describing the event; the session's catalogue gives the pieces' labels.
pub fn describe(event: &DossierEvent, config: Option<&SessionConfig>) -> String {
    use DossierEvent as E;
    match event {
        E::PreRegistered { user_code, registered_at, .. } => {
            format!("Préinscription enregistrée le {} (code utilisateur {user_code}).", format_instant(*registered_at))
        }
        E::PieceUploaded { piece, file, replaced } => format!(
            "Pièce « {} » {} en ligne ({}, {} octets).",
            label(config, piece),
            if replaced.is_some() { "remplacée" } else { "déposée" },
            file.filename,
            file.size
        ),
        E::PieceRemoved { piece, .. } => format!("Pièce « {} » retirée avant la clôture.", label(config, piece)),
        E::RegistrationClosed { verdict, pieces, .. } => {
            format!("Inscription clôturée en ligne avec {} pièce(s). {}.", pieces.len(), verdict.explanation())
        }
        E::PostalReceiptRecorded { arrival_date, incident, verdict, .. } => {
            let incident = incident.map(|i| format!(" Incident de transmission : {}.", i.label())).unwrap_or_default();
            format!(
                "Dossier reçu par voie postale le {}. {}.{incident}",
                format_date(*arrival_date),
                verdict.explanation()
            )
        }
        E::CounterReceiptRecorded { verdict, .. } => format!("Dossier déposé à l'accueil. {}.", verdict.explanation()),
        E::IntakeRefused { form, received_on } => {
            format!("Dossier {} reçu le {} : forme refusée.", form.label(), format_date(*received_on))
        }
        E::Rejected { reason } => format!("Dossier rejeté. {}", reason.message()),
        E::Transferred => {
            "Dossier transféré dans le logiciel par le service concours : instruction ouverte.".to_owned()
        }
        E::PieceReviewed { piece, review } => {
            let outcome = match review {
                PieceReview::Accepted => "acceptée".to_owned(),
                PieceReview::Refused { reason } => format!("refusée ({reason})"),
                PieceReview::Missing => "manquante".to_owned(),
            };
            format!("Pièce « {} » examinée : {outcome}.", label(config, piece))
        }
        E::MarkedIncomplete { missing } => format!(
            "Dossier déclaré incomplet ; pièces manquantes : {}.",
            missing.iter().map(|m| m.describe()).collect::<Vec<_>>().join(", ")
        ),
        E::MarkedComplete => "Dossier déclaré complet.".to_owned(),
        E::MissingPieceReceived { piece, delivery } => {
            let how = match delivery {
                PieceDelivery::Online { .. } => Channel::Online.label().to_owned(),
                PieceDelivery::Post { postmark_date, .. } => {
                    format!("{} (cachet du {})", Channel::Post.label(), format_date(*postmark_date))
                }
                PieceDelivery::Counter { received_at } => {
                    format!("{} le {}", Channel::Counter.label(), format_instant(*received_at))
                }
            };
            format!("Pièce manquante « {} » reçue {how}.", label(config, piece))
        }
        E::ReviewResumed => "Toutes les pièces manquantes sont reçues : instruction reprise.".to_owned(),
        E::Lapsed { deadline } => format!("Dossier non parvenu à la date limite du {}.", format_date(*deadline)),
        E::Withdrawn { reason, .. } => match reason {
            Some(reason) => format!("Désistement enregistré ({reason})."),
            None => "Désistement enregistré.".to_owned(),
        },
        E::ConvocationPublished { test, .. } => {
            format!("Convocation à l'épreuve « {} » publiée.", test_label(config, test))
        }
        E::ConvocationWithheld { test, reason } => {
            format!("Convocation à l'épreuve « {} » retenue ({reason}).", test_label(config, test))
        }
        E::ConvocationDownloaded { test } => {
            format!("Convocation à l'épreuve « {} » téléchargée par le candidat.", test_label(config, test))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadline::judge_postmark;
    use chrono::NaiveDate;

    #[test]
    fn a_late_postal_receipt_is_described_with_its_explanation() {
        let deadline = NaiveDate::from_ymd_opt(2023, 7, 6).unwrap();
        let postmark = NaiveDate::from_ymd_opt(2023, 7, 7).unwrap();
        let event = DossierEvent::PostalReceiptRecorded {
            postmark_date: postmark,
            arrival_date: NaiveDate::from_ymd_opt(2023, 7, 10).unwrap(),
            incident: None,
            verdict: judge_postmark(postmark, deadline),
        };
        assert_eq!(
            describe(&event, None),
            "Dossier reçu par voie postale le 10/07/2023. Cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023."
        );
    }

    #[test]
    fn pieces_are_named_by_their_label_in_the_catalogue() {
        let config = crate::demo::source_session();
        let event = DossierEvent::PieceRemoved {
            piece: PieceCode::parse("etat-services").unwrap(),
            removed: crate::ids::Sha256Hex::parse(&"a".repeat(64)).unwrap(),
        };
        assert_eq!(
            describe(&event, Some(&config)),
            "Pièce « État des services établi par l'employeur » retirée avant la clôture."
        );
    }
}

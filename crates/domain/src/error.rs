//! Domain errors: typed, each with a French message fit to show the person who sent the command.
//!
//! Policy: `thiserror` here and in every library crate, `anyhow` only at the edges (the CLI and
//! start-up). The API maps each variant to an HTTP status and uses the message as the problem's
//! `detail`; it never adds internal text to it.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error("La valeur « {value} » n'est pas un {what} valide.")]
    InvalidIdentifier { what: &'static str, value: String },

    #[error("Le code utilisateur doit comporter 8 caractères (lettres majuscules et chiffres de 2 à 9).")]
    InvalidUserCode,

    #[error("La configuration de la session est invalide : {0}")]
    InvalidSessionConfig(String),

    #[error("Cette session d'examen est déjà ouverte.")]
    SessionAlreadyOpened,

    #[error("Cette session d'examen n'existe pas.")]
    SessionNotOpened,

    #[error("La nouvelle date limite ({requested}) doit être postérieure à la date limite actuelle ({current}).")]
    DeadlineNotLater { current: String, requested: String },

    #[error("Ce dossier existe déjà.")]
    DossierAlreadyExists,

    #[error("Ce dossier n'existe pas.")]
    DossierNotFound,

    #[error("Ce dossier n'appartient pas à cette session d'examen.")]
    WrongSession,

    #[error("Vous n'êtes pas autorisé(e) à {action}.")]
    NotAllowed { action: &'static str },

    #[error("Impossible {} : le dossier est {status}.", de(action))]
    InvalidTransition { action: &'static str, status: &'static str },

    #[error("La pièce « {piece} » ne fait pas partie du dossier de cette session.")]
    UnknownPiece { piece: String },

    #[error("Aucun fichier n'est déposé pour la pièce « {label} ».")]
    NoFileForPiece { label: String },

    #[error("Vous ne pouvez pas clôturer votre inscription tant que votre « {label} » n'est pas joint.")]
    RegistrationFormMissing { label: String },

    #[error("La clôture de l'inscription n'est plus possible : {explanation}.")]
    ClosureAfterDeadline { explanation: String },

    #[error("Le dépôt en ligne n'est plus possible : la date limite du {deadline} est dépassée.")]
    UploadAfterDeadline { deadline: String },

    #[error("La date du cachet de la poste ({postmark}) ne peut pas être dans le futur.")]
    PostmarkInFuture { postmark: String },

    #[error("La date d'arrivée ({arrival}) ne peut pas être dans le futur.")]
    ArrivalInFuture { arrival: String },

    #[error("La date d'arrivée ({arrival}) est antérieure à la date du cachet de la poste ({postmark}).")]
    ArrivalBeforePostmark { arrival: String, postmark: String },

    #[error("La date et l'heure du dépôt à l'accueil ({at}) ne peuvent pas être dans le futur.")]
    CounterReceiptInFuture { at: String },

    #[error("L'accueil est fermé le {at} : un dépôt à l'accueil ne peut être enregistré qu'aux horaires d'ouverture ({hours}).")]
    CounterClosed { at: String, hours: String },

    #[error("La pièce « {label} » ne figure pas parmi les pièces manquantes de ce dossier.")]
    PieceNotMissing { label: String },

    #[error("L'épreuve « {test} » n'existe pas dans cette session.")]
    UnknownTest { test: String },

    #[error("La publication des convocations à l'épreuve « {label} » n'est plus possible : elles doivent être disponibles au moins {days} jours avant l'épreuve, soit au plus tard le {limit}.")]
    ConvocationTooLate { label: String, days: u32, limit: String },

    #[error("La convocation à l'épreuve « {label} » est déjà publiée.")]
    ConvocationAlreadyPublished { label: String },

    #[error("Aucune convocation n'est disponible pour l'épreuve « {label} ».")]
    ConvocationNotPublished { label: String },

    #[error("Les préinscriptions sont closes depuis la date limite du {deadline}.")]
    PreRegistrationClosed { deadline: String },

    #[error("La pièce « {label} » a été reçue mais n'a pas encore été examinée : examinez-la avant de conclure l'instruction.")]
    PieceAwaitingReview { label: String },

    #[error("Un motif est obligatoire.")]
    ReasonRequired,

    #[error("Le dossier ne peut être déclaré non parvenu qu'après la date limite du {deadline}.")]
    LapseBeforeDeadline { deadline: String },
}

/// `de transférer`, `d'enregistrer`: the preposition, elided before a vowel or a mute h.
fn de(infinitive: &str) -> String {
    let elided = infinitive.chars().next().is_some_and(|c| "aeiouyhéèêâîôûAEIOUYH".contains(c));
    if elided {
        format!("d'{infinitive}")
    } else {
        format!("de {infinitive}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preposition_is_elided_before_a_vowel() {
        let e = DomainError::InvalidTransition { action: "enregistrer un désistement", status: "rejeté" };
        assert_eq!(e.to_string(), "Impossible d'enregistrer un désistement : le dossier est rejeté.");
        let e = DomainError::InvalidTransition { action: "transférer le dossier", status: "complet" };
        assert_eq!(e.to_string(), "Impossible de transférer le dossier : le dossier est complet.");
    }
}

//! The documents Cachet generates for candidates, as PDF: the *dossier de pré-inscription* to
//! print, date and sign; the *récépissé* of an online closure; convocations.
//!
//! Inputs are plain, already formatted French strings, so this crate knows nothing of the
//! domain. Output is deterministic (no creation date, no random identifier): the same input
//! gives the same bytes, hence the same content address. Text is set in the PDF standard fonts
//! Helvetica and Helvetica-Bold with WinAnsiEncoding, so no font file ships and text
//! extraction (`pdftotext`) reads the accents back.

mod layout;
mod winansi;

use layout::{Style, Writer};

/// A labelled value, e.g. « Nom : MARTIN ».
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub label: String,
    pub value: String,
}

/// A piece of the session's catalogue, as the form lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PieceLine {
    pub label: String,
    pub required: bool,
    /// The red-dot piece: the dossier de pré-inscription itself.
    pub registration_form: bool,
}

/// The printable « dossier de pré-inscription » produced at the end of pre-registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreRegistrationForm {
    pub organiser: String,
    pub session_title: String,
    pub user_code: String,
    pub dossier_number: String,
    /// E.g. « le 06/07/2023 à 14h05 ».
    pub registered_at: String,
    /// E.g. « 06/07/2023 ».
    pub deadline: String,
    pub candidate: Vec<Field>,
    pub pieces: Vec<PieceLine>,
}

/// The deposit receipt (*récépissé*) of an online closure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositReceipt {
    pub organiser: String,
    pub session_title: String,
    pub user_code: String,
    pub dossier_number: String,
    pub candidate_name: String,
    /// E.g. « le 06/07/2023 à 23h59 ».
    pub closed_at: String,
    /// Piece label → deposited file name.
    pub pieces: Vec<Field>,
}

/// A convocation to a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Convocation {
    pub organiser: String,
    pub session_title: String,
    pub candidate_name: String,
    pub user_code: String,
    /// E.g. « Épreuve écrite d'admissibilité ».
    pub test_label: String,
    /// E.g. « le 12/10/2023 à 09h00 ».
    pub date_time: String,
    pub place: String,
    pub address: String,
    pub access_plan_url: String,
}

fn header(w: &mut Writer, organiser: &str, session_title: &str, title: &str) {
    w.paragraph(organiser, Style::Small);
    w.space(6.0);
    w.paragraph(title, Style::Title);
    w.space(4.0);
    w.paragraph(session_title, Style::Bold);
    w.space(10.0);
}

/// The dossier de pré-inscription: who the candidate is, the pieces to join (the red-dot one
/// first among equals), the deadline and a box to date and sign. Long lists run onto further pages.
pub fn pre_registration_form(doc: &PreRegistrationForm) -> Vec<u8> {
    let title = "Dossier de pré-inscription";
    let mut w = Writer::new(title, &format!("{title} – code utilisateur {}", doc.user_code));
    header(&mut w, &doc.organiser, &doc.session_title, title);
    w.paragraph(&format!("Code utilisateur : {}", doc.user_code), Style::Bold);
    w.paragraph(&format!("Dossier n° {}", doc.dossier_number), Style::Normal);
    w.paragraph(&format!("Préinscription enregistrée {}", doc.registered_at), Style::Normal);
    w.space(6.0);
    w.paragraph(
        "Nous vous rappelons que la préinscription sur Internet ne constitue pas une inscription définitive : \
         l'inscription n'est validée qu'au dépôt de ce dossier complet, imprimé, daté et signé, accompagné des pièces \
         demandées.",
        Style::Normal,
    );
    w.heading("Candidat");
    for field in &doc.candidate {
        w.paragraph(&format!("{} : {}", field.label, field.value), Style::Normal);
    }
    w.heading("Pièces à joindre");
    for piece in &doc.pieces {
        if piece.registration_form {
            w.red_dot(&format!(
                "{} (pastille rouge : à joindre obligatoirement pour clôturer l'inscription)",
                piece.label
            ));
        } else if piece.required {
            w.bullet(&format!("{} (obligatoire)", piece.label));
        } else {
            w.bullet(&format!("{} (si concerné(e))", piece.label));
        }
    }
    w.space(10.0);
    w.paragraph(
        &format!(
            "Date limite de dépôt : le {} (dernier délai) — le cachet de la poste faisant foi. Tout dossier déposé ou \
             posté hors délai sera rejeté.",
            doc.deadline
        ),
        Style::Bold,
    );
    w.paragraph(
        "Aucun dossier photocopié, converti dans un autre format et modifié, transmis par télécopie ou messagerie \
         électronique ne sera accepté. Les captures d'écran seront également rejetées.",
        Style::Normal,
    );
    w.space(14.0);
    w.signature_box(&["Fait à …………………………………………, le ……………………………", "Signature du candidat"]);
    w.finish()
}

/// The récépissé of an online closure: when the registration was closed and which file was
/// deposited for each piece.
pub fn deposit_receipt(doc: &DepositReceipt) -> Vec<u8> {
    let title = "Récépissé de dépôt";
    let mut w = Writer::new(title, &format!("{title} – dossier n° {}", doc.dossier_number));
    header(&mut w, &doc.organiser, &doc.session_title, title);
    w.paragraph(&format!("Candidat : {}", doc.candidate_name), Style::Normal);
    w.paragraph(&format!("Code utilisateur : {}", doc.user_code), Style::Normal);
    w.paragraph(&format!("Dossier n° {}", doc.dossier_number), Style::Normal);
    w.space(8.0);
    w.paragraph(&format!("Inscription clôturée {}.", doc.closed_at), Style::Bold);
    w.heading("Pièces déposées");
    if doc.pieces.is_empty() {
        w.paragraph("Aucune pièce.", Style::Normal);
    }
    for piece in &doc.pieces {
        w.bullet(&format!("{} : {}", piece.label, piece.value));
    }
    w.space(10.0);
    w.paragraph(
        "Tant que votre dossier n'a pas été transféré dans le logiciel par le service concours, votre espace \
         sécurisé candidat le présente « en attente ». Une fois transféré, il y figure comme reçu et en cours \
         d'instruction. Conservez ce récépissé.",
        Style::Normal,
    );
    w.finish()
}

/// A convocation to one test: when, where, the access plan, and what to bring.
pub fn convocation(doc: &Convocation) -> Vec<u8> {
    let title = "Convocation";
    let mut w = Writer::new(title, &format!("{title} – code utilisateur {}", doc.user_code));
    header(&mut w, &doc.organiser, &doc.session_title, title);
    w.paragraph(&format!("Candidat : {}", doc.candidate_name), Style::Normal);
    w.paragraph(&format!("Code utilisateur : {}", doc.user_code), Style::Normal);
    w.heading(&doc.test_label);
    w.paragraph(&format!("Date et heure : {}", doc.date_time), Style::Bold);
    w.paragraph(&format!("Lieu : {}", doc.place), Style::Normal);
    w.paragraph(&format!("Adresse : {}", doc.address), Style::Normal);
    w.paragraph(&format!("Plan d'accès : {}", doc.access_plan_url), Style::Normal);
    w.space(12.0);
    w.paragraph("À imprimer et à présenter avec une pièce d'identité.", Style::Bold);
    w.finish()
}

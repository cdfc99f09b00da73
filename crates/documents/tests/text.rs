//! The generated PDFs read back with poppler's `pdftotext`: the French text, accents and
//! guillemets included, comes out as written. Without pdftotext these tests skip with a message,
//! except with `CI=true`, where that is a failure.

use cachet_documents::{
    convocation, deposit_receipt, pre_registration_form, Convocation, DepositReceipt, Field, PieceLine,
    PreRegistrationForm,
};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The text of a PDF and its number of pages, or `None` when poppler is missing outside CI.
fn extract(pdf: &[u8]) -> Option<(String, usize)> {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, pdf).expect("write the PDF");
    let output = match std::process::Command::new("pdftotext").arg("-layout").arg(&path).arg("-").output() {
        Ok(output) => output,
        Err(e) => {
            assert!(!in_ci(), "CI=true and pdftotext (poppler-utils) is missing: {e}");
            eprintln!("pdftotext missing: PDF text test skipped");
            return None;
        }
    };
    assert!(output.status.success(), "pdftotext reads the document: {}", String::from_utf8_lossy(&output.stderr));
    let info = std::process::Command::new("pdfinfo").arg(&path).output().expect("pdfinfo");
    let info = String::from_utf8(info.stdout).expect("UTF-8");
    let pages =
        info.lines().find_map(|l| l.strip_prefix("Pages:")).and_then(|n| n.trim().parse().ok()).expect("a page count");
    Some((String::from_utf8(output.stdout).expect("UTF-8 text"), pages))
}

fn field(label: &str, value: &str) -> Field {
    Field { label: label.to_owned(), value: value.to_owned() }
}

fn form(pieces: Vec<PieceLine>) -> PreRegistrationForm {
    PreRegistrationForm {
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        session_title: "Examen professionnel d'adjoint technique territorial principal de 2e classe – session 2024"
            .to_owned(),
        user_code: "7K3M9Q2X".to_owned(),
        dossier_number: "0192c3d4-0000-7000-8000-000000000001".to_owned(),
        registered_at: "le 06/07/2023 à 14h05".to_owned(),
        deadline: "06/07/2023".to_owned(),
        candidate: vec![
            field("Nom", "LEFÈVRE"),
            field("Prénom", "Hélène"),
            field("Date de naissance", "14/03/1985"),
            field("Grade actuel", "Adjoint technique territorial"),
        ],
        pieces,
    }
}

fn piece(label: &str, required: bool, registration_form: bool) -> PieceLine {
    PieceLine { label: label.to_owned(), required, registration_form }
}

#[test]
fn the_pre_registration_form_reads_back_in_french() {
    let pdf = pre_registration_form(&form(vec![
        piece("Dossier de pré-inscription daté et signé", true, true),
        piece("État des services établi par l'employeur", true, false),
        piece("Demande d'aménagement d'épreuves", false, false),
    ]));
    assert!(pdf.starts_with(b"%PDF-"));
    let Some((text, pages)) = extract(&pdf) else { return };
    assert_eq!(pages, 1);
    for expected in [
        "Dossier de pré-inscription",
        "Centre de Gestion de l'Orne",
        "principal de 2e classe – session 2024",
        "Code utilisateur : 7K3M9Q2X",
        "Préinscription enregistrée le 06/07/2023 à 14h05",
        "Nom : LEFÈVRE",
        "Prénom : Hélène",
        "Grade actuel : Adjoint technique territorial",
        "Pièces à joindre",
        "Dossier de pré-inscription daté et signé (pastille rouge",
        "État des services établi par l'employeur (obligatoire)",
        "Demande d'aménagement d'épreuves (si concerné(e))",
        "le cachet de la poste faisant foi",
        "dossier déposé ou posté hors délai sera rejeté.",
        "Signature du candidat",
    ] {
        assert!(text.contains(expected), "« {expected} » in:\n{text}");
    }
}

#[test]
fn a_long_catalogue_continues_on_a_second_page() {
    let pieces = (1..=100).map(|n| piece(&format!("Pièce justificative n° {n}"), n % 2 == 0, n == 1)).collect();
    let pdf = pre_registration_form(&form(pieces));
    let Some((text, pages)) = extract(&pdf) else { return };
    assert!(pages >= 2, "{pages} page(s)");
    assert!(text.contains("Pièce justificative n° 100 (obligatoire)"), "{text}");
    assert!(text.contains("Signature du candidat"));
}

#[test]
fn the_receipt_and_the_convocation_read_back_in_french() {
    let receipt = deposit_receipt(&DepositReceipt {
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        session_title: "Examen professionnel – session 2024".to_owned(),
        user_code: "7K3M9Q2X".to_owned(),
        dossier_number: "42".to_owned(),
        candidate_name: "Hélène LEFÈVRE".to_owned(),
        closed_at: "le 06/07/2023 à 23h59".to_owned(),
        pieces: vec![field("Dossier de pré-inscription daté et signé", "dossier-signé.pdf")],
    });
    let Some((text, _)) = extract(&receipt) else { return };
    for expected in [
        "Récépissé de dépôt",
        "Candidat : Hélène LEFÈVRE",
        "Inscription clôturée le 06/07/2023 à 23h59.",
        "Dossier de pré-inscription daté et signé : dossier-signé.pdf",
        "« en attente »",
    ] {
        assert!(text.contains(expected), "« {expected} » in:\n{text}");
    }

    let convocation = convocation(&Convocation {
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        session_title: "Examen professionnel – session 2024".to_owned(),
        candidate_name: "Hélène LEFÈVRE".to_owned(),
        user_code: "7K3M9Q2X".to_owned(),
        test_label: "Épreuve écrite d'admissibilité".to_owned(),
        date_time: "le 12/10/2023 à 09h00".to_owned(),
        place: "Centre de Gestion de l'Orne".to_owned(),
        address: "2 rue François Arago, 61250 Valframbert".to_owned(),
        access_plan_url: "https://www.cdg61.fr/plans/admissibilite.pdf".to_owned(),
    });
    let Some((text, _)) = extract(&convocation) else { return };
    for expected in [
        "Convocation",
        "Épreuve écrite d'admissibilité",
        "Date et heure : le 12/10/2023 à 09h00",
        "Adresse : 2 rue François Arago, 61250 Valframbert",
        "Plan d'accès : https://www.cdg61.fr/plans/admissibilite.pdf",
        "À imprimer et à présenter avec une pièce d'identité.",
    ] {
        assert!(text.contains(expected), "« {expected} » in:\n{text}");
    }
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let doc = form(vec![piece("Dossier de pré-inscription daté et signé", true, true)]);
    assert_eq!(pre_registration_form(&doc), pre_registration_form(&doc));
}

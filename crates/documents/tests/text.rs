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

/// The text of each page of a PDF, read back by `pdftotext -layout`, or `None` when poppler is
/// missing outside CI. The page count is checked against `pdfinfo`.
fn extract(pdf: &[u8]) -> Option<Vec<String>> {
    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("document.pdf");
    std::fs::write(&path, pdf).expect("write the PDF");
    let output = match std::process::Command::new("pdftotext").arg("-layout").arg(&path).arg("-").output() {
        Ok(output) => output,
        Err(e) => {
            assert!(!in_ci(), "CI=true and pdftotext (poppler-utils) is missing: {e}");
            eprintln!("pdftotext (poppler-utils) missing: PDF text test skipped");
            return None;
        }
    };
    assert!(output.status.success(), "pdftotext reads the document: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("UTF-8 text");
    let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
    if pages.last().is_some_and(|p| p.trim().is_empty()) {
        pages.pop();
    }
    let info = std::process::Command::new("pdfinfo").arg(&path).output().expect("pdfinfo (poppler-utils)");
    let info = String::from_utf8(info.stdout).expect("UTF-8");
    let count: usize =
        info.lines().find_map(|l| l.strip_prefix("Pages:")).and_then(|n| n.trim().parse().ok()).expect("a page count");
    assert_eq!(count, pages.len(), "pdfinfo and pdftotext agree on the pages");
    assert!(info.contains("841.89") && info.contains("595.28"), "A4 pages: {info}");
    Some(pages)
}

/// Text with every run of whitespace (line ends of wrapped paragraphs, layout padding, page
/// breaks) as one space, so that a sentence reads back whole wherever the lines broke.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn assert_contains(text: &str, expected: &[&str]) {
    let flat = flat(text);
    for expected in expected {
        assert!(flat.contains(expected), "« {expected} » in:\n{text}");
    }
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

fn receipt() -> DepositReceipt {
    DepositReceipt {
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        session_title: "Examen professionnel – session 2024".to_owned(),
        user_code: "7K3M9Q2X".to_owned(),
        dossier_number: "42".to_owned(),
        candidate_name: "Hélène LEFÈVRE".to_owned(),
        closed_at: "le 06/07/2023 à 23h59".to_owned(),
        pieces: vec![
            field("Dossier de pré-inscription daté et signé", "dossier-signé.pdf"),
            field("État des services", "état des services 2023.pdf"),
        ],
    }
}

fn a_convocation() -> Convocation {
    Convocation {
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        session_title: "Examen professionnel – session 2024".to_owned(),
        candidate_name: "Hélène LEFÈVRE".to_owned(),
        user_code: "7K3M9Q2X".to_owned(),
        test_label: "Épreuve d'admissibilité".to_owned(),
        date_time: "le 12/10/2023 à 09h00".to_owned(),
        place: "Centre de Gestion de l'Orne".to_owned(),
        address: "2 rue François Arago, 61250 Valframbert".to_owned(),
        access_plan_url: "https://www.cdg61.fr/plans/admissibilite.pdf".to_owned(),
    }
}

#[test]
fn the_pre_registration_form_reads_back_in_french() {
    let pdf = pre_registration_form(&form(vec![
        piece("Dossier de pré-inscription daté et signé", true, true),
        piece("État des services établi par l’employeur", true, false),
        piece("Demande d'aménagement d'épreuves", false, false),
    ]));
    assert!(pdf.starts_with(b"%PDF-"));
    let Some(pages) = extract(&pdf) else { return };
    assert_eq!(pages.len(), 1);
    assert_contains(
        &pages[0],
        &[
            "Dossier de pré-inscription",
            "Centre de Gestion de l'Orne",
            "Examen professionnel d'adjoint technique territorial principal de 2e classe – session 2024",
            "Code utilisateur : 7K3M9Q2X",
            "Dossier n° 0192c3d4-0000-7000-8000-000000000001",
            "Préinscription enregistrée le 06/07/2023 à 14h05",
            "Nom : LEFÈVRE",
            "Prénom : Hélène",
            "Date de naissance : 14/03/1985",
            "Grade actuel : Adjoint technique territorial",
            "Pièces à joindre",
            "Dossier de pré-inscription daté et signé (pastille rouge : à joindre obligatoirement pour clôturer \
             l'inscription)",
            "État des services établi par l’employeur (obligatoire)",
            "Demande d'aménagement d'épreuves (si concerné(e))",
            "Date limite de dépôt : le 06/07/2023 (dernier délai) — le cachet de la poste faisant foi. Tout dossier \
             déposé ou posté hors délai sera rejeté.",
            "Fait à ……",
            ", le ……",
            "Signature du candidat",
            "Dossier de pré-inscription – code utilisateur 7K3M9Q2X – page 1 sur 1",
        ],
    );
}

#[test]
fn a_long_catalogue_continues_on_a_second_page() {
    let pieces = (1..=100)
        .map(|n| {
            piece(&format!("Pièce justificative n° {n} établie par l'employeur ou l'organisme"), n % 2 == 0, n == 1)
        })
        .collect();
    let pdf = pre_registration_form(&form(pieces));
    let Some(pages) = extract(&pdf) else { return };
    assert!(pages.len() >= 2, "{} page(s)", pages.len());
    let all = pages.join("\n");
    for n in 1..=100 {
        assert_contains(&all, &[&format!("Pièce justificative n° {n} établie par l'employeur ou l'organisme (")]);
    }
    let hundredth = "Pièce justificative n° 100 établie par l'employeur ou l'organisme (obligatoire)";
    assert!(!flat(&pages[0]).contains(hundredth), "the 100th piece is not on page 1");
    assert!(pages[1..].iter().any(|p| flat(p).contains(hundredth)), "the 100th piece is on a later page");
    assert_contains(&pages[1], &[&format!("page 2 sur {}", pages.len())]);
    assert_contains(&pages[pages.len() - 1], &["Signature du candidat", "hors délai sera rejeté."]);
}

#[test]
fn the_receipt_reads_back_in_french() {
    let Some(pages) = extract(&deposit_receipt(&receipt())) else { return };
    assert_eq!(pages.len(), 1);
    assert_contains(
        &pages[0],
        &[
            "Récépissé de dépôt",
            "Centre de Gestion de l'Orne",
            "Examen professionnel – session 2024",
            "Candidat : Hélène LEFÈVRE",
            "Code utilisateur : 7K3M9Q2X",
            "Dossier n° 42",
            "Inscription clôturée le 06/07/2023 à 23h59.",
            "Pièces déposées",
            "Dossier de pré-inscription daté et signé : dossier-signé.pdf",
            "État des services : état des services 2023.pdf",
            "« en attente »",
            "service concours",
        ],
    );
}

#[test]
fn the_convocation_reads_back_in_french() {
    let Some(pages) = extract(&convocation(&a_convocation())) else { return };
    assert_eq!(pages.len(), 1);
    assert_contains(
        &pages[0],
        &[
            "Convocation",
            "Examen professionnel – session 2024",
            "Candidat : Hélène LEFÈVRE",
            "Code utilisateur : 7K3M9Q2X",
            "Épreuve d'admissibilité",
            "Date et heure : le 12/10/2023 à 09h00",
            "Lieu : Centre de Gestion de l'Orne",
            "Adresse : 2 rue François Arago, 61250 Valframbert",
            "Plan d'accès : https://www.cdg61.fr/plans/admissibilite.pdf",
            "À imprimer et à présenter avec une pièce d'identité.",
        ],
    );
}

#[test]
fn text_outside_winansi_reads_back_as_a_close_substitute() {
    let mut doc = form(vec![piece("Dossier de pré-inscription daté et signé", true, true)]);
    doc.candidate = vec![field("Nom", "Łukasz Ștefănescu"), field("Ville", "Saint\u{2011}Lô\u{202f}:")];
    let Some(pages) = extract(&pre_registration_form(&doc)) else { return };
    assert_contains(&pages[0], &["Nom : Lukasz Stefanescu", "Ville : Saint-Lô :"]);
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    let doc = form((1..=60).map(|n| piece(&format!("Pièce n° {n}"), n % 3 != 0, n == 1)).collect());
    assert_eq!(pre_registration_form(&doc), pre_registration_form(&doc.clone()));
    assert_eq!(deposit_receipt(&receipt()), deposit_receipt(&receipt()));
    assert_eq!(convocation(&a_convocation()), convocation(&a_convocation()));
    // No creation date nor random identifier: nothing in the bytes depends on when they were made.
    let pdf = String::from_utf8_lossy(&pre_registration_form(&doc)).into_owned();
    assert!(!pdf.contains("/CreationDate") && !pdf.contains("/ID"), "{pdf}");
    assert_ne!(pre_registration_form(&doc), pre_registration_form(&form(Vec::new())));
}

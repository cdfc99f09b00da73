//! The exports of a session's dossiers open: the CSV parses with its BOM and `;` separator, the
//! XLSX reads back, both with the French headers and the values the API shows.

use std::io::Cursor;

use cachet_api::accounts::{self, CandidateAccount, Identity};
use cachet_domain::time::{format_date, format_time, paris_datetime};
use calamine::{Reader, Xlsx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::harness::{candidate, days_from_today, paris, Caller, DossierView, TestApp};

const HEADERS: [&str; 11] = [
    "Code utilisateur",
    "Nom",
    "Prénom",
    "État",
    "Canal de dépôt",
    "Dépôt dans les délais",
    "Explication",
    "Préinscription",
    "Dernière modification",
    "Pièces manquantes",
    "Motif de rejet",
];

/// `06/07/2023 14h05`, in Paris time.
fn paris_instant(at: DateTime<Utc>) -> String {
    let local = paris_datetime(at);
    format!("{} {}", format_date(local.date()), format_time(local.time()))
}

/// Gives a dossier pre-registered through the API the account a web pre-registration creates.
async fn name(app: &TestApp, session: Uuid, candidate: Caller, view: &DossierView, last: &str, first: &str) {
    let Caller::Candidate(candidate_id) = candidate else { panic!("a candidate") };
    let account = CandidateAccount {
        user_code: view.user_code.clone(),
        candidate_id,
        dossier_id: view.dossier_id,
        session_id: session,
        identity: Identity {
            last_name: last.to_owned(),
            first_name: first.to_owned(),
            birth_date: chrono::NaiveDate::from_ymd_opt(1980, 5, 6).expect("date"),
            address: "1 rue de la Poste".to_owned(),
            email: "candidat@exemple.fr".to_owned(),
            phone: "0233000000".to_owned(),
            answers: Default::default(),
        },
        password_hash: "-".to_owned(),
        created_at: view.registered_at,
    };
    assert!(accounts::create_candidate(app.read_db(), &account).await.expect("account"));
}

/// A session closed three days ago with a dossier on time by post, one late by post (rejected),
/// one incomplete with two missing pieces and one only pre-registered; the rows expected.
async fn session_with_four_dossiers(app: &TestApp) -> (Uuid, Vec<[String; 11]>) {
    let deadline = days_from_today(-3);
    let session = app.session_until(deadline).await;
    let registered = paris(days_from_today(-10), 10, 15);
    let (on_time, late, incomplete, waiting) = (candidate(), candidate(), candidate(), candidate());

    let a = app.pre_registered_on(session, on_time, registered).await;
    app.record_postal_receipt(a, deadline, days_from_today(-1)).await.done();
    let b = app.pre_registered_on(session, late, registered).await;
    app.record_postal_receipt(b, days_from_today(-2), days_from_today(-1)).await.done();
    let c = app.pre_registered_on(session, incomplete, registered).await;
    app.record_postal_receipt(c, deadline, days_from_today(-2)).await.done();
    app.transfer(c).await.done();
    app.accept_piece(c, "dossier-preinscription").await.done();
    app.mark_piece_missing(c, "etat-services").await.done();
    app.mark_piece_missing(c, "arrete-situation").await.done();
    app.conclude_review(c).await.done();
    let d = app.pre_registered_on(session, waiting, registered).await;

    let (a, b, c, d) = (app.status(a).await, app.status(b).await, app.status(c).await, app.status(d).await);
    name(app, session, on_time, &a, "Dupont", "Camille").await;
    // A name with the separator and a quote: the CSV quotes it.
    name(app, session, late, &b, "Le Gall; \"dit Tardif\"", "Yann").await;
    assert_eq!(
        [a.status.as_str(), b.status.as_str(), c.status.as_str(), d.status.as_str()],
        ["deposited", "rejected", "incomplete", "pre_registered"]
    );
    let dl = format_date(deadline);
    assert_eq!(
        a.deposit.as_ref().expect("deposit").explanation,
        format!("Cachet de la poste du {dl}, dans les délais (date limite : {dl})")
    );
    let late_explanation =
        format!("Cachet de la poste du {}, postérieur à la date limite du {dl}", format_date(days_from_today(-2)));
    assert_eq!(b.deposit.as_ref().expect("deposit").explanation, late_explanation);
    assert_eq!(c.missing, ["État des services établi par l'employeur", "Dernier arrêté de situation administrative"]);

    let row = |view: &DossierView, last: &str, first: &str, label: &str, on_time: &str| {
        let deposit = view.deposit.as_ref();
        [
            view.user_code.clone(),
            last.to_owned(),
            first.to_owned(),
            label.to_owned(),
            deposit.map(|_| "par voie postale".to_owned()).unwrap_or_default(),
            on_time.to_owned(),
            deposit.map(|d| d.explanation.clone()).unwrap_or_default(),
            paris_instant(view.registered_at),
            String::new(), // « Dernière modification »: checked apart
            view.missing.join(" ; "),
            view.rejection.clone().unwrap_or_default(),
        ]
    };
    let mut rows = vec![
        row(&a, "Dupont", "Camille", "déposé, en attente de transfert", "oui"),
        row(&b, "Le Gall; \"dit Tardif\"", "Yann", "rejeté", "non"),
        row(&c, "", "", "incomplet", "oui"),
        row(&d, "", "", "en attente de dépôt", ""),
    ];
    assert_eq!(rows[0][7], paris_instant(registered));
    assert_eq!(
        rows[1][10],
        format!(
            "Votre dossier a été rejeté car il a été déposé ou posté hors délai : cachet de la poste du {}, \
             postérieur à la date limite du {dl}.",
            format_date(days_from_today(-2))
        )
    );
    assert_eq!(rows[2][9], "État des services établi par l'employeur ; Dernier arrêté de situation administrative");
    rows.sort_by(|x, y| x[0].cmp(&y[0]));
    (session, rows)
}

/// The cells of a row but « Dernière modification », which must be a Paris date and time.
fn without_updated_at(mut cells: Vec<String>) -> Vec<String> {
    let updated = std::mem::take(&mut cells[8]);
    let today = format_date(days_from_today(0));
    // Written today, unless midnight passed during the test.
    assert!(updated.len() == 16 && updated.contains('h'), "{updated}");
    assert!(updated.starts_with(&today) || updated.starts_with(&format_date(days_from_today(-1))), "{updated}");
    cells
}

pub async fn the_csv_export_parses_with_its_bom_and_separator(app: &TestApp) {
    let (session, expected) = session_with_four_dossiers(app).await;
    let reply = app.get(&format!("/api/sessions/{session}/export.csv"), Caller::Auditor).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type").as_deref(), Some("text/csv; charset=utf-8"));
    assert_eq!(reply.header("content-disposition"), Some(format!("attachment; filename=\"dossiers-{session}.csv\"")));
    let body = reply.body;
    assert!(body.starts_with(b"\xEF\xBB\xBF"), "a UTF-8 BOM");
    assert!(body.ends_with(b"\r\n"), "CRLF line endings");
    let text = std::str::from_utf8(&body[3..]).expect("UTF-8");
    assert!(text.starts_with(&format!("{}\r\n", HEADERS.join(";"))), "{text}");
    assert!(text.contains(";\"Le Gall; \"\"dit Tardif\"\"\";Yann;"), "the name is quoted: {text}");

    let mut reader = csv::ReaderBuilder::new().delimiter(b';').from_reader(&body[3..]);
    let headers: Vec<String> = reader.headers().expect("headers").iter().map(str::to_owned).collect();
    assert_eq!(headers, HEADERS);
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| without_updated_at(r.expect("a record").iter().map(str::to_owned).collect()))
        .collect();
    assert_eq!(rows, expected.iter().map(|r| r.to_vec()).collect::<Vec<_>>());

    // Staff and admins may export too; a candidate may not; an unknown session is a 404.
    assert_eq!(app.get(&format!("/api/sessions/{session}/export.csv"), Caller::Staff).await.status, 200);
    assert_eq!(app.get(&format!("/api/sessions/{session}/export.csv"), Caller::Admin).await.status, 200);
    app.get(&format!("/api/sessions/{session}/export.csv"), candidate()).await.problem(403);
    app.get(&format!("/api/sessions/{}/export.csv", Uuid::new_v4()), Caller::Auditor).await.problem(404);
    app.get("/api/sessions/pas-une-session/export.csv", Caller::Auditor).await.problem(404);
}

pub async fn the_xlsx_export_reads_back(app: &TestApp) {
    let (session, expected) = session_with_four_dossiers(app).await;
    let reply = app.get(&format!("/api/sessions/{session}/export.xlsx"), Caller::Auditor).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.header("content-type").as_deref(),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    assert_eq!(reply.header("content-disposition"), Some(format!("attachment; filename=\"dossiers-{session}.xlsx\"")));
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(reply.body)).expect("an XLSX workbook");
    assert_eq!(workbook.sheet_names(), ["Dossiers"]);
    let range = workbook.worksheet_range("Dossiers").expect("the sheet");
    let mut rows = range.rows().map(|row| row.iter().map(|cell| cell.to_string()).collect::<Vec<String>>());
    assert_eq!(rows.next().expect("the header row"), HEADERS);
    let rows: Vec<Vec<String>> = rows.map(without_updated_at).collect();
    assert_eq!(rows, expected.iter().map(|r| r.to_vec()).collect::<Vec<_>>());

    app.get(&format!("/api/sessions/{session}/export.xlsx"), candidate()).await.problem(403);
    app.get(&format!("/api/sessions/{}/export.xlsx", Uuid::new_v4()), Caller::Staff).await.problem(404);
}

pub async fn an_empty_session_exports_its_headers(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let csv = app.get(&format!("/api/sessions/{session}/export.csv"), Caller::Staff).await;
    assert_eq!(csv.body, format!("\u{feff}{}\r\n", HEADERS.join(";")).into_bytes());
    let xlsx = app.get(&format!("/api/sessions/{session}/export.xlsx"), Caller::Staff).await;
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(xlsx.body)).expect("an XLSX workbook");
    let range = workbook.worksheet_range("Dossiers").expect("the sheet");
    assert_eq!(range.height(), 1);
}

crate::api_tests!(
    the_csv_export_parses_with_its_bom_and_separator,
    the_xlsx_export_reads_back,
    an_empty_session_exports_its_headers
);

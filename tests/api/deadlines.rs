//! The deadline through the three channels, the refused forms, transmission incidents, lapse,
//! withdrawal, non-conforming rejection and the extension of a deadline.

use cachet_domain::time::{format_date, format_instant};
use chrono::{Days, Duration, NaiveDate, Utc};

use crate::harness::{candidate, days_from_today, last_weekday, paris, Caller, TestApp};

const LATE: &str = "Votre dossier a été rejeté car il a été déposé ou posté hors délai : ";

/// A session whose deadline was three days ago, and a dossier pre-registered a week before it,
/// at 10:15.
async fn closed_session_with_a_dossier(app: &TestApp) -> (uuid::Uuid, uuid::Uuid, chrono::NaiveDate) {
    let deadline = days_from_today(-3);
    let session = app.session_until(deadline).await;
    let dossier = app.pre_registered_on(session, candidate(), paris(deadline - Days::new(7), 10, 15)).await;
    (session, dossier, deadline)
}

/// The dossier is deposited, and its explanation names the postmark and the deadline it met.
async fn assert_deposited_on_time_by_post(
    app: &TestApp,
    dossier: uuid::Uuid,
    postmark: NaiveDate,
    deadline: NaiveDate,
) {
    let view = app.status(dossier).await;
    assert_eq!(view.status, "deposited");
    assert_eq!(
        view.deposit.expect("the deposit").explanation,
        format!(
            "Cachet de la poste du {}, dans les délais (date limite : {})",
            format_date(postmark),
            format_date(deadline)
        )
    );
}

pub async fn a_postmark_on_the_deadline_day_is_on_time_whatever_the_arrival(app: &TestApp) {
    let (_, dossier, deadline) = closed_session_with_a_dossier(app).await;
    app.record_postal_receipt(dossier, deadline, days_from_today(-1)).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "deposited");
    assert_eq!(view.message, view.awaiting_message());
    let registered = deadline - Days::new(7);
    assert!(view.message.contains(&format!("enregistrée le {} à 10h15", format_date(registered))));
    let deposit = view.deposit.expect("the deposit");
    assert_eq!((deposit.channel.as_str(), deposit.on_time), ("post", true));
    let d = format_date(deadline);
    assert_eq!(deposit.explanation, format!("Cachet de la poste du {d}, dans les délais (date limite : {d})"));
}

pub async fn a_postmark_the_day_after_the_deadline_is_rejected_as_late(app: &TestApp) {
    let (_, dossier, deadline) = closed_session_with_a_dossier(app).await;
    let postmark = days_from_today(-2);
    app.record_postal_receipt(dossier, postmark, days_from_today(-1)).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "rejected");
    let expected = format!(
        "{LATE}cachet de la poste du {}, postérieur à la date limite du {}.",
        format_date(postmark),
        format_date(deadline)
    );
    assert_eq!(view.message, expected);
    assert_eq!(view.rejection.as_deref(), Some(expected.as_str()));
    assert!(!view.deposit.expect("the deposit is recorded").on_time);
}

pub async fn a_transmission_incident_is_rejected_even_on_time(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let dossier = app.pre_register(session, candidate()).await;
    let today = days_from_today(0);
    app.record_postal_incident(dossier, today, today, "insufficient_postage").await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "rejected");
    assert_eq!(
        view.message,
        "Votre dossier a été rejeté en raison d'un incident de transmission (affranchissement insuffisant) : tout \
         incident de transmission engage la responsabilité de l'émetteur et entraîne un refus systématique \
         d'admission à concourir."
    );
}

pub async fn a_counter_receipt_during_opening_hours_before_the_deadline_is_a_deposit(app: &TestApp) {
    let deadline = days_from_today(30);
    let session = app.session_until(deadline).await;
    let dossier = app.pre_register(session, candidate()).await;
    // Computed once, for the receipt and the expected text: Paris midnight may pass meanwhile.
    let day = last_weekday();
    let at = paris(day, 16, 45);
    app.record_counter_receipt(dossier, at).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "deposited");
    assert_eq!(view.message, view.awaiting_message());
    let deposit = view.deposit.expect("the deposit");
    assert_eq!((deposit.channel.as_str(), deposit.on_time), ("counter", true));
    assert_eq!(
        deposit.explanation,
        format!(
            "Dépôt à l'accueil le {} à 16h45, dans les délais (date limite : {})",
            format_date(day),
            format_date(deadline)
        )
    );
}

pub async fn a_counter_receipt_outside_opening_hours_is_refused_with_the_hours(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let dossier = app.pre_register(session, candidate()).await;
    let lunch = paris(last_weekday(), 12, 30);
    let problem = app.record_counter_receipt(dossier, lunch).await.problem(422);
    assert_eq!(
        problem.detail,
        format!(
            "L'accueil est fermé le {} : un dépôt à l'accueil ne peut être enregistré qu'aux horaires d'ouverture \
             (lundi 08h30–12h00, lundi 13h30–17h00, mardi 08h30–12h00, mardi 13h30–17h00, mercredi 08h30–12h00, \
             mercredi 13h30–17h00, jeudi 08h30–12h00, jeudi 13h30–17h00, vendredi 08h30–12h00, vendredi 13h30–17h00).",
            format_instant(lunch)
        )
    );
    let in_an_hour = Utc::now() + Duration::hours(1);
    let problem = app.record_counter_receipt(dossier, in_an_hour).await.problem(422);
    assert!(problem.detail.ends_with("ne peuvent pas être dans le futur."), "{}", problem.detail);
    assert_eq!(app.status(dossier).await.status, "pre_registered");
}

pub async fn a_counter_receipt_after_the_deadline_day_is_rejected_as_late(app: &TestApp) {
    let day = last_weekday();
    let deadline = day.pred_opt().expect("date");
    let session = app.session_until(deadline).await;
    let dossier = app.pre_registered_on(session, candidate(), paris(deadline, 9, 0) - Duration::days(5)).await;
    app.record_counter_receipt(dossier, paris(day, 9, 0)).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "rejected");
    assert_eq!(
        view.message,
        format!(
            "{LATE}dépôt à l'accueil le {} à 09h00, postérieur à la date limite du {}.",
            format_date(day),
            format_date(deadline)
        )
    );
}

pub async fn a_dossier_sent_by_fax_is_rejected(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let dossier = app.pre_register(session, candidate()).await;
    app.record_refused_intake(dossier, "fax", days_from_today(0)).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "rejected");
    assert_eq!(view.message, "Votre dossier a été rejeté : aucun dossier transmis par télécopie ne peut être accepté.");
}

pub async fn a_dossier_never_deposited_lapses_once_the_deadline_has_passed(app: &TestApp) {
    // Computed once, for the session and the expected text: Paris midnight may pass meanwhile.
    let open_deadline = days_from_today(30);
    let open = app.session_until(open_deadline).await;
    let early = app.pre_register(open, candidate()).await;
    let problem = app.lapse(early).await.problem(409);
    assert_eq!(
        problem.detail,
        format!(
            "Le dossier ne peut être déclaré non parvenu qu'après la date limite du {}.",
            format_date(open_deadline)
        )
    );

    let (_, dossier, deadline) = closed_session_with_a_dossier(app).await;
    app.lapse(dossier).await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "lapsed");
    assert_eq!(
        view.message,
        format!(
            "Votre dossier n'est pas parvenu au Centre de Gestion avant la date limite du {} : votre préinscription \
             n'a pas été suivie d'une inscription.",
            format_date(deadline)
        )
    );
}

pub async fn a_candidate_withdraws_and_the_dossier_says_so(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    let before = Utc::now();
    app.withdraw(candidate, dossier).await.done();
    let after = Utc::now();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "withdrawn");
    let worded = |at| {
        format!("Votre désistement a été enregistré le {} : votre candidature n'est plus examinée.", format_instant(at))
    };
    assert!(view.message == worded(before) || view.message == worded(after), "{}", view.message);
    let problem = app.withdraw(candidate, dossier).await.problem(409);
    assert!(problem.detail.ends_with(" : le dossier est clos à la suite d'un désistement."), "{}", problem.detail);
}

pub async fn a_non_conforming_dossier_is_rejected_with_its_reason(app: &TestApp) {
    let session = app.session_until(days_from_today(30)).await;
    let candidate = candidate();
    let dossier = app.pre_register(session, candidate).await;
    app.deposit_online(candidate, dossier).await;
    app.transfer(dossier).await.done();
    let problem = app.reject(dossier, "   ").await.problem(422);
    assert_eq!(problem.detail, "Un motif est obligatoire.");
    app.reject(dossier, "dossier de pré-inscription non signé").await.done();
    let view = app.status(dossier).await;
    assert_eq!(view.status, "rejected");
    assert_eq!(
        view.message,
        "Votre dossier a été rejeté car il n'est pas conforme : dossier de pré-inscription non signé"
    );
}

pub async fn an_extended_deadline_makes_a_previously_late_postmark_on_time(app: &TestApp) {
    let (session, late, deadline) = closed_session_with_a_dossier(app).await;
    let postmark = days_from_today(-1);
    app.record_postal_receipt(late, postmark, days_from_today(0)).await.done();
    assert_eq!(app.status(late).await.status, "rejected");

    let problem = app.extend_deadline(session, deadline, "grève des services postaux").await.problem(422);
    assert!(problem.detail.starts_with("La nouvelle date limite"), "{}", problem.detail);
    // Tomorrow, not today: the pre-registration below must still be open if Paris midnight passes.
    let extended = days_from_today(1);
    app.extend_deadline(session, extended, "grève des services postaux").await.ok::<serde_json::Value>();
    let summary: serde_json::Value =
        app.get(&format!("/api/sessions/{session}"), crate::harness::Caller::Staff).await.ok();
    assert_eq!(summary["deadline"], extended.to_string());
    assert_eq!(summary["config"]["deposit_deadline"], extended.to_string(), "the configuration shows it too");

    let dossier = app.pre_register(session, candidate()).await;
    app.record_postal_receipt(dossier, postmark, days_from_today(0)).await.done();
    assert_deposited_on_time_by_post(app, dossier, postmark, extended).await;
    assert_eq!(app.status(late).await.status, "rejected", "a decision already taken stays taken");
}

/// Each server keeps in memory the sessions it decides dossier commands with. A deadline extended
/// through another server is still seen by the next command: a decision taken with the old
/// deadline is refused by the append's guard and taken again, and a refusal is checked against
/// the session as it is now.
pub async fn a_deadline_extended_on_another_server_is_seen_by_the_next_command(app: &TestApp) {
    // One SQLite file has one server process.
    if !app.on_postgres() {
        return;
    }
    let (other, third) = (app.second_server().await, app.second_server().await);
    let (session, late, _) = closed_session_with_a_dossier(app).await;
    let second = app.pre_registered_on(session, candidate(), paris(days_from_today(-9), 9, 0)).await;
    let postmark = days_from_today(-1);
    // Two servers decide with the session as it is: the deadline has passed.
    assert_eq!(app.pre_register_reply(session, candidate()).await.status, 409, "registrations are closed");
    other.record_postal_receipt(late, postmark, days_from_today(0)).await.done();
    assert_eq!(other.status(late).await.status, "rejected");

    // Tomorrow, not today: the pre-registration below must still be open if Paris midnight passes.
    let extended = days_from_today(1);
    third.extend_deadline(session, extended, "grève des services postaux").await.ok::<serde_json::Value>();

    // A registration refused with the old deadline is open again.
    app.pre_register(session, candidate()).await;
    // A receipt decided with the old deadline would be late.
    other.record_postal_receipt(second, postmark, days_from_today(0)).await.done();
    assert_deposited_on_time_by_post(&other, second, postmark, extended).await;
    for server in [&other, &third] {
        server.wait_for_read_models().await;
    }
    app.wait_for_read_models().await;
    other.finish().await;
    third.finish().await;
}

pub async fn closing_the_deposits_lapses_every_dossier_never_deposited_once_and_only_once(app: &TestApp) {
    let (session, first, _) = closed_session_with_a_dossier(app).await;
    let second = app.pre_registered_on(session, candidate(), paris(days_from_today(-9), 11, 0)).await;
    let posted = app.pre_registered_on(session, candidate(), paris(days_from_today(-8), 12, 0)).await;
    app.record_postal_receipt(posted, days_from_today(-4), days_from_today(-2)).await.done();

    let path = format!("/api/sessions/{session}/deposit-closure");
    let auditor = app.post_empty(&path, Caller::Auditor).await.problem(403);
    assert_eq!(auditor.detail, "Les auditeurs ont un accès en lecture seule : cette action leur est interdite.");
    let reply: serde_json::Value = app.post_empty(&path, Caller::Staff).await.ok();
    assert_eq!(reply["lapsed"], 2);
    for dossier in [first, second] {
        assert_eq!(app.status(dossier).await.status, "lapsed");
    }
    assert_eq!(app.status(posted).await.status, "deposited");
    // Twice is safe: nothing more happens.
    let again: serde_json::Value = app.post_empty(&path, Caller::Staff).await.ok();
    assert_eq!(again["lapsed"], 0);
    assert_eq!(app.stream_length(first).await, 2);

    // Before the deadline it is refused, and says until when.
    // Computed once, for the session and the expected text: Paris midnight may pass meanwhile.
    let open_deadline = days_from_today(5);
    let open = app.session_until(open_deadline).await;
    let early = app.post_empty(&format!("/api/sessions/{open}/deposit-closure"), Caller::Staff).await.problem(409);
    assert_eq!(
        early.detail,
        format!(
            "Les dossiers sans dépôt ne peuvent être déclarés non parvenus qu'après la date limite du {} (minuit, heure de Paris).",
            format_date(open_deadline)
        )
    );
}

crate::api_tests!(
    closing_the_deposits_lapses_every_dossier_never_deposited_once_and_only_once,
    a_postmark_on_the_deadline_day_is_on_time_whatever_the_arrival,
    a_postmark_the_day_after_the_deadline_is_rejected_as_late,
    a_transmission_incident_is_rejected_even_on_time,
    a_counter_receipt_during_opening_hours_before_the_deadline_is_a_deposit,
    a_counter_receipt_outside_opening_hours_is_refused_with_the_hours,
    a_counter_receipt_after_the_deadline_day_is_rejected_as_late,
    a_dossier_sent_by_fax_is_rejected,
    a_dossier_never_deposited_lapses_once_the_deadline_has_passed,
    a_candidate_withdraws_and_the_dossier_says_so,
    a_non_conforming_dossier_is_rejected_with_its_reason,
    an_extended_deadline_makes_a_previously_late_postmark_on_time,
    a_deadline_extended_on_another_server_is_seen_by_the_next_command,
);

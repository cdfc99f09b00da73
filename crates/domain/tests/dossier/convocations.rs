//! Rule 9: convocations are published for complete dossiers only, at least
//! `convocation_lead_days` (15) days before the test, and downloaded from the candidate space.

use cachet_domain::dossier::{DossierCommand, DossierEvent, Status};
use cachet_domain::DomainError;
use chrono::Duration;

use crate::support::*;

fn publish() -> DossierCommand {
    DossierCommand::PublishConvocation { test: admissibility(), document: file(40) }
}

fn download() -> DossierCommand {
    DossierCommand::DownloadConvocation { test: admissibility() }
}

fn days_before_the_test(days: i64) -> chrono::DateTime<chrono::Utc> {
    admissibility_starts() - Duration::days(days)
}

#[test]
fn a_convocation_is_published_16_days_before_the_test() {
    let state = given(complete())
        .when(publish(), at(days_before_the_test(16), staff()))
        .then(vec![DossierEvent::ConvocationPublished { test: admissibility(), document: file(40) }]);
    assert_eq!(state.convocations[&admissibility()].document, Some(file(40)));
}

#[test]
fn a_convocation_is_published_exactly_15_days_before_the_test() {
    given(complete())
        .when(publish(), at(paris(2023, 9, 27, 9, 0, 0), staff()))
        .then(vec![DossierEvent::ConvocationPublished { test: admissibility(), document: file(40) }]);
}

#[test]
fn a_convocation_is_not_published_14_days_before_the_test() {
    let error = given(complete()).when(publish(), at(days_before_the_test(14), staff())).then_error(
        DomainError::ConvocationTooLate {
            label: ADMISSIBILITY_LABEL.to_owned(),
            days: 15,
            limit: "27/09/2023 à 09h00".to_owned(),
        },
    );
    assert_eq!(
        error.to_string(),
        "La publication des convocations à l'épreuve « Épreuve écrite d'admissibilité » n'est plus possible : \
         elles doivent être disponibles au moins 15 jours avant l'épreuve, soit au plus tard le 27/09/2023 à 09h00."
    );
}

#[test]
fn a_convocation_is_not_published_one_second_after_the_limit() {
    given(complete()).when(publish(), at(paris(2023, 9, 27, 9, 0, 1), staff())).then_error(
        DomainError::ConvocationTooLate {
            label: ADMISSIBILITY_LABEL.to_owned(),
            days: 15,
            limit: "27/09/2023 à 09h00".to_owned(),
        },
    );
}

#[test]
fn a_convocation_is_published_only_for_a_complete_dossier() {
    given(incomplete())
        .when(publish(), at(days_before_the_test(30), staff()))
        .then_error(DomainError::InvalidTransition { action: "publier une convocation", status: "incomplet" });
    given(under_review()).when(publish(), at(days_before_the_test(30), staff())).then_error(
        DomainError::InvalidTransition { action: "publier une convocation", status: "en cours d'instruction" },
    );
}

#[test]
fn a_convocation_is_published_only_once() {
    given(with_convocation_published())
        .when(publish(), at(days_before_the_test(20), staff()))
        .then_error(DomainError::ConvocationAlreadyPublished { label: ADMISSIBILITY_LABEL.to_owned() });
}

#[test]
fn a_convocation_to_a_test_outside_the_session_is_refused() {
    given(complete())
        .when(
            DossierCommand::PublishConvocation { test: test_code("pratique"), document: file(41) },
            at(days_before_the_test(30), staff()),
        )
        .then_error(DomainError::UnknownTest { test: "pratique".to_owned() });
}

#[test]
fn the_exam_office_withholds_a_convocation_with_a_reason() {
    let state = given(complete())
        .when(
            DossierCommand::WithholdConvocation {
                test: admissibility(), reason: " vérification en cours ".to_owned()
            },
            at(days_before_the_test(30), staff()),
        )
        .then(vec![DossierEvent::ConvocationWithheld {
            test: admissibility(),
            reason: "vérification en cours".to_owned(),
        }]);
    assert_eq!(state.convocations[&admissibility()].withheld.as_deref(), Some("vérification en cours"));
}

#[test]
fn withholding_a_convocation_needs_a_reason() {
    given(complete())
        .when(
            DossierCommand::WithholdConvocation { test: admissibility(), reason: String::new() },
            at(days_before_the_test(30), staff()),
        )
        .then_error(DomainError::ReasonRequired);
}

#[test]
fn a_published_convocation_cannot_be_withheld() {
    given(with_convocation_published())
        .when(
            DossierCommand::WithholdConvocation { test: admissibility(), reason: "erreur".to_owned() },
            at(days_before_the_test(20), staff()),
        )
        .then_error(DomainError::ConvocationAlreadyPublished { label: ADMISSIBILITY_LABEL.to_owned() });
}

#[test]
fn a_withheld_convocation_may_be_published_later() {
    let mut events = complete();
    events.push(DossierEvent::ConvocationWithheld { test: admissibility(), reason: "vérification".to_owned() });
    let state = given(events)
        .when(publish(), at(days_before_the_test(20), staff()))
        .then(vec![DossierEvent::ConvocationPublished { test: admissibility(), document: file(40) }]);
    assert_eq!(state.convocations[&admissibility()].withheld, None);
}

#[test]
fn the_candidate_downloads_a_published_convocation() {
    let state = given(with_convocation_published())
        .when(download(), at(days_before_the_test(10), candidate()))
        .then(vec![DossierEvent::ConvocationDownloaded { test: admissibility() }]);
    assert_eq!(state.convocations[&admissibility()].downloads, 1);
}

#[test]
fn a_convocation_is_not_downloadable_before_it_is_published() {
    let error = given(complete())
        .when(download(), at(days_before_the_test(10), candidate()))
        .then_error(DomainError::ConvocationNotPublished { label: ADMISSIBILITY_LABEL.to_owned() });
    assert_eq!(
        error.to_string(),
        "Aucune convocation n'est disponible pour l'épreuve « Épreuve écrite d'admissibilité »."
    );
}

#[test]
fn a_withheld_convocation_is_not_downloadable() {
    let mut events = complete();
    events.push(DossierEvent::ConvocationWithheld { test: admissibility(), reason: "vérification".to_owned() });
    given(events)
        .when(download(), at(days_before_the_test(10), candidate()))
        .then_error(DomainError::ConvocationNotPublished { label: ADMISSIBILITY_LABEL.to_owned() });
}

#[test]
fn a_withdrawn_candidate_cannot_download_a_convocation_published_before_the_withdrawal() {
    let mut events = with_convocation_published();
    events.push(DossierEvent::Withdrawn { at: days_before_the_test(12), reason: None });
    assert_eq!(cachet_domain::dossier::DossierState::fold(&events).status, Status::Withdrawn);
    given(events).when(download(), at(days_before_the_test(10), candidate())).then_error(
        DomainError::InvalidTransition {
            action: "télécharger une convocation",
            status: "clos à la suite d'un désistement",
        },
    );
}

#[test]
fn a_rejected_candidate_cannot_download_a_convocation_published_before_the_rejection() {
    let mut events = with_convocation_published();
    events.push(DossierEvent::Rejected {
        reason: cachet_domain::dossier::RejectionReason::NonConforming { detail: "non signé".to_owned() },
    });
    given(events)
        .when(download(), at(days_before_the_test(10), candidate()))
        .then_error(DomainError::InvalidTransition { action: "télécharger une convocation", status: "rejeté" });
}

#[test]
fn the_lead_time_counts_calendar_days_in_paris_across_a_change_of_clocks() {
    // A test on Friday 10 November 2023 at 09h00 (winter time): fifteen days before is Thursday
    // 26 October at 09h00, summer time (07h00 UTC), not 10h00 as 15 × 24 hours would give.
    let mut config = cachet_domain::demo::source_session();
    config.tests[0].starts_at =
        chrono::NaiveDate::from_ymd_opt(2023, 11, 10).and_then(|d| d.and_hms_opt(9, 0, 0)).expect("a date");
    let limit = config.convocation_publication_limit(&config.tests[0]);
    assert_eq!(limit, paris(2023, 10, 26, 9, 0, 0));
    assert_eq!(limit.to_rfc3339(), "2023-10-26T07:00:00+00:00");
}

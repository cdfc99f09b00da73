//! Rule 4: photocopies, converted and modified dossiers, faxes, e-mails and screenshots are
//! recorded as received and rejected.

use cachet_domain::dossier::{DossierCommand, DossierEvent, RefusedForm, RejectionReason, Status};
use cachet_domain::DomainError;

use crate::support::*;

const EVERY_REFUSED_FORM: [RefusedForm; 5] = [
    RefusedForm::Fax,
    RefusedForm::Email,
    RefusedForm::Photocopy,
    RefusedForm::Screenshot,
    RefusedForm::ConvertedAndModified,
];

#[test]
fn every_refused_form_is_recorded_and_rejected_even_before_the_deadline() {
    for form in EVERY_REFUSED_FORM {
        let received_on = date(2023, 7, 3);
        let state = given([pre_registered()])
            .when(DossierCommand::RecordRefusedIntake { form, received_on }, at(before_deadline(), staff()))
            .then(vec![
                DossierEvent::IntakeRefused { form, received_on },
                DossierEvent::Rejected { reason: RejectionReason::RefusedForm { form } },
            ]);
        assert_eq!(state.status, Status::Rejected, "{form:?}");
        assert_eq!(state.refused_intakes, vec![(form, received_on)], "{form:?}");
    }
}

#[test]
fn a_refused_form_received_after_a_lapse_is_rejected() {
    let events = vec![pre_registered(), DossierEvent::Lapsed { deadline: deadline() }];
    let received_on = date(2023, 7, 10);
    given(events)
        .when(
            DossierCommand::RecordRefusedIntake { form: RefusedForm::Email, received_on },
            at(after_deadline(), staff()),
        )
        .then(vec![
            DossierEvent::IntakeRefused { form: RefusedForm::Email, received_on },
            DossierEvent::Rejected { reason: RejectionReason::RefusedForm { form: RefusedForm::Email } },
        ]);
}

#[test]
fn a_refused_form_cannot_be_recorded_as_received_in_the_future() {
    given([pre_registered()])
        .when(
            DossierCommand::RecordRefusedIntake { form: RefusedForm::Fax, received_on: date(2023, 7, 4) },
            at(before_deadline(), staff()),
        )
        .then_error(DomainError::ArrivalInFuture { arrival: "04/07/2023".to_owned() });
}

#[test]
fn a_refused_form_found_after_deposit_is_recorded_and_rejects_the_dossier() {
    // E.g. the piece uploaded online turns out to be a screenshot of the form.
    let state = given(deposited_online())
        .when(
            DossierCommand::RecordRefusedIntake { form: RefusedForm::Screenshot, received_on: date(2023, 7, 3) },
            at(before_deadline(), staff()),
        )
        .then(vec![
            DossierEvent::IntakeRefused { form: RefusedForm::Screenshot, received_on: date(2023, 7, 3) },
            DossierEvent::Rejected { reason: RejectionReason::RefusedForm { form: RefusedForm::Screenshot } },
        ]);
    assert_eq!(
        state.candidate_message().unwrap().text,
        "Votre dossier a été rejeté : aucun dossier sous forme de capture d'écran ne peut être accepté."
    );
}

//! The exam session of the source document (CDG de l'Orne, examen professionnel d'adjoint
//! technique territorial principal de 2e classe, deadline 6 July 2023), as configuration data:
//! the demo data of `cachet serve --demo` and the fixture of tests outside this crate.

use chrono::{NaiveDate, NaiveTime, Weekday};

use crate::ids::{PieceCode, TestCode};
use crate::session::{OpeningHours, PieceKind, PieceSpec, QuestionSpec, SessionConfig, TestKind, TestSpec};

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

fn piece(code: &str, label: &str, kind: PieceKind) -> Option<PieceSpec> {
    Some(PieceSpec { code: PieceCode::parse(code).ok()?, label: label.to_owned(), kind })
}

/// The source document's session. The counter of the CDG is open on weekdays 08h30–12h00 and
/// 13h30–17h00.
pub fn source_session() -> SessionConfig {
    let weekdays = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];
    let counter_hours = weekdays
        .iter()
        .flat_map(|&weekday| {
            [
                OpeningHours { weekday, opens: time(8, 30), closes: time(12, 0) },
                OpeningHours { weekday, opens: time(13, 30), closes: time(17, 0) },
            ]
        })
        .collect();
    let pieces = [
        piece("dossier-preinscription", "Dossier de pré-inscription daté et signé", PieceKind::RegistrationForm),
        piece("etat-services", "État des services établi par l'employeur", PieceKind::Required),
        piece("arrete-situation", "Dernier arrêté de situation administrative", PieceKind::Required),
        piece("amenagement-epreuves", "Demande d'aménagement d'épreuves et certificat médical", PieceKind::Conditional),
    ]
    .into_iter()
    .flatten()
    .collect();
    let test = |code: &str, kind, label: &str, starts_at, place: &str, plan: &str| {
        Some(TestSpec {
            code: TestCode::parse(code).ok()?,
            kind,
            label: label.to_owned(),
            starts_at,
            place: place.to_owned(),
            address: "2 rue François Arago, 61250 Valframbert".to_owned(),
            access_plan_url: format!("https://www.cdg61.fr/plans/{plan}"),
        })
    };
    let tests = [
        test(
            "admissibilite",
            TestKind::Admissibility,
            "Épreuve écrite d'admissibilité",
            date(2023, 10, 12).and_time(time(9, 0)),
            "Centre de Gestion de l'Orne",
            "admissibilite.pdf",
        ),
        test(
            "admission",
            TestKind::Admission,
            "Épreuve orale d'admission",
            date(2023, 12, 5).and_time(time(14, 0)),
            "Centre de Gestion de l'Orne",
            "admission.pdf",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    SessionConfig {
        title: "Examen professionnel d'adjoint technique territorial principal de 2e classe – session 2024".to_owned(),
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        deposit_deadline: date(2023, 7, 6),
        counter_hours,
        pieces,
        tests,
        convocation_lead_days: 15,
        questions: vec![
            QuestionSpec { code: "grade".to_owned(), label: "Grade actuel".to_owned(), required: true },
            QuestionSpec { code: "employeur".to_owned(), label: "Collectivité employeuse".to_owned(), required: true },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_session_is_a_valid_configuration() {
        let config = source_session();
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.pieces.len(), 4);
        assert_eq!(config.tests.len(), 2);
        assert_eq!(config.counter_hours.len(), 10);
    }
}

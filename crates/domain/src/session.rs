//! The exam session stream: its configuration (deadline, counter hours, catalogue of pieces,
//! tests, convocation lead time) and the recorded extensions of its deadline.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::event::{Actor, DomainEvent, StaffRole};
use crate::ids::{PieceCode, SessionId, TestCode};
use crate::time::{format_date, format_time, paris_to_utc};

/// The minimum lead time of convocations required by the source document.
pub const MIN_CONVOCATION_LEAD_DAYS: u32 = 15;

/// What a piece of the catalogue is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PieceKind {
    /// The printed, dated and signed *dossier de pré-inscription* (the red dot): online closure is
    /// impossible without it.
    RegistrationForm,
    /// Required from every candidate.
    Required,
    /// Required only in some cases (e.g. a request for adapted test conditions).
    Conditional,
}

impl PieceKind {
    pub fn is_required(self) -> bool {
        matches!(self, PieceKind::RegistrationForm | PieceKind::Required)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceSpec {
    pub code: PieceCode,
    pub label: String,
    pub kind: PieceKind,
}

/// One opening period of the counter (*accueil*) on a weekday, in Paris time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningHours {
    pub weekday: Weekday,
    pub opens: NaiveTime,
    pub closes: NaiveTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestKind {
    Admissibility,
    Admission,
}

/// A test (*épreuve*) of the session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSpec {
    pub code: TestCode,
    pub kind: TestKind,
    pub label: String,
    /// Date and time in Paris.
    pub starts_at: NaiveDateTime,
    pub place: String,
    pub address: String,
    pub access_plan_url: String,
}

impl TestSpec {
    /// The instant the test starts.
    pub fn starts_at_utc(&self) -> DateTime<Utc> {
        paris_to_utc(self.starts_at)
    }
}

/// A question the pre-registration form asks beyond the candidate's identity, e.g. the current
/// grade or the employer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionSpec {
    /// A short code made of lowercase letters, digits and `-`, e.g. `grade`.
    pub code: String,
    /// The label shown next to the field, e.g. « Grade actuel ».
    pub label: String,
    pub required: bool,
}

/// Everything an exam session is opened with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConfig {
    pub title: String,
    pub organiser: String,
    /// The last day of deposit, a civil date in Europe/Paris.
    pub deposit_deadline: NaiveDate,
    pub counter_hours: Vec<OpeningHours>,
    pub pieces: Vec<PieceSpec>,
    pub tests: Vec<TestSpec>,
    pub convocation_lead_days: u32,
    /// What pre-registration asks beyond identity. Absent from sessions opened before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<QuestionSpec>,
}

impl SessionConfig {
    /// Checks the configuration is usable: one red-dot form, unique codes, sane hours and lead time.
    pub fn validate(&self) -> Result<(), DomainError> {
        let invalid = |m: &str| Err(DomainError::InvalidSessionConfig(m.to_owned()));
        if self.title.trim().is_empty() {
            return invalid("le titre est obligatoire.");
        }
        if self.organiser.trim().is_empty() {
            return invalid("l'organisateur est obligatoire.");
        }
        let forms = self.pieces.iter().filter(|p| p.kind == PieceKind::RegistrationForm).count();
        if forms != 1 {
            return invalid("le catalogue doit contenir exactement un dossier de pré-inscription.");
        }
        let codes: BTreeSet<_> = self.pieces.iter().map(|p| &p.code).collect();
        if codes.len() != self.pieces.len() {
            return invalid("deux pièces ont le même code.");
        }
        if self.pieces.iter().any(|p| p.label.trim().is_empty()) {
            return invalid("chaque pièce doit avoir un libellé.");
        }
        if self.counter_hours.iter().any(|h| h.opens >= h.closes) {
            return invalid("un horaire d'ouverture de l'accueil se termine avant de commencer.");
        }
        let tests: BTreeSet<_> = self.tests.iter().map(|t| &t.code).collect();
        if tests.len() != self.tests.len() {
            return invalid("deux épreuves ont le même code.");
        }
        let questions: BTreeSet<_> = self.questions.iter().map(|q| q.code.as_str()).collect();
        if questions.len() != self.questions.len() {
            return invalid("deux questions ont le même code.");
        }
        let valid_code = |c: &str| {
            !c.is_empty()
                && c.len() <= 32
                && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        };
        if self.questions.iter().any(|q| !valid_code(&q.code) || q.label.trim().is_empty()) {
            return invalid("chaque question doit avoir un code (lettres minuscules, chiffres, tirets) et un libellé.");
        }
        if self.convocation_lead_days < MIN_CONVOCATION_LEAD_DAYS {
            return invalid("le délai de mise à disposition des convocations est d'au moins 15 jours.");
        }
        Ok(())
    }

    pub fn piece(&self, code: &PieceCode) -> Option<&PieceSpec> {
        self.pieces.iter().find(|p| &p.code == code)
    }

    pub fn registration_form(&self) -> Option<&PieceSpec> {
        self.pieces.iter().find(|p| p.kind == PieceKind::RegistrationForm)
    }

    pub fn test(&self, code: &TestCode) -> Option<&TestSpec> {
        self.tests.iter().find(|t| &t.code == code)
    }

    /// Whether the counter is open at a Paris wall-clock time.
    pub fn counter_open_at(&self, local: NaiveDateTime) -> bool {
        use chrono::Datelike;
        let (day, time) = (local.date().weekday(), local.time());
        self.counter_hours.iter().any(|h| h.weekday == day && h.opens <= time && time < h.closes)
    }

    /// The opening hours in French, e.g. `lundi 09h00–12h00, lundi 13h30–17h00`.
    pub fn describe_counter_hours(&self) -> String {
        if self.counter_hours.is_empty() {
            return "aucun horaire d'ouverture".to_owned();
        }
        self.counter_hours
            .iter()
            .map(|h| format!("{} {}–{}", weekday_fr(h.weekday), format_time(h.opens), format_time(h.closes)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The last instant at which convocations to a test may be published.
    /// The last instant convocations to `test` may be published: the same Paris wall-clock time,
    /// `convocation_lead_days` calendar days before the test (not 24-hour days, which would be
    /// an hour off across a change of clocks).
    pub fn convocation_publication_limit(&self, test: &TestSpec) -> DateTime<Utc> {
        paris_to_utc(test.starts_at - Duration::days(i64::from(self.convocation_lead_days)))
    }
}

pub fn weekday_fr(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "lundi",
        Weekday::Tue => "mardi",
        Weekday::Wed => "mercredi",
        Weekday::Thu => "jeudi",
        Weekday::Fri => "vendredi",
        Weekday::Sat => "samedi",
        Weekday::Sun => "dimanche",
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum SessionEvent {
    SessionOpened { session_id: SessionId, config: SessionConfig },
    DeadlineExtended { previous: NaiveDate, new_deadline: NaiveDate, reason: String },
}

impl DomainEvent for SessionEvent {
    const STREAM_TYPE: &'static str = "session";

    fn event_type(&self) -> &'static str {
        match self {
            SessionEvent::SessionOpened { .. } => "SessionOpened",
            SessionEvent::DeadlineExtended { .. } => "DeadlineExtended",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionCommand {
    Open { session_id: SessionId, config: SessionConfig },
    ExtendDeadline { new_deadline: NaiveDate, reason: String },
}

/// The state of a session, folded from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    pub id: Option<SessionId>,
    pub config: Option<SessionConfig>,
    /// The deadline in force: the configured one, or the latest extension.
    pub deadline: Option<NaiveDate>,
    pub extensions: Vec<(NaiveDate, String)>,
}

impl SessionState {
    /// The configuration and the deadline in force, or `SessionNotOpened`.
    pub fn opened(&self) -> Result<(&SessionConfig, NaiveDate), DomainError> {
        match (&self.config, self.deadline) {
            (Some(c), Some(d)) => Ok((c, d)),
            _ => Err(DomainError::SessionNotOpened),
        }
    }

    pub fn evolve(mut self, event: &SessionEvent) -> Self {
        match event {
            SessionEvent::SessionOpened { session_id, config } => {
                self.id = Some(*session_id);
                self.deadline = Some(config.deposit_deadline);
                self.config = Some(config.clone());
            }
            SessionEvent::DeadlineExtended { new_deadline, reason, .. } => {
                self.deadline = Some(*new_deadline);
                self.extensions.push((*new_deadline, reason.clone()));
            }
        }
        self
    }

    pub fn fold<'a>(events: impl IntoIterator<Item = &'a SessionEvent>) -> Self {
        events.into_iter().fold(Self::default(), Self::evolve)
    }
}

/// Every rule of the session stream.
pub fn decide_session(
    state: &SessionState,
    command: &SessionCommand,
    actor: &Actor,
) -> Result<Vec<SessionEvent>, DomainError> {
    if !matches!(actor, Actor::Staff { role: StaffRole::Admin, .. } | Actor::System { .. }) {
        return Err(DomainError::NotAllowed { action: "modifier une session d'examen" });
    }
    match command {
        SessionCommand::Open { session_id, config } => {
            if state.config.is_some() {
                return Err(DomainError::SessionAlreadyOpened);
            }
            config.validate()?;
            Ok(vec![SessionEvent::SessionOpened { session_id: *session_id, config: config.clone() }])
        }
        SessionCommand::ExtendDeadline { new_deadline, reason } => {
            let (_, current) = state.opened()?;
            if reason.trim().is_empty() {
                return Err(DomainError::ReasonRequired);
            }
            if *new_deadline <= current {
                return Err(DomainError::DeadlineNotLater {
                    current: format_date(current),
                    requested: format_date(*new_deadline),
                });
            }
            Ok(vec![SessionEvent::DeadlineExtended {
                previous: current,
                new_deadline: *new_deadline,
                reason: reason.trim().to_owned(),
            }])
        }
    }
}

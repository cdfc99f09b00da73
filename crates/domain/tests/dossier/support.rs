//! Fixtures (a session modelled on the source document, actors, files, Paris instants) and the
//! given / when / then helper every scenario is written with.

use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState, FileRef, MediaType};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId, Sha256Hex, TestCode, UserCode};
use cachet_domain::session::{
    OpeningHours, PieceKind, PieceSpec, SessionConfig, SessionEvent, SessionState, TestKind, TestSpec,
};
use cachet_domain::time::paris_to_utc;
use cachet_domain::{Actor, DomainError};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Dates and instants
// ---------------------------------------------------------------------------------------------

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

fn time(h: u32, min: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, min, 0).expect("a valid time of day")
}

/// The instant a Paris wall clock shows this date and time.
pub fn paris(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
    paris_to_utc(date(y, m, d).and_hms_opt(h, min, s).expect("a valid time of day"))
}

/// The deadline of the source document: « le 6 juillet 2023 (dernier délai) », a Thursday.
pub fn deadline() -> NaiveDate {
    date(2023, 7, 6)
}

/// When the candidate pre-registered: Monday 12 June 2023 at 14h05 in Paris.
pub fn registered_at() -> DateTime<Utc> {
    paris(2023, 6, 12, 14, 5, 0)
}

/// A working moment well before the deadline: Monday 3 July 2023, 10h00 in Paris.
pub fn before_deadline() -> DateTime<Utc> {
    paris(2023, 7, 3, 10, 0, 0)
}

/// A working moment well after the deadline: Monday 17 July 2023, 10h00 in Paris.
pub fn after_deadline() -> DateTime<Utc> {
    paris(2023, 7, 17, 10, 0, 0)
}

// ---------------------------------------------------------------------------------------------
// The session
// ---------------------------------------------------------------------------------------------

pub fn session_id() -> SessionId {
    SessionId::from_uuid(Uuid::from_u128(0x5e55_1011))
}

pub fn piece(code: &str) -> PieceCode {
    PieceCode::parse(code).expect("a valid piece code")
}

pub fn test_code(code: &str) -> TestCode {
    TestCode::parse(code).expect("a valid test code")
}

/// The red-dot *dossier de pré-inscription*.
pub fn form() -> PieceCode {
    piece("dossier-preinscription")
}
pub const FORM_LABEL: &str = "Dossier de pré-inscription";

/// A piece every candidate must provide.
pub fn appointment() -> PieceCode {
    piece("arrete-nomination")
}
pub const APPOINTMENT_LABEL: &str = "Arrêté de nomination dans le grade";

/// A piece required only in some cases.
pub fn adaptation() -> PieceCode {
    piece("demande-amenagement")
}
pub const ADAPTATION_LABEL: &str = "Demande d'aménagement des épreuves";

pub fn admissibility() -> TestCode {
    test_code("admissibilite")
}
pub const ADMISSIBILITY_LABEL: &str = "Épreuve écrite d'admissibilité";

/// When the admissibility test starts: Thursday 12 October 2023 at 09h00 in Paris.
pub fn admissibility_starts() -> DateTime<Utc> {
    paris(2023, 10, 12, 9, 0, 0)
}

pub fn admission() -> TestCode {
    test_code("admission")
}

fn weekdays(opens: NaiveTime, closes: NaiveTime) -> Vec<OpeningHours> {
    [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
        .into_iter()
        .map(|weekday| OpeningHours { weekday, opens, closes })
        .collect()
}

/// The configuration of the source document's exam session, with the counter open on weekdays
/// 09h00–12h00 and 13h30–17h00.
pub fn config_with_deadline(deposit_deadline: NaiveDate) -> SessionConfig {
    let mut counter_hours = weekdays(time(9, 0), time(12, 0));
    counter_hours.extend(weekdays(time(13, 30), time(17, 0)));
    SessionConfig {
        title: "Examen professionnel d'adjoint technique territorial principal de 2e classe – session 2024".to_owned(),
        organiser: "Centre de Gestion de l'Orne".to_owned(),
        deposit_deadline,
        counter_hours,
        pieces: vec![
            PieceSpec { code: form(), label: FORM_LABEL.to_owned(), kind: PieceKind::RegistrationForm },
            PieceSpec { code: appointment(), label: APPOINTMENT_LABEL.to_owned(), kind: PieceKind::Required },
            PieceSpec { code: adaptation(), label: ADAPTATION_LABEL.to_owned(), kind: PieceKind::Conditional },
        ],
        tests: vec![
            TestSpec {
                code: admissibility(),
                kind: TestKind::Admissibility,
                label: ADMISSIBILITY_LABEL.to_owned(),
                starts_at: date(2023, 10, 12).and_time(time(9, 0)),
                place: "Parc des expositions".to_owned(),
                address: "Alençon".to_owned(),
                access_plan_url: "https://example.org/plans/admissibilite.pdf".to_owned(),
            },
            TestSpec {
                code: admission(),
                kind: TestKind::Admission,
                label: "Épreuve orale d'admission".to_owned(),
                starts_at: date(2023, 12, 5).and_time(time(14, 0)),
                place: "Centre de Gestion de l'Orne".to_owned(),
                address: "Alençon".to_owned(),
                access_plan_url: "https://example.org/plans/admission.pdf".to_owned(),
            },
        ],
        convocation_lead_days: 15,
        questions: Vec::new(),
    }
}

/// The counter hours of [`config`] as the domain describes them in French.
pub const COUNTER_HOURS: &str = "lundi 09h00–12h00, mardi 09h00–12h00, mercredi 09h00–12h00, jeudi 09h00–12h00, \
                     vendredi 09h00–12h00, lundi 13h30–17h00, mardi 13h30–17h00, mercredi 13h30–17h00, \
                     jeudi 13h30–17h00, vendredi 13h30–17h00";

pub fn config() -> SessionConfig {
    config_with_deadline(deadline())
}

pub fn session_with(config: SessionConfig) -> SessionState {
    SessionState::fold(&[SessionEvent::SessionOpened { session_id: session_id(), config }])
}

/// The opened session, deadline 6 July 2023.
pub fn session() -> SessionState {
    session_with(config())
}

// ---------------------------------------------------------------------------------------------
// Actors and files
// ---------------------------------------------------------------------------------------------

pub fn candidate_id() -> CandidateId {
    CandidateId::from_uuid(Uuid::from_u128(0xca4d_1da7))
}

pub fn dossier_id() -> DossierId {
    DossierId::from_uuid(Uuid::from_u128(0xd055_1e40))
}

pub fn user_code() -> UserCode {
    UserCode::parse("AB3KX9QZ").expect("a valid user code")
}

/// The candidate who owns the dossier.
pub fn candidate() -> Actor {
    Actor::Candidate { candidate_id: candidate_id() }
}

/// Someone else with a candidate account.
pub fn another_candidate() -> Actor {
    Actor::Candidate { candidate_id: CandidateId::from_uuid(Uuid::from_u128(0x0a7e_0001)) }
}

/// A member of the service concours.
pub fn staff() -> Actor {
    Actor::Staff { account: "m.durand".to_owned(), role: StaffRole::Staff }
}

pub fn admin() -> Actor {
    Actor::Staff { account: "admin".to_owned(), role: StaffRole::Admin }
}

pub fn auditor() -> Actor {
    Actor::Staff { account: "c.lefebvre".to_owned(), role: StaffRole::Auditor }
}

pub fn system() -> Actor {
    Actor::System { component: "scheduler".to_owned() }
}

/// A deposited file whose content hash is derived from `seed`.
pub fn file(seed: u8) -> FileRef {
    let digit = char::from(b"0123456789abcdef"[usize::from(seed % 16)]);
    let sha = format!("{:0>64}", format!("{seed:02x}{}", digit.to_string().repeat(8)));
    FileRef {
        sha256: Sha256Hex::parse(&sha).expect("64 hexadecimal digits"),
        size: 1024 + u64::from(seed),
        media_type: MediaType::Pdf,
        filename: format!("piece-{seed}.pdf"),
    }
}

// ---------------------------------------------------------------------------------------------
// Past events
// ---------------------------------------------------------------------------------------------

pub fn pre_registered() -> DossierEvent {
    DossierEvent::PreRegistered {
        dossier_id: dossier_id(),
        session_id: session_id(),
        candidate_id: candidate_id(),
        user_code: user_code(),
        registered_at: registered_at(),
    }
}

pub fn uploaded(code: PieceCode, seed: u8) -> DossierEvent {
    DossierEvent::PieceUploaded { piece: code, file: file(seed), replaced: None }
}

/// Pre-registered with the registration form uploaded.
pub fn with_form() -> Vec<DossierEvent> {
    vec![pre_registered(), uploaded(form(), 1)]
}

/// Closed online before the deadline, not yet transferred.
pub fn deposited_online() -> Vec<DossierEvent> {
    let mut events = with_form();
    events.extend(decided(&events, &DossierCommand::CloseRegistration, before_deadline(), &candidate()));
    events
}

/// Closed online and transferred: under review.
pub fn under_review() -> Vec<DossierEvent> {
    let mut events = deposited_online();
    events.push(DossierEvent::Transferred);
    events
}

/// Reviewed and concluded incomplete: the form accepted, the required piece marked missing and
/// the conditional piece refused as illegible.
pub fn incomplete() -> Vec<DossierEvent> {
    use cachet_domain::dossier::PieceReview;
    let mut events = under_review();
    let reviews = [
        (form(), PieceReview::Accepted),
        (appointment(), PieceReview::Missing),
        (adaptation(), PieceReview::Refused { reason: ILLEGIBLE.to_owned() }),
    ];
    for (code, review) in reviews {
        events.extend(decided(
            &events,
            &DossierCommand::ReviewPiece { piece: code, review },
            after_deadline(),
            &staff(),
        ));
    }
    events.extend(decided(&events, &DossierCommand::ConcludeReview, after_deadline(), &staff()));
    events
}

/// Why the conditional piece of [`incomplete`] was refused.
pub const ILLEGIBLE: &str = "document illisible";

/// Every required piece accepted: complete.
pub fn complete() -> Vec<DossierEvent> {
    use cachet_domain::dossier::PieceReview::Accepted;
    let mut events = under_review();
    for code in [form(), appointment()] {
        events.extend(decided(
            &events,
            &DossierCommand::ReviewPiece { piece: code, review: Accepted },
            after_deadline(),
            &staff(),
        ));
    }
    events.extend(decided(&events, &DossierCommand::ConcludeReview, after_deadline(), &staff()));
    events
}

/// The events `decide` produces for a command that must succeed (for building histories).
#[track_caller]
pub fn decided(
    past: &[DossierEvent],
    command: &DossierCommand,
    now: DateTime<Utc>,
    actor: &Actor,
) -> Vec<DossierEvent> {
    let state = DossierState::fold(past);
    let session = session();
    decide(&state, command, &Context { now, actor, session: &session })
        .unwrap_or_else(|e| panic!("building the history: {command:?} was refused: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Given / when / then
// ---------------------------------------------------------------------------------------------

/// Who acts, and when.
pub struct Moment {
    pub now: DateTime<Utc>,
    pub actor: Actor,
}

pub fn at(now: DateTime<Utc>, actor: Actor) -> Moment {
    Moment { now, actor }
}

pub struct Given {
    label: String,
    events: Vec<DossierEvent>,
    session: SessionState,
}

/// Given these past events of the dossier (in the default session)…
pub fn given(events: impl IntoIterator<Item = DossierEvent>) -> Given {
    Given { label: String::new(), events: events.into_iter().collect(), session: session() }
}

impl Given {
    /// …named in failure messages (for scenarios run in a loop)…
    pub fn labelled(mut self, label: &str) -> Self {
        self.label = format!("{label}: ");
        self
    }

    /// …in this session rather than the default one…
    pub fn in_session(mut self, session: SessionState) -> Self {
        self.session = session;
        self
    }

    /// …when this command is decided at this moment by this actor…
    pub fn when(self, command: DossierCommand, moment: Moment) -> Then {
        let state = DossierState::fold(&self.events);
        let ctx = Context { now: moment.now, actor: &moment.actor, session: &self.session };
        let result = decide(&state, &command, &ctx);
        Then { label: self.label, state, result }
    }
}

pub struct Then {
    label: String,
    state: DossierState,
    result: Result<Vec<DossierEvent>, DomainError>,
}

impl Then {
    /// …then exactly these events; returns the state they lead to.
    #[track_caller]
    pub fn then(self, expected: Vec<DossierEvent>) -> DossierState {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "{}unexpected events", self.label);
                events.iter().fold(self.state, DossierState::evolve)
            }
            Err(e) => panic!("{}expected events {expected:?}, got the error « {e} » ({e:?})", self.label),
        }
    }

    /// …then this error; returns it so its French message can be checked.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) -> DomainError {
        match self.result {
            Ok(events) => panic!("{}expected the error {expected:?}, got the events {events:?}", self.label),
            Err(e) => {
                assert_eq!(e, expected, "{}unexpected error", self.label);
                e
            }
        }
    }
}

/// The default session with its deadline extended by a recorded decision (a postal strike).
pub fn extended_session(new_deadline: NaiveDate) -> SessionState {
    let events = [
        SessionEvent::SessionOpened { session_id: session_id(), config: config() },
        SessionEvent::DeadlineExtended {
            previous: deadline(),
            new_deadline,
            reason: "Grève des services postaux".to_owned(),
        },
    ];
    SessionState::fold(&events)
}

/// Complete, with the convocation to the admissibility test published.
pub fn with_convocation_published() -> Vec<DossierEvent> {
    let mut events = complete();
    events.push(DossierEvent::ConvocationPublished { test: admissibility(), document: file(40) });
    events
}

/// One command of every kind, each paired with the actor entitled to send it.
pub fn commands_of_every_kind() -> Vec<(DossierCommand, Actor)> {
    use cachet_domain::dossier::{PaperDelivery, PieceReview, RefusedForm};
    vec![
        (
            DossierCommand::PreRegister {
                dossier_id: dossier_id(),
                session_id: session_id(),
                candidate_id: candidate_id(),
                user_code: user_code(),
            },
            candidate(),
        ),
        (DossierCommand::UploadPiece { piece: appointment(), file: file(50) }, candidate()),
        (DossierCommand::RemovePiece { piece: form() }, candidate()),
        (DossierCommand::CloseRegistration, candidate()),
        (
            DossierCommand::RecordPostalReceipt {
                postmark_date: date(2023, 7, 5),
                arrival_date: date(2023, 7, 7),
                incident: None,
            },
            staff(),
        ),
        (DossierCommand::RecordCounterReceipt { received_at: paris(2023, 7, 6, 10, 0, 0) }, staff()),
        (DossierCommand::RecordRefusedIntake { form: RefusedForm::Photocopy, received_on: date(2023, 7, 5) }, staff()),
        (DossierCommand::Transfer, staff()),
        (DossierCommand::ReviewPiece { piece: appointment(), review: PieceReview::Accepted }, staff()),
        (DossierCommand::ConcludeReview, staff()),
        (DossierCommand::UploadMissingPiece { piece: appointment(), file: file(51) }, candidate()),
        (
            DossierCommand::ReceiveMissingPiece {
                piece: appointment(),
                delivery: PaperDelivery::Post { postmark_date: date(2023, 7, 12), arrival_date: date(2023, 7, 13) },
            },
            staff(),
        ),
        (DossierCommand::Reject { detail: "non conforme".to_owned() }, staff()),
        (DossierCommand::Lapse, system()),
        (DossierCommand::Withdraw { reason: None }, candidate()),
        (DossierCommand::PublishConvocation { test: admission(), document: file(52) }, staff()),
        (DossierCommand::WithholdConvocation { test: admission(), reason: "pièce d'identité".to_owned() }, staff()),
        (DossierCommand::DownloadConvocation { test: admissibility() }, candidate()),
    ]
}

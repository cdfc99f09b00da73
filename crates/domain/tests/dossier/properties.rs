//! Property tests: random sequences of commands (random actors, instants around the deadline in
//! every season, random pieces, dates and deadline extensions) decided then applied one by one,
//! with the invariants of domain.md checked after every step.

use cachet_domain::deadline::{DeadlineRule, Decisive, Verdict};
use cachet_domain::dossier::{
    decide, Context, DossierCommand, DossierEvent, DossierState, PaperDelivery, PieceReview, RefusedForm,
    RejectionReason, Status, TransmissionIncident,
};
use cachet_domain::event::DecodeError;
use cachet_domain::ids::{CandidateId, PieceCode, TestCode};
use cachet_domain::session::{
    decide_session, OpeningHours, SessionCommand, SessionConfig, SessionEvent, SessionState, TestSpec,
};
use cachet_domain::time::{end_of_paris_day, paris_date, paris_to_utc};
use cachet_domain::{Actor, DomainEvent};
use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestCaseError;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Deadlines in summer, in winter, and on and around both 2024 clock changes.
fn any_deadline() -> impl Strategy<Value = NaiveDate> {
    prop::sample::select(vec![
        date(2023, 7, 6),
        date(2023, 12, 6),
        date(2024, 3, 30),
        date(2024, 3, 31),
        date(2024, 10, 26),
        date(2024, 10, 27),
    ])
}

/// Who sends a command: mostly the actor entitled to it, so that sequences get somewhere.
#[derive(Clone, Debug)]
enum Sender {
    Entitled,
    Someone(Actor),
}

fn any_actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        Just(candidate()),
        Just(another_candidate()),
        Just(staff()),
        Just(admin()),
        Just(auditor()),
        Just(system()),
    ]
}

fn any_sender() -> impl Strategy<Value = Sender> {
    prop_oneof![3 => Just(Sender::Entitled), 2 => any_actor().prop_map(Sender::Someone)]
}

fn any_piece() -> impl Strategy<Value = PieceCode> {
    prop_oneof![3 => Just(form()), 3 => Just(appointment()), 2 => Just(adaptation()), 1 => Just(piece("inconnue"))]
}

fn any_test() -> impl Strategy<Value = TestCode> {
    prop_oneof![3 => Just(admissibility()), 2 => Just(admission()), 1 => Just(test_code("inconnue"))]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![3 => Just("document illisible".to_owned()), 1 => Just("   ".to_owned()), 1 => Just(String::new())]
}

fn any_review() -> impl Strategy<Value = PieceReview> {
    prop_oneof![
        5 => Just(PieceReview::Accepted),
        1 => Just(PieceReview::Missing),
        1 => any_text().prop_map(|reason| PieceReview::Refused { reason }),
    ]
}

fn any_incident() -> impl Strategy<Value = Option<TransmissionIncident>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some(TransmissionIncident::InsufficientPostage)),
        1 => Just(Some(TransmissionIncident::DamagedOrLost)),
        1 => Just(Some(TransmissionIncident::StrikeOrDelay)),
    ]
}

fn any_refused_form() -> impl Strategy<Value = RefusedForm> {
    prop::sample::select(vec![
        RefusedForm::Fax,
        RefusedForm::Email,
        RefusedForm::Photocopy,
        RefusedForm::Screenshot,
        RefusedForm::ConvertedAndModified,
    ])
}

/// A date given as days from the deadline, resolved once the deadline is drawn.
type DayOffset = i64;

/// An instant given as seconds from the end of the deadline day (midnight, Paris time).
type SecondOffset = i64;

fn any_day_offset() -> impl Strategy<Value = DayOffset> {
    -4i64..=4
}

/// Around midnight ending the deadline day, with its last and first seconds drawn often.
fn any_second_offset() -> impl Strategy<Value = SecondOffset> {
    prop_oneof![
        1 => Just(-1i64),
        1 => Just(1i64),
        1 => Just(0i64),
        3 => -3 * 86_400i64..=3 * 86_400,
    ]
}

/// A command with its dates and instants still relative to the deadline.
#[derive(Clone, Debug)]
enum Draft {
    PreRegister { own: bool },
    UploadPiece { piece: PieceCode, seed: u8 },
    RemovePiece { piece: PieceCode },
    CloseRegistration,
    RecordPostalReceipt { postmark: DayOffset, transit: i64, incident: Option<TransmissionIncident> },
    RecordCounterReceipt { at: SecondOffset },
    RecordRefusedIntake { form: RefusedForm, on: DayOffset },
    Transfer,
    ReviewPiece { piece: PieceCode, review: PieceReview },
    ConcludeReview,
    UploadMissingPiece { piece: PieceCode, seed: u8 },
    ReceiveMissingByPost { piece: PieceCode, postmark: DayOffset, transit: i64 },
    ReceiveMissingAtCounter { piece: PieceCode, at: SecondOffset },
    Reject { detail: String },
    Lapse,
    Withdraw { reason: Option<String> },
    PublishConvocation { test: TestCode, seed: u8 },
    WithholdConvocation { test: TestCode, reason: String },
    DownloadConvocation { test: TestCode },
}

fn any_draft() -> impl Strategy<Value = Draft> {
    prop_oneof![
        2 => prop::bool::weighted(0.9).prop_map(|own| Draft::PreRegister { own }),
        4 => (any_piece(), 0u8..4).prop_map(|(piece, seed)| Draft::UploadPiece { piece, seed }),
        4 => any_piece().prop_map(|piece| Draft::RemovePiece { piece }),
        3 => Just(Draft::CloseRegistration),
        2 => (any_day_offset(), -1i64..=5, any_incident())
            .prop_map(|(postmark, transit, incident)| Draft::RecordPostalReceipt { postmark, transit, incident }),
        2 => any_second_offset().prop_map(|at| Draft::RecordCounterReceipt { at }),
        1 => (any_refused_form(), any_day_offset()).prop_map(|(form, on)| Draft::RecordRefusedIntake { form, on }),
        3 => Just(Draft::Transfer),
        6 => (any_piece(), any_review()).prop_map(|(piece, review)| Draft::ReviewPiece { piece, review }),
        3 => Just(Draft::ConcludeReview),
        2 => (any_piece(), 0u8..4).prop_map(|(piece, seed)| Draft::UploadMissingPiece { piece, seed }),
        1 => (any_piece(), any_day_offset(), -1i64..=5)
            .prop_map(|(piece, postmark, transit)| Draft::ReceiveMissingByPost { piece, postmark, transit }),
        1 => (any_piece(), any_second_offset()).prop_map(|(piece, at)| Draft::ReceiveMissingAtCounter { piece, at }),
        1 => any_text().prop_map(|detail| Draft::Reject { detail }),
        1 => Just(Draft::Lapse),
        1 => prop::option::of(any_text()).prop_map(|reason| Draft::Withdraw { reason }),
        2 => (any_test(), 0u8..4).prop_map(|(test, seed)| Draft::PublishConvocation { test, seed }),
        1 => (any_test(), any_text()).prop_map(|(test, reason)| Draft::WithholdConvocation { test, reason }),
        2 => any_test().prop_map(|test| Draft::DownloadConvocation { test }),
    ]
}

/// How far the clock moves before a step: seconds, days, or weeks towards the tests.
fn any_advance() -> impl Strategy<Value = Duration> {
    prop_oneof![
        4 => (0i64..=7_200).prop_map(Duration::seconds),
        2 => (0i64..=3 * 86_400).prop_map(Duration::seconds),
        1 => (20i64..=50).prop_map(Duration::days),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Dossier {
        draft: Draft,
        sender: Sender,
        advance: Duration,
    },
    /// The session's deadline extended by this many days, by an administrator.
    Extend {
        days: u64,
        advance: Duration,
    },
}

fn any_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        30 => (any_draft(), any_sender(), any_advance())
            .prop_map(|(draft, sender, advance)| Step::Dossier { draft, sender, advance }),
        1 => (1u64..=10, any_advance()).prop_map(|(days, advance)| Step::Extend { days, advance }),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    deadline: NaiveDate,
    counter_around_the_clock: bool,
    /// Seconds before the end of the deadline day at which the first step happens.
    start_before_midnight: i64,
    steps: Vec<Step>,
}

/// The start of the way to a convocation, each step by the entitled actor a minute apart, so that
/// random sequences also start from deep in the lifecycle.
fn happy_path(len: usize) -> Vec<Step> {
    let drafts = [
        Draft::PreRegister { own: true },
        Draft::UploadPiece { piece: form(), seed: 1 },
        Draft::UploadPiece { piece: appointment(), seed: 2 },
        Draft::CloseRegistration,
        Draft::Transfer,
        Draft::ReviewPiece { piece: form(), review: PieceReview::Accepted },
        Draft::ReviewPiece { piece: appointment(), review: PieceReview::Accepted },
        Draft::ConcludeReview,
        Draft::PublishConvocation { test: admissibility(), seed: 3 },
        Draft::DownloadConvocation { test: admissibility() },
    ];
    drafts
        .into_iter()
        .take(len)
        .map(|draft| Step::Dossier { draft, sender: Sender::Entitled, advance: Duration::minutes(1) })
        .collect()
}

fn any_scenario() -> impl Strategy<Value = Scenario> {
    (any_deadline(), any::<bool>(), 0i64..=10 * 86_400, 0usize..=10, prop::collection::vec(any_step(), 1..60)).prop_map(
        |(deadline, counter_around_the_clock, start_before_midnight, prefix, random)| Scenario {
            deadline,
            counter_around_the_clock,
            start_before_midnight,
            steps: happy_path(prefix).into_iter().chain(random).collect(),
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Resolving drafts
// ---------------------------------------------------------------------------------------------

fn shift(day: NaiveDate, days: i64) -> NaiveDate {
    let magnitude = Days::new(days.unsigned_abs());
    if days >= 0 {
        day.checked_add_days(magnitude).expect("a date in range")
    } else {
        day.checked_sub_days(magnitude).expect("a date in range")
    }
}

/// A session like the source document's, with the given deadline, tests two and four months
/// later, and the counter open on weekday office hours or around the clock.
fn scenario_config(deadline: NaiveDate, around_the_clock: bool) -> SessionConfig {
    let mut config = config_with_deadline(deadline);
    if around_the_clock {
        let closes = NaiveTime::from_hms_milli_opt(23, 59, 59, 999).expect("a valid time of day");
        config.counter_hours =
            [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun]
                .into_iter()
                .map(|weekday| OpeningHours { weekday, opens: NaiveTime::MIN, closes })
                .collect();
    }
    let nine = NaiveTime::from_hms_opt(9, 0, 0).expect("a valid time of day");
    for (test, days) in config.tests.iter_mut().zip([60, 120]) {
        let day: NaiveDate = shift(deadline, days);
        *test = TestSpec { starts_at: day.and_time(nine), ..test.clone() };
    }
    config
}

fn resolve(draft: &Draft, original_deadline: NaiveDate) -> DossierCommand {
    let day = |offset: DayOffset| shift(original_deadline, offset);
    let instant = |offset: SecondOffset| end_of_paris_day(original_deadline) + Duration::seconds(offset);
    match draft.clone() {
        Draft::PreRegister { own } => DossierCommand::PreRegister {
            dossier_id: dossier_id(),
            session_id: session_id(),
            candidate_id: if own { candidate_id() } else { CandidateId::from_uuid(uuid::Uuid::from_u128(0x0a7e_0001)) },
            user_code: user_code(),
        },
        Draft::UploadPiece { piece, seed } => DossierCommand::UploadPiece { piece, file: file(seed) },
        Draft::RemovePiece { piece } => DossierCommand::RemovePiece { piece },
        Draft::CloseRegistration => DossierCommand::CloseRegistration,
        Draft::RecordPostalReceipt { postmark, transit, incident } => DossierCommand::RecordPostalReceipt {
            postmark_date: day(postmark),
            arrival_date: day(postmark + transit),
            incident,
        },
        Draft::RecordCounterReceipt { at } => DossierCommand::RecordCounterReceipt { received_at: instant(at) },
        Draft::RecordRefusedIntake { form, on } => DossierCommand::RecordRefusedIntake { form, received_on: day(on) },
        Draft::Transfer => DossierCommand::Transfer,
        Draft::ReviewPiece { piece, review } => DossierCommand::ReviewPiece { piece, review },
        Draft::ConcludeReview => DossierCommand::ConcludeReview,
        Draft::UploadMissingPiece { piece, seed } => DossierCommand::UploadMissingPiece { piece, file: file(seed) },
        Draft::ReceiveMissingByPost { piece, postmark, transit } => DossierCommand::ReceiveMissingPiece {
            piece,
            delivery: PaperDelivery::Post { postmark_date: day(postmark), arrival_date: day(postmark + transit) },
        },
        Draft::ReceiveMissingAtCounter { piece, at } => {
            DossierCommand::ReceiveMissingPiece { piece, delivery: PaperDelivery::Counter { received_at: instant(at) } }
        }
        Draft::Reject { detail } => DossierCommand::Reject { detail },
        Draft::Lapse => DossierCommand::Lapse,
        Draft::Withdraw { reason } => DossierCommand::Withdraw { reason },
        Draft::PublishConvocation { test, seed } => DossierCommand::PublishConvocation { test, document: file(seed) },
        Draft::WithholdConvocation { test, reason } => DossierCommand::WithholdConvocation { test, reason },
        Draft::DownloadConvocation { test } => DossierCommand::DownloadConvocation { test },
    }
}

/// The actor entitled to a command.
fn entitled(command: &DossierCommand) -> Actor {
    match command {
        DossierCommand::PreRegister { .. }
        | DossierCommand::UploadPiece { .. }
        | DossierCommand::RemovePiece { .. }
        | DossierCommand::CloseRegistration
        | DossierCommand::UploadMissingPiece { .. }
        | DossierCommand::Withdraw { .. }
        | DossierCommand::DownloadConvocation { .. } => candidate(),
        DossierCommand::Lapse => system(),
        _ => staff(),
    }
}

// ---------------------------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------------------------

fn is_auditor(actor: &Actor) -> bool {
    matches!(actor, Actor::Staff { role: cachet_domain::event::StaffRole::Auditor, .. })
}

/// What the steps reached, to check the generators explore the whole lifecycle.
#[derive(Default)]
struct Reached {
    statuses: std::collections::BTreeSet<String>,
    events: std::collections::BTreeSet<&'static str>,
}

/// Checks the events of one decision against the state they were decided on.
fn check_decision(
    before: &DossierState,
    command: &DossierCommand,
    actor: &Actor,
    events: &[DossierEvent],
    now: DateTime<Utc>,
    deadline: NaiveDate,
    config: &SessionConfig,
) -> Result<(), TestCaseError> {
    let context = || format!("{command:?} by {actor:?} at {now} (deadline {deadline}) gave {events:?}");
    if is_auditor(actor) {
        prop_assert!(events.is_empty(), "an auditor produced events: {}", context());
    }
    if before.status.is_terminal() {
        prop_assert!(events.is_empty(), "a {:?} dossier changed: {}", before.status, context());
    }

    let mut state = before.clone();
    for (i, event) in events.iter().enumerate() {
        let next = events.get(i + 1);
        let rejected_late_with = |verdict: &Verdict| matches!(next, Some(DossierEvent::Rejected { reason: RejectionReason::Late { verdict: v } }) if v == verdict);
        match event {
            DossierEvent::RegistrationClosed { closed_at, verdict, .. } => {
                prop_assert!(verdict.on_time, "a late online closure: {}", context());
                prop_assert!(*closed_at < end_of_paris_day(deadline), "closed after midnight: {}", context());
                prop_assert_eq!(*closed_at, now);
                prop_assert_eq!(verdict.deadline, deadline);
                prop_assert_eq!(verdict.rule, DeadlineRule::OnlineBeforeMidnight);
                let form = config.registration_form().expect("a red-dot form");
                prop_assert!(
                    state.pieces.get(&form.code).is_some_and(|p| p.file.is_some()),
                    "closed without the registration form: {}",
                    context()
                );
            }
            DossierEvent::PostalReceiptRecorded { postmark_date, verdict, .. } => {
                prop_assert_eq!(verdict.decisive, Decisive::Date(*postmark_date));
                prop_assert_eq!(verdict.deadline, deadline);
                prop_assert_eq!(verdict.on_time, *postmark_date <= deadline, "{}", context());
                if !verdict.on_time {
                    prop_assert!(rejected_late_with(verdict), "a late letter was accepted: {}", context());
                }
            }
            DossierEvent::CounterReceiptRecorded { received_at, verdict } => {
                prop_assert_eq!(verdict.decisive, Decisive::Instant(*received_at));
                prop_assert_eq!(verdict.deadline, deadline);
                prop_assert_eq!(verdict.on_time, paris_date(*received_at) <= deadline, "{}", context());
                if !verdict.on_time {
                    prop_assert!(rejected_late_with(verdict), "a late counter deposit was accepted: {}", context());
                }
            }
            DossierEvent::MarkedComplete => {
                for spec in config.pieces.iter().filter(|p| p.kind.is_required()) {
                    let review = state.pieces.get(&spec.code).and_then(|p| p.review.as_ref());
                    prop_assert_eq!(
                        review,
                        Some(&PieceReview::Accepted),
                        "complete while {} is not accepted: {}",
                        spec.code,
                        context()
                    );
                }
            }
            DossierEvent::Lapsed { deadline: lapsed } => {
                prop_assert!(now >= end_of_paris_day(deadline), "lapsed before the deadline: {}", context());
                prop_assert_eq!(*lapsed, deadline);
                prop_assert_eq!(state.status, Status::PreRegistered);
            }
            _ => {}
        }
        state = state.evolve(event);
    }
    Ok(())
}

/// Every event survives its canonical encoding.
fn check_round_trip(event: &DossierEvent) -> Result<(), TestCaseError> {
    let bytes = event.encode();
    let decoded = DossierEvent::decode(event.event_type(), DossierEvent::SCHEMA_VERSION, &bytes);
    prop_assert!(
        decoded.as_ref().is_ok_and(|d| d == event),
        "{event:?} decoded as {decoded:?} from {}",
        String::from_utf8_lossy(&bytes)
    );
    prop_assert_eq!(decoded.expect("checked above").encode(), bytes, "the encoding is not canonical");
    Ok(())
}

fn run(scenario: &Scenario, reached: &mut Reached) -> Result<(), TestCaseError> {
    let config = scenario_config(scenario.deadline, scenario.counter_around_the_clock);
    let mut session = SessionState::fold(&[SessionEvent::SessionOpened { session_id: session_id(), config }]);
    let mut now = end_of_paris_day(scenario.deadline) - Duration::seconds(scenario.start_before_midnight);
    let mut history: Vec<DossierEvent> = Vec::new();
    let mut state = DossierState::default();

    for step in &scenario.steps {
        match step {
            Step::Extend { days, advance } => {
                now += *advance;
                let (_, current) = session.opened().expect("an opened session");
                let command = SessionCommand::ExtendDeadline {
                    new_deadline: current.checked_add_days(Days::new(*days)).expect("a date in range"),
                    reason: "grève des services postaux".to_owned(),
                };
                let events = decide_session(&session, &command, &admin()).expect("an administrator extends");
                session = events.iter().fold(session, SessionState::evolve);
            }
            Step::Dossier { draft, sender, advance } => {
                now += *advance;
                let command = resolve(draft, scenario.deadline);
                let actor = match sender {
                    Sender::Entitled => entitled(&command),
                    Sender::Someone(actor) => actor.clone(),
                };
                let (config, deadline) = session.opened().expect("an opened session");
                let ctx = Context { now, actor: &actor, session: &session };
                let result = decide(&state, &command, &ctx);
                if is_auditor(&actor) {
                    prop_assert!(result.is_err(), "an auditor was allowed {command:?}: {result:?}");
                }
                let Ok(events) = result else { continue };
                check_decision(&state, &command, &actor, &events, now, deadline, config)?;

                let terminal_before = state.status.is_terminal().then(|| state.clone());
                for event in &events {
                    check_round_trip(event)?;
                    reached.events.insert(event.event_type());
                    state = state.evolve(event);
                    history.push(event.clone());
                }
                if let Some(before) = terminal_before {
                    prop_assert_eq!(&state, &before, "a terminal dossier changed");
                }
                prop_assert_eq!(&DossierState::fold(&history), &state, "folding at once differs from step by step");
                prop_assert!(state.candidate_message().is_some(), "no message for a {:?} dossier", state.status);
                reached.statuses.insert(format!("{:?}", state.status));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_never_break_the_rules(scenario in any_scenario()) {
        run(&scenario, &mut Reached::default())?;
    }

    #[test]
    fn a_closure_is_on_time_exactly_when_it_happens_before_midnight_paris_time(
        deadline in any_deadline(),
        offset in -2 * 86_400i64..=2 * 86_400,
    ) {
        let now = end_of_paris_day(deadline) - Duration::seconds(offset);
        let session = session_with(scenario_config(deadline, false));
        let state = DossierState::fold(&with_form());
        let result = decide(&state, &DossierCommand::CloseRegistration, &Context { now, actor: &candidate(), session: &session });
        let before_midnight = paris_to_utc(shift(deadline, 1).and_time(NaiveTime::MIN)) > now;
        prop_assert_eq!(result.is_ok(), before_midnight, "{:?}", result);
    }
}

/// The generators reach every status and every kind of event: the property above is not vacuous.
#[test]
fn random_command_sequences_reach_every_status_and_every_event() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut reached = Reached::default();
    for _ in 0..400 {
        let scenario = any_scenario().new_tree(&mut runner).expect("a scenario").current();
        run(&scenario, &mut reached).expect("the invariants hold");
    }
    let statuses: Vec<_> = reached.statuses.iter().map(String::as_str).collect();
    assert_eq!(
        statuses,
        ["Complete", "Deposited", "Incomplete", "Lapsed", "PreRegistered", "Rejected", "UnderReview", "Withdrawn"]
    );
    let every_event = [
        "PreRegistered",
        "PieceUploaded",
        "PieceRemoved",
        "RegistrationClosed",
        "PostalReceiptRecorded",
        "CounterReceiptRecorded",
        "IntakeRefused",
        "Rejected",
        "Transferred",
        "PieceReviewed",
        "MarkedIncomplete",
        "MarkedComplete",
        "MissingPieceReceived",
        "ReviewResumed",
        "Lapsed",
        "Withdrawn",
        "ConvocationPublished",
        "ConvocationWithheld",
        "ConvocationDownloaded",
    ];
    let missing: Vec<_> = every_event.iter().filter(|e| !reached.events.contains(*e)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

#[test]
fn an_event_decoded_with_another_schema_version_or_type_is_refused() {
    let event = pre_registered();
    let bytes = event.encode();
    assert!(matches!(
        DossierEvent::decode("PreRegistered", DossierEvent::SCHEMA_VERSION + 1, &bytes),
        Err(DecodeError::UnknownVersion { .. })
    ));
    assert!(matches!(
        DossierEvent::decode("Transferred", DossierEvent::SCHEMA_VERSION, &bytes),
        Err(DecodeError::TypeMismatch { .. })
    ));
    assert!(matches!(
        DossierEvent::decode("PreRegistered", DossierEvent::SCHEMA_VERSION, b"{\"type\":\"PreRegistered\"}"),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn the_encoding_of_an_event_is_compact_json_tagged_with_its_type() {
    assert_eq!(DossierEvent::Transferred.encode(), b"{\"type\":\"Transferred\"}");
    assert_eq!(DossierEvent::STREAM_TYPE, "dossier");
}

#[test]
fn a_payload_decodes_the_same_by_its_type_column_or_by_its_tag() {
    let event = pre_registered();
    let canonical = event.encode();
    // Not canonical (spaces, another field order): decoded by its tag, then checked.
    let spaced = String::from_utf8(canonical.clone()).unwrap().replacen("{\"type\":", "{ \"type\" : ", 1);
    let decoded = DossierEvent::decode("PreRegistered", DossierEvent::SCHEMA_VERSION, spaced.as_bytes());
    assert_eq!(decoded.ok().as_ref(), Some(&event));
    // Canonical: decoded straight into its variant, and trailing bytes are still refused.
    let mut trailing = canonical.clone();
    trailing.extend_from_slice(b" {}");
    assert!(matches!(
        DossierEvent::decode("PreRegistered", DossierEvent::SCHEMA_VERSION, &trailing),
        Err(DecodeError::Malformed { .. })
    ));
    assert_eq!(
        DossierEvent::decode("Transferred", DossierEvent::SCHEMA_VERSION, b"{\"type\":\"Transferred\"}").ok(),
        Some(DossierEvent::Transferred)
    );
    // A type name that only starts like the column's is not taken for it.
    assert!(matches!(
        DossierEvent::decode("Transfer", DossierEvent::SCHEMA_VERSION, b"{\"type\":\"Transferred\"}"),
        Err(DecodeError::Malformed { .. } | DecodeError::TypeMismatch { .. })
    ));
}

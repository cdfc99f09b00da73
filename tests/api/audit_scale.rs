//! Issue 6 at scale: on a generated history of 10,000 dossiers, the rebuilt read models equal the
//! live ones, and the as-of answer at each event's time equals the status view recorded right
//! after it.
//!
//! The history (10,000 dossiers, 62,614 commands, 66,735 events) is decided by the real domain
//! (`dossier::decide`, with a `Context` at chosen instants from six weeks before to several weeks
//! after a deadline, across the autumn clock change), as `demo.rs` does, from a seeded
//! pseudo-random mix of lifecycles: pre-registered only, closed online (and refused after
//! midnight, or without the red-dot form), posted on time or late (the postmark decides, also
//! after a lapse), handed in at the counter, refused forms, transmission incidents, transfer,
//! piece reviews, incomplete, missing pieces received online, by post or at the counter,
//! complete, rejected, lapsed, withdrawn. It is appended straight to the store: each dossier's
//! commands in turn with the version they expect, `IN_FLIGHT` dossiers at once, so the appender
//! commits them in groups (the store has no other batch API); the live projections follow.
//!
//! Then:
//! - every read model is rebuilt beside the live one and compared at the same position, as
//!   `cachet verify --projections` does: no difference; the statistics are the generated ones;
//! - the live status rows a reader saw during the generation, and those at the end, are each the
//!   status view of the state folded up to the event at their position, and the as-of answer at
//!   that event's recorded time;
//! - for every event of a sample of 1,000 dossiers (every tenth), the as-of answer at its
//!   recorded time (`audit::dossier_as_of`, the function behind `GET /api/dossiers/{id}/as-of`) is
//!   the status view of the state folded up to the last event recorded at that instant (the
//!   events of one command share it, and nobody could read between them), and one microsecond
//!   earlier it is the view before it;
//! - for two dossiers of each final state, the same answers through HTTP, and the live row.
//!
//! Measured, debug build, 2 cores shared with other work (load average about 4), with
//! `CI=true cargo test -p cachet-tests --test api audit_scale -- --nocapture` (each test prints
//! its phases): SQLite alone 96–110 s, PostgreSQL alone 82–134 s, both together (the command
//! above) 126–186 s. Most of it is the store and the projections, not the test: appending with
//! the live runner following 44–90 s (about five statements per command in the appender),
//! rebuilding and comparing 16–29 s, the as-of sample 7–15 s, generation 2 s. Checking every
//! event of all 10,000 dossiers took 116 s (SQLite) and 150 s (PostgreSQL) on its own, hence the
//! sample.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use cachet_api::audit::dossier_as_of;
use cachet_api::service::user_code_for;
use cachet_domain::dossier::{
    decide, Context, DossierCommand, DossierEvent, DossierState, FileRef, MediaType, PaperDelivery, PieceReview,
    RefusedForm, Status, TransmissionIncident,
};
use cachet_domain::event::{DomainEvent, StaffRole};
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId, Sha256Hex};
use cachet_domain::session::{PieceKind, SessionConfig, SessionEvent, SessionState};
use cachet_domain::time::{end_of_paris_day, paris_date, paris_to_utc, start_of_paris_day};
use cachet_domain::{Actor, DomainError};
use cachet_projections::dossiers::DossiersProjection;
use cachet_projections::queries::{self, DossierStatus, Statistics};
use cachet_projections::replay::{compare_at_live, drop_rebuild, rebuild_beside};
use cachet_projections::runner::{read_checkpoint, Target};
use cachet_store::typed::{append_request, decode, load, Metadata};
use cachet_store::{stream_all, AppendRequest, ExpectedVersion, StoredEvent};
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, SecondsFormat, TimeDelta, Utc, Weekday};
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{session_until, Caller, TestApp};

const DOSSIERS: usize = 10_000;
const SEED: u64 = 0x000C_AC4E_7202_3102;
/// Dossiers whose commands are being appended at once.
const IN_FLIGHT: usize = 48;
/// Every `AS_OF_EVERY`-th dossier has each of its events checked as of its time.
const AS_OF_EVERY: usize = 10;

const FORM: &str = "dossier-preinscription";
const SERVICES: &str = "etat-services";
const SITUATION: &str = "arrete-situation";
const ADAPTATION: &str = "amenagement-epreuves";

/// A Friday; Paris leaves summer time on Sunday 29 October 2023.
fn deadline() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 10, 27).expect("valid date")
}

// --- Deterministic choices ----------------------------------------------------------------------

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

// --- Paris time ---------------------------------------------------------------------------------

fn add_days(date: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        date.checked_add_days(Days::new(days.unsigned_abs())).expect("date in range")
    } else {
        date.checked_sub_days(Days::new(days.unsigned_abs())).expect("date in range")
    }
}

/// A Paris wall-clock time, given in minutes after midnight.
fn paris_at(date: NaiveDate, minutes: i64) -> DateTime<Utc> {
    paris_to_utc(date.and_time(NaiveTime::MIN) + TimeDelta::minutes(minutes))
}

/// A weekday instant while the counter is open (09h00–11h30 or 14h00–16h30), on a date
/// `min_days..=max_days` after `from`'s Paris date, and not before `from`.
fn office_time(rng: &mut Rng, from: DateTime<Utc>, min_days: i64, max_days: i64) -> DateTime<Utc> {
    let mut date = add_days(paris_date(from), rng.range(min_days, max_days));
    loop {
        if matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            date = add_days(date, 1);
            continue;
        }
        let minutes = if rng.percent(50) { rng.range(9 * 60, 11 * 60 + 30) } else { rng.range(14 * 60, 16 * 60 + 30) };
        let at = paris_at(date, minutes);
        if at >= from {
            return at;
        }
        date = add_days(date, 1);
    }
}

fn piece(code: &str) -> PieceCode {
    PieceCode::parse(code).expect("piece code")
}

// --- Generation ---------------------------------------------------------------------------------

/// One command's append, with the instant it was decided at.
struct Step {
    now: DateTime<Utc>,
    request: AppendRequest,
}

/// A generated dossier: what the domain decided for it.
struct Generated {
    id: DossierId,
    events: Vec<DossierEvent>,
    state: DossierState,
    steps: Vec<Step>,
    /// The refusals the plan ran into on purpose (a closure after midnight…), by kind.
    refusals: Vec<&'static str>,
}

/// Walks one dossier through a pseudo-random lifecycle, each command decided by the domain at
/// its own instant.
struct Walk<'a> {
    session: &'a SessionState,
    config: &'a SessionConfig,
    staff: &'a Actor,
    system: &'a Actor,
    rng: Rng,
    id: DossierId,
    candidate: Actor,
    registered_on: NaiveDate,
    state: DossierState,
    version: i64,
    now: DateTime<Utc>,
    events: Vec<DossierEvent>,
    steps: Vec<Step>,
    refusals: Vec<&'static str>,
}

impl Walk<'_> {
    fn end_of_deadline_day(&self) -> DateTime<Utc> {
        end_of_paris_day(deadline())
    }

    fn decide(&self, actor: &Actor, command: &DossierCommand) -> Result<Vec<DossierEvent>, DomainError> {
        decide(&self.state, command, &Context { now: self.now, actor, session: self.session })
    }

    fn record(&mut self, actor: &Actor, command: &DossierCommand, events: Vec<DossierEvent>) {
        if events.is_empty() {
            return;
        }
        let command_id = Uuid::new_v5(&self.id.as_uuid(), format!("command/{}", self.version).as_bytes());
        let metadata = Metadata { actor: actor.clone(), command_id, correlation_id: command_id, causation_id: None };
        let request = append_request(
            self.id.as_uuid(),
            ExpectedVersion::Exact(self.version),
            &metadata,
            command.occurred_at(self.now),
            &events,
        );
        if let Some(last) = self.steps.last() {
            assert!(last.now <= self.now, "a dossier's instants never go back");
        }
        self.version += events.len() as i64;
        self.state = events.iter().fold(std::mem::take(&mut self.state), DossierState::evolve);
        self.events.extend(events);
        self.steps.push(Step { now: self.now, request });
    }

    /// A command the plan knows the domain accepts.
    fn run(&mut self, actor: &Actor, command: DossierCommand) {
        let events = self.decide(actor, &command).unwrap_or_else(|e| {
            panic!("dossier {}: {command:?} at {} refused: {e} (state {:?})", self.id.as_uuid(), self.now, self.state)
        });
        self.record(actor, &command, events);
    }

    /// A command the domain may refuse; the refusal is returned and counted.
    fn attempt(&mut self, actor: &Actor, command: DossierCommand) -> Result<(), DomainError> {
        match self.decide(actor, &command) {
            Ok(events) => {
                self.record(actor, &command, events);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn later(&mut self, min_minutes: i64, max_minutes: i64) {
        self.now += TimeDelta::minutes(self.rng.range(min_minutes, max_minutes));
    }

    fn at_office(&mut self, min_days: i64, max_days: i64) {
        self.now = office_time(&mut self.rng, self.now, min_days, max_days);
    }

    fn file(&mut self, code: &str) -> FileRef {
        let hex =
            format!("{:016x}{:016x}{:016x}{:016x}", self.rng.next(), self.rng.next(), self.rng.next(), self.rng.next());
        FileRef {
            sha256: Sha256Hex::parse(&hex).expect("sha256"),
            size: 1_000 + self.rng.below(500_000),
            media_type: self.rng.pick(&[MediaType::Pdf, MediaType::Pdf, MediaType::Jpeg, MediaType::Png]),
            filename: format!("{code}.pdf"),
        }
    }

    fn candidate(&self) -> Actor {
        self.candidate.clone()
    }

    fn upload(&mut self, code: &str) -> Result<(), DomainError> {
        let candidate = self.candidate();
        let file = self.file(code);
        self.attempt(&candidate, DossierCommand::UploadPiece { piece: piece(code), file })
    }

    fn withdraw(&mut self) {
        let actor = if self.rng.percent(70) { self.candidate() } else { self.staff.clone() };
        let reason = self.rng.pick(&[None, Some("mutation dans un autre département"), Some("  ")]);
        self.run(&actor, DossierCommand::Withdraw { reason: reason.map(str::to_owned) });
    }

    fn reject(&mut self) {
        let detail = self.rng.pick(&[
            "le dossier de pré-inscription n'est pas signé.",
            "le dossier de pré-inscription n'est pas daté.",
            "l'état des services ne concerne pas le candidat.",
        ]);
        let staff = self.staff;
        self.run(staff, DossierCommand::Reject { detail: detail.to_owned() });
    }

    fn refused_intake(&mut self) {
        let form = self.rng.pick(&[
            RefusedForm::Fax,
            RefusedForm::Email,
            RefusedForm::Photocopy,
            RefusedForm::Screenshot,
            RefusedForm::ConvertedAndModified,
        ]);
        let staff = self.staff;
        self.run(staff, DossierCommand::RecordRefusedIntake { form, received_on: paris_date(self.now) });
    }

    /// Posts the dossier: the postmark decides, whatever the arrival.
    fn post(&mut self, postmark: NaiveDate) {
        let postmark = postmark.max(self.registered_on);
        let arrival = add_days(postmark, self.rng.range(0, 6));
        self.now = office_time(&mut self.rng, self.now.max(start_of_paris_day(arrival)), 0, 3);
        let incident = if self.rng.percent(6) {
            Some(self.rng.pick(&[
                TransmissionIncident::InsufficientPostage,
                TransmissionIncident::DamagedOrLost,
                TransmissionIncident::StrikeOrDelay,
            ]))
        } else {
            None
        };
        let staff = self.staff;
        self.run(
            staff,
            DossierCommand::RecordPostalReceipt { postmark_date: postmark, arrival_date: arrival, incident },
        );
    }

    /// Handed in at the counter, on a day up to `max_days` later.
    fn counter(&mut self, max_days: i64) {
        let received_at = office_time(&mut self.rng, self.now, 0, max_days);
        self.now = received_at + TimeDelta::minutes(self.rng.range(0, 120));
        let staff = self.staff;
        self.run(staff, DossierCommand::RecordCounterReceipt { received_at });
    }

    /// The system declares the dossier *non parvenu* after the deadline; it may still arrive by
    /// post, on time if it was posted on time.
    fn lapse(&mut self) {
        let lapse_at = paris_at(add_days(deadline(), self.rng.range(1, 10)), 8 * 60);
        self.now = self.now.max(lapse_at);
        let system = self.system;
        self.run(system, DossierCommand::Lapse);
        match self.rng.below(100) {
            0..=39 => {
                let postmark = add_days(deadline(), self.rng.range(-4, 3));
                self.post(postmark);
            }
            40..=47 => self.counter(10),
            _ => {}
        }
    }

    fn online(&mut self) {
        let mut pieces = Vec::new();
        let forgets_form = self.rng.percent(4);
        if !forgets_form {
            pieces.push(FORM);
        }
        for code in [SERVICES, SITUATION] {
            if self.rng.percent(70) {
                pieces.push(code);
            }
        }
        if self.rng.percent(5) {
            pieces.push(ADAPTATION);
        }
        if self.rng.percent(10) {
            // A piece sent again replaces the first file.
            if let Some(&again) = pieces.first() {
                pieces.push(again);
            }
        }
        for code in pieces.iter().copied() {
            self.later(5, 2 * 24 * 60);
            if let Err(e) = self.upload(code) {
                assert!(self.now >= self.end_of_deadline_day(), "an upload refused before the deadline: {e}");
                assert!(matches!(e, DomainError::UploadAfterDeadline { .. }), "{e}");
                self.refusals.push("upload after the deadline");
                return self.lapse();
            }
        }
        if self.rng.percent(5) && self.state.pieces.get(&piece(SERVICES)).is_some_and(|p| p.file.is_some()) {
            self.later(5, 600);
            let candidate = self.candidate();
            if let Err(e) = self.attempt(&candidate, DossierCommand::RemovePiece { piece: piece(SERVICES) }) {
                assert!(matches!(e, DomainError::InvalidTransition { .. }), "{e}");
            }
        }
        let candidate = self.candidate();
        if forgets_form {
            self.later(5, 600);
            let refused = self.attempt(&candidate, DossierCommand::CloseRegistration);
            assert!(matches!(refused, Err(DomainError::RegistrationFormMissing { .. })), "{refused:?}");
            self.refusals.push("closure without the red-dot form");
            self.later(5, 600);
            if self.upload(FORM).is_err() {
                self.refusals.push("upload after the deadline");
                return self.lapse();
            }
        }
        // The closure: mostly in time, some on the evening of the deadline day, some just after
        // midnight, some days late.
        let end = self.end_of_deadline_day();
        let close_at = match self.rng.below(100) {
            0..=69 if self.now < end => {
                let room = (end - self.now).num_minutes().max(1);
                self.now + TimeDelta::minutes(self.rng.range(0, (room - 1).min(8 * 24 * 60)))
            }
            0..=79 => paris_at(deadline(), self.rng.range(22 * 60, 23 * 60 + 59)),
            80..=89 => paris_at(add_days(deadline(), 1), self.rng.range(0, 59)),
            _ => paris_at(add_days(deadline(), self.rng.range(1, 5)), self.rng.range(8 * 60, 23 * 60)),
        };
        self.now = self.now.max(close_at);
        match self.attempt(&candidate, DossierCommand::CloseRegistration) {
            Ok(()) => assert!(self.now < end, "closed online after midnight"),
            Err(e) => {
                assert!(self.now >= end, "a closure refused before midnight: {e}");
                assert!(matches!(e, DomainError::ClosureAfterDeadline { .. }), "{e}");
                self.refusals.push("closure after midnight");
                if self.rng.percent(60) {
                    self.lapse();
                }
            }
        }
    }

    fn review_pieces(&mut self, first_round: bool) {
        let specs: Vec<(PieceCode, PieceKind)> = self.config.pieces.iter().map(|p| (p.code.clone(), p.kind)).collect();
        for (code, kind) in specs {
            let held = self.state.pieces.get(&code);
            let awaiting = held.is_some_and(|p| p.awaiting_review);
            let unreviewed = held.is_none_or(|p| p.review.is_none());
            let review = if awaiting {
                if self.rng.percent(85) {
                    PieceReview::Accepted
                } else {
                    PieceReview::Refused { reason: "document illisible".to_owned() }
                }
            } else if first_round && unreviewed && kind != PieceKind::Conditional {
                match self.rng.below(100) {
                    0..=75 => PieceReview::Accepted,
                    76..=87 => PieceReview::Missing,
                    _ => PieceReview::Refused { reason: "pièce non signée".to_owned() },
                }
            } else if first_round && kind == PieceKind::Conditional && self.rng.percent(5) {
                PieceReview::Missing
            } else {
                continue;
            };
            self.later(1, 20);
            let staff = self.staff;
            self.run(staff, DossierCommand::ReviewPiece { piece: code, review });
        }
    }

    fn deliver_missing(&mut self, code: PieceCode) {
        match self.rng.below(100) {
            0..=39 => {
                self.later(60, 8 * 24 * 60);
                let candidate = self.candidate();
                let file = self.file(code.as_str());
                self.run(&candidate, DossierCommand::UploadMissingPiece { piece: code, file });
            }
            40..=79 => {
                let postmark = add_days(paris_date(self.now), self.rng.range(1, 8));
                let arrival = add_days(postmark, self.rng.range(1, 4));
                self.now = office_time(&mut self.rng, self.now.max(start_of_paris_day(arrival)), 0, 2);
                let delivery = PaperDelivery::Post { postmark_date: postmark, arrival_date: arrival };
                let staff = self.staff;
                self.run(staff, DossierCommand::ReceiveMissingPiece { piece: code, delivery });
            }
            _ => {
                let received_at = office_time(&mut self.rng, self.now, 1, 10);
                self.now = received_at + TimeDelta::minutes(self.rng.range(0, 60));
                let staff = self.staff;
                let delivery = PaperDelivery::Counter { received_at };
                self.run(staff, DossierCommand::ReceiveMissingPiece { piece: code, delivery });
            }
        }
    }

    /// The exam office's part, once the dossier is deposited.
    fn office(&mut self) {
        let choice = self.rng.below(100);
        if choice < 8 {
            return;
        }
        self.at_office(1, 12);
        match choice {
            8..=10 => return self.refused_intake(),
            11..=13 => return self.withdraw(),
            14..=16 => return self.reject(),
            _ => {}
        }
        let staff = self.staff;
        self.run(staff, DossierCommand::Transfer);
        for round in 0..4 {
            if !matches!(self.state.status, Status::UnderReview | Status::Incomplete) {
                return;
            }
            let choice = self.rng.below(100);
            if choice < 6 {
                return;
            }
            self.at_office(0, 7);
            match choice {
                6..=7 => return self.withdraw(),
                8..=9 => return self.reject(),
                _ => {}
            }
            self.review_pieces(round == 0);
            self.later(1, 30);
            self.run(staff, DossierCommand::ConcludeReview);
            if self.state.status == Status::Complete {
                match self.rng.below(100) {
                    0..=4 => {
                        self.at_office(1, 20);
                        self.reject();
                    }
                    5..=7 => {
                        self.later(60, 30 * 24 * 60);
                        self.withdraw();
                    }
                    _ => {}
                }
                return;
            }
            if self.rng.percent(18) {
                return;
            }
            if self.rng.percent(3) {
                self.later(60, 10 * 24 * 60);
                return self.withdraw();
            }
            let missing: Vec<PieceCode> = self.state.missing.iter().map(|m| m.code.clone()).collect();
            let partly = missing.len() > 1 && self.rng.percent(15);
            let count = if partly { missing.len() - 1 } else { missing.len() };
            for code in missing.into_iter().take(count) {
                self.deliver_missing(code);
            }
            if partly {
                return;
            }
        }
    }
}

fn generate(n: usize, session_id: SessionId, session: &SessionState, staff: &Actor, system: &Actor) -> Generated {
    let (config, _) = session.opened().expect("the session is open");
    let mut rng = Rng::new(SEED ^ (n as u64).wrapping_mul(0xD134_2543_DE82_EF95));
    let id =
        DossierId::from_uuid(Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("cachet:audit-scale/dossier/{n}").as_bytes()));
    let candidate_id = CandidateId::from_uuid(Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("cachet:audit-scale/candidate/{n}").as_bytes(),
    ));
    let registered_on = add_days(deadline(), -rng.range(0, 42));
    let registered_at = paris_at(registered_on, rng.range(7 * 60, 23 * 60 + 59));
    let mut walk = Walk {
        session,
        config,
        staff,
        system,
        rng,
        id,
        candidate: Actor::Candidate { candidate_id },
        registered_on,
        state: DossierState::default(),
        version: 0,
        now: registered_at,
        events: Vec::new(),
        steps: Vec::new(),
        refusals: Vec::new(),
    };
    let candidate = walk.candidate();
    walk.run(
        &candidate,
        DossierCommand::PreRegister { dossier_id: id, session_id, candidate_id, user_code: user_code_for(id) },
    );
    match walk.rng.below(100) {
        // Pre-registered, and nothing else (sometimes a piece uploaded, never closed).
        0..=7 => {
            if walk.rng.percent(30) {
                walk.later(5, 3 * 24 * 60);
                if walk.upload(FORM).is_err() {
                    walk.refusals.push("upload after the deadline");
                }
            }
        }
        8..=15 => walk.lapse(),
        16..=55 => walk.online(),
        56..=79 => {
            let postmark = add_days(deadline(), walk.rng.range(-20, 5));
            walk.post(postmark);
        }
        80..=91 => {
            let until_deadline = (deadline() - registered_on).num_days();
            walk.counter(until_deadline + 4);
        }
        92..=95 => {
            walk.at_office(0, 10);
            walk.refused_intake();
        }
        _ => {
            walk.later(60, 20 * 24 * 60);
            walk.withdraw();
        }
    }
    if walk.state.status == Status::Deposited {
        walk.office();
    }
    Generated { id, events: walk.events, state: walk.state, steps: walk.steps, refusals: walk.refusals }
}

// --- The store and the read models --------------------------------------------------------------

async fn head(app: &TestApp) -> i64 {
    app.store().head().await.expect("head").position
}

/// Waits until every live read model has applied `position` (the harness does not expose the
/// runner's handle, so this reads the checkpoints the runner commits with its rows).
async fn wait_for_read_models(app: &TestApp, position: i64) {
    let started = Instant::now();
    for projection in cachet_api::app::projections() {
        loop {
            let live = read_checkpoint(app.read_db(), projection.as_ref(), Target::Live).await.expect("checkpoint");
            if live >= position {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(900),
                "the read model {} is still at {live} < {position}",
                projection.name()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Appends every dossier's commands, each after the previous one is committed, `IN_FLIGHT`
/// dossiers at a time: the appender commits the waiting commands of all of them together. Meanwhile,
/// every few hundred milliseconds, reads the live status rows of the sampled dossiers the live
/// runner has just written: what a reader saw then, often half-way through a dossier's history.
async fn append_all(app: &TestApp, dossiers: &mut [Generated]) -> Vec<(usize, DossierStatus)> {
    let requests: Vec<Vec<AppendRequest>> =
        dossiers.iter_mut().map(|d| d.steps.drain(..).map(|s| s.request).collect()).collect();
    let ids: Vec<DossierId> = dossiers.iter().map(|d| d.id).collect();
    let done = Cell::new(false);
    let store = app.store();
    let appending = async {
        futures::stream::iter(requests)
            .map(|requests| async move {
                for request in requests {
                    let ExpectedVersion::Exact(before) = request.expected else { unreachable!("exact versions") };
                    let count = request.events.len() as i64;
                    let outcome = store.append(request).await.expect("append a decided command");
                    assert!(!outcome.replayed);
                    assert_eq!(outcome.stream_version, before + count);
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<()>()
            .await;
        done.set(true);
    };
    let reading = async {
        let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(n, id)| (id.as_uuid(), n)).collect();
        let mut rows: Vec<(usize, DossierStatus)> = Vec::new();
        let mut last_seen: HashMap<usize, i64> = HashMap::new();
        while !done.get() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            // The sampled dossiers among those the live runner has just written.
            let live =
                read_checkpoint(app.read_db(), &DossiersProjection::default(), Target::Live).await.expect("checkpoint");
            let recent = store.read_all((live - 50).max(0), 50).await.expect("recent events");
            let sampled: BTreeSet<usize> = recent
                .iter()
                .filter(|e| e.position <= live)
                .filter_map(|e| index.get(&e.stream_id).copied())
                .filter(|n| n % AS_OF_EVERY == 0)
                .collect();
            for n in sampled {
                let Some(row) = queries::dossier_status(app.read_db(), ids[n].as_uuid()).await.expect("live row")
                else {
                    continue;
                };
                if last_seen.insert(n, row.position) != Some(row.position) {
                    rows.push((n, row));
                }
            }
        }
        rows
    };
    let ((), rows) = futures::join!(appending, reading);
    rows
}

fn count_statistics(session: SessionId, dossiers: &[Generated]) -> Statistics {
    let mut stats = Statistics::default();
    for state in dossiers.iter().map(|d| &d.state).filter(|s| s.session_id == Some(session)) {
        stats.total += 1;
        *stats.by_status.entry(state.status.code().to_owned()).or_default() += 1;
        if let Some(deposit) = &state.deposit {
            *stats.by_channel.entry(deposit.channel.code().to_owned()).or_default() += 1;
        }
        if let Some(rejection) = &state.rejection {
            *stats.by_rejection.entry(rejection.code().to_owned()).or_default() += 1;
        }
    }
    stats
}

/// Every event of the log, by dossier, in version order.
async fn dossier_streams(app: &TestApp) -> HashMap<Uuid, Vec<StoredEvent>> {
    let mut streams: HashMap<Uuid, Vec<StoredEvent>> = HashMap::new();
    let mut events = stream_all(app.store(), 0);
    while let Some(event) = events.try_next().await.expect("read the log") {
        if event.stream_type == DossierEvent::STREAM_TYPE {
            streams.entry(event.stream_id).or_default().push(event);
        }
    }
    streams
}

/// What the status view showed right after each instant of a dossier's stream: for each event
/// `i`, the index `j` of the last event recorded at the same instant (the events of one command or
/// one group commit share it) and the view after it.
fn views_by_instant(stored: &[StoredEvent]) -> Vec<(usize, DossierStatus)> {
    let mut state = DossierState::default();
    let mut after = Vec::with_capacity(stored.len());
    for event in stored {
        state = state.evolve(&decode::<DossierEvent>(event).expect("decode"));
        after.push(state.clone());
    }
    let mut views = Vec::with_capacity(stored.len());
    for (i, event) in stored.iter().enumerate() {
        let mut j = i;
        while stored.get(j + 1).is_some_and(|next| next.recorded_at == event.recorded_at) {
            j += 1;
        }
        let last = &stored[j];
        let view = DossierStatus::from_state(&after[j], last.stream_version, last.position, last.recorded_at)
            .expect("a pre-registered dossier has a view");
        views.push((j, view));
    }
    views
}

fn instant(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

// --- The scenario -------------------------------------------------------------------------------

pub async fn on_ten_thousand_dossiers_the_rebuild_equals_the_live_models_and_each_as_of_answer_what_was_shown(
    app: &TestApp,
) {
    let started = Instant::now();
    let mut phase = Instant::now();
    let mut lap = |what: &str| {
        println!("audit_scale: {what}: {:.1} s", phase.elapsed().as_secs_f64());
        phase = Instant::now();
    };

    // The session, opened through the API with a deadline weeks in the past.
    let session_id = SessionId::from_uuid(app.open_session(&session_until(deadline())).await);
    let (session_events, _) = load::<SessionEvent>(app.store(), session_id.as_uuid()).await.expect("session");
    let session = SessionState::fold(&session_events);

    // Generation, decided by the domain.
    let staff = Actor::Staff { account: "agent.concours".to_owned(), role: StaffRole::Staff };
    let system = Actor::System { component: "echeancier".to_owned() };
    let mut dossiers: Vec<Generated> =
        (0..DOSSIERS).map(|n| generate(n, session_id, &session, &staff, &system)).collect();
    let total_events: usize = dossiers.iter().map(|d| d.events.len()).sum();
    let total_commands: usize = dossiers.iter().map(|d| d.steps.len()).sum();
    lap(&format!("decided {DOSSIERS} dossiers: {total_commands} commands, {total_events} events"));

    // The mix covers every lifecycle and both sides of each deadline rule.
    let finals = count_statistics(session_id, &dossiers);
    let types: BTreeSet<&str> = dossiers.iter().flat_map(|d| d.events.iter().map(|e| e.event_type())).collect();
    let refusals: BTreeMap<&str, usize> =
        dossiers.iter().flat_map(|d| d.refusals.iter()).fold(BTreeMap::new(), |mut counts, kind| {
            *counts.entry(*kind).or_default() += 1;
            counts
        });
    println!("audit_scale: final states {finals:?}; refusals on the way {refusals:?}");
    for status in Status::ALL.into_iter().filter(|s| *s != Status::NotRegistered) {
        assert!(finals.by_status.get(status.code()).is_some_and(|n| *n >= 50), "too few {}: {finals:?}", status.code());
    }
    for kind in ["late", "transmission_incident", "refused_form", "non_conforming"] {
        assert!(finals.by_rejection.get(kind).is_some_and(|n| *n >= 20), "too few rejections {kind}: {finals:?}");
    }
    for channel in ["online", "post", "counter"] {
        assert!(finals.by_channel.get(channel).is_some_and(|n| *n >= 100), "too few deposits {channel}");
    }
    for event_type in [
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
    ] {
        assert!(types.contains(event_type), "no {event_type} in the history");
    }
    for refusal in ["closure after midnight", "closure without the red-dot form"] {
        assert!(refusals.get(refusal).is_some_and(|n| *n >= 10), "too few refusals: {refusal}");
    }
    let on_time_after_lapse = dossiers
        .iter()
        .filter(|d| {
            d.events.iter().any(|e| matches!(e, DossierEvent::Lapsed { .. }))
                && d.state.deposit.as_ref().is_some_and(|deposit| deposit.verdict.on_time)
        })
        .count();
    assert!(on_time_after_lapse >= 10, "posted on time, arrived after the lapse: {on_time_after_lapse}");

    // Appended straight to the store while the projections follow.
    let seen = append_all(app, &mut dossiers).await;
    let position = head(app).await;
    assert_eq!(position, 1 + total_events as i64, "the session's event and every decided event");
    lap("appended");
    wait_for_read_models(app, position).await;
    lap("live read models caught up");

    // Rebuilt read models equal the live ones, compared at the same position.
    for projection in cachet_api::app::projections() {
        let reached =
            rebuild_beside(app.store(), app.read_db(), projection.as_ref(), position, |_| {}).await.expect("rebuild");
        assert_eq!(reached, position);
        let (compared_at, differences) =
            compare_at_live(app.store(), app.read_db(), projection.as_ref()).await.expect("compare");
        assert_eq!(compared_at, position);
        assert!(
            differences.is_empty(),
            "{} rows differ between {} and its rebuild, e.g. {:?}",
            differences.len(),
            projection.name(),
            &differences[..differences.len().min(10)]
        );
        drop_rebuild(app.read_db(), projection.as_ref()).await.expect("drop the rebuild");
    }
    lap("rebuilt and compared");
    assert_eq!(queries::statistics(app.read_db(), session_id.as_uuid()).await.expect("statistics"), finals);
    // The counts the dashboard reads, kept as dossiers move, equal a count of the rows.
    let kept = queries::status_counts(app.read_db(), session_id.as_uuid()).await.expect("the counts");
    assert_eq!(kept, finals.by_status, "dossier_counts equals the rows' statuses");

    // The log holds what the domain decided, and each dossier's recorded times never go back.
    let streams = dossier_streams(app).await;
    assert_eq!(streams.len(), DOSSIERS);
    for dossier in &dossiers {
        let stored = &streams[&dossier.id.as_uuid()];
        let decoded: Vec<DossierEvent> = stored.iter().map(|e| decode(e).expect("decode")).collect();
        assert_eq!(decoded, dossier.events, "the stored stream of {}", dossier.id.as_uuid());
        assert!(stored.windows(2).all(|w| w[0].recorded_at <= w[1].recorded_at));
    }
    lap("log read back");

    // The live rows a reader saw during the generation, and the rows now: each is the status view
    // of the state folded up to the event at its position, and the as-of answer at that event's
    // time, unless the runner's batch ended between two events recorded in one transaction (the
    // row then showed, for a moment, a state that no as-of answer gives).
    let mut final_rows = Vec::new();
    for (n, dossier) in dossiers.iter().enumerate().step_by(AS_OF_EVERY) {
        let row = queries::dossier_status(app.read_db(), dossier.id.as_uuid()).await.expect("live row");
        final_rows.push((n, row.expect("every dossier has a live row")));
    }
    let (mut live_checked, mut mid_transaction) = (0, 0);
    for (n, row) in seen.iter().chain(&final_rows) {
        let stored = &streams[&dossiers[*n].id.as_uuid()];
        let k = stored.iter().position(|e| e.position == row.position).expect("the row's event is in its stream");
        let state = stored[..=k].iter().fold(DossierState::default(), |state, event| {
            state.evolve(&decode::<DossierEvent>(event).expect("decode"))
        });
        let view = DossierStatus::from_state(&state, stored[k].stream_version, row.position, stored[k].recorded_at);
        assert_eq!(view.as_ref(), Some(row), "the live row of {}", dossiers[*n].id.as_uuid());
        if stored.get(k + 1).is_some_and(|next| next.recorded_at == stored[k].recorded_at) {
            mid_transaction += 1;
            continue;
        }
        let as_of = dossier_as_of(app.store(), dossiers[*n].id, row.updated_at).await.expect("as of");
        assert_eq!(as_of.as_ref(), Some(row), "as of {}", instant(row.updated_at));
        live_checked += 1;
    }
    assert!(live_checked >= final_rows.len(), "live rows checked: {live_checked}");
    lap(&format!(
        "{} live rows read during the generation and {} after: {live_checked} equal the as-of answers, \
         {mid_transaction} showed a transaction half-applied",
        seen.len(),
        final_rows.len()
    ));

    // Each event's time: the as-of answer is the view right after it (after the last event recorded
    // at that instant), and one microsecond earlier, the view before it.
    let mut instants = 0;
    let mut shared = 0;
    for dossier in dossiers.iter().step_by(AS_OF_EVERY) {
        let stored = &streams[&dossier.id.as_uuid()];
        let views = views_by_instant(stored);
        let mut before: Option<&DossierStatus> = None;
        let mut i = 0;
        while i < stored.len() {
            let (j, view) = &views[i];
            let at = stored[i].recorded_at;
            let as_of = dossier_as_of(app.store(), dossier.id, at).await.expect("as of");
            assert_eq!(as_of.as_ref(), Some(view), "{} as of {} (event {i})", dossier.id.as_uuid(), instant(at));
            let earlier = dossier_as_of(app.store(), dossier.id, at - TimeDelta::microseconds(1)).await.expect("as of");
            assert_eq!(earlier.as_ref(), before, "{} just before {}", dossier.id.as_uuid(), instant(at));
            instants += 1;
            shared += j - i;
            before = Some(view);
            i = j + 1;
        }
    }
    let checked_events: usize = dossiers.iter().step_by(AS_OF_EVERY).map(|d| d.events.len()).sum();
    lap(&format!(
        "as-of at each of {checked_events} events' times ({instants} instants, {shared} events sharing theirs)"
    ));

    // The same through HTTP, for a few dossiers of each final state.
    let mut picked: BTreeMap<&str, Vec<&Generated>> = BTreeMap::new();
    for dossier in &dossiers {
        let of_status = picked.entry(dossier.state.status.code()).or_default();
        if of_status.len() < 2 && dossier.events.len() >= 3 {
            of_status.push(dossier);
        }
    }
    for dossier in picked.values().flatten() {
        let id = dossier.id.as_uuid();
        let stored = &streams[&id];
        for (event, (_, view)) in stored.iter().zip(views_by_instant(stored)) {
            let path = format!("/api/dossiers/{id}/as-of?at={}", instant(event.recorded_at));
            let answer: Value = app.get(&path, Caller::Auditor).await.ok();
            assert_eq!(answer, serde_json::to_value(&view).expect("json"), "GET {path}");
        }
        let live: Value = app.get(&format!("/api/dossiers/{id}"), Caller::Staff).await.ok();
        let (_, last_view) = views_by_instant(stored).pop().expect("events");
        assert_eq!(live, serde_json::to_value(&last_view).expect("json"), "GET /api/dossiers/{id}");
    }
    lap("HTTP as-of");
    println!("audit_scale: total {:.1} s", started.elapsed().as_secs_f64());
}

crate::api_tests!(on_ten_thousand_dossiers_the_rebuild_equals_the_live_models_and_each_as_of_answer_what_was_shown,);

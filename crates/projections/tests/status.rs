//! The status view rebuilt from the real store shows each candidate the exact message of
//! `domain.md` for their dossier.

use cachet_domain::demo::source_session;
use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, FileRef, MediaType, Status};
use cachet_domain::event::StaffRole;
use cachet_domain::ids::{CandidateId, DossierId, PieceCode, SessionId, Sha256Hex, UserCode};
use cachet_domain::session::{SessionEvent, SessionState};
use cachet_domain::Actor;
use cachet_projections::status::StatusViews;
use cachet_store::sqlite::SqliteEventStore;
use cachet_store::typed::{append_request, load, Metadata};
use cachet_store::{EventStore, ExpectedVersion};
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

struct World {
    store: SqliteEventStore,
    session: SessionState,
    _dir: tempfile::TempDir,
}

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteEventStore::open(dir.path().join("cachet.sqlite")).await.unwrap();
        let session_id = SessionId::from_uuid(Uuid::new_v4());
        let opened = SessionEvent::SessionOpened { session_id, config: source_session() };
        let admin = Actor::Staff { account: "admin".to_owned(), role: StaffRole::Admin };
        let metadata =
            Metadata { actor: admin, command_id: Uuid::new_v4(), correlation_id: Uuid::new_v4(), causation_id: None };
        let request = append_request(
            session_id.as_uuid(),
            ExpectedVersion::Exact(0),
            &metadata,
            utc("2023-05-01T08:00:00Z"),
            std::slice::from_ref(&opened),
        );
        store.append(request).await.unwrap();
        Self { store, session: SessionState::fold(&[opened]), _dir: dir }
    }

    async fn run(&self, dossier: DossierId, actor: &Actor, now: &str, command: DossierCommand) {
        let (events, version) = load::<DossierEvent>(&self.store, dossier.as_uuid()).await.unwrap();
        let state = cachet_domain::dossier::DossierState::fold(&events);
        let now = utc(now);
        let decided = decide(&state, &command, &Context { now, actor, session: &self.session }).unwrap();
        let metadata = Metadata {
            actor: actor.clone(),
            command_id: Uuid::new_v4(),
            correlation_id: Uuid::new_v4(),
            causation_id: None,
        };
        let request = append_request(
            dossier.as_uuid(),
            ExpectedVersion::Exact(version),
            &metadata,
            command.occurred_at(now),
            &decided,
        );
        self.store.append(request).await.unwrap();
    }

    async fn pre_register(&self, code: &str, now: &str) -> (DossierId, Actor) {
        let dossier = DossierId::from_uuid(Uuid::new_v4());
        let candidate_id = CandidateId::from_uuid(Uuid::new_v4());
        let actor = Actor::Candidate { candidate_id };
        let command = DossierCommand::PreRegister {
            dossier_id: dossier,
            session_id: self.session.id.unwrap(),
            candidate_id,
            user_code: UserCode::parse(code).unwrap(),
        };
        self.run(dossier, &actor, now, command).await;
        (dossier, actor)
    }
}

fn staff() -> Actor {
    Actor::Staff { account: "agent.concours".to_owned(), role: StaffRole::Staff }
}

fn registration_form() -> FileRef {
    FileRef {
        sha256: Sha256Hex::parse(&"ab".repeat(32)).unwrap(),
        size: 52_000,
        media_type: MediaType::Pdf,
        filename: "dossier.pdf".to_owned(),
    }
}

#[tokio::test]
async fn the_rebuilt_status_view_shows_each_candidate_the_message_of_their_state() {
    let world = World::new().await;

    let (waiting, _) = world.pre_register("AAAA2222", "2023-06-20T08:00:00Z").await;

    let (online, candidate) = world.pre_register("BBBB3333", "2023-06-21T13:05:00Z").await;
    let form = PieceCode::parse("dossier-preinscription").unwrap();
    world
        .run(
            online,
            &candidate,
            "2023-07-06T21:00:00Z",
            DossierCommand::UploadPiece { piece: form, file: registration_form() },
        )
        .await;
    world.run(online, &candidate, "2023-07-06T21:59:59Z", DossierCommand::CloseRegistration).await;

    let (late, _) = world.pre_register("CCCC4444", "2023-06-22T09:00:00Z").await;
    let postal = DossierCommand::RecordPostalReceipt {
        postmark_date: NaiveDate::from_ymd_opt(2023, 7, 7).unwrap(),
        arrival_date: NaiveDate::from_ymd_opt(2023, 7, 10).unwrap(),
        incident: None,
    };
    world.run(late, &staff(), "2023-07-10T08:00:00Z", postal).await;

    let (received, _) = world.pre_register("DDDD5555", "2023-06-23T09:00:00Z").await;
    let postal = DossierCommand::RecordPostalReceipt {
        postmark_date: NaiveDate::from_ymd_opt(2023, 7, 6).unwrap(),
        arrival_date: NaiveDate::from_ymd_opt(2023, 7, 10).unwrap(),
        incident: None,
    };
    world.run(received, &staff(), "2023-07-10T08:00:00Z", postal).await;
    world.run(received, &staff(), "2023-07-10T08:05:00Z", DossierCommand::Transfer).await;

    let views = StatusViews::rebuild(&world.store).await.unwrap();
    assert_eq!(views.position(), world.store.head().await.unwrap().position);

    let view = views.get(waiting).unwrap();
    assert_eq!(view.status, Status::PreRegistered);
    assert_eq!(
        view.message,
        "Votre préinscription a été enregistrée le 20/06/2023 à 10h00, le Centre de Gestion est en attente de votre dossier."
    );

    // Closed online, not yet transferred: still the waiting message, with the deposit receipt.
    let view = views.get(online).unwrap();
    assert_eq!(view.status, Status::Deposited);
    assert_eq!(
        view.message,
        "Votre préinscription a été enregistrée le 21/06/2023 à 15h05, le Centre de Gestion est en attente de votre dossier."
    );
    let receipt = view.deposit.unwrap();
    assert!(receipt.on_time);
    assert_eq!(
        receipt.explanation,
        "Inscription clôturée en ligne le 06/07/2023 à 23h59, dans les délais (date limite : 06/07/2023, avant minuit)"
    );
    assert_eq!(view.version, 3);

    let view = views.get(late).unwrap();
    assert_eq!(view.status, Status::Rejected);
    assert_eq!(
        view.message,
        "Votre dossier a été rejeté car il a été déposé ou posté hors délai : cachet de la poste du 07/07/2023, \
         postérieur à la date limite du 06/07/2023."
    );

    let view = views.get(received).unwrap();
    assert_eq!(view.status, Status::UnderReview);
    assert_eq!(view.message, "Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction.");
    assert_eq!(views.iter().count(), 4);
}

//! The dossier stream: the whole lifecycle of a registration dossier, from pre-registration to
//! convocation, as commands, events, a state, `decide` (every rule) and `evolve` (no rule).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::deadline::{judge_counter, judge_online_closure, judge_postmark, Channel, Verdict};
use crate::error::DomainError;
use crate::event::{Actor, ByType, DomainEvent, StaffRole};
use crate::ids::{CandidateId, DossierId, PieceCode, SessionId, Sha256Hex, TestCode, UserCode};
use crate::session::{SessionConfig, SessionState};
use crate::time::{end_of_paris_day, format_date, format_instant, paris_date, paris_datetime};

// ---------------------------------------------------------------------------------------------
// Values carried by events
// ---------------------------------------------------------------------------------------------

/// The file types a piece may be deposited as, recognised by content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    Pdf,
    Jpeg,
    Png,
}

/// A stored file, content-addressed by its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub sha256: Sha256Hex,
    pub size: u64,
    pub media_type: MediaType,
    /// The sanitised original file name, for display only.
    pub filename: String,
}

/// An incident in the postal transmission: always the sender's risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransmissionIncident {
    InsufficientPostage,
    DamagedOrLost,
    StrikeOrDelay,
}

impl TransmissionIncident {
    pub fn label(self) -> &'static str {
        match self {
            TransmissionIncident::InsufficientPostage => "affranchissement insuffisant",
            TransmissionIncident::DamagedOrLost => "dossier endommagé ou perdu",
            TransmissionIncident::StrikeOrDelay => "grève ou retard d'acheminement",
        }
    }
}

/// A form of dossier the source document refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusedForm {
    Fax,
    Email,
    Photocopy,
    Screenshot,
    ConvertedAndModified,
}

impl RefusedForm {
    /// Completes « aucun dossier … ne peut être accepté ».
    pub fn label(self) -> &'static str {
        match self {
            RefusedForm::Fax => "transmis par télécopie",
            RefusedForm::Email => "transmis par messagerie électronique",
            RefusedForm::Photocopy => "photocopié",
            RefusedForm::Screenshot => "sous forme de capture d'écran",
            RefusedForm::ConvertedAndModified => "converti dans un autre format et modifié",
        }
    }
}

/// Why a dossier was rejected, with the facts that decided it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RejectionReason {
    Late { verdict: Verdict },
    TransmissionIncident { incident: TransmissionIncident },
    RefusedForm { form: RefusedForm },
    NonConforming { detail: String },
}

impl RejectionReason {
    /// The stable code of the kind of reason, for statistics.
    pub fn code(&self) -> &'static str {
        match self {
            RejectionReason::Late { .. } => "late",
            RejectionReason::TransmissionIncident { .. } => "transmission_incident",
            RejectionReason::RefusedForm { .. } => "refused_form",
            RejectionReason::NonConforming { .. } => "non_conforming",
        }
    }

    /// The message shown to the candidate.
    pub fn message(&self) -> String {
        match self {
            RejectionReason::Late { verdict } => format!(
                "Votre dossier a été rejeté car il a été déposé ou posté hors délai : {}.",
                verdict.explanation_after_colon()
            ),
            RejectionReason::TransmissionIncident { incident } => format!(
                "Votre dossier a été rejeté en raison d'un incident de transmission ({}) : tout incident \
                 de transmission engage la responsabilité de l'émetteur et entraîne un refus systématique \
                 d'admission à concourir.",
                incident.label()
            ),
            RejectionReason::RefusedForm { form } => {
                format!("Votre dossier a été rejeté : aucun dossier {} ne peut être accepté.", form.label())
            }
            RejectionReason::NonConforming { detail } => {
                format!("Votre dossier a été rejeté car il n'est pas conforme : {detail}")
            }
        }
    }
}

/// The exam office's finding on one piece.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PieceReview {
    Accepted,
    Refused { reason: String },
    Missing,
}

/// A piece listed as missing, with its label so readers need no catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingPiece {
    pub code: PieceCode,
    pub label: String,
    /// Why a deposited piece was refused, when it was.
    pub reason: Option<String>,
}

impl MissingPiece {
    pub fn describe(&self) -> String {
        match &self.reason {
            Some(reason) => format!("{} (pièce refusée : {reason})", self.label),
            None => self.label.clone(),
        }
    }
}

/// How a missing piece reached the exam office.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum PieceDelivery {
    Online { file: FileRef, at: DateTime<Utc> },
    Post { postmark_date: NaiveDate, arrival_date: NaiveDate },
    Counter { received_at: DateTime<Utc> },
}

/// A paper delivery as staff record it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum PaperDelivery {
    Post { postmark_date: NaiveDate, arrival_date: NaiveDate },
    Counter { received_at: DateTime<Utc> },
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DossierEvent {
    PreRegistered {
        dossier_id: DossierId,
        session_id: SessionId,
        candidate_id: CandidateId,
        user_code: UserCode,
        registered_at: DateTime<Utc>,
    },
    PieceUploaded {
        piece: PieceCode,
        file: FileRef,
        replaced: Option<Sha256Hex>,
    },
    PieceRemoved {
        piece: PieceCode,
        removed: Sha256Hex,
    },
    RegistrationClosed {
        closed_at: DateTime<Utc>,
        pieces: Vec<PieceCode>,
        verdict: Verdict,
    },
    PostalReceiptRecorded {
        postmark_date: NaiveDate,
        arrival_date: NaiveDate,
        incident: Option<TransmissionIncident>,
        verdict: Verdict,
    },
    CounterReceiptRecorded {
        received_at: DateTime<Utc>,
        verdict: Verdict,
    },
    IntakeRefused {
        form: RefusedForm,
        received_on: NaiveDate,
    },
    Rejected {
        reason: RejectionReason,
    },
    Transferred,
    PieceReviewed {
        piece: PieceCode,
        review: PieceReview,
    },
    MarkedIncomplete {
        missing: Vec<MissingPiece>,
    },
    MarkedComplete,
    MissingPieceReceived {
        piece: PieceCode,
        delivery: PieceDelivery,
    },
    ReviewResumed,
    Lapsed {
        deadline: NaiveDate,
    },
    Withdrawn {
        at: DateTime<Utc>,
        reason: Option<String>,
    },
    ConvocationPublished {
        test: TestCode,
        document: FileRef,
    },
    ConvocationWithheld {
        test: TestCode,
        reason: String,
    },
    ConvocationDownloaded {
        test: TestCode,
    },
}

/// [`DossierEvent`] as an externally tagged enum, decoded by [`ByType`] with its variant taken
/// from the store's `event_type` column: about 1.6 times cheaper than the derived internally
/// tagged decoding, which buffers every field before it reads the tag (BENCHMARKS.md). The remote
/// derive fails to compile if a variant or a field differs from [`DossierEvent`]'s; its
/// `serialize` is never called and exists for that check.
#[derive(Serialize, Deserialize)]
#[serde(remote = "DossierEvent")]
#[allow(dead_code)]
enum DossierEventByType {
    PreRegistered {
        dossier_id: DossierId,
        session_id: SessionId,
        candidate_id: CandidateId,
        user_code: UserCode,
        registered_at: DateTime<Utc>,
    },
    PieceUploaded {
        piece: PieceCode,
        file: FileRef,
        replaced: Option<Sha256Hex>,
    },
    PieceRemoved {
        piece: PieceCode,
        removed: Sha256Hex,
    },
    RegistrationClosed {
        closed_at: DateTime<Utc>,
        pieces: Vec<PieceCode>,
        verdict: Verdict,
    },
    PostalReceiptRecorded {
        postmark_date: NaiveDate,
        arrival_date: NaiveDate,
        incident: Option<TransmissionIncident>,
        verdict: Verdict,
    },
    CounterReceiptRecorded {
        received_at: DateTime<Utc>,
        verdict: Verdict,
    },
    IntakeRefused {
        form: RefusedForm,
        received_on: NaiveDate,
    },
    Rejected {
        reason: RejectionReason,
    },
    Transferred,
    PieceReviewed {
        piece: PieceCode,
        review: PieceReview,
    },
    MarkedIncomplete {
        missing: Vec<MissingPiece>,
    },
    MarkedComplete,
    MissingPieceReceived {
        piece: PieceCode,
        delivery: PieceDelivery,
    },
    ReviewResumed,
    Lapsed {
        deadline: NaiveDate,
    },
    Withdrawn {
        at: DateTime<Utc>,
        reason: Option<String>,
    },
    ConvocationPublished {
        test: TestCode,
        document: FileRef,
    },
    ConvocationWithheld {
        test: TestCode,
        reason: String,
    },
    ConvocationDownloaded {
        test: TestCode,
    },
}

impl DomainEvent for DossierEvent {
    const STREAM_TYPE: &'static str = "dossier";

    fn decode_by_type(event_type: &str, payload: &[u8]) -> Result<Self, serde_json::Error> {
        ByType::decode(event_type, payload, |by_type| DossierEventByType::deserialize(by_type))
    }

    fn event_type(&self) -> &'static str {
        match self {
            DossierEvent::PreRegistered { .. } => "PreRegistered",
            DossierEvent::PieceUploaded { .. } => "PieceUploaded",
            DossierEvent::PieceRemoved { .. } => "PieceRemoved",
            DossierEvent::RegistrationClosed { .. } => "RegistrationClosed",
            DossierEvent::PostalReceiptRecorded { .. } => "PostalReceiptRecorded",
            DossierEvent::CounterReceiptRecorded { .. } => "CounterReceiptRecorded",
            DossierEvent::IntakeRefused { .. } => "IntakeRefused",
            DossierEvent::Rejected { .. } => "Rejected",
            DossierEvent::Transferred => "Transferred",
            DossierEvent::PieceReviewed { .. } => "PieceReviewed",
            DossierEvent::MarkedIncomplete { .. } => "MarkedIncomplete",
            DossierEvent::MarkedComplete => "MarkedComplete",
            DossierEvent::MissingPieceReceived { .. } => "MissingPieceReceived",
            DossierEvent::ReviewResumed => "ReviewResumed",
            DossierEvent::Lapsed { .. } => "Lapsed",
            DossierEvent::Withdrawn { .. } => "Withdrawn",
            DossierEvent::ConvocationPublished { .. } => "ConvocationPublished",
            DossierEvent::ConvocationWithheld { .. } => "ConvocationWithheld",
            DossierEvent::ConvocationDownloaded { .. } => "ConvocationDownloaded",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum DossierCommand {
    PreRegister { dossier_id: DossierId, session_id: SessionId, candidate_id: CandidateId, user_code: UserCode },
    UploadPiece { piece: PieceCode, file: FileRef },
    RemovePiece { piece: PieceCode },
    CloseRegistration,
    RecordPostalReceipt { postmark_date: NaiveDate, arrival_date: NaiveDate, incident: Option<TransmissionIncident> },
    RecordCounterReceipt { received_at: DateTime<Utc> },
    RecordRefusedIntake { form: RefusedForm, received_on: NaiveDate },
    Transfer,
    ReviewPiece { piece: PieceCode, review: PieceReview },
    ConcludeReview,
    UploadMissingPiece { piece: PieceCode, file: FileRef },
    ReceiveMissingPiece { piece: PieceCode, delivery: PaperDelivery },
    Reject { detail: String },
    Lapse,
    Withdraw { reason: Option<String> },
    PublishConvocation { test: TestCode, document: FileRef },
    WithholdConvocation { test: TestCode, reason: String },
    DownloadConvocation { test: TestCode },
}

impl DossierCommand {
    /// When the command's facts happened in the world: the postmark date (at the start of that
    /// Paris day), the moment of a counter receipt, or else the moment the command is decided.
    pub fn occurred_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            DossierCommand::RecordPostalReceipt { postmark_date, .. }
            | DossierCommand::ReceiveMissingPiece { delivery: PaperDelivery::Post { postmark_date, .. }, .. } => {
                crate::time::start_of_paris_day(*postmark_date)
            }
            DossierCommand::RecordCounterReceipt { received_at }
            | DossierCommand::ReceiveMissingPiece { delivery: PaperDelivery::Counter { received_at }, .. } => {
                *received_at
            }
            DossierCommand::RecordRefusedIntake { received_on, .. } => crate::time::start_of_paris_day(*received_on),
            _ => now,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No event yet: the stream does not exist.
    #[default]
    NotRegistered,
    /// Pre-registered, awaiting the dossier.
    PreRegistered,
    /// Deposited (closed online or paper received) but not yet transferred.
    Deposited,
    /// Transferred into the system: under review.
    UnderReview,
    Incomplete,
    Complete,
    Rejected,
    /// The deadline passed with no deposit (*non parvenu*).
    Lapsed,
    Withdrawn,
}

impl Status {
    /// Completes « le dossier est … ».
    pub fn label(self) -> &'static str {
        match self {
            Status::NotRegistered => "inexistant",
            Status::PreRegistered => "en attente de dépôt",
            Status::Deposited => "déposé, en attente de transfert",
            Status::UnderReview => "en cours d'instruction",
            Status::Incomplete => "incomplet",
            Status::Complete => "complet",
            Status::Rejected => "rejeté",
            Status::Lapsed => "non parvenu",
            Status::Withdrawn => "clos à la suite d'un désistement",
        }
    }

    /// The stable code stored in read models, e.g. `under_review`.
    pub fn code(self) -> &'static str {
        match self {
            Status::NotRegistered => "not_registered",
            Status::PreRegistered => "pre_registered",
            Status::Deposited => "deposited",
            Status::UnderReview => "under_review",
            Status::Incomplete => "incomplete",
            Status::Complete => "complete",
            Status::Rejected => "rejected",
            Status::Lapsed => "lapsed",
            Status::Withdrawn => "withdrawn",
        }
    }

    pub const ALL: [Status; 9] = [
        Status::NotRegistered,
        Status::PreRegistered,
        Status::Deposited,
        Status::UnderReview,
        Status::Incomplete,
        Status::Complete,
        Status::Rejected,
        Status::Lapsed,
        Status::Withdrawn,
    ];

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Rejected | Status::Withdrawn)
    }
}

/// What the exam office holds of one piece.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceState {
    /// The file deposited online, if any.
    pub file: Option<FileRef>,
    /// Received on paper (a missing piece sent by post or handed in at the counter).
    pub on_paper: bool,
    /// The exam office's latest finding.
    pub review: Option<PieceReview>,
    /// Received after being listed missing, and not examined since.
    pub awaiting_review: bool,
}

/// The deposit that made the dossier a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deposit {
    pub channel: Channel,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convocation {
    pub document: Option<FileRef>,
    pub withheld: Option<String>,
    pub downloads: u32,
}

/// The state of a dossier, folded from its events.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DossierState {
    pub id: Option<DossierId>,
    pub session_id: Option<SessionId>,
    pub candidate_id: Option<CandidateId>,
    pub user_code: Option<UserCode>,
    pub registered_at: Option<DateTime<Utc>>,
    pub status: Status,
    pub pieces: BTreeMap<PieceCode, PieceState>,
    pub deposit: Option<Deposit>,
    pub refused_intakes: Vec<(RefusedForm, NaiveDate)>,
    pub missing: Vec<MissingPiece>,
    pub rejection: Option<RejectionReason>,
    pub lapsed_deadline: Option<NaiveDate>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub convocations: BTreeMap<TestCode, Convocation>,
}

/// How extending the deadline would bear on a dossier: decisions already taken stay taken, so
/// the exam office reviews these before it extends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExtensionEffect {
    /// Rejected as late, and its decisive date would be on time under the new deadline.
    LateWouldBeOnTime { was: Verdict, would_be: Verdict },
    /// Declared *non parvenu*: the dossier opens again for an online deposit.
    LapsedReopens,
}

/// A piece's state, created on first mention. The code is cloned only then: a replay evolves
/// a million events, most of them about pieces already listed.
fn piece_entry<'a>(pieces: &'a mut BTreeMap<PieceCode, PieceState>, piece: &PieceCode) -> &'a mut PieceState {
    if !pieces.contains_key(piece) {
        pieces.insert(piece.clone(), PieceState::default());
    }
    pieces.get_mut(piece).expect("the piece was just listed")
}

impl DossierState {
    /// What a new deadline would change for this dossier, if anything.
    pub fn extension_effect(&self, new_deadline: NaiveDate) -> Option<ExtensionEffect> {
        match (&self.status, &self.rejection) {
            (Status::Rejected, Some(RejectionReason::Late { verdict })) => {
                let would_be = verdict.under(new_deadline);
                would_be.on_time.then_some(ExtensionEffect::LateWouldBeOnTime { was: *verdict, would_be })
            }
            (Status::Lapsed, _) => {
                (self.lapsed_deadline.is_some_and(|d| new_deadline > d)).then_some(ExtensionEffect::LapsedReopens)
            }
            _ => None,
        }
    }
}

/// What the candidate reads in the espace sécurisé.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateMessage {
    pub text: String,
    /// The missing pieces, when the dossier is incomplete.
    pub missing: Vec<String>,
}

impl DossierState {
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a DossierEvent>) -> Self {
        events.into_iter().fold(Self::default(), Self::evolve)
    }

    /// Applies one fact. Holds no rule and cannot fail.
    pub fn evolve(mut self, event: &DossierEvent) -> Self {
        self.apply(event);
        self
    }

    /// [`evolve`](Self::evolve) in place, for folds that keep many states: the state is not
    /// moved out and back for each event.
    pub fn apply(&mut self, event: &DossierEvent) {
        match event {
            DossierEvent::PreRegistered { dossier_id, session_id, candidate_id, user_code, registered_at } => {
                self.id = Some(*dossier_id);
                self.session_id = Some(*session_id);
                self.candidate_id = Some(*candidate_id);
                self.user_code = Some(user_code.clone());
                self.registered_at = Some(*registered_at);
                self.status = Status::PreRegistered;
            }
            DossierEvent::PieceUploaded { piece, file, .. } => {
                piece_entry(&mut self.pieces, piece).file = Some(file.clone());
            }
            DossierEvent::PieceRemoved { piece, .. } => {
                piece_entry(&mut self.pieces, piece).file = None;
            }
            DossierEvent::RegistrationClosed { verdict, .. } => {
                self.status = Status::Deposited;
                self.deposit = Some(Deposit { channel: Channel::Online, verdict: *verdict });
                self.lapsed_deadline = None;
            }
            DossierEvent::PostalReceiptRecorded { verdict, .. } => {
                self.status = Status::Deposited;
                self.deposit = Some(Deposit { channel: Channel::Post, verdict: *verdict });
                self.lapsed_deadline = None;
            }
            DossierEvent::CounterReceiptRecorded { verdict, .. } => {
                self.status = Status::Deposited;
                self.deposit = Some(Deposit { channel: Channel::Counter, verdict: *verdict });
                self.lapsed_deadline = None;
            }
            DossierEvent::IntakeRefused { form, received_on } => {
                self.refused_intakes.push((*form, *received_on));
            }
            DossierEvent::Rejected { reason } => {
                self.status = Status::Rejected;
                self.rejection = Some(reason.clone());
            }
            DossierEvent::Transferred => self.status = Status::UnderReview,
            DossierEvent::PieceReviewed { piece, review } => {
                let state = piece_entry(&mut self.pieces, piece);
                state.review = Some(review.clone());
                state.awaiting_review = false;
            }
            DossierEvent::MarkedIncomplete { missing } => {
                self.status = Status::Incomplete;
                self.missing = missing.clone();
            }
            DossierEvent::MarkedComplete => {
                self.status = Status::Complete;
                self.missing.clear();
            }
            DossierEvent::MissingPieceReceived { piece, delivery } => {
                self.missing.retain(|m| &m.code != piece);
                let state = piece_entry(&mut self.pieces, piece);
                state.review = None;
                state.awaiting_review = true;
                match delivery {
                    PieceDelivery::Online { file, .. } => state.file = Some(file.clone()),
                    PieceDelivery::Post { .. } | PieceDelivery::Counter { .. } => state.on_paper = true,
                }
            }
            DossierEvent::ReviewResumed => self.status = Status::UnderReview,
            DossierEvent::Lapsed { deadline } => {
                self.status = Status::Lapsed;
                self.lapsed_deadline = Some(*deadline);
            }
            DossierEvent::Withdrawn { at, .. } => {
                self.status = Status::Withdrawn;
                self.withdrawn_at = Some(*at);
            }
            DossierEvent::ConvocationPublished { test, document } => {
                let c = self.convocations.entry(test.clone()).or_default();
                c.document = Some(document.clone());
                c.withheld = None;
            }
            DossierEvent::ConvocationWithheld { test, reason } => {
                self.convocations.entry(test.clone()).or_default().withheld = Some(reason.clone());
            }
            DossierEvent::ConvocationDownloaded { test } => {
                self.convocations.entry(test.clone()).or_default().downloads += 1;
            }
        }
    }

    /// The message the candidate reads for this state, quoted from the source document where it
    /// has one. `None` before pre-registration.
    pub fn candidate_message(&self) -> Option<CandidateMessage> {
        let plain = |text: String| Some(CandidateMessage { text, missing: Vec::new() });
        match self.status {
            Status::NotRegistered => None,
            Status::PreRegistered | Status::Deposited => {
                let at = self.registered_at.map(paris_datetime)?;
                plain(format!(
                    "Votre préinscription a été enregistrée le {} à {}, le Centre de Gestion est en attente de votre dossier.",
                    format_date(at.date()),
                    crate::time::format_time(at.time())
                ))
            }
            Status::UnderReview => {
                plain("Votre dossier a été reçu par le Centre de Gestion, il est en cours d'instruction.".to_owned())
            }
            Status::Incomplete => Some(CandidateMessage {
                text: "Votre dossier est incomplet".to_owned(),
                missing: self.missing.iter().map(MissingPiece::describe).collect(),
            }),
            Status::Complete => plain("Votre dossier est complet".to_owned()),
            Status::Rejected => plain(self.rejection.as_ref().map(RejectionReason::message)?),
            Status::Lapsed => plain(format!(
                "Votre dossier n'est pas parvenu au Centre de Gestion avant la date limite du {} : votre \
                 préinscription n'a pas été suivie d'une inscription.",
                format_date(self.lapsed_deadline?)
            )),
            Status::Withdrawn => plain(format!(
                "Votre désistement a été enregistré le {} : votre candidature n'est plus examinée.",
                format_instant(self.withdrawn_at?)
            )),
        }
    }

    fn has_file(&self, piece: &PieceCode) -> bool {
        self.pieces.get(piece).is_some_and(|p| p.file.is_some())
    }

    /// The pieces that keep the dossier from being complete, as the review stands.
    pub fn missing_after_review(&self, config: &SessionConfig) -> Vec<MissingPiece> {
        config
            .pieces
            .iter()
            .filter_map(|spec| {
                let review = self.pieces.get(&spec.code).and_then(|p| p.review.as_ref());
                let reason = match review {
                    Some(PieceReview::Accepted) => return None,
                    Some(PieceReview::Refused { reason }) => Some(reason.clone()),
                    Some(PieceReview::Missing) => None,
                    None if spec.kind.is_required() => None,
                    None => return None,
                };
                Some(MissingPiece { code: spec.code.clone(), label: spec.label.clone(), reason })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Decide
// ---------------------------------------------------------------------------------------------

/// Everything `decide` needs besides the state and the command: the instant, who acts, and the
/// session the dossier belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub now: DateTime<Utc>,
    pub actor: &'a Actor,
    pub session: &'a SessionState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The candidate who owns the dossier.
    Owner,
    /// A staff or admin account of the exam office.
    Office,
    /// The owner or the exam office.
    OwnerOrOffice,
    /// The exam office or the system itself (scheduled jobs).
    OfficeOrSystem,
}

fn authorise(
    state: &DossierState,
    command: &DossierCommand,
    actor: &Actor,
    who: Who,
    action: &'static str,
) -> Result<(), DomainError> {
    let office = matches!(actor, Actor::Staff { role: StaffRole::Staff | StaffRole::Admin, .. });
    let owner = match (actor, command) {
        (Actor::Candidate { candidate_id }, DossierCommand::PreRegister { candidate_id: own, .. }) => {
            candidate_id == own
        }
        (Actor::Candidate { candidate_id }, _) => state.candidate_id == Some(*candidate_id),
        _ => false,
    };
    let system = matches!(actor, Actor::System { .. });
    let allowed = match who {
        Who::Owner => owner,
        Who::Office => office,
        Who::OwnerOrOffice => owner || office,
        Who::OfficeOrSystem => office || system,
    };
    if allowed {
        Ok(())
    } else {
        Err(DomainError::NotAllowed { action })
    }
}

fn expect_status(state: &DossierState, allowed: &[Status], action: &'static str) -> Result<(), DomainError> {
    if state.status == Status::NotRegistered {
        return Err(DomainError::DossierNotFound);
    }
    if allowed.contains(&state.status) {
        Ok(())
    } else {
        Err(DomainError::InvalidTransition { action, status: state.status.label() })
    }
}

fn catalogue_label<'c>(config: &'c SessionConfig, piece: &PieceCode) -> Result<&'c str, DomainError> {
    config.piece(piece).map(|p| p.label.as_str()).ok_or_else(|| DomainError::UnknownPiece { piece: piece.to_string() })
}

fn check_paper_dates(postmark: NaiveDate, arrival: NaiveDate, now: DateTime<Utc>) -> Result<(), DomainError> {
    let today = paris_date(now);
    if postmark > today {
        return Err(DomainError::PostmarkInFuture { postmark: format_date(postmark) });
    }
    if arrival > today {
        return Err(DomainError::ArrivalInFuture { arrival: format_date(arrival) });
    }
    if arrival < postmark {
        return Err(DomainError::ArrivalBeforePostmark {
            arrival: format_date(arrival),
            postmark: format_date(postmark),
        });
    }
    Ok(())
}

fn check_counter_time(config: &SessionConfig, at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), DomainError> {
    if at > now {
        return Err(DomainError::CounterReceiptInFuture { at: format_instant(at) });
    }
    if !config.counter_open_at(paris_datetime(at)) {
        return Err(DomainError::CounterClosed { at: format_instant(at), hours: config.describe_counter_hours() });
    }
    Ok(())
}

fn non_empty(text: &str) -> Result<String, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        Err(DomainError::ReasonRequired)
    } else {
        Ok(text.to_owned())
    }
}

/// Every rule of the dossier lifecycle: given the state, a command and its context, the events
/// to append, or the reason it is refused.
pub fn decide(
    state: &DossierState,
    command: &DossierCommand,
    ctx: &Context<'_>,
) -> Result<Vec<DossierEvent>, DomainError> {
    use DossierCommand as C;
    use DossierEvent as E;
    use Status as S;

    let (config, deadline) = ctx.session.opened()?;
    if let (Some(own), Some(given)) = (state.session_id, ctx.session.id) {
        if own != given {
            return Err(DomainError::WrongSession);
        }
    }
    let now = ctx.now;
    let auth = |who, action| authorise(state, command, ctx.actor, who, action);

    match command {
        C::PreRegister { dossier_id, session_id, candidate_id, user_code } => {
            auth(Who::OwnerOrOffice, "vous préinscrire")?;
            if state.status != S::NotRegistered {
                return Err(DomainError::DossierAlreadyExists);
            }
            if Some(*session_id) != ctx.session.id {
                return Err(DomainError::WrongSession);
            }
            if now >= end_of_paris_day(deadline) {
                return Err(DomainError::PreRegistrationClosed { deadline: format_date(deadline) });
            }
            Ok(vec![E::PreRegistered {
                dossier_id: *dossier_id,
                session_id: *session_id,
                candidate_id: *candidate_id,
                user_code: user_code.clone(),
                registered_at: now,
            }])
        }

        C::UploadPiece { piece, file } => {
            auth(Who::Owner, "déposer une pièce dans ce dossier")?;
            // A lapsed dossier is open again online when an extension moved the deadline.
            expect_status(state, &[S::PreRegistered, S::Lapsed], "déposer une pièce")?;
            catalogue_label(config, piece)?;
            if now >= end_of_paris_day(deadline) {
                return Err(DomainError::UploadAfterDeadline { deadline: format_date(deadline) });
            }
            let replaced = state.pieces.get(piece).and_then(|p| p.file.as_ref()).map(|f| f.sha256.clone());
            Ok(vec![E::PieceUploaded { piece: piece.clone(), file: file.clone(), replaced }])
        }

        C::RemovePiece { piece } => {
            auth(Who::Owner, "retirer une pièce de ce dossier")?;
            expect_status(state, &[S::PreRegistered, S::Lapsed], "retirer une pièce")?;
            let label = catalogue_label(config, piece)?;
            // What was deposited online stays as it was at midnight of the deadline day.
            if now >= end_of_paris_day(deadline) {
                return Err(DomainError::UploadAfterDeadline { deadline: format_date(deadline) });
            }
            let removed = state
                .pieces
                .get(piece)
                .and_then(|p| p.file.as_ref())
                .map(|f| f.sha256.clone())
                .ok_or_else(|| DomainError::NoFileForPiece { label: label.to_owned() })?;
            Ok(vec![E::PieceRemoved { piece: piece.clone(), removed }])
        }

        C::CloseRegistration => {
            auth(Who::Owner, "clôturer cette inscription")?;
            expect_status(state, &[S::PreRegistered, S::Lapsed], "clôturer l'inscription")?;
            let form = config.registration_form().ok_or(DomainError::SessionNotOpened)?;
            if !state.has_file(&form.code) {
                return Err(DomainError::RegistrationFormMissing { label: form.label.clone() });
            }
            let verdict = judge_online_closure(now, deadline);
            if !verdict.on_time {
                return Err(DomainError::ClosureAfterDeadline { explanation: verdict.explanation_after_colon() });
            }
            let pieces = state.pieces.iter().filter(|(_, p)| p.file.is_some()).map(|(c, _)| c.clone()).collect();
            Ok(vec![E::RegistrationClosed { closed_at: now, pieces, verdict }])
        }

        C::RecordPostalReceipt { postmark_date, arrival_date, incident } => {
            auth(Who::Office, "enregistrer la réception d'un dossier")?;
            expect_status(state, &[S::PreRegistered, S::Lapsed], "enregistrer la réception du dossier")?;
            check_paper_dates(*postmark_date, *arrival_date, now)?;
            let verdict = judge_postmark(*postmark_date, deadline);
            let mut events = vec![E::PostalReceiptRecorded {
                postmark_date: *postmark_date,
                arrival_date: *arrival_date,
                incident: *incident,
                verdict,
            }];
            if !verdict.on_time {
                events.push(E::Rejected { reason: RejectionReason::Late { verdict } });
            } else if let Some(incident) = incident {
                events.push(E::Rejected { reason: RejectionReason::TransmissionIncident { incident: *incident } });
            }
            Ok(events)
        }

        C::RecordCounterReceipt { received_at } => {
            auth(Who::Office, "enregistrer un dépôt à l'accueil")?;
            expect_status(state, &[S::PreRegistered, S::Lapsed], "enregistrer le dépôt du dossier")?;
            check_counter_time(config, *received_at, now)?;
            let verdict = judge_counter(*received_at, deadline);
            let mut events = vec![E::CounterReceiptRecorded { received_at: *received_at, verdict }];
            if !verdict.on_time {
                events.push(E::Rejected { reason: RejectionReason::Late { verdict } });
            }
            Ok(events)
        }

        C::RecordRefusedIntake { form, received_on } => {
            auth(Who::Office, "enregistrer un dossier refusé")?;
            // A refused form may also be found after deposit, e.g. a screenshot uploaded online or a
            // photocopy noticed during review.
            expect_status(
                state,
                &[S::PreRegistered, S::Lapsed, S::Deposited, S::UnderReview, S::Incomplete],
                "enregistrer un dossier refusé",
            )?;
            if *received_on > paris_date(now) {
                return Err(DomainError::ArrivalInFuture { arrival: format_date(*received_on) });
            }
            Ok(vec![
                E::IntakeRefused { form: *form, received_on: *received_on },
                E::Rejected { reason: RejectionReason::RefusedForm { form: *form } },
            ])
        }

        C::Transfer => {
            auth(Who::Office, "transférer un dossier")?;
            expect_status(state, &[S::Deposited], "transférer le dossier")?;
            Ok(vec![E::Transferred])
        }

        C::ReviewPiece { piece, review } => {
            auth(Who::Office, "instruire un dossier")?;
            expect_status(state, &[S::UnderReview, S::Incomplete], "instruire une pièce")?;
            catalogue_label(config, piece)?;
            let review = match review {
                PieceReview::Refused { reason } => PieceReview::Refused { reason: non_empty(reason)? },
                other => other.clone(),
            };
            Ok(vec![E::PieceReviewed { piece: piece.clone(), review }])
        }

        C::ConcludeReview => {
            auth(Who::Office, "conclure l'instruction d'un dossier")?;
            expect_status(state, &[S::UnderReview, S::Incomplete], "conclure l'instruction")?;
            // A piece received after being listed missing must be examined before concluding.
            if let Some(spec) =
                config.pieces.iter().find(|p| state.pieces.get(&p.code).is_some_and(|s| s.awaiting_review))
            {
                return Err(DomainError::PieceAwaitingReview { label: spec.label.clone() });
            }
            let missing = state.missing_after_review(config);
            if missing.is_empty() {
                Ok(vec![E::MarkedComplete])
            } else if state.status == S::Incomplete && missing == state.missing {
                Ok(vec![])
            } else {
                Ok(vec![E::MarkedIncomplete { missing }])
            }
        }

        C::UploadMissingPiece { piece, file } => {
            auth(Who::Owner, "compléter ce dossier")?;
            expect_status(state, &[S::Incomplete], "envoyer une pièce manquante")?;
            receive_missing(state, config, piece, PieceDelivery::Online { file: file.clone(), at: now })
        }

        C::ReceiveMissingPiece { piece, delivery } => {
            auth(Who::Office, "enregistrer une pièce reçue")?;
            expect_status(state, &[S::Incomplete], "enregistrer une pièce manquante")?;
            let delivery = match delivery {
                PaperDelivery::Post { postmark_date, arrival_date } => {
                    check_paper_dates(*postmark_date, *arrival_date, now)?;
                    PieceDelivery::Post { postmark_date: *postmark_date, arrival_date: *arrival_date }
                }
                PaperDelivery::Counter { received_at } => {
                    check_counter_time(config, *received_at, now)?;
                    PieceDelivery::Counter { received_at: *received_at }
                }
            };
            receive_missing(state, config, piece, delivery)
        }

        C::Reject { detail } => {
            auth(Who::Office, "rejeter un dossier")?;
            expect_status(state, &[S::Deposited, S::UnderReview, S::Incomplete, S::Complete], "rejeter le dossier")?;
            Ok(vec![E::Rejected { reason: RejectionReason::NonConforming { detail: non_empty(detail)? } }])
        }

        C::Lapse => {
            auth(Who::OfficeOrSystem, "déclarer un dossier non parvenu")?;
            if state.status == S::Lapsed {
                return Ok(vec![]);
            }
            expect_status(state, &[S::PreRegistered], "déclarer le dossier non parvenu")?;
            if now < end_of_paris_day(deadline) {
                return Err(DomainError::LapseBeforeDeadline { deadline: format_date(deadline) });
            }
            Ok(vec![E::Lapsed { deadline }])
        }

        C::Withdraw { reason } => {
            auth(Who::OwnerOrOffice, "enregistrer un désistement pour ce dossier")?;
            expect_status(
                state,
                &[S::PreRegistered, S::Deposited, S::UnderReview, S::Incomplete, S::Complete],
                "enregistrer un désistement",
            )?;
            let reason = reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned);
            Ok(vec![E::Withdrawn { at: now, reason }])
        }

        C::PublishConvocation { test, document } => {
            auth(Who::Office, "publier une convocation")?;
            expect_status(state, &[S::Complete], "publier une convocation")?;
            let spec = config.test(test).ok_or_else(|| DomainError::UnknownTest { test: test.to_string() })?;
            if state.convocations.get(test).is_some_and(|c| c.document.is_some()) {
                return Err(DomainError::ConvocationAlreadyPublished { label: spec.label.clone() });
            }
            let limit = config.convocation_publication_limit(spec);
            if now > limit {
                return Err(DomainError::ConvocationTooLate {
                    label: spec.label.clone(),
                    days: config.convocation_lead_days,
                    limit: format_instant(limit),
                });
            }
            Ok(vec![E::ConvocationPublished { test: test.clone(), document: document.clone() }])
        }

        C::WithholdConvocation { test, reason } => {
            auth(Who::Office, "retenir une convocation")?;
            expect_status(state, &[S::Complete], "retenir une convocation")?;
            let spec = config.test(test).ok_or_else(|| DomainError::UnknownTest { test: test.to_string() })?;
            if state.convocations.get(test).is_some_and(|c| c.document.is_some()) {
                return Err(DomainError::ConvocationAlreadyPublished { label: spec.label.clone() });
            }
            Ok(vec![E::ConvocationWithheld { test: test.clone(), reason: non_empty(reason)? }])
        }

        C::DownloadConvocation { test } => {
            auth(Who::Owner, "télécharger cette convocation")?;
            // A rejected or withdrawn candidate is no longer convoked, even if the convocation was
            // published before the rejection or the withdrawal.
            expect_status(state, &[S::Complete], "télécharger une convocation")?;
            let spec = config.test(test).ok_or_else(|| DomainError::UnknownTest { test: test.to_string() })?;
            if state.convocations.get(test).is_none_or(|c| c.document.is_none()) {
                return Err(DomainError::ConvocationNotPublished { label: spec.label.clone() });
            }
            Ok(vec![E::ConvocationDownloaded { test: test.clone() }])
        }
    }
}

fn receive_missing(
    state: &DossierState,
    config: &SessionConfig,
    piece: &PieceCode,
    delivery: PieceDelivery,
) -> Result<Vec<DossierEvent>, DomainError> {
    let label = catalogue_label(config, piece)?;
    if !state.missing.iter().any(|m| &m.code == piece) {
        return Err(DomainError::PieceNotMissing { label: label.to_owned() });
    }
    let mut events = vec![DossierEvent::MissingPieceReceived { piece: piece.clone(), delivery }];
    if state.missing.len() == 1 {
        events.push(DossierEvent::ReviewResumed);
    }
    Ok(events)
}

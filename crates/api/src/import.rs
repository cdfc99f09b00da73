//! Bulk import of a day's postal mail from a CSV file: a dry run that says what each line would
//! do, decided by the real domain against the dossier's stream, then an apply that runs each valid
//! line through the same path as `POST /api/dossiers/{id}/postal-receipts`.
//!
//! The file: UTF-8 (an initial BOM is ignored), `;` or `,` as separator (read from the header
//! line), a header row naming the columns « code utilisateur », « cachet de la poste »,
//! « date d'arrivée » and, optionally, « incident » (any case, accents optional, in any order;
//! other columns are ignored). Dates are JJ/MM/AAAA or AAAA-MM-JJ.
//!
//! Each receipt's command id derives from the session, the code and the receipt itself, so
//! importing the same file again is a replay: it appends nothing and reports the lines as already
//! recorded.

use std::collections::HashMap;

use cachet_domain::deadline::Verdict;
use cachet_domain::dossier::TransmissionIncident;
use cachet_domain::dossier::{decide, Context, DossierCommand, DossierEvent, DossierState, RejectionReason};
use cachet_domain::ids::{DossierId, SessionId, UserCode};
use cachet_domain::session::{SessionEvent, SessionState};
use cachet_projections::queries;
use cachet_store::typed::load;
use chrono::{NaiveDate, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::execute_dossier;

/// The largest file accepted, in bytes.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// The most data lines a file may hold.
pub const MAX_LINES: usize = 10_000;
/// How many lines are decided or applied at once (distinct dossiers: they never conflict).
const CONCURRENCY: usize = 8;

/// The columns, as the header names them.
const COLUMNS: &str = "code utilisateur ; cachet de la poste ; date d'arrivée ; incident (facultatif)";

/// A dry run decides without appending; an apply records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    DryRun,
    Apply,
}

/// What one line of the file does, or would do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineOutcome {
    /// The line cannot be read or names no dossier of this session: nothing is done.
    Error,
    /// This very receipt was imported before: nothing to do.
    AlreadyRecorded,
    /// The domain refuses the receipt in the dossier's state (e.g. a dossier already deposited).
    Refused,
    /// The postmark is on time: the dossier is deposited.
    OnTime {
        /// The deadline rule's explanation, e.g. « Cachet de la poste du 05/07/2023, dans les
        /// délais (date limite : 06/07/2023) ».
        explanation: String,
    },
    /// The postmark is after the deadline: the dossier is rejected.
    Late {
        /// « Cachet de la poste du 07/07/2023, postérieur à la date limite du 06/07/2023 »
        explanation: String,
        /// The message the candidate reads.
        rejection: String,
    },
    /// On time, but a transmission incident: the dossier is rejected.
    Incident {
        /// `insufficient_postage`, `damaged_or_lost` or `strike_or_delay`.
        #[schema(value_type = String)]
        incident: TransmissionIncident,
        explanation: String,
        /// The message the candidate reads.
        rejection: String,
    },
}

impl LineOutcome {
    /// Whether the line is a receipt the domain accepts (on time, late or incident).
    pub fn is_accepted(&self) -> bool {
        matches!(self, LineOutcome::OnTime { .. } | LineOutcome::Late { .. } | LineOutcome::Incident { .. })
    }
}

/// One line of the file and its outcome.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LinePlan {
    /// The line's number in the file, the header being line 1.
    pub line: usize,
    /// The *code utilisateur* as read (in capitals when valid).
    pub user_code: String,
    /// The dossier the code names in this session, when it names one.
    pub dossier_id: Option<Uuid>,
    pub outcome: LineOutcome,
    /// The outcome in one French sentence, « Ligne 3 : … ».
    pub message: String,
    /// True when this request appended the receipt (apply only).
    pub recorded: bool,
}

/// Counts of the lines by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportSummary {
    /// Data lines read (the header and blank lines are not counted).
    pub lines: usize,
    pub on_time: usize,
    pub late: usize,
    pub incident: usize,
    pub already_recorded: usize,
    pub refused: usize,
    pub errors: usize,
    /// Receipts appended by this request (0 in a dry run).
    pub recorded: usize,
}

/// The report of an import: every line in file order, and the counts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub mode: Mode,
    pub lines: Vec<LinePlan>,
    pub summary: ImportSummary,
}

impl ImportReport {
    fn new(mode: Mode, lines: Vec<LinePlan>) -> Self {
        let mut summary = ImportSummary { lines: lines.len(), ..ImportSummary::default() };
        for line in &lines {
            let count = match line.outcome {
                LineOutcome::Error => &mut summary.errors,
                LineOutcome::AlreadyRecorded => &mut summary.already_recorded,
                LineOutcome::Refused => &mut summary.refused,
                LineOutcome::OnTime { .. } => &mut summary.on_time,
                LineOutcome::Late { .. } => &mut summary.late,
                LineOutcome::Incident { .. } => &mut summary.incident,
            };
            *count += 1;
            if line.recorded {
                summary.recorded += 1;
            }
        }
        ImportReport { mode, lines, summary }
    }
}

// --- Reading the file ---------------------------------------------------------------------------

/// A receipt read from a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub user_code: UserCode,
    pub postmark_date: NaiveDate,
    pub arrival_date: NaiveDate,
    pub incident: Option<TransmissionIncident>,
}

/// A data line: its number, the code as written, and the receipt or what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedLine {
    pub line: usize,
    pub user_code: String,
    /// The receipt, or the problems of the line, each a French clause without final stop.
    pub receipt: Result<Receipt, Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    UserCode,
    Postmark,
    Arrival,
    Incident,
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::UserCode => "code utilisateur",
            Column::Postmark => "cachet de la poste",
            Column::Arrival => "date d'arrivée",
            Column::Incident => "incident",
        }
    }

    fn of_header(text: &str) -> Option<Self> {
        match normalise(text).as_str() {
            "code utilisateur" | "code" => Some(Column::UserCode),
            "cachet de la poste" | "date du cachet de la poste" | "date cachet de la poste" | "cachet" => {
                Some(Column::Postmark)
            }
            "date d arrivee" | "date de arrivee" | "date arrivee" | "arrivee" => Some(Column::Arrival),
            "incident" | "incident de transmission" => Some(Column::Incident),
            _ => None,
        }
    }
}

/// Lower case, without accents, apostrophes, underscores or hyphens, single spaces: how headers
/// and incident values are compared.
fn normalise(text: &str) -> String {
    let mapped: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            '\'' | '’' | '‘' | '`' | '_' | '-' => ' ',
            c if c.is_whitespace() => ' ',
            c => c,
        })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_incident(text: &str) -> Option<Option<TransmissionIncident>> {
    use TransmissionIncident as T;
    match normalise(text).as_str() {
        "" | "aucun" | "neant" => Some(None),
        "affranchissement insuffisant" | "insufficient postage" => Some(Some(T::InsufficientPostage)),
        "endommage ou perdu" | "dossier endommage ou perdu" | "damaged or lost" => Some(Some(T::DamagedOrLost)),
        "greve ou retard" | "greve ou retard d acheminement" | "strike or delay" => Some(Some(T::StrikeOrDelay)),
        _ => None,
    }
}

/// JJ/MM/AAAA or AAAA-MM-JJ, with a four-digit year.
fn parse_date(text: &str) -> Option<NaiveDate> {
    let numbers = |parts: Vec<&str>, widths: [(usize, usize); 3]| -> Option<[u32; 3]> {
        if parts.len() != 3 {
            return None;
        }
        let mut out = [0_u32; 3];
        for ((part, (min, max)), slot) in parts.iter().zip(widths).zip(out.iter_mut()) {
            if part.len() < min || part.len() > max || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = part.parse().ok()?;
        }
        Some(out)
    };
    if let Some([d, m, y]) = numbers(text.split('/').collect(), [(1, 2), (1, 2), (4, 4)]) {
        return NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d);
    }
    let [y, m, d] = numbers(text.split('-').collect(), [(4, 4), (1, 2), (1, 2)])?;
    NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

fn unprocessable(detail: String) -> ApiError {
    ApiError::Unprocessable(detail)
}

/// Reads a CSV file into its data lines. A structural problem (not UTF-8, no header, a missing
/// column, too large) is an error of the whole file; a problem of one line stays with that line.
pub fn parse(bytes: &[u8]) -> Result<Vec<ParsedLine>, ApiError> {
    if bytes.len() > MAX_BYTES {
        return Err(too_large());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        unprocessable(format!(
            "Le fichier n'est pas encodé en UTF-8 (caractère invalide à la ligne {line}) : enregistrez-le au format \
             « CSV UTF-8 »."
        ))
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(first) = text.lines().find(|l| !l.trim().is_empty()) else { return Err(empty_file()) };
    let delimiter = if first.contains(';') { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => return Err(empty_file()),
            Some(record) => {
                let record = record.map_err(csv_error)?;
                if record.iter().any(|f| !f.is_empty()) {
                    break record;
                }
            }
        }
    };
    let columns = read_header(&header)?;
    let mut lines = Vec::new();
    for record in records {
        let record = record.map_err(csv_error)?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if lines.len() == MAX_LINES {
            return Err(ApiError::TooLarge(format!(
                "Le fichier compte plus de {} lignes : découpez-le en plusieurs fichiers.",
                format_count(MAX_LINES)
            )));
        }
        let line = record.position().map_or(0, |p| usize::try_from(p.line()).unwrap_or(usize::MAX));
        let field =
            |column: Column| columns.iter().find(|(c, _)| *c == column).and_then(|(_, i)| record.get(*i)).unwrap_or("");
        lines.push(parse_line(
            line,
            field(Column::UserCode),
            field(Column::Postmark),
            field(Column::Arrival),
            field(Column::Incident),
        ));
    }
    if lines.is_empty() {
        return Err(unprocessable("Le fichier ne contient aucune ligne après l'en-tête.".to_owned()));
    }
    Ok(lines)
}

fn empty_file() -> ApiError {
    unprocessable(format!("Le fichier est vide : la première ligne doit être l'en-tête des colonnes ({COLUMNS})."))
}

/// The answer to a file over [`MAX_BYTES`].
pub fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "Le fichier dépasse {} Mio : découpez-le en plusieurs fichiers.",
        MAX_BYTES / (1024 * 1024)
    ))
}

/// 10000 → « 10 000 ».
pub(crate) fn format_count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

fn csv_error(e: csv::Error) -> ApiError {
    match e.position() {
        Some(p) => unprocessable(format!("Le fichier CSV est mal formé à la ligne {}.", p.line())),
        None => unprocessable("Le fichier CSV est mal formé.".to_owned()),
    }
}

/// Finds each column in the header row.
fn read_header(header: &csv::StringRecord) -> Result<Vec<(Column, usize)>, ApiError> {
    let mut columns: Vec<(Column, usize)> = Vec::new();
    for (i, name) in header.iter().enumerate() {
        if let Some(column) = Column::of_header(name) {
            if columns.iter().any(|(c, _)| *c == column) {
                return Err(unprocessable(format!(
                    "La colonne « {} » figure deux fois dans l'en-tête du fichier.",
                    column.name()
                )));
            }
            columns.push((column, i));
        }
    }
    if columns.is_empty() {
        let looks_like_data = header.iter().any(|f| UserCode::parse(f).is_ok() || parse_date(f).is_some());
        return Err(unprocessable(if looks_like_data {
            format!(
                "La première ligne du fichier doit être l'en-tête des colonnes ({COLUMNS}) ; elle contient des \
                 données."
            )
        } else {
            format!("La première ligne du fichier n'est pas un en-tête reconnu ; colonnes attendues : {COLUMNS}.")
        }));
    }
    let missing: Vec<&str> = [Column::UserCode, Column::Postmark, Column::Arrival]
        .into_iter()
        .filter(|c| !columns.iter().any(|(found, _)| found == c))
        .map(Column::name)
        .collect();
    match missing.as_slice() {
        [] => Ok(columns),
        [one] => Err(unprocessable(format!(
            "L'en-tête du fichier ne contient pas la colonne « {one} » ; colonnes attendues : {COLUMNS}."
        ))),
        many => Err(unprocessable(format!(
            "L'en-tête du fichier ne contient pas les colonnes « {} » ; colonnes attendues : {COLUMNS}.",
            many.join(" », « ")
        ))),
    }
}

fn parse_line(line: usize, code: &str, postmark: &str, arrival: &str, incident: &str) -> ParsedLine {
    let mut problems = Vec::new();
    let user_code = match UserCode::parse(code) {
        Ok(c) => Some(c),
        Err(_) if code.is_empty() => {
            problems.push("le code utilisateur est manquant".to_owned());
            None
        }
        Err(_) => {
            problems.push(format!(
                "le code utilisateur « {code} » n'est pas valide (8 caractères : lettres majuscules et chiffres de 2 \
                 à 9)"
            ));
            None
        }
    };
    let mut date = |text: &str, what: &str| {
        if text.is_empty() {
            problems.push(format!("la {what} est manquante"));
            return None;
        }
        let parsed = parse_date(text);
        if parsed.is_none() {
            problems.push(format!("la {what} « {text} » n'est pas une date valide (JJ/MM/AAAA)"));
        }
        parsed
    };
    let postmark_date = date(postmark, "date du cachet de la poste");
    let arrival_date = date(arrival, "date d'arrivée");
    let incident_value = parse_incident(incident);
    if incident_value.is_none() {
        problems.push(format!(
            "l'incident « {incident} » n'est pas reconnu ; valeurs possibles : affranchissement insuffisant, \
             endommagé ou perdu, grève ou retard, ou rien"
        ));
    }
    let shown = user_code.as_ref().map_or_else(|| code.to_owned(), |c| c.as_str().to_owned());
    let receipt = match (user_code, postmark_date, arrival_date, incident_value) {
        (Some(user_code), Some(postmark_date), Some(arrival_date), Some(incident)) if problems.is_empty() => {
            Ok(Receipt { user_code, postmark_date, arrival_date, incident })
        }
        _ => Err(problems),
    };
    ParsedLine { line, user_code: shown, receipt }
}

/// A second line for the same dossier is an error: one receipt per dossier.
fn mark_duplicates(lines: Vec<ParsedLine>) -> Vec<ParsedLine> {
    let mut first_seen: HashMap<UserCode, usize> = HashMap::new();
    lines
        .into_iter()
        .map(|mut line| {
            let Ok(code) = UserCode::parse(&line.user_code) else { return line };
            match first_seen.get(&code) {
                None => {
                    first_seen.insert(code, line.line);
                }
                Some(first) => {
                    let problem = format!(
                        "le code utilisateur « {code} » figure déjà à la ligne {first} du fichier (une seule réception \
                         par dossier)",
                        code = code.as_str()
                    );
                    line.receipt = match line.receipt {
                        Ok(_) => Err(vec![problem]),
                        Err(mut problems) => {
                            problems.insert(0, problem);
                            Err(problems)
                        }
                    };
                }
            }
            line
        })
        .collect()
}

// --- Deciding and applying ----------------------------------------------------------------------

fn incident_code(incident: TransmissionIncident) -> &'static str {
    match incident {
        TransmissionIncident::InsufficientPostage => "insufficient_postage",
        TransmissionIncident::DamagedOrLost => "damaged_or_lost",
        TransmissionIncident::StrikeOrDelay => "strike_or_delay",
    }
}

/// The command id of an imported receipt: the same receipt of the same dossier in the same
/// session is the same command, whoever imports it and however often.
pub fn receipt_command_id(session_id: SessionId, receipt: &Receipt) -> Uuid {
    let incident = receipt.incident.map_or("none", incident_code);
    let name = format!(
        "cachet:postal-import:{session_id}:{}:{}:{}:{incident}",
        receipt.user_code.as_str(),
        receipt.postmark_date,
        receipt.arrival_date
    );
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

/// What the domain decided, read from the receipt's verdict and the rejection that followed it.
fn outcome_of(verdict: &Verdict, rejection: Option<&RejectionReason>) -> LineOutcome {
    match rejection {
        Some(reason @ RejectionReason::Late { verdict }) => {
            LineOutcome::Late { explanation: verdict.explanation(), rejection: reason.message() }
        }
        Some(reason @ RejectionReason::TransmissionIncident { incident }) => LineOutcome::Incident {
            incident: *incident,
            explanation: verdict.explanation(),
            rejection: reason.message(),
        },
        _ => LineOutcome::OnTime { explanation: verdict.explanation() },
    }
}

fn outcome_of_events(events: &[DossierEvent]) -> Option<LineOutcome> {
    let verdict = events.iter().find_map(|e| match e {
        DossierEvent::PostalReceiptRecorded { verdict, .. } => Some(verdict),
        _ => None,
    })?;
    let rejection = events.iter().find_map(|e| match e {
        DossierEvent::Rejected { reason } => Some(reason),
        _ => None,
    });
    Some(outcome_of(verdict, rejection))
}

/// The first letter in lower case, for a sentence that follows « Ligne n : ».
fn lower_first(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && !second.is_uppercase() => {
            first.to_lowercase().chain(std::iter::once(second)).chain(chars).collect()
        }
        _ => sentence.to_owned(),
    }
}

fn message(line: usize, code: &str, outcome: &LineOutcome, mode: Mode, detail: &str) -> String {
    let (will, done) = match mode {
        Mode::DryRun => ("sera", "sera"),
        Mode::Apply => ("est", "a été"),
    };
    let text = match outcome {
        LineOutcome::Error => format!("{detail}."),
        LineOutcome::AlreadyRecorded => {
            format!("cette réception du dossier {code} est déjà enregistrée ; rien à faire.")
        }
        LineOutcome::Refused => {
            let detail = lower_first(detail);
            if detail.ends_with('.') {
                detail
            } else {
                format!("{detail}.")
            }
        }
        LineOutcome::OnTime { explanation } => {
            format!("la réception du dossier {code} {will} enregistrée, dans les délais — {explanation}.")
        }
        LineOutcome::Late { explanation, .. } => {
            format!("le dossier {code} {done} rejeté, hors délai — {explanation}.")
        }
        LineOutcome::Incident { incident, .. } => {
            format!("le dossier {code} {done} rejeté pour incident de transmission ({}).", incident.label())
        }
    };
    format!("Ligne {line} : {text}")
}

fn plan(line: usize, code: &str, dossier_id: Option<Uuid>, outcome: LineOutcome, mode: Mode, detail: &str) -> LinePlan {
    let message = message(line, code, &outcome, mode, detail);
    LinePlan { line, user_code: code.to_owned(), dossier_id, outcome, message, recorded: false }
}

/// A line with its decision, and the command to run when it is accepted.
struct Planned {
    plan: LinePlan,
    command: Option<(DossierId, DossierCommand, Uuid)>,
}

/// Decides one line with the domain, against the dossier's stream, without appending.
async fn plan_line(
    state: &AppState,
    ctx_actor: &cachet_domain::Actor,
    session_id: SessionId,
    session: &SessionState,
    line: ParsedLine,
) -> Result<Planned, ApiError> {
    let ParsedLine { line, user_code: code, receipt } = line;
    let done = |plan: LinePlan| Ok(Planned { plan, command: None });
    let receipt = match receipt {
        Ok(receipt) => receipt,
        Err(problems) => return done(plan(line, &code, None, LineOutcome::Error, Mode::DryRun, &problems.join(" ; "))),
    };
    let status = queries::dossier_by_user_code(&state.db, receipt.user_code.as_str()).await?;
    let Some(status) = status.filter(|s| s.session_id == session_id.as_uuid()) else {
        let problem = format!("le code utilisateur « {code} » ne correspond à aucun dossier de cette session");
        return done(plan(line, &code, None, LineOutcome::Error, Mode::DryRun, &problem));
    };
    let dossier_id = DossierId::from_uuid(status.dossier_id);
    let command_id = receipt_command_id(session_id, &receipt);
    let id = Some(status.dossier_id);
    if state.store.command_outcome(command_id).await?.is_some() {
        return done(plan(line, &code, id, LineOutcome::AlreadyRecorded, Mode::DryRun, ""));
    }
    let (events, _) = load::<DossierEvent>(&*state.store, dossier_id.as_uuid()).await?;
    let dossier = DossierState::fold(&events);
    let command = DossierCommand::RecordPostalReceipt {
        postmark_date: receipt.postmark_date,
        arrival_date: receipt.arrival_date,
        incident: receipt.incident,
    };
    let context = Context { now: Utc::now(), actor: ctx_actor, session };
    match decide(&dossier, &command, &context) {
        Err(refusal) => done(plan(line, &code, id, LineOutcome::Refused, Mode::DryRun, &refusal.to_string())),
        Ok(decided) => {
            let outcome = outcome_of_events(&decided).ok_or_else(|| {
                ApiError::internal("plan a postal import", "a postal receipt decided no PostalReceiptRecorded event")
            })?;
            let plan = plan(line, &code, id, outcome, Mode::DryRun, "");
            Ok(Planned { plan, command: Some((dossier_id, command, command_id)) })
        }
    }
}

/// Runs an accepted line through the API's own path; reports what happened.
async fn apply_line(state: &AppState, caller: &Caller, planned: Planned) -> Result<LinePlan, ApiError> {
    let Planned { plan: planned, command } = planned;
    // Errors, refusals and lines already recorded read the same in both modes.
    let Some((dossier_id, command, command_id)) = command else { return Ok(planned) };
    let (line, code, id) = (planned.line, planned.user_code, planned.dossier_id);
    match execute_dossier(state, caller, dossier_id, command, None, command_id).await {
        Ok(outcome) if outcome.replayed => Ok(plan(line, &code, id, LineOutcome::AlreadyRecorded, Mode::Apply, "")),
        Ok(_) => {
            let (events, _) = load::<DossierEvent>(&*state.store, dossier_id.as_uuid()).await?;
            let dossier = DossierState::fold(&events);
            let verdict = dossier.deposit.map(|d| d.verdict).ok_or_else(|| {
                ApiError::internal("apply a postal import", "a recorded postal receipt left no deposit")
            })?;
            let outcome = outcome_of(&verdict, dossier.rejection.as_ref());
            Ok(LinePlan { recorded: true, ..plan(line, &code, id, outcome, Mode::Apply, "") })
        }
        Err(error @ ApiError::Internal(_)) => Err(error),
        Err(refusal) => Ok(plan(line, &code, id, LineOutcome::Refused, Mode::Apply, &refusal.to_string())),
    }
}

/// Reads the file and decides every line with the domain, appending nothing.
pub async fn dry_run(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    csv: &[u8],
) -> Result<ImportReport, ApiError> {
    import(state, caller, session_id, csv, Mode::DryRun).await
}

/// Reads the file and records every accepted line; a line already imported appends nothing.
pub async fn apply(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    csv: &[u8],
) -> Result<ImportReport, ApiError> {
    import(state, caller, session_id, csv, Mode::Apply).await
}

/// Imports a CSV file of postal receipts into a session, as a dry run or for real. Callers: the
/// exam office (staff and admin).
pub async fn import(
    state: &AppState,
    caller: &Caller,
    session_id: SessionId,
    csv: &[u8],
    mode: Mode,
) -> Result<ImportReport, ApiError> {
    caller.require_office()?;
    let (events, _) = load::<SessionEvent>(&*state.store, session_id.as_uuid()).await?;
    let session = SessionState::fold(&events);
    if session.opened().is_err() {
        return Err(ApiError::NotFound("Cette session d'examen n'existe pas.".to_owned()));
    }
    let lines = mark_duplicates(parse(csv)?);
    let actor = caller.actor();
    let planned: Vec<Planned> = stream::iter(lines)
        .map(|line| plan_line(state, &actor, session_id, &session, line))
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let lines = match mode {
        Mode::DryRun => planned.into_iter().map(|p| p.plan).collect(),
        Mode::Apply => {
            stream::iter(planned).map(|p| apply_line(state, caller, p)).buffered(CONCURRENCY).try_collect().await?
        }
    };
    Ok(ImportReport::new(mode, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(line: &ParsedLine) -> Vec<String> {
        line.receipt.clone().expect_err("a line in error")
    }

    fn structural(csv: &[u8]) -> String {
        match parse(csv) {
            Err(ApiError::Unprocessable(detail)) => detail,
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn headers_are_matched_whatever_the_case_accents_order_or_separator() {
        let csv = "\u{feff}INCIDENT;Date d’arrivée;Code_Utilisateur;Cachet de la Poste;Nom\n\
                   endommagé ou perdu;2023-07-07;abcd2345;06/07/2023;Dupont\n\n;;;;\n";
        let lines = parse(csv.as_bytes()).expect("a valid file");
        assert_eq!(lines.len(), 1, "blank lines are skipped");
        let receipt = lines[0].receipt.clone().expect("a valid line");
        assert_eq!(lines[0].line, 2);
        assert_eq!(receipt.user_code.as_str(), "ABCD2345");
        assert_eq!(receipt.postmark_date, NaiveDate::from_ymd_opt(2023, 7, 6).expect("date"));
        assert_eq!(receipt.arrival_date, NaiveDate::from_ymd_opt(2023, 7, 7).expect("date"));
        assert_eq!(receipt.incident, Some(TransmissionIncident::DamagedOrLost));

        let csv = "code utilisateur,cachet de la poste,date d'arrivee\nABCD2345,6/7/2023,\"07/07/2023\"\n";
        let lines = parse(csv.as_bytes()).expect("a valid file");
        assert_eq!(lines[0].receipt.clone().expect("valid").incident, None);
    }

    #[test]
    fn incidents_are_read_in_french_or_as_codes() {
        use TransmissionIncident as T;
        for (text, expected) in [
            ("", None),
            ("Affranchissement insuffisant", Some(T::InsufficientPostage)),
            ("insufficient_postage", Some(T::InsufficientPostage)),
            ("Endommagé ou perdu", Some(T::DamagedOrLost)),
            ("damaged_or_lost", Some(T::DamagedOrLost)),
            ("Grève ou retard", Some(T::StrikeOrDelay)),
            ("grève ou retard d'acheminement", Some(T::StrikeOrDelay)),
            ("strike_or_delay", Some(T::StrikeOrDelay)),
        ] {
            assert_eq!(parse_incident(text), Some(expected), "{text}");
        }
        assert_eq!(parse_incident("pluie"), None);
    }

    #[test]
    fn dates_need_a_four_digit_year_and_must_exist() {
        assert_eq!(parse_date("06/07/2023"), NaiveDate::from_ymd_opt(2023, 7, 6));
        assert_eq!(parse_date("2023-07-06"), NaiveDate::from_ymd_opt(2023, 7, 6));
        for bad in ["32/07/2023", "06/07/23", "2023/07/06", "06-07-2023", "29/02/2023", "hier", "+2023-07-06"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_problem_of_a_line_is_named_with_its_value() {
        let csv = "code utilisateur;cachet de la poste;date d'arrivée;incident\n\
                   AB;32/07/2023;;pluie\n";
        let lines = parse(csv.as_bytes()).expect("a readable file");
        assert_eq!(
            problems(&lines[0]),
            vec![
                "le code utilisateur « AB » n'est pas valide (8 caractères : lettres majuscules et chiffres de 2 à 9)",
                "la date du cachet de la poste « 32/07/2023 » n'est pas une date valide (JJ/MM/AAAA)",
                "la date d'arrivée est manquante",
                "l'incident « pluie » n'est pas reconnu ; valeurs possibles : affranchissement insuffisant, endommagé \
                 ou perdu, grève ou retard, ou rien",
            ]
        );
    }

    #[test]
    fn a_second_line_for_the_same_dossier_is_an_error() {
        let csv = "code utilisateur;cachet de la poste;date d'arrivée\n\
                   ABCD2345;06/07/2023;07/07/2023\n\
                   abcd2345;05/07/2023;07/07/2023\n";
        let lines = mark_duplicates(parse(csv.as_bytes()).expect("a readable file"));
        assert!(lines[0].receipt.is_ok());
        assert_eq!(
            problems(&lines[1]),
            vec!["le code utilisateur « ABCD2345 » figure déjà à la ligne 2 du fichier (une seule réception par dossier)"]
        );
    }

    #[test]
    fn structural_problems_are_errors_of_the_whole_file() {
        assert!(structural(b"").starts_with("Le fichier est vide"));
        assert!(structural(b"\xef\xbb\xbf\n  \n").starts_with("Le fichier est vide"));
        assert_eq!(
            structural(b"code utilisateur;date d'arrivee;incident\n"),
            "L'en-tête du fichier ne contient pas la colonne « cachet de la poste » ; colonnes attendues : code \
             utilisateur ; cachet de la poste ; date d'arrivée ; incident (facultatif)."
        );
        assert_eq!(
            structural(b"nom;prenom\n"),
            "La première ligne du fichier n'est pas un en-tête reconnu ; colonnes attendues : code utilisateur ; \
             cachet de la poste ; date d'arrivée ; incident (facultatif)."
        );
        assert_eq!(
            structural(b"code;code utilisateur;cachet;date d'arrivee\n"),
            "La colonne « code utilisateur » figure deux fois dans l'en-tête du fichier."
        );
        assert!(structural(b"code utilisateur\n").contains("les colonnes « cachet de la poste », « date d'arrivée »"));
        assert!(structural(b"code utilisateur;cachet\n\xff\n").contains("UTF-8 (caractère invalide à la ligne 2)"));
    }

    #[test]
    fn too_many_lines_are_refused() {
        let mut csv = String::from("code utilisateur;cachet de la poste;date d'arrivée\n");
        for _ in 0..=MAX_LINES {
            csv.push_str("ABCD2345;06/07/2023;07/07/2023\n");
        }
        match parse(csv.as_bytes()) {
            Err(ApiError::TooLarge(detail)) => {
                assert_eq!(detail, "Le fichier compte plus de 10 000 lignes : découpez-le en plusieurs fichiers.")
            }
            other => panic!("expected a 413, got {other:?}"),
        }
    }

    #[test]
    fn the_command_id_is_the_receipt() {
        let receipt = |incident| Receipt {
            user_code: UserCode::parse("ABCD2345").expect("code"),
            postmark_date: NaiveDate::from_ymd_opt(2023, 7, 6).expect("date"),
            arrival_date: NaiveDate::from_ymd_opt(2023, 7, 7).expect("date"),
            incident,
        };
        let session = SessionId::from_uuid(Uuid::nil());
        assert_eq!(receipt_command_id(session, &receipt(None)), receipt_command_id(session, &receipt(None)));
        assert_ne!(
            receipt_command_id(session, &receipt(None)),
            receipt_command_id(session, &receipt(Some(TransmissionIncident::StrikeOrDelay)))
        );
    }
}

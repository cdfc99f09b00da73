//! Exports of a session's dossiers for the exam office's spreadsheets: one row per dossier (state,
//! deposit channel, the verdict with its decisive dates, missing pieces, rejection reason), with
//! French column headers, as CSV (UTF-8 with a BOM, `;` separators, CRLF) or XLSX.
//!
//! Rows are read from the `dossier_status` read model joined with the candidate accounts (a dossier
//! pre-registered through the API has no account: its name is left empty).

use cachet_domain::deadline::Channel;
use cachet_domain::dossier::Status;
use cachet_domain::time::{format_date, format_time, paris_datetime};
use cachet_projections::dossiers::STATUS;
use chrono::{DateTime, Utc};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use sqlx::Row;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;

/// The column headers, in order.
pub const HEADERS: [&str; 11] = [
    "Code utilisateur",
    "Nom",
    "Prénom",
    "État",
    "Canal de dépôt",
    "Dépôt dans les délais",
    "Explication",
    "Préinscription",
    "Dernière modification",
    "Pièces manquantes",
    "Motif de rejet",
];

/// The widths of the XLSX columns, in characters.
const WIDTHS: [f64; 11] = [16.0, 20.0, 20.0, 30.0, 18.0, 12.0, 70.0, 18.0, 18.0, 60.0, 70.0];

/// The name of the XLSX sheet.
pub const SHEET: &str = "Dossiers";

/// One dossier of the export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportRow {
    pub user_code: String,
    /// Empty when the dossier has no candidate account.
    pub last_name: String,
    pub first_name: String,
    /// The state in French, e.g. « incomplet ».
    pub status_label: String,
    /// E.g. « par voie postale »; empty before a deposit.
    pub channel_label: String,
    /// `None` before a deposit.
    pub on_time: Option<bool>,
    /// The verdict, with its decisive date and the deadline; empty before a deposit.
    pub explanation: String,
    pub registered_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub missing: Vec<String>,
    pub rejection: Option<String>,
}

/// `06/07/2023 14h05`, in Paris time.
fn paris_instant(at: DateTime<Utc>) -> String {
    let local = paris_datetime(at);
    format!("{} {}", format_date(local.date()), format_time(local.time()))
}

impl ExportRow {
    /// The cells, in the order of [`HEADERS`].
    pub fn cells(&self) -> [String; 11] {
        [
            self.user_code.clone(),
            self.last_name.clone(),
            self.first_name.clone(),
            self.status_label.clone(),
            self.channel_label.clone(),
            match self.on_time {
                Some(true) => "oui".to_owned(),
                Some(false) => "non".to_owned(),
                None => String::new(),
            },
            self.explanation.clone(),
            paris_instant(self.registered_at),
            paris_instant(self.updated_at),
            self.missing.join(" ; "),
            self.rejection.clone().unwrap_or_default(),
        ]
    }
}

fn status_label(code: &str) -> String {
    Status::from_code(code).map_or_else(|| code.to_owned(), |s| s.label().to_owned())
}

fn channel_label(code: &str) -> String {
    [Channel::Online, Channel::Post, Channel::Counter]
        .into_iter()
        .find(|c| c.code() == code)
        .map_or_else(|| code.to_owned(), |c| c.label().to_owned())
}

/// The dossiers of a session, ordered by code utilisateur (the caller checks the session exists).
pub async fn session_rows(state: &AppState, session: Uuid) -> Result<Vec<ExportRow>, ApiError> {
    let db_error = |e: sqlx::Error| ApiError::internal("read the dossiers to export", e);
    let rows = sqlx::query(&format!(
        "SELECT s.user_code, s.status, s.missing, s.deposit_channel, s.deposit_on_time, s.deposit_explanation, \
         s.rejection, s.registered_at_us, s.updated_at_us, a.last_name, a.first_name \
         FROM {STATUS} s LEFT JOIN candidate_accounts a ON a.dossier_id = s.dossier_id \
         WHERE s.session_id = $1 ORDER BY s.user_code, s.dossier_id"
    ))
    .bind(session.to_string())
    .fetch_all(&state.db.pool)
    .await
    .map_err(db_error)?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status").map_err(db_error)?;
            let missing: String = row.try_get("missing").map_err(db_error)?;
            let channel: Option<String> = row.try_get("deposit_channel").map_err(db_error)?;
            let on_time: Option<i64> = row.try_get("deposit_on_time").map_err(db_error)?;
            let micros = |column: &str| -> Result<DateTime<Utc>, ApiError> {
                Ok(DateTime::from_timestamp_micros(row.try_get(column).map_err(db_error)?).unwrap_or_default())
            };
            Ok(ExportRow {
                user_code: row.try_get("user_code").map_err(db_error)?,
                last_name: row.try_get::<Option<String>, _>("last_name").map_err(db_error)?.unwrap_or_default(),
                first_name: row.try_get::<Option<String>, _>("first_name").map_err(db_error)?.unwrap_or_default(),
                status_label: status_label(&status),
                channel_label: channel.as_deref().map(channel_label).unwrap_or_default(),
                on_time: on_time.map(|v| v != 0),
                explanation: row
                    .try_get::<Option<String>, _>("deposit_explanation")
                    .map_err(db_error)?
                    .unwrap_or_default(),
                registered_at: micros("registered_at_us")?,
                updated_at: micros("updated_at_us")?,
                missing: serde_json::from_str(&missing)
                    .map_err(|e| ApiError::internal("read the missing pieces to export", e))?,
                rejection: row.try_get("rejection").map_err(db_error)?,
            })
        })
        .collect()
}

/// A cell a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, tab, carriage return) is
/// prefixed with an apostrophe: names are typed by candidates, and a CSV opened in a spreadsheet
/// must not run what they typed.
fn neutralised(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The rows as CSV for French spreadsheets: UTF-8 with a BOM, `;` separators, CRLF line endings,
/// fields quoted where needed.
pub fn to_csv(rows: &[ExportRow]) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(b"\xEF\xBB\xBF".to_vec());
    // Writing records of one length into memory cannot fail.
    writer.write_record(HEADERS).expect("a CSV record written to memory");
    for row in rows {
        writer.write_record(row.cells().map(neutralised)).expect("a CSV record written to memory");
    }
    writer.into_inner().expect("CSV written to memory")
}

/// The rows as an XLSX workbook: one sheet « Dossiers », a bold header row that stays in view,
/// every cell a string (never a formula).
pub fn to_xlsx(rows: &[ExportRow]) -> Result<Vec<u8>, ApiError> {
    let error = |e: XlsxError| ApiError::internal("write the XLSX export", e);
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name(SHEET).map_err(error)?;
    let bold = Format::new().set_bold();
    for (col, (header, width)) in (0_u16..).zip(HEADERS.iter().zip(WIDTHS)) {
        sheet.write_string_with_format(0, col, *header, &bold).map_err(error)?;
        sheet.set_column_width(col, width).map_err(error)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(error)?;
    for (r, row) in (1_u32..).zip(rows) {
        for (col, cell) in (0_u16..).zip(row.cells()) {
            if !cell.is_empty() {
                sheet.write_string(r, col, cell).map_err(error)?;
            }
        }
    }
    workbook.save_to_buffer().map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(last_name: &str, missing: &[&str]) -> ExportRow {
        ExportRow {
            user_code: "ABCD2345".to_owned(),
            last_name: last_name.to_owned(),
            first_name: "Alex".to_owned(),
            status_label: "incomplet".to_owned(),
            channel_label: "par voie postale".to_owned(),
            on_time: Some(true),
            explanation: "Cachet de la poste du 05/07/2023, dans les délais (date limite : 06/07/2023)".to_owned(),
            registered_at: DateTime::from_timestamp(1_688_551_500, 0).unwrap_or_default(),
            updated_at: DateTime::from_timestamp(1_688_637_900, 0).unwrap_or_default(),
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
            rejection: None,
        }
    }

    #[test]
    fn the_csv_has_a_bom_semicolons_crlf_and_quotes_where_needed() {
        let csv = to_csv(&[row("Dupont", &["État des services", "Arrêté; dernier"])]);
        let text = String::from_utf8(csv).expect("UTF-8");
        let text = text.strip_prefix('\u{feff}').expect("a BOM");
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], HEADERS.join(";"));
        assert_eq!(
            lines[1],
            "ABCD2345;Dupont;Alex;incomplet;par voie postale;oui;Cachet de la poste du 05/07/2023, dans les délais \
             (date limite : 06/07/2023);05/07/2023 12h05;06/07/2023 12h05;\"État des services ; Arrêté; dernier\";"
        );
        assert_eq!(lines[2], "");
    }

    #[test]
    fn a_cell_a_spreadsheet_would_run_is_neutralised_in_the_csv() {
        let text = String::from_utf8(to_csv(&[row("=HYPERLINK(\"x\")", &[])])).expect("UTF-8");
        assert!(text.contains(";\"'=HYPERLINK(\"\"x\"\")\";"), "{text}");
    }

    #[test]
    fn the_xlsx_is_a_zip() {
        let xlsx = to_xlsx(&[row("Dupont", &[])]).expect("an XLSX");
        assert!(xlsx.starts_with(b"PK"));
    }
}

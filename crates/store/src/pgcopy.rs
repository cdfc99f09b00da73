//! Replays on PostgreSQL read the log with `COPY (SELECT …) TO STDOUT (FORMAT binary)`.
//! A `SELECT` streamed through sqlx spent much of a fold's client time in the driver's per-row
//! machinery (perf: `Row::try_get`, `DataRow::decode_body`, columns looked up by name). COPY
//! sends the same columns in PostgreSQL's binary format. Parsing it is a few length-prefixed
//! fields per row, done here.
//!
//! The format (PostgreSQL manual, "COPY", binary format): an 11-byte signature, a 32-bit flags
//! field and a 32-bit header-extension length followed by that many bytes; then each row as a
//! 16-bit field count followed by each field's 32-bit length (-1 for NULL) and bytes; a field
//! count of -1 ends the data. Integers are big-endian.

use bytes::Bytes;
use compact_str::CompactString;
use futures::TryStreamExt;
use sqlx::postgres::PgPool;
use sqlx::PgConnection;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::postgres::{give_back, in_position_order};
use crate::sqlite::REPLAY_COLUMNS;
use crate::{ReplayEvent, StoreError};

const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";
/// The fields of [`REPLAY_COLUMNS`].
const FIELDS: i16 = 8;

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { detail: format!("binary COPY: {detail}") }
}

/// A cursor over the bytes received so far. `None` from a read means "not here yet".
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A non-NULL field's bytes.
    fn field(&mut self) -> Option<Result<&'a [u8], StoreError>> {
        let length = self.i32()?;
        match usize::try_from(length) {
            Ok(length) => self.take(length).map(Ok),
            Err(_) => Some(Err(corrupt("a NULL in a NOT NULL column"))),
        }
    }
}

fn int8(field: &[u8]) -> Result<i64, StoreError> {
    field.try_into().map(i64::from_be_bytes).map_err(|_| corrupt("a bigint is not 8 bytes"))
}

fn int4(field: &[u8]) -> Result<i32, StoreError> {
    field.try_into().map(i32::from_be_bytes).map_err(|_| corrupt("an integer is not 4 bytes"))
}

fn text(field: &[u8]) -> Result<CompactString, StoreError> {
    CompactString::from_utf8(field).map_err(|_| corrupt("text is not UTF-8"))
}

/// What one step of parsing found.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Header,
    /// A row, pushed onto the caller's chunk.
    Row,
    End,
}

/// Parses, from `input[from..]`, the header if `header` is false, else one row (pushed onto
/// `rows`, its payload a slice of `input`, not a copy) or the end; `Ok(None)` when the bytes so
/// far stop short of it. Returns the bytes consumed.
fn parse(
    input: &Bytes,
    from: usize,
    header: &mut bool,
    rows: &mut Vec<ReplayEvent>,
) -> Result<Option<(usize, Parsed)>, StoreError> {
    let mut cursor = Cursor { bytes: input.get(from..).unwrap_or_default(), at: 0 };
    if !*header {
        let Some(signature) = cursor.take(SIGNATURE.len()) else { return Ok(None) };
        if signature != SIGNATURE {
            return Err(corrupt("no PGCOPY signature"));
        }
        let Some(_flags) = cursor.i32() else { return Ok(None) };
        let Some(extension) = cursor.i32() else { return Ok(None) };
        let extension = usize::try_from(extension).map_err(|_| corrupt("a negative header extension"))?;
        if cursor.take(extension).is_none() {
            return Ok(None);
        }
        *header = true;
        return Ok(Some((cursor.at, Parsed::Header)));
    }
    let Some(count) = cursor.i16() else { return Ok(None) };
    if count == -1 {
        return Ok(Some((cursor.at, Parsed::End)));
    }
    if count != FIELDS {
        return Err(corrupt(format!("{count} fields in a row, not {FIELDS}")));
    }
    let mut fields: [&[u8]; FIELDS as usize] = [&[]; FIELDS as usize];
    for field in &mut fields {
        match cursor.field() {
            Some(bytes) => *field = bytes?,
            None => return Ok(None),
        }
    }
    let [position, stream_id, stream_type, stream_version, event_type, schema_version, payload, recorded_at_us] =
        fields;
    let event = ReplayEvent {
        position: int8(position)?,
        stream_id: Uuid::from_slice(stream_id).map_err(|_| corrupt("a uuid is not 16 bytes"))?,
        stream_type: text(stream_type)?,
        stream_version: int8(stream_version)?,
        event_type: text(event_type)?,
        schema_version: int4(schema_version)?,
        payload: input.slice_ref(payload),
        recorded_at: crate::from_micros(int8(recorded_at_us)?)?,
    };
    rows.push(event);
    Ok(Some((cursor.at, Parsed::Row)))
}

/// The rows of a COPY, parsed as its messages arrive, which may cut them anywhere.
#[derive(Default)]
struct Rows {
    /// The start of a row the messages so far left unfinished.
    buffer: Vec<u8>,
    header: bool,
    ended: bool,
}

impl Rows {
    /// Parses every row `message` completes onto `rows`. PostgreSQL sends a row per message: a
    /// message is parsed where it lies, the payloads sliced out of it, and only what it leaves
    /// unfinished is copied.
    fn feed(&mut self, message: &Bytes, rows: &mut Vec<ReplayEvent>) -> Result<(), StoreError> {
        if self.ended {
            return Err(corrupt("data after the end"));
        }
        let pending = !self.buffer.is_empty();
        let input = if pending {
            self.buffer.extend_from_slice(message);
            Bytes::from(std::mem::take(&mut self.buffer))
        } else {
            message.clone()
        };
        let mut used = 0;
        while let Some((n, parsed)) = parse(&input, used, &mut self.header, rows)? {
            used += n;
            if parsed == Parsed::End {
                self.ended = true;
                break;
            }
        }
        self.buffer.extend_from_slice(&input[used..]);
        Ok(())
    }

    /// Fails unless the end was read, with nothing after it.
    fn finish(&self) -> Result<(), StoreError> {
        if self.ended && self.buffer.is_empty() {
            Ok(())
        } else {
            Err(corrupt("the data ends inside a row"))
        }
    }
}

/// Reads every event after `after` in order, on a task of its own, handed over in chunks of up
/// to `chunk_size`.
pub(crate) fn replay_by_copy(
    pool: PgPool,
    after: i64,
    chunk_size: usize,
) -> mpsc::Receiver<Result<Vec<ReplayEvent>, StoreError>> {
    let (sender, receiver) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(e) = copy_into(&pool, after, chunk_size, &sender).await {
            let _ = sender.send(Err(e)).await;
        }
    });
    receiver
}

/// Whether a COPY was read to its end.
enum Read {
    Whole,
    Stopped,
}

async fn copy_into(
    pool: &PgPool,
    after: i64,
    chunk_size: usize,
    sender: &mpsc::Sender<Result<Vec<ReplayEvent>, StoreError>>,
) -> Result<(), StoreError> {
    let mut conn = in_position_order(pool).await?;
    let read = copy_rows(&mut conn, after, chunk_size, sender).await;
    // A COPY stopped early may still be sending: its connection is closed.
    give_back(conn, matches!(read, Ok(Read::Whole))).await;
    read.map(|_| ())
}

async fn copy_rows(
    conn: &mut PgConnection,
    after: i64,
    chunk_size: usize,
    sender: &mpsc::Sender<Result<Vec<ReplayEvent>, StoreError>>,
) -> Result<Read, StoreError> {
    // COPY takes no parameters; `after` is an integer.
    let sql = format!(
        "COPY (SELECT {REPLAY_COLUMNS} FROM events WHERE position > {after} ORDER BY position) \
         TO STDOUT (FORMAT binary)"
    );
    let mut data = conn.copy_out_raw(&sql).await?;
    let mut rows = Rows::default();
    let mut chunk = Vec::with_capacity(chunk_size);
    while let Some(message) = data.try_next().await? {
        rows.feed(&message, &mut chunk)?;
        while chunk.len() >= chunk_size {
            let rest =
                if chunk.len() > chunk_size { chunk.split_off(chunk_size) } else { Vec::with_capacity(chunk_size) };
            if sender.send(Ok(std::mem::replace(&mut chunk, rest))).await.is_err() {
                return Ok(Read::Stopped);
            }
        }
    }
    rows.finish()?;
    if !chunk.is_empty() {
        let _ = sender.send(Ok(chunk)).await;
    }
    Ok(Read::Whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&i32::try_from(bytes.len()).expect("small").to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn row(out: &mut Vec<u8>, position: i64, stream_id: Uuid) {
        out.extend_from_slice(&FIELDS.to_be_bytes());
        field(out, &position.to_be_bytes());
        field(out, stream_id.as_bytes());
        field(out, b"dossier");
        field(out, &3_i64.to_be_bytes());
        field(out, b"Transferred");
        field(out, &1_i32.to_be_bytes());
        field(out, br#"{"type":"Transferred"}"#);
        field(out, &1_700_000_000_000_000_i64.to_be_bytes());
    }

    fn data(rows: usize, stream_id: Uuid) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&0_i32.to_be_bytes());
        out.extend_from_slice(&2_i32.to_be_bytes());
        out.extend_from_slice(b"xx");
        for n in 0..rows {
            row(&mut out, i64::try_from(n).expect("small") + 1, stream_id);
        }
        out.extend_from_slice(&(-1_i16).to_be_bytes());
        out
    }

    /// Feeds `bytes` in pieces of `size`, as the messages of a COPY may cut it anywhere.
    fn parse_in_pieces(bytes: &[u8], size: usize) -> Result<(Vec<ReplayEvent>, bool), StoreError> {
        let (mut rows, mut events) = (Rows::default(), Vec::new());
        for piece in bytes.chunks(size) {
            rows.feed(&Bytes::copy_from_slice(piece), &mut events)?;
        }
        Ok((events, rows.finish().is_ok()))
    }

    #[test]
    fn rows_cut_anywhere_parse_to_the_same_events() {
        let stream_id = Uuid::new_v4();
        let bytes = data(5, stream_id);
        for size in [1, 2, 3, 7, 19, 64, bytes.len()] {
            let (events, ended) = parse_in_pieces(&bytes, size).expect("parsed");
            assert!(ended, "pieces of {size}: the end is seen");
            assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
            let first = &events[0];
            assert_eq!(
                (first.stream_id, first.stream_type.as_str(), first.stream_version, first.event_type.as_str()),
                (stream_id, "dossier", 3, "Transferred")
            );
            assert_eq!((first.schema_version, &first.payload[..]), (1, &br#"{"type":"Transferred"}"#[..]));
            assert_eq!(first.recorded_at.timestamp_micros(), 1_700_000_000_000_000);
        }
    }

    #[test]
    fn a_row_per_message_as_postgresql_sends_them_parses_without_copying() {
        let stream_id = Uuid::new_v4();
        let header_length = SIGNATURE.len() + 4 + 4 + 2;
        let mut one_row = Vec::new();
        row(&mut one_row, 7, stream_id);
        let mut messages = vec![data(0, stream_id)[..header_length].to_vec()];
        messages.extend((1..=3).map(|n| {
            let mut message = Vec::new();
            row(&mut message, n, stream_id);
            message
        }));
        messages.push((-1_i16).to_be_bytes().to_vec());
        let (mut rows, mut events) = (Rows::default(), Vec::new());
        for message in &messages {
            rows.feed(&Bytes::copy_from_slice(message), &mut events).expect("parsed");
            assert!(rows.buffer.is_empty(), "a whole row is never copied");
        }
        rows.finish().expect("the end is seen");
        assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert!(
            matches!(rows.feed(&Bytes::from(one_row), &mut events), Err(StoreError::Corrupt { .. })),
            "data after the end"
        );
    }

    #[test]
    fn a_bad_signature_a_null_or_a_wrong_field_count_is_corrupt() {
        let stream_id = Uuid::new_v4();
        let mut bad = data(1, stream_id);
        bad[0] = b'X';
        assert!(matches!(parse_in_pieces(&bad, 64), Err(StoreError::Corrupt { .. })));

        let mut null = data(0, stream_id);
        null.truncate(null.len() - 2);
        null.extend_from_slice(&FIELDS.to_be_bytes());
        null.extend_from_slice(&(-1_i32).to_be_bytes());
        assert!(matches!(parse_in_pieces(&null, 64), Err(StoreError::Corrupt { .. })));

        let mut fields = data(0, stream_id);
        fields.truncate(fields.len() - 2);
        fields.extend_from_slice(&3_i16.to_be_bytes());
        assert!(matches!(parse_in_pieces(&fields, 64), Err(StoreError::Corrupt { .. })));
    }
}

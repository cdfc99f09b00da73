//! Writing a batch's rows in a few statements whatever its size, on both backends: the bind
//! placeholders of each, and [`insert`] of records.

use sqlx::AnyConnection;

use crate::ProjectionError;

pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<String, ProjectionError> {
    serde_json::to_string(value).map_err(|e| ProjectionError::Corrupt(e.to_string()))
}

/// The most values bound to one statement: SQLite refuses more than 32,766, PostgreSQL more than
/// 65,535, so a batch's rows are written in chunks of at most this many values.
pub(crate) const MAX_BINDS: usize = 30_000;

/// The bind parameters of a statement whose length follows the batch: `$1, $2, …` on PostgreSQL,
/// anonymous `?` on SQLite.
///
/// sqlx's `Any` driver hands the SQL text over as it is, so the text must already be in the
/// backend's syntax (and sqlx's `QueryBuilder` writes `?`, which PostgreSQL refuses). SQLite
/// reads `$1` too, but as a *named* parameter: preparing the statement looks each name up among
/// the names before it, and sqlx asks the name of each parameter when binding, both in time
/// quadratic in their number. An `INSERT` of 17,600 values took 2 s with `$n` and 4 ms with `?`,
/// and a rebuild written with `$n` was slower than the row-by-row writes it replaced.
///
/// Such statements are run with `persistent(false)`: their text changes with the batch's size,
/// and keeping them prepared would only push the statements that do repeat out of sqlx's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placeholders {
    Numbered,
    Anonymous,
}

impl Placeholders {
    /// The style of the backend behind this connection.
    pub(crate) fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name() == <sqlx::Sqlite as sqlx::Database>::NAME {
            Placeholders::Anonymous
        } else {
            Placeholders::Numbered
        }
    }

    /// `($1, …, $c), ($c+1, …, $2c), …` (or `(?, …, ?), …`): the placeholders of a multi-row
    /// `VALUES` of `rows` rows of `columns` values.
    pub(crate) fn values(self, rows: usize, columns: usize) -> String {
        self.tuples(0, rows, columns)
    }

    /// `($n+1, …, $n+len)` (or `(?, …, ?)`): the placeholders of an `IN` list whose values are
    /// bound after the statement's first `n`.
    pub(crate) fn list(self, n: usize, len: usize) -> String {
        self.tuples(n, 1, len)
    }

    fn tuples(self, before: usize, rows: usize, columns: usize) -> String {
        let mut text = String::with_capacity(rows * columns * 8);
        for row in 0..rows {
            if row > 0 {
                text.push_str(", ");
            }
            text.push('(');
            for column in 0..columns {
                if column > 0 {
                    text.push_str(", ");
                }
                match self {
                    Placeholders::Numbered => text.push_str(&format!("${}", before + row * columns + column + 1)),
                    Placeholders::Anonymous => text.push('?'),
                }
            }
            text.push(')');
        }
        text
    }
}

pub(crate) type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A row to insert, whose serialised field names are its table's columns.
pub(crate) trait Record: serde::Serialize {
    /// The columns, in the order [`bind`](Record::bind) binds them.
    const COLUMNS: &'static str;
    const WIDTH: usize;
    fn bind<'q>(&'q self, query: AnyQuery<'q>) -> AnyQuery<'q>;
}

/// Inserts `records` into `table`, then `tail` (an `ON CONFLICT` clause, or nothing).
///
/// On PostgreSQL the rows go as one JSON array bound to one parameter and unpacked by
/// `json_populate_recordset` into the table's row type: sqlx's `Any` driver cannot bind arrays,
/// and a multi-row `VALUES` of 30,000 parameters cost more to parse and bind than to execute
/// (2.7 of the 4.3 s a rebuild of 1M events spent inserting pieces). On SQLite, multi-row
/// `VALUES` with anonymous parameters, chunked under [`MAX_BINDS`].
pub(crate) async fn insert<R: Record>(
    conn: &mut AnyConnection,
    placeholders: Placeholders,
    table: &str,
    records: &[R],
    tail: &str,
) -> Result<(), ProjectionError> {
    if records.is_empty() {
        return Ok(());
    }
    let columns = R::COLUMNS;
    match placeholders {
        Placeholders::Numbered => {
            let sql = format!(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM json_populate_recordset(NULL::{table}, $1::json) {tail}"
            );
            sqlx::query(&sql).bind(json(&records)?).execute(&mut *conn).await?;
        }
        Placeholders::Anonymous => {
            for chunk in records.chunks(MAX_BINDS / R::WIDTH) {
                let sql = format!(
                    "INSERT INTO {table} ({columns}) VALUES {} {tail}",
                    placeholders.values(chunk.len(), R::WIDTH)
                );
                let mut query = sqlx::query(&sql).persistent(false);
                for record in chunk {
                    query = record.bind(query);
                }
                query.execute(&mut *conn).await?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Placeholders;

    #[test]
    fn placeholders_are_numbered_across_rows_or_anonymous() {
        assert_eq!(Placeholders::Numbered.values(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(Placeholders::Numbered.list(0, 3), "($1, $2, $3)");
        assert_eq!(Placeholders::Numbered.list(3, 2), "($4, $5)");
        assert_eq!(Placeholders::Anonymous.values(2, 2), "(?, ?), (?, ?)");
        assert_eq!(Placeholders::Anonymous.list(3, 2), "(?, ?)");
    }
}

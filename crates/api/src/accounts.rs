//! Accounts: candidates (one per pre-registration, the *code utilisateur* is the login) and
//! exam-office staff; their passwords (argon2id), failed-login throttling, single-use password
//! reset links and server-side web sessions.
//!
//! These are mutable records kept beside the event log, not in it: identity and credentials must
//! be erasable without breaking the hash chain (see ARCHITECTURE.md). Secrets given to a browser
//! (session cookies, reset links) are random 256-bit tokens of which only the SHA-256 is stored.

use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use cachet_domain::event::StaffRole;
use cachet_projections::db::ReadDb;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

use crate::error::ApiError;

/// The shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// The longest password accepted (argon2 would take any, but a bound keeps requests small).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Failed logins allowed per account and per client address within [`THROTTLE_WINDOW_MINUTES`].
pub const MAX_FAILURES: i64 = 5;
pub const THROTTLE_WINDOW_MINUTES: i64 = 15;
/// How long a password reset link stays valid.
pub const RESET_VALID_MINUTES: i64 = 60;
/// How long a web session lives without being renewed by a login.
pub const SESSION_HOURS: i64 = 8;

fn db_error(context: &'static str) -> impl Fn(sqlx::Error) -> ApiError {
    move |e| ApiError::internal(context, e)
}

/// A fresh random token, 32 bytes as 64 hexadecimal characters.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("draw a random token", e))?;
    Ok(hex::encode(bytes))
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------------

/// Checks a new password against the policy; the French message names the rule.
pub fn check_new_password(password: &str, confirmation: &str) -> Result<(), String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(format!("Le mot de passe doit contenir au moins {MIN_PASSWORD_CHARS} caractères."));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(format!("Le mot de passe ne peut pas dépasser {MAX_PASSWORD_CHARS} caractères."));
    }
    if password != confirmation {
        return Err("Les deux mots de passe saisis ne sont pas identiques.".to_owned());
    }
    Ok(())
}

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes), off the async
/// threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0_u8; 16];
        getrandom::fill(&mut salt).map_err(|e| ApiError::internal("draw a salt", e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| ApiError::internal("encode a salt", e))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| ApiError::internal("hash a password", e))
    })
    .await
    .map_err(|e| ApiError::internal("hash a password", e))?
}

/// A hash of no password, verified against when the account does not exist, so that an unknown
/// code utilisateur costs the same time as a wrong password.
const DECOY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$Y2FjaGV0LWRlY295LXNhbHQ$TBBPBSAD6lEXHgTRbQvsbe9Bt/uFEp8adMWF7ZCAsF4";

/// Checks a password against a stored hash, or against a decoy when there is none.
pub async fn verify_password(hash: Option<String>, password: String) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DECOY_HASH.to_owned());
    let matched = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .unwrap_or(false);
    known && matched
}

// ---------------------------------------------------------------------------------------------
// Candidates
// ---------------------------------------------------------------------------------------------

/// Who the candidate is, as declared at pre-registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub last_name: String,
    pub first_name: String,
    pub birth_date: NaiveDate,
    pub address: String,
    pub email: String,
    pub phone: String,
    /// The session's questions (by code) and the answers.
    pub answers: BTreeMap<String, String>,
}

impl Identity {
    /// « Prénom NOM ».
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name.to_uppercase())
    }
}

#[derive(Clone, Debug)]
pub struct CandidateAccount {
    pub user_code: String,
    pub candidate_id: Uuid,
    pub dossier_id: Uuid,
    pub session_id: Uuid,
    pub identity: Identity,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The key a name is searched by: lower-cased, accents removed, so « Élodie » is found by
/// « elo ». Kept beside the name in `candidate_accounts`, indexed per session.
pub fn name_key(name: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    name.trim().nfd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// The range of keys that start with `prefix`, as `(from, to)` with `from <= key < to` in byte
/// order: no character sorts after `char::MAX`.
pub fn prefix_range(prefix: &str) -> (String, String) {
    let from = name_key(prefix);
    let to = format!("{from}{}", char::MAX);
    (from, to)
}

/// Fills the search keys of accounts created before they existed (migration 0004). Cheap when
/// there are none; safe to run at every start and from several processes.
pub async fn backfill_name_keys(db: &ReadDb) -> Result<u64, ApiError> {
    let rows = sqlx::query(
        "SELECT user_code, last_name, first_name FROM candidate_accounts \
         WHERE last_name_key IS NULL OR first_name_key IS NULL",
    )
    .fetch_all(&db.pool)
    .await
    .map_err(db_error("read the accounts to index"))?;
    let mut filled = 0;
    for row in rows {
        let text = |column: &str| -> Result<String, ApiError> {
            row.try_get(column).map_err(|e| ApiError::internal("read the accounts to index", e.to_string()))
        };
        let (code, last, first) = (text("user_code")?, text("last_name")?, text("first_name")?);
        sqlx::query("UPDATE candidate_accounts SET last_name_key = $1, first_name_key = $2 WHERE user_code = $3")
            .bind(name_key(&last))
            .bind(name_key(&first))
            .bind(code)
            .execute(&db.pool)
            .await
            .map_err(db_error("index a candidate's name"))?;
        filled += 1;
    }
    Ok(filled)
}

const CANDIDATE_COLUMNS: &str = "user_code, candidate_id, dossier_id, session_id, last_name, first_name, birth_date, \
     address, email, phone, answers, password_hash, created_at_us";

fn candidate_from_row(row: &sqlx::any::AnyRow) -> Result<CandidateAccount, ApiError> {
    let corrupt = |e: &dyn std::fmt::Display| ApiError::internal("read a candidate account", e.to_string());
    let uuid = |column: &str| -> Result<Uuid, ApiError> {
        let text: String = row.try_get(column).map_err(|e| corrupt(&e))?;
        Uuid::parse_str(&text).map_err(|e| corrupt(&e))
    };
    let text = |column: &str| -> Result<String, ApiError> { row.try_get(column).map_err(|e| corrupt(&e)) };
    Ok(CandidateAccount {
        user_code: text("user_code")?,
        candidate_id: uuid("candidate_id")?,
        dossier_id: uuid("dossier_id")?,
        session_id: uuid("session_id")?,
        identity: Identity {
            last_name: text("last_name")?,
            first_name: text("first_name")?,
            birth_date: NaiveDate::parse_from_str(&text("birth_date")?, "%Y-%m-%d").map_err(|e| corrupt(&e))?,
            address: text("address")?,
            email: text("email")?,
            phone: text("phone")?,
            answers: serde_json::from_str(&text("answers")?).map_err(|e| corrupt(&e))?,
        },
        password_hash: text("password_hash")?,
        created_at: DateTime::from_timestamp_micros(row.try_get("created_at_us").map_err(|e| corrupt(&e))?)
            .unwrap_or_default(),
    })
}

/// Records a candidate account; a second call for the same code utilisateur (a retried
/// pre-registration) keeps the first. Returns whether this call created it.
pub async fn create_candidate(db: &ReadDb, account: &CandidateAccount) -> Result<bool, ApiError> {
    let answers = serde_json::to_string(&account.identity.answers).map_err(|e| ApiError::internal("encode", e))?;
    let done = sqlx::query(&format!(
        "INSERT INTO candidate_accounts ({CANDIDATE_COLUMNS}, last_name_key, first_name_key) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING"
    ))
    .bind(&account.user_code)
    .bind(account.candidate_id.to_string())
    .bind(account.dossier_id.to_string())
    .bind(account.session_id.to_string())
    .bind(&account.identity.last_name)
    .bind(&account.identity.first_name)
    .bind(account.identity.birth_date.format("%Y-%m-%d").to_string())
    .bind(&account.identity.address)
    .bind(&account.identity.email)
    .bind(&account.identity.phone)
    .bind(answers)
    .bind(&account.password_hash)
    .bind(account.created_at.timestamp_micros())
    .bind(name_key(&account.identity.last_name))
    .bind(name_key(&account.identity.first_name))
    .execute(&db.pool)
    .await
    .map_err(db_error("create a candidate account"))?;
    Ok(done.rows_affected() == 1)
}

pub async fn candidate_by_code(db: &ReadDb, user_code: &str) -> Result<Option<CandidateAccount>, ApiError> {
    let row = sqlx::query(&format!("SELECT {CANDIDATE_COLUMNS} FROM candidate_accounts WHERE user_code = $1"))
        .bind(user_code)
        .fetch_optional(&db.pool)
        .await
        .map_err(db_error("read a candidate account"))?;
    row.as_ref().map(candidate_from_row).transpose()
}

pub async fn candidate_by_dossier(db: &ReadDb, dossier_id: Uuid) -> Result<Option<CandidateAccount>, ApiError> {
    let row = sqlx::query(&format!("SELECT {CANDIDATE_COLUMNS} FROM candidate_accounts WHERE dossier_id = $1"))
        .bind(dossier_id.to_string())
        .fetch_optional(&db.pool)
        .await
        .map_err(db_error("read a candidate account"))?;
    row.as_ref().map(candidate_from_row).transpose()
}

pub async fn set_candidate_password(db: &ReadDb, user_code: &str, hash: &str) -> Result<(), ApiError> {
    sqlx::query("UPDATE candidate_accounts SET password_hash = $1 WHERE user_code = $2")
        .bind(hash)
        .bind(user_code)
        .execute(&db.pool)
        .await
        .map_err(db_error("change a password"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct StaffAccount {
    pub account: String,
    pub role: StaffRole,
    pub display_name: String,
    pub password_hash: String,
}

pub fn role_code(role: StaffRole) -> &'static str {
    match role {
        StaffRole::Staff => "staff",
        StaffRole::Auditor => "auditor",
        StaffRole::Admin => "admin",
    }
}

pub fn role_from_code(code: &str) -> Option<StaffRole> {
    match code {
        "staff" => Some(StaffRole::Staff),
        "auditor" => Some(StaffRole::Auditor),
        "admin" => Some(StaffRole::Admin),
        _ => None,
    }
}

/// Checks an account name: letters, digits and `.-_@`, at most 64 characters.
pub fn check_account_name(account: &str) -> Result<(), String> {
    if account.is_empty()
        || account.len() > 64
        || !account.chars().all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c))
    {
        return Err("Le nom de compte ne peut contenir que des lettres, des chiffres et les signes . - _ @ \
                    (64 caractères au plus)."
            .to_owned());
    }
    Ok(())
}

/// Creates a staff account, or replaces its role, name and password when it exists.
pub async fn upsert_staff(db: &ReadDb, account: &StaffAccount, now: DateTime<Utc>) -> Result<(), ApiError> {
    sqlx::query(
        "INSERT INTO staff_accounts (account, role, display_name, password_hash, created_at_us) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (account) DO UPDATE SET role = excluded.role, display_name = excluded.display_name, \
         password_hash = excluded.password_hash",
    )
    .bind(&account.account)
    .bind(role_code(account.role))
    .bind(&account.display_name)
    .bind(&account.password_hash)
    .bind(now.timestamp_micros())
    .execute(&db.pool)
    .await
    .map_err(db_error("create a staff account"))?;
    Ok(())
}

pub async fn staff_by_account(db: &ReadDb, account: &str) -> Result<Option<StaffAccount>, ApiError> {
    let row = sqlx::query("SELECT account, role, display_name, password_hash FROM staff_accounts WHERE account = $1")
        .bind(account)
        .fetch_optional(&db.pool)
        .await
        .map_err(db_error("read a staff account"))?;
    let Some(row) = row else { return Ok(None) };
    let get = |c: &str| -> Result<String, ApiError> { row.try_get(c).map_err(db_error("read a staff account")) };
    let role = get("role")?;
    Ok(Some(StaffAccount {
        account: get("account")?,
        role: role_from_code(&role).ok_or_else(|| ApiError::internal("read a staff account", role))?,
        display_name: get("display_name")?,
        password_hash: get("password_hash")?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Throttling
// ---------------------------------------------------------------------------------------------

/// Minutes until one of the keys may try again, when any is locked out.
pub async fn locked_for(db: &ReadDb, keys: &[String], now: DateTime<Utc>) -> Result<Option<i64>, ApiError> {
    let window = Duration::minutes(THROTTLE_WINDOW_MINUTES).num_microseconds().unwrap_or(i64::MAX);
    let mut wait: Option<i64> = None;
    for key in keys {
        let row = sqlx::query("SELECT failures, window_start_us FROM login_throttle WHERE throttle_key = $1")
            .bind(key)
            .fetch_optional(&db.pool)
            .await
            .map_err(db_error("read the login throttle"))?;
        if let Some(row) = row {
            let failures: i64 = row.try_get("failures").map_err(db_error("read the login throttle"))?;
            let start: i64 = row.try_get("window_start_us").map_err(db_error("read the login throttle"))?;
            let ends = start.saturating_add(window);
            if failures >= MAX_FAILURES && ends > now.timestamp_micros() {
                let minutes = (ends - now.timestamp_micros()).div_euclid(60_000_000) + 1;
                wait = Some(wait.map_or(minutes, |w| w.max(minutes)));
            }
        }
    }
    Ok(wait)
}

/// Counts a failed login against each key; a window that has ended starts again.
pub async fn record_failure(db: &ReadDb, keys: &[String], now: DateTime<Utc>) -> Result<(), ApiError> {
    let now_us = now.timestamp_micros();
    let window_start = now_us - Duration::minutes(THROTTLE_WINDOW_MINUTES).num_microseconds().unwrap_or(0);
    for key in keys {
        sqlx::query(
            "INSERT INTO login_throttle (throttle_key, failures, window_start_us) VALUES ($1, 1, $2) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
             failures = CASE WHEN login_throttle.window_start_us < $3 THEN 1 ELSE login_throttle.failures + 1 END, \
             window_start_us = CASE WHEN login_throttle.window_start_us < $3 THEN $2 ELSE login_throttle.window_start_us END",
        )
        .bind(key)
        .bind(now_us)
        .bind(window_start)
        .execute(&db.pool)
        .await
        .map_err(db_error("count a failed login"))?;
    }
    Ok(())
}

/// Forgets the failures of an account after a successful login (the address keeps its count).
pub async fn clear_failures(db: &ReadDb, key: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .execute(&db.pool)
        .await
        .map_err(db_error("reset the login throttle"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Password resets
// ---------------------------------------------------------------------------------------------

/// Creates a single-use reset link token for an account.
pub async fn create_reset(db: &ReadDb, user_code: &str, now: DateTime<Utc>) -> Result<String, ApiError> {
    let token = new_token()?;
    let expires = now + Duration::minutes(RESET_VALID_MINUTES);
    sqlx::query("INSERT INTO password_resets (token_hash, user_code, expires_at_us) VALUES ($1, $2, $3)")
        .bind(token_hash(&token))
        .bind(user_code)
        .bind(expires.timestamp_micros())
        .execute(&db.pool)
        .await
        .map_err(db_error("create a reset link"))?;
    Ok(token)
}

/// The account a reset token is valid for, without using it.
pub async fn reset_target(db: &ReadDb, token: &str, now: DateTime<Utc>) -> Result<Option<String>, ApiError> {
    let row = sqlx::query(
        "SELECT user_code FROM password_resets WHERE token_hash = $1 AND used_at_us IS NULL AND expires_at_us > $2",
    )
    .bind(token_hash(token))
    .bind(now.timestamp_micros())
    .fetch_optional(&db.pool)
    .await
    .map_err(db_error("read a reset link"))?;
    row.map(|r| r.try_get::<String, _>("user_code")).transpose().map_err(db_error("read a reset link"))
}

/// Uses a reset token: true once, for a valid and unused token; false ever after. Every other
/// link of the same account is spent with it.
pub async fn consume_reset(db: &ReadDb, token: &str, now: DateTime<Utc>) -> Result<bool, ApiError> {
    let user_code = reset_target(db, token, now).await?;
    let done = sqlx::query(
        "UPDATE password_resets SET used_at_us = $1 \
         WHERE token_hash = $2 AND used_at_us IS NULL AND expires_at_us > $1",
    )
    .bind(now.timestamp_micros())
    .bind(token_hash(token))
    .execute(&db.pool)
    .await
    .map_err(db_error("use a reset link"))?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    if let Some(user_code) = user_code {
        sqlx::query("UPDATE password_resets SET used_at_us = $1 WHERE user_code = $2 AND used_at_us IS NULL")
            .bind(now.timestamp_micros())
            .bind(user_code)
            .execute(&db.pool)
            .await
            .map_err(db_error("spend the other reset links"))?;
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Web sessions
// ---------------------------------------------------------------------------------------------

/// Who a web session belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionUser {
    Anonymous,
    Candidate { user_code: String },
    Staff { account: String },
}

#[derive(Clone, Debug)]
pub struct WebSession {
    /// The cookie's value; only its hash is stored.
    pub token: String,
    pub csrf_token: String,
    pub user: SessionUser,
}

/// Opens a new session (a login rotates the token: the old session is deleted by the caller).
pub async fn open_session(db: &ReadDb, user: SessionUser, now: DateTime<Utc>) -> Result<WebSession, ApiError> {
    let token = new_token()?;
    let csrf_token = new_token()?;
    let (candidate, staff) = match &user {
        SessionUser::Anonymous => (None, None),
        SessionUser::Candidate { user_code } => (Some(user_code.clone()), None),
        SessionUser::Staff { account } => (None, Some(account.clone())),
    };
    sqlx::query(
        "INSERT INTO web_sessions (token_hash, csrf_token, candidate_user_code, staff_account, created_at_us, expires_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_hash(&token))
    .bind(&csrf_token)
    .bind(candidate)
    .bind(staff)
    .bind(now.timestamp_micros())
    .bind((now + Duration::hours(SESSION_HOURS)).timestamp_micros())
    .execute(&db.pool)
    .await
    .map_err(db_error("open a web session"))?;
    Ok(WebSession { token, csrf_token, user })
}

/// The live session of a cookie token.
pub async fn find_session(db: &ReadDb, token: &str, now: DateTime<Utc>) -> Result<Option<WebSession>, ApiError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT csrf_token, candidate_user_code, staff_account FROM web_sessions \
         WHERE token_hash = $1 AND expires_at_us > $2",
    )
    .bind(token_hash(token))
    .bind(now.timestamp_micros())
    .fetch_optional(&db.pool)
    .await
    .map_err(db_error("read a web session"))?;
    let Some(row) = row else { return Ok(None) };
    let read = db_error("read a web session");
    let candidate: Option<String> = row.try_get("candidate_user_code").map_err(&read)?;
    let staff: Option<String> = row.try_get("staff_account").map_err(&read)?;
    let user = match (candidate, staff) {
        (Some(user_code), _) => SessionUser::Candidate { user_code },
        (None, Some(account)) => SessionUser::Staff { account },
        (None, None) => SessionUser::Anonymous,
    };
    Ok(Some(WebSession { token: token.to_owned(), csrf_token: row.try_get("csrf_token").map_err(&read)?, user }))
}

/// Ends a session, and sweeps the expired ones.
pub async fn close_session(db: &ReadDb, token: &str, now: DateTime<Utc>) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM web_sessions WHERE token_hash = $1 OR expires_at_us <= $2")
        .bind(token_hash(token))
        .bind(now.timestamp_micros())
        .execute(&db.pool)
        .await
        .map_err(db_error("close a web session"))?;
    Ok(())
}

/// How many rows [`sweep`] removed, by table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub sessions: u64,
    pub resets: u64,
    pub throttles: u64,
}

/// Deletes what no longer serves: expired web sessions, reset links past their validity (used or
/// not), and failed-login counters whose window has closed. Run every few minutes by the
/// service; nothing a person could still use is touched.
pub async fn sweep(db: &ReadDb, now: DateTime<Utc>) -> Result<Swept, ApiError> {
    let now_us = now.timestamp_micros();
    let window = Duration::minutes(THROTTLE_WINDOW_MINUTES).num_microseconds().unwrap_or(i64::MAX);
    let run = |sql: &'static str, bound: i64| async move {
        sqlx::query(sql).bind(bound).execute(&db.pool).await.map(|done| done.rows_affected())
    };
    Ok(Swept {
        sessions: run("DELETE FROM web_sessions WHERE expires_at_us <= $1", now_us)
            .await
            .map_err(db_error("sweep the web sessions"))?,
        resets: run("DELETE FROM password_resets WHERE expires_at_us <= $1", now_us)
            .await
            .map_err(db_error("sweep the reset links"))?,
        throttles: run("DELETE FROM login_throttle WHERE window_start_us <= $1", now_us.saturating_sub(window))
            .await
            .map_err(db_error("sweep the login counters"))?,
    })
}

/// Ends every session of a candidate (after a password reset).
pub async fn close_candidate_sessions(db: &ReadDb, user_code: &str) -> Result<(), ApiError> {
    sqlx::query("DELETE FROM web_sessions WHERE candidate_user_code = $1")
        .bind(user_code)
        .execute(&db.pool)
        .await
        .map_err(db_error("close web sessions"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_policy_names_the_rule_broken() {
        assert_eq!(
            check_new_password("court", "court"),
            Err("Le mot de passe doit contenir au moins 10 caractères.".to_owned())
        );
        assert_eq!(
            check_new_password("assez long mot", "autre chose"),
            Err("Les deux mots de passe saisis ne sont pas identiques.".to_owned())
        );
        assert_eq!(check_new_password("assez long mot", "assez long mot"), Ok(()));
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password("correct horse battery".to_owned()).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(hash.clone()), "correct horse battery".to_owned()).await);
        assert!(!verify_password(Some(hash), "wrong horse battery".to_owned()).await);
    }

    #[tokio::test]
    async fn the_decoy_hash_is_well_formed_and_matches_nothing() {
        assert!(PasswordHash::new(DECOY_HASH).is_ok());
        assert!(!verify_password(None, String::new()).await);
        assert!(!verify_password(None, "n'importe quoi".to_owned()).await);
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}

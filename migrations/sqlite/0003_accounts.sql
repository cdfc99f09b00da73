-- Accounts, web sessions and login throttling. These are mutable records, deliberately outside
-- the event log: identity and credentials must be erasable without breaking the hash chain.
-- Every account action the office takes on a dossier is still an event, carrying the account.

-- One candidate account per pre-registration: the code utilisateur is the login.
CREATE TABLE candidate_accounts (
    user_code TEXT PRIMARY KEY,
    candidate_id TEXT NOT NULL,
    dossier_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    address TEXT NOT NULL,
    email TEXT NOT NULL,
    phone TEXT NOT NULL,
    -- The session's questions and their answers, as a JSON object.
    answers TEXT NOT NULL,
    -- argon2id, PHC string.
    password_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE INDEX candidate_accounts_candidate ON candidate_accounts (candidate_id);

-- Staff, auditors and admins of the exam office.
CREATE TABLE staff_accounts (
    account TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('staff', 'auditor', 'admin')),
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);

-- Server-side web sessions. Only the SHA-256 of the cookie's token is kept.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    csrf_token TEXT NOT NULL,
    candidate_user_code TEXT,
    staff_account TEXT,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at_us);

-- Failed logins per account and per client address, in a sliding window.
CREATE TABLE login_throttle (
    throttle_key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start_us BIGINT NOT NULL
);

-- Single-use password reset links. Only the SHA-256 of the link's token is kept.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    used_at_us BIGINT
);

-- Signed seals: an Ed25519 signature over the RFC 6962 Merkle root of the event hashes of
-- positions 1..=position. Append-only, like the events they seal.

CREATE TABLE seals (
    position     INTEGER PRIMARY KEY,
    root         BLOB    NOT NULL,
    signature    BLOB    NOT NULL,
    public_key   BLOB    NOT NULL,
    sealed_at_us INTEGER NOT NULL
);

CREATE TRIGGER seals_no_update BEFORE UPDATE ON seals
BEGIN SELECT RAISE(ABORT, 'cachet: seals are append-only (UPDATE refused)'); END;
CREATE TRIGGER seals_no_delete BEFORE DELETE ON seals
BEGIN SELECT RAISE(ABORT, 'cachet: seals are append-only (DELETE refused)'); END;

-- Signed seals: an Ed25519 signature over the RFC 6962 Merkle root of the event hashes of
-- positions 1..=position. Append-only, like the events they seal.

CREATE TABLE seals (
    position     BIGINT PRIMARY KEY,
    root         BYTEA  NOT NULL,
    signature    BYTEA  NOT NULL,
    public_key   BYTEA  NOT NULL,
    sealed_at_us BIGINT NOT NULL
);

CREATE TRIGGER seals_append_only BEFORE UPDATE OR DELETE ON seals
    FOR EACH ROW EXECUTE FUNCTION cachet_append_only();
CREATE TRIGGER seals_no_truncate BEFORE TRUNCATE ON seals
    FOR EACH STATEMENT EXECUTE FUNCTION cachet_append_only();

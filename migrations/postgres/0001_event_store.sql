-- The event store on PostgreSQL: an append-only, hash-chained log of events in one global order.
-- Positions are not taken from a sequence: each append transaction locks the one row of
-- log_head first, so positions are assigned and become visible in commit order, gap-free.
-- Timestamps are microseconds since the Unix epoch (UTC), the exact values that are hashed.

CREATE TABLE events (
    position        BIGINT  PRIMARY KEY,
    event_id        UUID    NOT NULL UNIQUE,
    stream_id       UUID    NOT NULL,
    stream_type     TEXT    NOT NULL,
    stream_version  BIGINT  NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         BYTEA   NOT NULL,   -- canonical JSON bytes, hashed as stored (jsonb would reorder keys)
    metadata        BYTEA   NOT NULL,
    command_id      UUID,
    occurred_at_us  BIGINT  NOT NULL,
    recorded_at_us  BIGINT  NOT NULL,
    prev_hash       BYTEA   NOT NULL,
    hash            BYTEA   NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_type ON events (stream_type, position);

CREATE TABLE streams (
    stream_id   UUID   PRIMARY KEY,
    stream_type TEXT   NOT NULL,
    version     BIGINT NOT NULL
);

CREATE TABLE commands (
    command_id      UUID   PRIMARY KEY,
    stream_id       UUID   NOT NULL,
    stream_version  BIGINT NOT NULL,
    first_position  BIGINT,
    last_position   BIGINT,
    recorded_at_us  BIGINT NOT NULL
);

CREATE TABLE log_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    position  BIGINT  NOT NULL,
    last_hash BYTEA   NOT NULL,
    recorded_at_us BIGINT NOT NULL    -- the last recorded time: never decreases along the log
);
INSERT INTO log_head (id, position, last_hash, recorded_at_us) VALUES (1, 0, decode(repeat('00', 32), 'hex'), 0);

CREATE TABLE checkpoints (
    name     TEXT    PRIMARY KEY,
    position BIGINT  NOT NULL,
    version  BIGINT  NOT NULL          -- the shape of the read model; a new one is rebuilt
);

CREATE FUNCTION cachet_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cachet: % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION cachet_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION cachet_append_only();
CREATE TRIGGER commands_append_only BEFORE UPDATE OR DELETE ON commands
    FOR EACH ROW EXECUTE FUNCTION cachet_append_only();
CREATE TRIGGER commands_no_truncate BEFORE TRUNCATE ON commands
    FOR EACH STATEMENT EXECUTE FUNCTION cachet_append_only();

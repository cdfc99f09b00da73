-- The event store on SQLite: an append-only, hash-chained log of events in one global order.
-- Timestamps are microseconds since the Unix epoch (UTC), the exact values that are hashed.

CREATE TABLE events (
    position        INTEGER PRIMARY KEY,          -- global order, gap-free, starts at 1
    event_id        BLOB    NOT NULL UNIQUE,
    stream_id       BLOB    NOT NULL,
    stream_type     TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,             -- 1, 2, 3… within the stream
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         BLOB    NOT NULL,             -- canonical JSON bytes, hashed as stored
    metadata        BLOB    NOT NULL,             -- canonical JSON: actor, command, correlation
    command_id      BLOB,
    occurred_at_us  INTEGER NOT NULL,             -- when it happened in the world
    recorded_at_us  INTEGER NOT NULL,             -- when the store committed it
    prev_hash       BLOB    NOT NULL,
    hash            BLOB    NOT NULL,
    UNIQUE (stream_id, stream_version)
);

CREATE INDEX events_by_type ON events (stream_type, position);

CREATE TABLE streams (
    stream_id   BLOB    PRIMARY KEY,
    stream_type TEXT    NOT NULL,
    version     INTEGER NOT NULL
);

-- Every command id ever appended, kept forever, so a retried command appends nothing.
CREATE TABLE commands (
    command_id      BLOB    PRIMARY KEY,
    stream_id       BLOB    NOT NULL,
    stream_version  INTEGER NOT NULL,
    first_position  INTEGER,
    last_position   INTEGER,
    recorded_at_us  INTEGER NOT NULL
);

-- The one serialisation point of appends: the last position and hash of the chain.
CREATE TABLE log_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    position  INTEGER NOT NULL,
    last_hash BLOB    NOT NULL,
    recorded_at_us INTEGER NOT NULL   -- the last recorded time: never decreases along the log
);
INSERT INTO log_head (id, position, last_hash, recorded_at_us) VALUES (1, 0, zeroblob(32), 0);

-- Read models record how far they have read, in the same transaction as their rows.
CREATE TABLE checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER  NOT NULL,
    version  INTEGER  NOT NULL          -- the shape of the read model; a new one is rebuilt
);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'cachet: events are append-only (UPDATE refused)'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'cachet: events are append-only (DELETE refused)'); END;
CREATE TRIGGER commands_no_update BEFORE UPDATE ON commands
BEGIN SELECT RAISE(ABORT, 'cachet: commands are append-only (UPDATE refused)'); END;
CREATE TRIGGER commands_no_delete BEFORE DELETE ON commands
BEGIN SELECT RAISE(ABORT, 'cachet: commands are append-only (DELETE refused)'); END;

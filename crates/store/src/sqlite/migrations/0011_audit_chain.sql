-- A tamper-evident audit log (SQLite): a sealed entry carries its place in one chain and the
-- SHA-256 of the previous entry's hash with its own content (see audit_chain.rs).
ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_events ADD COLUMN chain_hash TEXT;
CREATE UNIQUE INDEX audit_events_chain ON audit_events (chain_seq);
CREATE INDEX audit_events_unsealed ON audit_events (recorded, id) WHERE chain_seq IS NULL;
-- The chain's head: the last entry sealed, and the last one archived (and removed).
CREATE TABLE audit_chain (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    seq           BIGINT NOT NULL,
    hash          TEXT NOT NULL,
    archived_seq  BIGINT NOT NULL,
    archived_hash TEXT NOT NULL
);
INSERT INTO audit_chain (id, seq, hash, archived_seq, archived_hash) VALUES (
    1, 0, '0000000000000000000000000000000000000000000000000000000000000000',
    0, '0000000000000000000000000000000000000000000000000000000000000000'
);

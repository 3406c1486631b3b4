-- FHIR resources as received (sqlite): the current version of each, earlier versions in
-- resource_history, and the id sequences of server-assigned ids. Core tables keep the
-- projection of the same writes (residents, encounters, ...), written in the same
-- transaction. A deleted resource keeps its row with json NULL (the tombstone).
CREATE TABLE resources (
    type         TEXT NOT NULL,
    id           INTEGER NOT NULL,
    version_id   INTEGER NOT NULL CHECK (version_id >= 1),
    last_updated TEXT NOT NULL,
    resident_id  INTEGER,
    json         TEXT,
    PRIMARY KEY (type, id)
);
CREATE INDEX resources_resident ON resources (resident_id);
CREATE INDEX resources_updated ON resources (type, last_updated);

CREATE TABLE resource_history (
    type         TEXT NOT NULL,
    id           INTEGER NOT NULL,
    version_id   INTEGER NOT NULL CHECK (version_id >= 1),
    last_updated TEXT NOT NULL,
    resident_id  INTEGER,
    json         TEXT,
    PRIMARY KEY (type, id, version_id)
);

CREATE TABLE id_sequences (
    name    TEXT PRIMARY KEY,
    next_id INTEGER NOT NULL
);

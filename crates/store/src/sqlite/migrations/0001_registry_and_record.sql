-- Registry and health-record core (SQLite). Keys are assigned by the writer.
-- Every resident-owned table carries resident_id, the future distribution key.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organisations (
    id            INTEGER PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    name_zh       TEXT NOT NULL,
    name_en       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    level         INTEGER,
    parent_id     INTEGER REFERENCES organisations (id),
    district_code TEXT NOT NULL,
    beds          INTEGER NOT NULL DEFAULT 0 CHECK (beds >= 0)
);
CREATE INDEX organisations_parent ON organisations (parent_id);

CREATE TABLE practitioners (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    org_id        INTEGER NOT NULL REFERENCES organisations (id),
    district_code TEXT NOT NULL
);
CREATE INDEX practitioners_org ON practitioners (org_id);

CREATE TABLE households (
    id            INTEGER PRIMARY KEY,
    district_code TEXT NOT NULL,
    street_org_id INTEGER NOT NULL REFERENCES organisations (id),
    address       TEXT NOT NULL
);

CREATE TABLE residents (
    id              INTEGER PRIMARY KEY,
    district_code   TEXT NOT NULL,
    identity_number TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    sex             TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date      TEXT NOT NULL,
    street_org_id   INTEGER NOT NULL REFERENCES organisations (id),
    household_id    INTEGER NOT NULL REFERENCES households (id),
    phone           TEXT NOT NULL,
    registered      INTEGER NOT NULL
);
CREATE INDEX residents_street ON residents (street_org_id);

CREATE TABLE contracts (
    id                   INTEGER PRIMARY KEY,
    resident_id          INTEGER NOT NULL REFERENCES residents (id),
    centre_org_id        INTEGER NOT NULL REFERENCES organisations (id),
    doctor_id            INTEGER NOT NULL REFERENCES practitioners (id),
    district_hospital_id INTEGER NOT NULL REFERENCES organisations (id),
    city_hospital_id     INTEGER NOT NULL REFERENCES organisations (id),
    start_date           TEXT NOT NULL,
    end_date             TEXT NOT NULL,
    status               TEXT NOT NULL,
    CHECK (end_date >= start_date)
);
CREATE INDEX contracts_resident ON contracts (resident_id);

CREATE TABLE encounters (
    id              INTEGER PRIMARY KEY,
    resident_id     INTEGER NOT NULL REFERENCES residents (id),
    kind            TEXT NOT NULL,
    programme       TEXT,
    org_id          INTEGER NOT NULL REFERENCES organisations (id),
    practitioner_id INTEGER REFERENCES practitioners (id),
    start_time      TEXT NOT NULL
);
CREATE INDEX encounters_resident ON encounters (resident_id);

CREATE TABLE conditions (
    id          INTEGER PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    icd10       TEXT NOT NULL,
    category    TEXT,
    onset       TEXT NOT NULL,
    org_id      INTEGER NOT NULL REFERENCES organisations (id)
);
CREATE INDEX conditions_resident ON conditions (resident_id);

CREATE TABLE observations (
    id           INTEGER PRIMARY KEY,
    resident_id  INTEGER NOT NULL REFERENCES residents (id),
    encounter_id INTEGER REFERENCES encounters (id),
    code         TEXT NOT NULL,
    value        REAL NOT NULL,
    unit         TEXT NOT NULL,
    effective    TEXT NOT NULL
);
CREATE INDEX observations_resident ON observations (resident_id);

CREATE TABLE immunizations (
    id          INTEGER PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    vaccine     TEXT NOT NULL,
    dose_number INTEGER NOT NULL CHECK (dose_number >= 1),
    date        TEXT NOT NULL,
    org_id      INTEGER NOT NULL REFERENCES organisations (id)
);
CREATE INDEX immunizations_resident ON immunizations (resident_id);

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    org_id          INTEGER REFERENCES organisations (id),
    practitioner_id INTEGER REFERENCES practitioners (id),
    resident_id     INTEGER REFERENCES residents (id)
);

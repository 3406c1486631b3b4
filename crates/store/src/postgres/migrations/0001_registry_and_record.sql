-- Registry and health-record core (PostgreSQL). Keys are assigned by the writer.
-- Every resident-owned table carries resident_id, the future distribution key.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organisations (
    id            BIGINT PRIMARY KEY,
    code          TEXT NOT NULL UNIQUE,
    name_zh       TEXT NOT NULL,
    name_en       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    level         BIGINT,
    parent_id     BIGINT REFERENCES organisations (id),
    district_code TEXT NOT NULL,
    beds          BIGINT NOT NULL DEFAULT 0 CHECK (beds >= 0)
);
CREATE INDEX organisations_parent ON organisations (parent_id);

CREATE TABLE practitioners (
    id            BIGINT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    org_id        BIGINT NOT NULL REFERENCES organisations (id),
    district_code TEXT NOT NULL
);
CREATE INDEX practitioners_org ON practitioners (org_id);

CREATE TABLE households (
    id            BIGINT PRIMARY KEY,
    district_code TEXT NOT NULL,
    street_org_id BIGINT NOT NULL REFERENCES organisations (id),
    address       TEXT NOT NULL
);

CREATE TABLE residents (
    id              BIGINT PRIMARY KEY,
    district_code   TEXT NOT NULL,
    identity_number TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    sex             TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    birth_date      DATE NOT NULL,
    street_org_id   BIGINT NOT NULL REFERENCES organisations (id),
    household_id    BIGINT NOT NULL REFERENCES households (id),
    phone           TEXT NOT NULL,
    registered      BOOLEAN NOT NULL
);
CREATE INDEX residents_street ON residents (street_org_id);

CREATE TABLE contracts (
    id                   BIGINT PRIMARY KEY,
    resident_id          BIGINT NOT NULL REFERENCES residents (id),
    centre_org_id        BIGINT NOT NULL REFERENCES organisations (id),
    doctor_id            BIGINT NOT NULL REFERENCES practitioners (id),
    district_hospital_id BIGINT NOT NULL REFERENCES organisations (id),
    city_hospital_id     BIGINT NOT NULL REFERENCES organisations (id),
    start_date           DATE NOT NULL,
    end_date             DATE NOT NULL,
    status               TEXT NOT NULL,
    CHECK (end_date >= start_date)
);
CREATE INDEX contracts_resident ON contracts (resident_id);

CREATE TABLE encounters (
    id              BIGINT PRIMARY KEY,
    resident_id     BIGINT NOT NULL REFERENCES residents (id),
    kind            TEXT NOT NULL,
    programme       TEXT,
    org_id          BIGINT NOT NULL REFERENCES organisations (id),
    practitioner_id BIGINT REFERENCES practitioners (id),
    start_time      TIMESTAMP NOT NULL
);
CREATE INDEX encounters_resident ON encounters (resident_id);

CREATE TABLE conditions (
    id          BIGINT PRIMARY KEY,
    resident_id BIGINT NOT NULL REFERENCES residents (id),
    icd10       TEXT NOT NULL,
    category    TEXT,
    onset       DATE NOT NULL,
    org_id      BIGINT NOT NULL REFERENCES organisations (id)
);
CREATE INDEX conditions_resident ON conditions (resident_id);

CREATE TABLE observations (
    id           BIGINT PRIMARY KEY,
    resident_id  BIGINT NOT NULL REFERENCES residents (id),
    encounter_id BIGINT REFERENCES encounters (id),
    code         TEXT NOT NULL,
    value        DOUBLE PRECISION NOT NULL,
    unit         TEXT NOT NULL,
    effective    TIMESTAMP NOT NULL
);
CREATE INDEX observations_resident ON observations (resident_id);

CREATE TABLE immunizations (
    id          BIGINT PRIMARY KEY,
    resident_id BIGINT NOT NULL REFERENCES residents (id),
    vaccine     TEXT NOT NULL,
    dose_number BIGINT NOT NULL CHECK (dose_number >= 1),
    date        DATE NOT NULL,
    org_id      BIGINT NOT NULL REFERENCES organisations (id)
);
CREATE INDEX immunizations_resident ON immunizations (resident_id);

CREATE TABLE users (
    id              BIGINT PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    org_id          BIGINT REFERENCES organisations (id),
    practitioner_id BIGINT REFERENCES practitioners (id),
    resident_id     BIGINT REFERENCES residents (id)
);

-- Two-way referral (双向转诊): the request (FHIR ServiceRequest) with its task status,
-- and each step of the task (who moved it, when, why). Result recognition (互联互通互认):
-- the external quality assessments institutions passed, and test orders with the
-- recognised result they were checked against and the exception reason, if any.
CREATE TABLE referrals (
    id             INTEGER PRIMARY KEY,
    resident_id    INTEGER NOT NULL REFERENCES residents (id),
    direction      TEXT NOT NULL CHECK (direction IN ('up', 'down')),
    from_org       INTEGER NOT NULL REFERENCES organisations (id),
    to_org         INTEGER NOT NULL REFERENCES organisations (id),
    requester      TEXT NOT NULL,
    reason         TEXT NOT NULL,
    priority       TEXT NOT NULL,
    diagnosis      TEXT,
    appointment_id INTEGER REFERENCES appointments (id),
    summary        TEXT,
    follow_up      DATE,
    status         TEXT NOT NULL,
    created        TIMESTAMP NOT NULL,
    updated        TIMESTAMP NOT NULL
);
CREATE INDEX referrals_to ON referrals (to_org, status);
CREATE INDEX referrals_from ON referrals (from_org, status);
CREATE INDEX referrals_resident ON referrals (resident_id);
CREATE TABLE referral_steps (
    referral_id INTEGER NOT NULL REFERENCES referrals (id),
    seq         INTEGER NOT NULL,
    status      TEXT NOT NULL,
    at          TIMESTAMP NOT NULL,
    by_user     TEXT NOT NULL,
    reason      TEXT,
    PRIMARY KEY (referral_id, seq)
);
CREATE TABLE quality_assessments (
    org_id     INTEGER NOT NULL REFERENCES organisations (id),
    category   TEXT NOT NULL,
    valid_from DATE NOT NULL,
    -- The day after the last day the assessment covers.
    valid_until DATE NOT NULL,
    passed     INTEGER NOT NULL CHECK (passed IN (0, 1)),
    PRIMARY KEY (org_id, category, valid_from)
);
CREATE TABLE test_orders (
    id                 INTEGER PRIMARY KEY,
    resident_id        INTEGER NOT NULL REFERENCES residents (id),
    code               TEXT NOT NULL,
    org_id             INTEGER NOT NULL REFERENCES organisations (id),
    ordered_by         TEXT NOT NULL,
    at                 TIMESTAMP NOT NULL,
    standing_result_id INTEGER REFERENCES observations (id),
    outcome            TEXT NOT NULL CHECK (outcome IN ('ordered', 'recognised')),
    exception          TEXT,
    note               TEXT
);
CREATE INDEX test_orders_resident ON test_orders (resident_id);
CREATE INDEX test_orders_at ON test_orders (at);

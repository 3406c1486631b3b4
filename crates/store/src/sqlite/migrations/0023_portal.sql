-- The resident portal. Guardians (监护人) of minors, from the registry's household
-- relations: who may see and act for a child (relation: HL7 v3 RoleCode, MTH, FTH,
-- GUARD). consent_at: when a child of 14 to 17 consented to this guardian seeing their
-- record (NULL: never, or withdrawn). Rows of a resident removed later are not read
-- (every read joins residents).
CREATE TABLE guardians (
    child_id    INTEGER NOT NULL,
    guardian_id INTEGER NOT NULL,
    relation    TEXT NOT NULL,
    consent_at  TEXT,
    PRIMARY KEY (child_id, guardian_id)
);
CREATE INDEX guardians_guardian ON guardians (guardian_id);

-- Satisfaction surveys after a completed visit: one per appointment, each item 1 to 5,
-- an optional comment; counted per institution per quarter on the scorecard.
CREATE TABLE surveys (
    appointment_id INTEGER PRIMARY KEY,
    resident_id    INTEGER NOT NULL,
    org_id         INTEGER NOT NULL,
    answered_at    TEXT NOT NULL,
    visit_at     TEXT NOT NULL,
    items          TEXT NOT NULL,
    satisfied      INTEGER NOT NULL,
    answers        INTEGER NOT NULL,
    comment        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX surveys_org ON surveys (org_id, visit_at);

-- A resident's request to sign or renew a family-doctor contract, waiting on the
-- centre's workbench until a doctor signs (done_at, done_by).
CREATE TABLE contract_asks (
    id            INTEGER PRIMARY KEY,
    resident_id   INTEGER NOT NULL,
    centre_org_id INTEGER NOT NULL,
    renew         INTEGER NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    asked_at      TEXT NOT NULL,
    done_at       TEXT,
    done_by       TEXT
);
CREATE INDEX contract_asks_centre ON contract_asks (centre_org_id, done_at);
CREATE INDEX contract_asks_resident ON contract_asks (resident_id);

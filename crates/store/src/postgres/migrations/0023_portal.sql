-- The resident portal. Guardians (监护人) of minors, from the registry's household
-- relations: who may see and act for a child (relation: HL7 v3 RoleCode, MTH, FTH,
-- GUARD). consent_at: when a child of 14 to 17 consented to this guardian seeing their
-- record (NULL: never, or withdrawn). Rows of a resident removed later are not read
-- (every read joins residents).
CREATE TABLE guardians (
    child_id    BIGINT NOT NULL,
    guardian_id BIGINT NOT NULL,
    relation    TEXT NOT NULL,
    consent_at  TIMESTAMP,
    PRIMARY KEY (child_id, guardian_id)
);
CREATE INDEX guardians_guardian ON guardians (guardian_id);

-- Satisfaction surveys after a completed visit: one per appointment, each item 1 to 5,
-- an optional comment; counted per institution per quarter on the scorecard.
CREATE TABLE surveys (
    appointment_id BIGINT PRIMARY KEY,
    resident_id    BIGINT NOT NULL,
    org_id         BIGINT NOT NULL,
    answered_at    TIMESTAMP NOT NULL,
    visit_at     TIMESTAMP NOT NULL,
    items          TEXT NOT NULL,
    satisfied      BIGINT NOT NULL,
    answers        BIGINT NOT NULL,
    comment        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX surveys_org ON surveys (org_id, visit_at);

-- A resident's request to sign or renew a family-doctor contract, waiting on the
-- centre's workbench until a doctor signs (done_at, done_by).
CREATE TABLE contract_asks (
    id            BIGINT PRIMARY KEY,
    resident_id   BIGINT NOT NULL,
    centre_org_id BIGINT NOT NULL,
    renew         BIGINT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    asked_at      TIMESTAMP NOT NULL,
    done_at       TIMESTAMP,
    done_by       TEXT
);
CREATE INDEX contract_asks_centre ON contract_asks (centre_org_id, done_at);
CREATE INDEX contract_asks_resident ON contract_asks (resident_id);

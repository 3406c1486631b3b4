-- Audit log (PostgreSQL): who read or wrote which resident's data, and failed logins.
-- No foreign keys: an attempt on a record that does not exist is audited too.
CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    recorded    TIMESTAMP NOT NULL,
    username    TEXT NOT NULL,
    role        TEXT NOT NULL,
    org_id      BIGINT,
    resident_id BIGINT,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_events_resident ON audit_events (resident_id);
CREATE INDEX audit_events_recorded ON audit_events (recorded);

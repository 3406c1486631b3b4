-- Emergency access ("break the glass"): who opened which resident's record outside
-- their scope, why, and until when. No foreign key on the account: the grant outlives it.
CREATE TABLE emergency_access (
    id          TEXT PRIMARY KEY,
    username    TEXT NOT NULL,
    role        TEXT NOT NULL,
    org_id      INTEGER,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    reason      TEXT NOT NULL,
    granted     TEXT NOT NULL,
    expires     TEXT NOT NULL
);
CREATE INDEX emergency_access_resident ON emergency_access (resident_id, expires);
CREATE INDEX emergency_access_granted ON emergency_access (granted);

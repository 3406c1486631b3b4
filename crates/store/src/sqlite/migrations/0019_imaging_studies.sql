-- Imaging examinations (影像检查) from any institution: the study (procedure code,
-- DICOM modality and Study Instance UID), the institution that made it (its
-- encounter's) and the report's findings. The recognition check reads a resident's
-- studies of one procedure, newest first.
CREATE TABLE imaging_studies (
    id           INTEGER PRIMARY KEY,
    resident_id  INTEGER NOT NULL REFERENCES residents (id),
    encounter_id INTEGER NOT NULL REFERENCES encounters (id),
    org_id       INTEGER NOT NULL REFERENCES organisations (id),
    code         TEXT NOT NULL,
    modality     TEXT NOT NULL,
    started      TEXT NOT NULL,
    uid          TEXT NOT NULL,
    findings     TEXT NOT NULL
);
CREATE INDEX imaging_studies_resident ON imaging_studies (resident_id, code, started);
CREATE INDEX imaging_studies_encounter ON imaging_studies (encounter_id);

-- An order of an imaging examination meets a standing study, not a laboratory result.
ALTER TABLE test_orders ADD COLUMN standing_study_id INTEGER REFERENCES imaging_studies (id);

-- A Study Instance UID names one study the world over (DICOM PS3.5 §9): a second
-- study under a UID already held is refused, and a study is found by its UID.
CREATE UNIQUE INDEX imaging_studies_uid ON imaging_studies (uid);

-- An appointment's version: 1 when booked, one more for every step of its life cycle
-- (the FHIR API's versionId and ETag, so If-Match can refuse a stale update).
ALTER TABLE appointments ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

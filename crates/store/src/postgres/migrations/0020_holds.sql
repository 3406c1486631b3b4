-- A hold (FHIR Appointment/$hold): a pending appointment that keeps its place until
-- hold_until, when its booking follows ($book) or the minute round lets the place go.
-- A place offered from the waitlist is pending too; its limit is the waitlist entry's.
ALTER TABLE appointments ADD COLUMN hold_until TIMESTAMP;
CREATE INDEX appointments_holds ON appointments (hold_until) WHERE hold_until IS NOT NULL;

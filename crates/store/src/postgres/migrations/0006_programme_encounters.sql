-- Programme follow-ups of a range of residents, without visiting every outpatient visit:
-- the due lists read these and not the rest.
CREATE INDEX encounters_programme ON encounters (resident_id) WHERE programme IS NOT NULL;

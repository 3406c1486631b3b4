-- Observations by the encounter they were taken in: deleting an encounter checks that
-- no observation still refers to it, which without this index reads every observation.
CREATE INDEX observations_encounter ON observations (encounter_id);

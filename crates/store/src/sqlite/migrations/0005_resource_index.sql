-- Search columns of resources kept as received (MedicationRequest, DiagnosticReport,
-- ServiceRequest, Appointment, Schedule, Slot), extracted at write time: the main code,
-- the main date or time (Shanghai local, `YYYY-MM-DDTHH:MM:SS`) and the main reference
-- (`Type/id`). NULL where the resource has none.
ALTER TABLE resources ADD COLUMN code TEXT;
ALTER TABLE resources ADD COLUMN date TEXT;
ALTER TABLE resources ADD COLUMN ref TEXT;
ALTER TABLE resource_history ADD COLUMN code TEXT;
ALTER TABLE resource_history ADD COLUMN date TEXT;
ALTER TABLE resource_history ADD COLUMN ref TEXT;
CREATE INDEX resources_type_resident ON resources (type, resident_id);

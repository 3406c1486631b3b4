-- The status token of a stored resource (`status`, or `clinicalStatus` for Condition),
-- extracted at write time for the `status` search parameters. NULL when the resource
-- has none; generated records (no stored JSON) take their type's fixed status.
ALTER TABLE resources ADD COLUMN status TEXT;
ALTER TABLE resource_history ADD COLUMN status TEXT;

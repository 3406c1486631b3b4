-- Indicator numerators and denominators per (indicator, period, org unit), kept up to
-- date by the writes that change them and rebuilt whole by `dhp indicators rebuild`.
-- A pair that sums to (0, 0) is not stored.
CREATE TABLE indicator_values (
    indicator TEXT NOT NULL,
    period    TEXT NOT NULL,
    org_id    BIGINT NOT NULL,
    num       BIGINT NOT NULL,
    den       BIGINT NOT NULL,
    PRIMARY KEY (indicator, period, org_id)
);
CREATE INDEX indicator_values_org ON indicator_values (org_id, period);
-- The pairs a write brought to (0, 0), found without scanning the table.
CREATE INDEX indicator_values_zero ON indicator_values (indicator) WHERE num = 0 AND den = 0;

-- The reminder outbox: written in the booking's own transaction (the day before and
-- two hours before the slot), sent later by an adapter (log, webhook; SMS can plug
-- in), each delivery or failure recorded. A reminder of an appointment no longer
-- booked is voided, not sent.
CREATE TABLE reminders (
    appointment_id BIGINT NOT NULL REFERENCES appointments (id),
    kind           TEXT NOT NULL,
    due            TIMESTAMP NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending',
    attempts       BIGINT NOT NULL DEFAULT 0,
    done_at        TIMESTAMP,
    detail         TEXT,
    PRIMARY KEY (appointment_id, kind)
);
CREATE INDEX reminders_due ON reminders (status, due);

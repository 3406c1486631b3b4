-- Tiered care's unified slot pool (统一号源): schedules, the slots they generate, and
-- the appointments booked into them. `booked` counts the appointments holding a place;
-- it moves only in the booking's own transaction, guarded by `booked < limit`.
CREATE TABLE schedules (
    id              BIGINT PRIMARY KEY,
    org_id          BIGINT NOT NULL REFERENCES organisations (id),
    service         TEXT NOT NULL,
    practitioner_id BIGINT,
    weekdays        TEXT NOT NULL,
    first_start     TEXT NOT NULL,
    slot_minutes    BIGINT NOT NULL,
    slots_per_day   BIGINT NOT NULL,
    capacity        BIGINT NOT NULL CHECK (capacity >= 1),
    referral_share  BIGINT NOT NULL CHECK (referral_share BETWEEN 0 AND 100),
    release_hours   BIGINT NOT NULL,
    horizon_days    BIGINT NOT NULL
);
CREATE TABLE slots (
    id          BIGINT PRIMARY KEY,
    schedule_id BIGINT NOT NULL REFERENCES schedules (id),
    start       TIMESTAMP NOT NULL,
    "end"       TIMESTAMP NOT NULL,
    capacity    BIGINT NOT NULL CHECK (capacity >= 1),
    reserved    BIGINT NOT NULL,
    release     TIMESTAMP NOT NULL,
    booked      BIGINT NOT NULL DEFAULT 0 CHECK (booked >= 0 AND booked <= capacity),
    status      TEXT NOT NULL DEFAULT 'free'
);
CREATE INDEX slots_schedule_start ON slots (schedule_id, start);
CREATE INDEX slots_start ON slots (start);
CREATE TABLE appointments (
    id            BIGINT PRIMARY KEY,
    slot_id       BIGINT NOT NULL REFERENCES slots (id),
    resident_id   BIGINT NOT NULL REFERENCES residents (id),
    status        TEXT NOT NULL,
    channel       TEXT NOT NULL,
    cancel_reason TEXT,
    created       TIMESTAMP NOT NULL,
    updated       TIMESTAMP NOT NULL
);
CREATE INDEX appointments_resident ON appointments (resident_id, status);
CREATE INDEX appointments_slot ON appointments (slot_id);

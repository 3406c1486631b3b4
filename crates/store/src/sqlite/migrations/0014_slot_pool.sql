-- Tiered care's unified slot pool (统一号源): schedules, the slots they generate, and
-- the appointments booked into them. `booked` counts the appointments holding a place;
-- it moves only in the booking's own transaction, guarded by `booked < limit`.
CREATE TABLE schedules (
    id              INTEGER PRIMARY KEY,
    org_id          INTEGER NOT NULL REFERENCES organisations (id),
    service         TEXT NOT NULL,
    practitioner_id INTEGER,
    weekdays        TEXT NOT NULL,
    first_start     TEXT NOT NULL,
    slot_minutes    INTEGER NOT NULL,
    slots_per_day   INTEGER NOT NULL,
    capacity        INTEGER NOT NULL CHECK (capacity >= 1),
    referral_share  INTEGER NOT NULL CHECK (referral_share BETWEEN 0 AND 100),
    release_hours   INTEGER NOT NULL,
    horizon_days    INTEGER NOT NULL
);
CREATE TABLE slots (
    id          INTEGER PRIMARY KEY,
    schedule_id INTEGER NOT NULL REFERENCES schedules (id),
    start       TEXT NOT NULL,
    "end"       TEXT NOT NULL,
    capacity    INTEGER NOT NULL CHECK (capacity >= 1),
    reserved    INTEGER NOT NULL,
    release     TEXT NOT NULL,
    booked      INTEGER NOT NULL DEFAULT 0 CHECK (booked >= 0 AND booked <= capacity),
    status      TEXT NOT NULL DEFAULT 'free'
);
CREATE INDEX slots_schedule_start ON slots (schedule_id, start);
CREATE INDEX slots_start ON slots (start);
CREATE TABLE appointments (
    id            INTEGER PRIMARY KEY,
    slot_id       INTEGER NOT NULL REFERENCES slots (id),
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    status        TEXT NOT NULL,
    channel       TEXT NOT NULL,
    cancel_reason TEXT,
    created       TEXT NOT NULL,
    updated       TEXT NOT NULL
);
CREATE INDEX appointments_resident ON appointments (resident_id, status);
CREATE INDEX appointments_slot ON appointments (slot_id);

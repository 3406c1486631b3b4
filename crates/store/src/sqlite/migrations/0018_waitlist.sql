-- The waitlist of a schedule: a resident waits for a place on a day from from_day to
-- to_day; when a place frees, the first in line (by joining time) whose days cover it
-- is offered it as a pending appointment that holds the place until accepted or until
-- offer_until, then the next is offered.
CREATE TABLE waitlist (
    id             INTEGER PRIMARY KEY,
    schedule_id    INTEGER NOT NULL REFERENCES schedules (id),
    resident_id    INTEGER NOT NULL REFERENCES residents (id),
    from_day       DATE NOT NULL,
    to_day         DATE NOT NULL,
    channel        TEXT NOT NULL CHECK (channel IN ('public', 'referral')),
    status         TEXT NOT NULL DEFAULT 'waiting'
                   CHECK (status IN ('waiting', 'offered', 'booked', 'expired', 'withdrawn', 'lapsed')),
    joined         TIMESTAMP NOT NULL,
    appointment_id INTEGER REFERENCES appointments (id),
    offer_until    TIMESTAMP,
    updated        TIMESTAMP NOT NULL
);
CREATE INDEX waitlist_line ON waitlist (schedule_id, status, joined, id);
CREATE INDEX waitlist_resident ON waitlist (resident_id);
CREATE INDEX waitlist_offers ON waitlist (status, offer_until);
CREATE UNIQUE INDEX waitlist_once ON waitlist (schedule_id, resident_id)
    WHERE status IN ('waiting', 'offered');

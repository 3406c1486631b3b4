-- Surveillance and early warning (sqlite): case reports, sentinel syndromic counts,
-- signals with their verification history, and the generator's injected outbreaks.
CREATE TABLE case_reports (
    id            INTEGER PRIMARY KEY,
    disease       TEXT NOT NULL,
    resident_id   INTEGER,
    reporting_org TEXT NOT NULL,
    street        TEXT NOT NULL,
    status        TEXT NOT NULL,
    onset_date    TEXT NOT NULL,
    diagnosed_at  TEXT NOT NULL,
    report_day    TEXT NOT NULL,
    reported_at   TEXT NOT NULL,
    source        TEXT NOT NULL
);
CREATE INDEX case_reports_onset ON case_reports (onset_date);
CREATE INDEX case_reports_report_day ON case_reports (report_day);

-- One row per site, day and syndrome; a zero count is a report, a missing row is not.
CREATE TABLE sentinel_reports (
    site        TEXT NOT NULL,
    day         TEXT NOT NULL,
    syndrome    TEXT NOT NULL,
    count       INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (site, day, syndrome)
);
CREATE INDEX sentinel_reports_day ON sentinel_reports (day);

CREATE TABLE signals (
    id           INTEGER PRIMARY KEY,
    disease      TEXT NOT NULL,
    area         TEXT NOT NULL,
    algorithms   TEXT NOT NULL,
    first_day    TEXT NOT NULL,
    last_day     TEXT NOT NULL,
    alarm_days   INTEGER NOT NULL,
    observed     REAL NOT NULL,
    expected     REAL NOT NULL,
    statistic    REAL NOT NULL,
    threshold    REAL NOT NULL,
    counts       TEXT NOT NULL,
    status       TEXT NOT NULL,
    raised_at    TEXT NOT NULL,
    verifying_at TEXT,
    closed_at    TEXT,
    note         TEXT NOT NULL
);
CREATE INDEX signals_last_day ON signals (last_day);
CREATE INDEX signals_disease_area ON signals (disease, area);

CREATE TABLE signal_events (
    signal_id   INTEGER NOT NULL,
    at          TEXT NOT NULL,
    username    TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    note        TEXT NOT NULL
);
CREATE INDEX signal_events_signal ON signal_events (signal_id);

-- Ground truth of the synthetic district's injected outbreaks (for evaluation).
CREATE TABLE injected_outbreaks (
    id        INTEGER PRIMARY KEY,
    disease   TEXT NOT NULL,
    street    TEXT NOT NULL,
    start_day TEXT NOT NULL,
    days      INTEGER NOT NULL,
    cases     INTEGER NOT NULL,
    shape     TEXT NOT NULL
);

-- Surveillance and early warning (postgres): case reports, sentinel syndromic counts,
-- signals with their verification history, and the generator's injected outbreaks.
CREATE TABLE case_reports (
    id            BIGINT PRIMARY KEY,
    disease       TEXT NOT NULL,
    resident_id   BIGINT,
    reporting_org TEXT NOT NULL,
    street        TEXT NOT NULL,
    status        TEXT NOT NULL,
    onset_date    DATE NOT NULL,
    diagnosed_at  TIMESTAMP NOT NULL,
    report_day    DATE NOT NULL,
    reported_at   TIMESTAMP NOT NULL,
    source        TEXT NOT NULL
);
CREATE INDEX case_reports_onset ON case_reports (onset_date);
CREATE INDEX case_reports_report_day ON case_reports (report_day);

-- One row per site, day and syndrome; a zero count is a report, a missing row is not.
CREATE TABLE sentinel_reports (
    site        TEXT NOT NULL,
    day         DATE NOT NULL,
    syndrome    TEXT NOT NULL,
    count       BIGINT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    PRIMARY KEY (site, day, syndrome)
);
CREATE INDEX sentinel_reports_day ON sentinel_reports (day);

CREATE TABLE signals (
    id           BIGINT PRIMARY KEY,
    disease      TEXT NOT NULL,
    area         TEXT NOT NULL,
    algorithms   TEXT NOT NULL,
    first_day    DATE NOT NULL,
    last_day     DATE NOT NULL,
    alarm_days   BIGINT NOT NULL,
    observed     DOUBLE PRECISION NOT NULL,
    expected     DOUBLE PRECISION NOT NULL,
    statistic    DOUBLE PRECISION NOT NULL,
    threshold    DOUBLE PRECISION NOT NULL,
    counts       TEXT NOT NULL,
    status       TEXT NOT NULL,
    raised_at    TIMESTAMP NOT NULL,
    verifying_at TIMESTAMP,
    closed_at    TIMESTAMP,
    note         TEXT NOT NULL
);
CREATE INDEX signals_last_day ON signals (last_day);
CREATE INDEX signals_disease_area ON signals (disease, area);

CREATE TABLE signal_events (
    signal_id   BIGINT NOT NULL,
    at          TIMESTAMP NOT NULL,
    username    TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    note        TEXT NOT NULL
);
CREATE INDEX signal_events_signal ON signal_events (signal_id);

-- Ground truth of the synthetic district's injected outbreaks (for evaluation).
CREATE TABLE injected_outbreaks (
    id        BIGINT PRIMARY KEY,
    disease   TEXT NOT NULL,
    street    TEXT NOT NULL,
    start_day DATE NOT NULL,
    days      BIGINT NOT NULL,
    cases     BIGINT NOT NULL,
    shape     TEXT NOT NULL
);

"""Outside cross-check of the indicator engine.

The records of a generated district are exported from its SQLite file to CSV (Python's
own sqlite3 module, not our code), the indicators are computed again with DuckDB from
the definitions in data/indicators/indicators.toml written as SQL below, and every
(indicator, period, org unit) numerator and denominator must equal what the engine
stored in `indicator_values`, exactly.

Usage: crosscheck.py DATABASE.db [WORKDIR] [--period P]
(--period: compute and compare that tracked period only, e.g. 2025.)
"""

import argparse
import csv
import os
import sqlite3
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
TABLES = [
    "organisations",
    "practitioners",
    "residents",
    "contracts",
    "encounters",
    "conditions",
    "observations",
    "immunizations",
    "case_reports",
    "meta",
    "indicator_values",
]


def export(db: Path, out: Path) -> None:
    con = sqlite3.connect(db)
    for t in TABLES:
        cur = con.execute(f"SELECT * FROM {t}")
        with open(out / f"{t}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([d[0] for d in cur.description])
            w.writerows(cur)
    con.close()


def limit_hours() -> list[tuple[str, int]]:
    table = tomllib.loads((ROOT / "data/notifiable-diseases.toml").read_text())
    rows = []
    for d in table["disease"]:
        default = 2 if d["class"] in ("a", "b-as-a") else 24
        rows.append((d["code"], int(d.get("limit_hours", default))))
    return rows


def span(text: str) -> tuple[int, int]:
    """A schedule span ("28d", "6m", "4y") as (months, days)."""
    n, unit = int(text[:-1]), text[-1]
    return {"d": (0, n), "m": (n, 0), "y": (12 * n, 0)}[unit]


def schedule_doses() -> list[tuple]:
    """Each scheduled dose counted by the vaccination-coverage row (doses without a
    skip rule) with when it is due: `by` after birth, else its age after birth and then
    the overdue grace (two steps, each clamping at month ends)."""
    schedule = tomllib.loads((ROOT / "data/immunization-schedule.toml").read_text())
    grace = span(tomllib.loads((ROOT / "data/programme-rules.toml").read_text())
                 ["immunization"]["overdue_grace"])
    rows = []
    for v in schedule["vaccine"]:
        for d in v["doses"]:
            if "skip_if" in d:
                continue
            if "by" in d:
                rows.append((v["code"], d["number"], *span(d["by"]), 0, 0))
            else:
                rows.append((v["code"], d["number"], *span(d["age"]), *grace))
    return rows


def load(con: duckdb.DuckDBPyConnection, work: Path, only: str | None) -> None:
    def csv_of(t: str) -> str:
        return f"read_csv('{work / (t + '.csv')}', header=true, all_varchar=true)"

    con.execute(f"""
      CREATE TABLE org AS SELECT CAST(id AS BIGINT) id, code, kind,
        CAST(NULLIF(parent_id, '') AS BIGINT) parent_id, district_code,
        CAST(beds AS BIGINT) beds FROM {csv_of('organisations')}""")
    con.execute(f"""
      CREATE TABLE staff AS SELECT CAST(id AS BIGINT) id, role, CAST(org_id AS BIGINT) org_id
      FROM {csv_of('practitioners')}""")
    con.execute(f"""
      CREATE TABLE res AS SELECT CAST(id AS BIGINT) id, district_code,
        CAST(birth_date AS DATE) birth, CAST(street_org_id AS BIGINT) street, sex
      FROM {csv_of('residents')}""")
    con.execute(f"""
      CREATE TABLE con AS SELECT CAST(id AS BIGINT) id, CAST(resident_id AS BIGINT) rid,
        CAST(centre_org_id AS BIGINT) centre, CAST(district_hospital_id AS BIGINT) dh,
        CAST(city_hospital_id AS BIGINT) ch, CAST(start_date AS DATE) s,
        CAST(end_date AS DATE) e, status FROM {csv_of('contracts')}""")
    con.execute(f"""
      CREATE TABLE enc AS SELECT CAST(id AS BIGINT) id, CAST(resident_id AS BIGINT) rid, kind,
        NULLIF(programme, '') programme, CAST(org_id AS BIGINT) org_id,
        CAST(CAST(start_time AS TIMESTAMP) AS DATE) d FROM {csv_of('encounters')}""")
    con.execute(f"""
      CREATE TABLE cond AS SELECT CAST(resident_id AS BIGINT) rid, icd10,
        CAST(onset AS DATE) onset FROM {csv_of('conditions')}""")
    con.execute(f"""
      CREATE TABLE obs AS SELECT CAST(id AS BIGINT) id, CAST(resident_id AS BIGINT) rid, code,
        CAST(value AS DOUBLE) value, CAST(effective AS TIMESTAMP) ts,
        CAST(CAST(effective AS TIMESTAMP) AS DATE) d FROM {csv_of('observations')}""")
    con.execute(f"""
      CREATE TABLE imm AS SELECT CAST(resident_id AS BIGINT) rid, vaccine,
        CAST(dose_number AS BIGINT) dose, CAST(date AS DATE) d
      FROM {csv_of('immunizations')}""")
    con.execute("CREATE TABLE dose (vaccine VARCHAR, dose BIGINT, m1 INT, d1 INT, m2 INT, d2 INT)")
    con.executemany("INSERT INTO dose VALUES (?, ?, ?, ?, ?, ?)", schedule_doses())
    con.execute(f"""
      CREATE TABLE cr AS SELECT disease, reporting_org, street,
        CAST(diagnosed_at AS TIMESTAMP) diag, CAST(reported_at AS TIMESTAMP) rep
      FROM {csv_of('case_reports')}""")
    con.execute(f"""
      CREATE TABLE engine AS SELECT indicator, period, CAST(org_id AS BIGINT) org_id,
        CAST(num AS BIGINT) num, CAST(den AS BIGINT) den FROM {csv_of('indicator_values')}""")
    con.execute("CREATE TABLE lim (code VARCHAR, hours BIGINT)")
    con.executemany("INSERT INTO lim VALUES (?, ?)", limit_hours())
    periods = con.execute(
        f"SELECT value FROM {csv_of('meta')} WHERE key = 'indicator_periods'"
    ).fetchone()[0]
    con.execute("CREATE TABLE p (period VARCHAR, kind VARCHAR, y INT, q INT, m INT)")
    for s in periods.split(","):
        if only is not None and s != only:
            continue
        if "Q" in s:
            y, q = s.split("Q")
            con.execute("INSERT INTO p VALUES (?, 'q', ?, ?, NULL)", [s, int(y), int(q)])
        elif "-" in s:
            y, m = s.split("-")
            con.execute("INSERT INTO p VALUES (?, 'm', ?, NULL, ?)", [s, int(y), int(m)])
        else:
            con.execute("INSERT INTO p VALUES (?, 'y', ?, NULL, NULL)", [s, int(s)])
    con.execute("""
      CREATE TABLE per AS SELECT period,
        make_date(y, CASE kind WHEN 'y' THEN 1 WHEN 'q' THEN 3 * q - 2 ELSE m END, 1) pstart,
        make_date(y, 1, 1) ystart, kind FROM p""")
    con.execute("""
      CREATE OR REPLACE TABLE per AS SELECT period, pstart, ystart,
        CAST(pstart + CASE kind WHEN 'y' THEN INTERVAL 12 MONTH WHEN 'q' THEN INTERVAL 3 MONTH
             ELSE INTERVAL 1 MONTH END - INTERVAL 1 DAY AS DATE) pend FROM per""")


# Per resident and period: the units counted towards (district, street, and the centre
# of the contract in force on the period's last day, else the street's first centre).
UNITS = """
CREATE TABLE rp AS SELECT r.id rid, r.birth, r.sex, r.district_code, r.street,
  p.period, p.pstart, p.ystart, p.pend,
  (SELECT c.centre FROM con c WHERE c.rid = r.id AND c.status <> 'ended'
     AND c.s <= p.pend AND c.e >= p.pend ORDER BY c.s DESC, c.id DESC LIMIT 1) AS signed_centre
FROM res r, per p WHERE r.birth <= p.pend;
CREATE TABLE ru AS
  SELECT rid, period, (SELECT id FROM org WHERE kind = 'district' AND code = rp.district_code) unit FROM rp
  UNION ALL SELECT rid, period, street FROM rp
  UNION ALL SELECT rid, period, COALESCE(signed_centre,
    (SELECT min(id) FROM org WHERE kind = 'community_health_centre' AND parent_id = rp.street)) FROM rp;
DELETE FROM ru WHERE unit IS NULL;
"""

AGE = "(year({on}) - year(birth) - CASE WHEN month({on}) * 100 + day({on}) < month(birth) * 100 + day(birth) THEN 1 ELSE 0 END)"


def age(on: str) -> str:
    return AGE.format(on=on)


def followups(programme: str, lo: str) -> str:
    return f"""(SELECT count(*) FROM enc e WHERE e.rid = rp.rid AND e.programme = '{programme}'
               AND e.d >= {lo} AND e.d <= rp.pend)"""


def onset(prefixes: list[str]) -> str:
    cond = " OR ".join(f"icd10 LIKE '{p}%'" for p in prefixes)
    return f"(SELECT min(onset) FROM cond k WHERE k.rid = rp.rid AND k.onset <= rp.pend AND ({cond}))"


RULES = tomllib.loads((ROOT / "data/programme-rules.toml").read_text())
PREGNANCY = RULES["maternal"]["pregnancy_codes"]
DELIVERY = RULES["maternal"]["delivery_codes"]
assert RULES["maternal"]["hospital_stay"].endswith("d")
STAY_DAYS = int(RULES["maternal"]["hospital_stay"][:-1])
INDICATORS = {i["id"]: i for i in tomllib.loads(
    (ROOT / "data/indicators/indicators.toml").read_text())["indicator"]}


def param(ind: str, name: str):
    return INDICATORS[ind]["params"][name]


def any_code(col: str, prefixes: list[str]) -> str:
    return "(" + " OR ".join(f"{col} LIKE '{p}%'" for p in prefixes) + ")"


HYPERTENSION = ["I10", "I11", "I12", "I13", "I15"]
DIABETES = ["E11"]
MENTAL = ["F20", "F22", "F25", "F31", "F06"]

ACTIVITY = """
CREATE TABLE act AS
  SELECT rid, d FROM enc UNION ALL SELECT rid, onset FROM cond UNION ALL SELECT rid, d FROM obs
  UNION ALL SELECT rid, d FROM imm UNION ALL SELECT rid, s FROM con;
CREATE TABLE first_act AS SELECT rid, min(d) first FROM act GROUP BY rid;
"""


def deliveries() -> str:
    """Each delivery (distinct day and pregnancy start per resident) with whether it
    meets the three maternal rows: early registration, postpartum visit, systematic
    management."""
    early_days = 7 * param("early_pregnancy_registration", "before_week")
    assert param("maternal_system_management", "before_week") == param(
        "early_pregnancy_registration", "before_week")
    within = param("postpartum_visit", "within_days")
    prenatal = param("maternal_system_management", "prenatal")
    postpartum = param("maternal_system_management", "postpartum")
    post_days = param("maternal_system_management", "postpartum_days")

    def visits(lo: str, hi: str) -> str:
        return f"""(SELECT count(*) FROM enc e WHERE e.rid = x.rid AND e.programme = 'maternal'
                    AND e.d >= {lo} AND e.d <= {hi})"""

    early = f"""(x.lmp IS NOT NULL AND EXISTS (SELECT 1 FROM enc e WHERE e.rid = x.rid
          AND e.programme = 'maternal' AND e.d >= x.lmp AND e.d <= x.dd
          AND e.d < x.lmp + INTERVAL {early_days} DAY))"""
    return f"""
CREATE TABLE deliv0 AS SELECT DISTINCT k.rid, k.onset AS dd,
  (SELECT max(q.onset) FROM cond q WHERE q.rid = k.rid AND q.onset <= k.onset
     AND {any_code('q.icd10', PREGNANCY)}) AS lmp
FROM cond k WHERE {any_code('k.icd10', DELIVERY)};
CREATE TABLE deliv AS SELECT x.rid, x.dd,
  {early} AS early,
  {visits(f'x.dd + INTERVAL {STAY_DAYS} DAY', f'x.dd + INTERVAL {STAY_DAYS + within} DAY')} > 0 AS postpartum,
  {early} AND coalesce({visits('x.lmp', 'x.dd - INTERVAL 1 DAY')}, 0) >= {prenatal}
    AND {visits('x.dd + INTERVAL 1 DAY', f'x.dd + INTERVAL {post_days} DAY')} >= {postpartum} AS systematic
FROM deliv0 x
"""


def delivered(flag: str | None) -> str:
    cond = f" AND x.{flag}" if flag else ""
    return f"""(SELECT count(*) FROM deliv x WHERE x.rid = rp.rid AND x.dd >= rp.ystart
               AND x.dd <= rp.pend{cond})"""


GLUCOSE_CODE = "14771-0"
CHILD_MONTHS = span(RULES["child"]["until_age"])[0]
CHILD = f"rp.pend < rp.birth + INTERVAL {CHILD_MONTHS} MONTH"
# A contract in force on the period's last day.
SIGNED = """EXISTS (SELECT 1 FROM con c WHERE c.rid = rp.rid AND c.status <> 'ended'
          AND c.s <= rp.pend AND c.e >= rp.pend)"""


def key_population() -> str:
    """Key populations on the period's last day (programme rules [key_population]):
    older residents, chronic (hypertension, type 2 diabetes) and severe mental disorder
    patients, children, women pregnant (to the followed-to week) or within the 42-day
    postpartum check. Disabled elderly are older residents already."""
    k = RULES["key_population"]
    m = RULES["maternal"]
    assert m["check_42_at"].endswith("d")
    # The latest pregnancy begun by then.
    lmp = f"""(SELECT max(q.onset) FROM cond q WHERE q.rid = rp.rid AND q.onset <= rp.pend
               AND {any_code('q.icd10', PREGNANCY)})"""
    birth_after = f"""(SELECT min(b.onset) FROM cond b WHERE b.rid = rp.rid AND b.onset >= {lmp}
                       AND b.onset <= rp.pend AND {any_code('b.icd10', DELIVERY)})"""
    pregnant = f"""(rp.sex = 'female' AND {lmp} IS NOT NULL AND (
        ({birth_after} IS NULL AND floor(datediff('day', {lmp}, rp.pend) / 7) <= {m['followed_to_week']})
        OR rp.pend <= {birth_after} + INTERVAL {int(m['check_42_at'][:-1])} DAY))"""
    return f"""({age('rp.pend')} >= {k['older_from_age']}
        OR {onset(HYPERTENSION + DIABETES)} IS NOT NULL
        OR {onset(MENTAL)} IS NOT NULL
        OR rp.pend < rp.birth + INTERVAL {k['children_until_age'] * 12} MONTH
        OR {pregnant})"""


DUE = """CAST(CAST(rp.birth + to_months(x.m1) + to_days(x.d1) AS DATE)
              + to_months(x.m2) + to_days(x.d2) AS DATE)"""

# (indicator, numerator SQL, denominator SQL) over `rp` (one row per resident and
# period with the resident born by the period's end).
RESIDENT_RULES = [
    ("ehr_rate",
     "CASE WHEN (SELECT first FROM first_act f WHERE f.rid = rp.rid) <= rp.pend THEN 1 ELSE 0 END",
     "1"),
    ("record_usage",
     """CASE WHEN (SELECT first FROM first_act f WHERE f.rid = rp.rid) <= rp.pend
          AND EXISTS (SELECT 1 FROM act a WHERE a.rid = rp.rid AND a.d > rp.pend - INTERVAL 365 DAY AND a.d <= rp.pend)
        THEN 1 ELSE 0 END""",
     "CASE WHEN (SELECT first FROM first_act f WHERE f.rid = rp.rid) <= rp.pend THEN 1 ELSE 0 END"),
    ("elderly_management",
     f"CASE WHEN {age('rp.pend')} >= 65 AND {followups('elderly', 'rp.ystart')} > 0 THEN 1 ELSE 0 END",
     f"CASE WHEN {age('rp.pend')} >= 65 THEN 1 ELSE 0 END"),
    ("hypertension_management",
     f"CASE WHEN {age('rp.pend')} >= 18 AND {onset(HYPERTENSION)} IS NOT NULL AND {followups('hypertension', 'rp.ystart')} > 0 THEN 1 ELSE 0 END",
     f"CASE WHEN {age('rp.pend')} >= 18 AND {onset(HYPERTENSION)} IS NOT NULL THEN 1 ELSE 0 END"),
    ("diabetes_management",
     f"CASE WHEN {age('rp.pend')} >= 35 AND {onset(DIABETES)} IS NOT NULL AND {followups('diabetes', 'rp.ystart')} > 0 THEN 1 ELSE 0 END",
     f"CASE WHEN {age('rp.pend')} >= 35 AND {onset(DIABETES)} IS NOT NULL THEN 1 ELSE 0 END"),
    ("hypertension_standard",
     f"CASE WHEN {onset(HYPERTENSION)} IS NOT NULL AND {followups('hypertension', 'rp.ystart')} >= 4 THEN 1 ELSE 0 END",
     f"CASE WHEN {onset(HYPERTENSION)} IS NOT NULL AND {followups('hypertension', 'rp.ystart')} >= 1 THEN 1 ELSE 0 END"),
    ("diabetes_standard",
     f"CASE WHEN {onset(DIABETES)} IS NOT NULL AND {followups('diabetes', 'rp.ystart')} >= 4 THEN 1 ELSE 0 END",
     f"CASE WHEN {onset(DIABETES)} IS NOT NULL AND {followups('diabetes', 'rp.ystart')} >= 1 THEN 1 ELSE 0 END"),
    ("child_health_management",
     f"CASE WHEN {CHILD} AND {followups('child', 'rp.ystart')} > 0 THEN 1 ELSE 0 END",
     f"CASE WHEN {CHILD} THEN 1 ELSE 0 END"),
    ("newborn_visit",
     """CASE WHEN rp.birth >= rp.ystart AND EXISTS (SELECT 1 FROM enc e WHERE e.rid = rp.rid
          AND e.programme = 'child' AND e.d >= rp.birth AND e.d <= rp.birth + INTERVAL 10 DAY) THEN 1 ELSE 0 END""",
     "CASE WHEN rp.birth >= rp.ystart THEN 1 ELSE 0 END"),
    ("glucose_control",
     f"""CASE WHEN {onset(DIABETES)} IS NOT NULL AND {followups('diabetes', 'rp.ystart')} >= 1
          AND (SELECT o.value FROM obs o WHERE o.rid = rp.rid AND o.code = '{GLUCOSE_CODE}'
               AND o.d >= rp.ystart AND o.d <= rp.pend ORDER BY o.ts DESC, o.id DESC LIMIT 1)
              < {param('glucose_control', 'below')} THEN 1 ELSE 0 END""",
     f"CASE WHEN {onset(DIABETES)} IS NOT NULL AND {followups('diabetes', 'rp.ystart')} >= 1 THEN 1 ELSE 0 END"),
    ("vaccination_coverage",
     f"""CASE WHEN {CHILD} THEN (SELECT count(*) FROM dose x WHERE {DUE} <= rp.pend
          AND EXISTS (SELECT 1 FROM imm i WHERE i.rid = rp.rid AND i.vaccine = x.vaccine
                      AND i.dose = x.dose AND i.d <= rp.pend)) ELSE 0 END""",
     f"CASE WHEN {CHILD} THEN (SELECT count(*) FROM dose x WHERE {DUE} <= rp.pend) ELSE 0 END"),
    ("key_population_signing",
     f"CASE WHEN {key_population()} AND {SIGNED} THEN 1 ELSE 0 END",
     f"CASE WHEN {key_population()} THEN 1 ELSE 0 END"),
    ("early_pregnancy_registration", delivered("early"), delivered(None)),
    ("postpartum_visit", delivered("postpartum"), delivered(None)),
    ("maternal_system_management", delivered("systematic"), delivered(None)),
    ("mental_management",
     f"CASE WHEN {onset(MENTAL)} IS NOT NULL AND {followups('mental', 'rp.ystart')} >= 4 THEN 1 ELSE 0 END",
     f"CASE WHEN {onset(MENTAL)} IS NOT NULL THEN 1 ELSE 0 END"),
    ("resident_signing", f"CASE WHEN {SIGNED} THEN 1 ELSE 0 END", "1"),
] + [
    (ind, "0", "1")
    for ind in ["beds_per_1000", "physicians_per_1000", "nurses_per_1000", "gps_per_1000",
                "public_health_staff_per_1000"]
]

# Signed residents' outpatient visits in the period, with the contract in force on the
# visit's day (latest start, then highest id).
VISITS = """
CREATE TABLE v AS SELECT rp.rid, rp.period, e.org_id,
  (SELECT c.id FROM con c WHERE c.rid = e.rid AND c.status <> 'ended' AND c.s <= e.d AND c.e >= e.d
     ORDER BY c.s DESC, c.id DESC LIMIT 1) AS cid
FROM rp JOIN enc e ON e.rid = rp.rid AND e.kind = 'outpatient' AND e.d >= rp.pstart AND e.d <= rp.pend;
DELETE FROM v WHERE cid IS NULL;
CREATE TABLE vv AS SELECT v.rid, v.period,
  (o.kind = 'community_health_centre' AND o.id = c.centre)
    OR (o.kind = 'station' AND o.parent_id = c.centre
        AND (SELECT kind FROM org WHERE id = o.parent_id) = 'community_health_centre') AS at_centre,
  v.org_id IN (c.centre, c.dh, c.ch) AS in_combination
FROM v JOIN con c ON c.id = v.cid JOIN org o ON o.id = v.org_id;
"""


def resident_sql() -> str:
    parts = []
    for ind, num, den in RESIDENT_RULES:
        parts.append(f"SELECT '{ind}' AS indicator, rid, period, {num} AS num, {den} AS den FROM rp")
    parts.append("""SELECT 'community_visit_rate', rid, period, sum(CAST(at_centre AS INT)), count(*) FROM vv GROUP BY rid, period""")
    parts.append("""SELECT 'combination_visit_rate', rid, period,
        sum(CAST(at_centre OR in_combination AS INT)), count(*) FROM vv GROUP BY rid, period""")
    return "\nUNION ALL\n".join(parts)


# Beds and staff, counted towards the district, the street above, the centre (for a
# centre or station) and the hospital itself.
RESOURCES = """
CREATE TABLE anc AS SELECT o.id, o.kind, o.district_code,
  o.parent_id p1, p.parent_id p2, pp.parent_id p3 FROM org o
  LEFT JOIN org p ON p.id = o.parent_id LEFT JOIN org pp ON pp.id = p.parent_id;
CREATE TABLE org_units AS
  SELECT a.id org, (SELECT id FROM org WHERE kind = 'district' AND code = a.district_code) unit FROM anc a
  UNION SELECT a.id, x.id FROM anc a JOIN org x ON x.id IN (a.id, a.p1, a.p2, a.p3) AND x.kind IN ('street', 'town')
  UNION SELECT a.id, a.id FROM anc a WHERE a.kind IN ('community_health_centre', 'hospital')
  UNION SELECT a.id, a.p1 FROM anc a JOIN org c ON c.id = a.p1 AND c.kind = 'community_health_centre' WHERE a.kind = 'station';
DELETE FROM org_units WHERE unit IS NULL;
CREATE TABLE res_num AS
  SELECT 'beds_per_1000' indicator, id org, beds n FROM org WHERE beds > 0
  UNION ALL SELECT 'physicians_per_1000', org_id, count(*) FROM staff
    WHERE role IN ('family_doctor', 'specialist', 'public_health_doctor') GROUP BY org_id
  UNION ALL SELECT 'nurses_per_1000', org_id, count(*) FROM staff WHERE role = 'nurse' GROUP BY org_id
  UNION ALL SELECT 'gps_per_1000', org_id, count(*) FROM staff WHERE role = 'family_doctor' GROUP BY org_id
  UNION ALL SELECT 'public_health_staff_per_1000', s.org_id, count(*) FROM staff s
    JOIN org o ON o.id = s.org_id AND o.kind = 'public_health' GROUP BY s.org_id;
"""

# Reports: on time when the whole minutes from diagnosis to report are within the
# disease's limit; counted towards the district, the street and the reporting unit, in
# each tracked period containing the report's day.
REPORTS = """
CREATE TABLE crt AS SELECT cr.*, CAST(rep AS DATE) d,
  CASE WHEN trunc((epoch(rep) - epoch(diag)) / 60) <= lim.hours * 60 THEN 1 ELSE 0 END AS on_time,
  (SELECT id FROM org WHERE code = cr.street) AS street_id,
  (SELECT id FROM org WHERE code = cr.reporting_org) AS org_id,
  (SELECT d.id FROM org d WHERE d.kind = 'district' AND d.code = COALESCE(
     (SELECT district_code FROM org WHERE code = cr.street),
     (SELECT min(code) FROM org WHERE kind = 'district'))) AS district_id
FROM cr JOIN lim ON lim.code = cr.disease;
CREATE TABLE crn AS SELECT row_number() OVER () rn, * FROM crt;
CREATE TABLE cru AS SELECT DISTINCT rn, unit, d, on_time FROM (
  SELECT rn, district_id unit, d, on_time FROM crn
  UNION ALL SELECT rn, street_id, d, on_time FROM crn
  UNION ALL SELECT rn, org_id, d, on_time FROM crn) WHERE unit IS NOT NULL;
"""


def main() -> int:
    args = argparse.ArgumentParser(description="DuckDB cross-check of the indicator engine")
    args.add_argument("database", type=Path)
    args.add_argument("workdir", type=Path, nargs="?")
    args.add_argument("--period", help="only this tracked period (e.g. 2025)")
    a = args.parse_args()
    db = a.database
    work = a.workdir or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    export(db, work)
    con = duckdb.connect()
    load(con, work, a.period)
    if con.execute("SELECT count(*) FROM p").fetchone()[0] == 0:
        print(f"no tracked period {a.period}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    for script in (UNITS, ACTIVITY, deliveries(), VISITS, RESOURCES, REPORTS):
        for stmt in filter(str.strip, script.split(";")):
            con.execute(stmt)
    con.execute(f"CREATE TABLE per_res AS {resident_sql()}")
    con.execute("""
      CREATE TABLE duck AS
      SELECT indicator, period, unit AS org_id, sum(num) num, sum(den) den FROM (
        SELECT f.indicator, f.period, u.unit, f.num, f.den FROM per_res f
        JOIN ru u ON u.rid = f.rid AND u.period = f.period WHERE f.num <> 0 OR f.den <> 0
        UNION ALL
        SELECT r.indicator, p.period, ou.unit, r.n, 0 FROM res_num r
        JOIN org_units ou ON ou.org = r.org CROSS JOIN per p
        UNION ALL
        SELECT 'reporting_timeliness', p.period, c.unit, c.on_time, 1 FROM cru c
        JOIN per p ON c.d >= p.pstart AND c.d <= p.pend
      ) GROUP BY ALL HAVING sum(num) <> 0 OR sum(den) <> 0""")
    seconds = time.perf_counter() - started
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    print(f"duckdb compute: {seconds:.3f} s (threads {threads})")
    checked = [r[0] for r in RESIDENT_RULES] + [
        "community_visit_rate", "combination_visit_rate", "reporting_timeliness"]
    con.execute("CREATE TABLE checked (indicator VARCHAR)")
    con.executemany("INSERT INTO checked VALUES (?)", [[c] for c in checked])
    diff = con.execute("""
      SELECT coalesce(d.indicator, e.indicator) ind, coalesce(d.period, e.period) per,
        coalesce(d.org_id, e.org_id) org, d.num dnum, d.den dden, e.num enum, e.den eden
      FROM duck d FULL OUTER JOIN (SELECT * FROM engine WHERE indicator IN (SELECT indicator FROM checked)
        AND period IN (SELECT period FROM per)) e
        ON d.indicator = e.indicator AND d.period = e.period AND d.org_id = e.org_id
      WHERE d.num IS DISTINCT FROM e.num OR d.den IS DISTINCT FROM e.den
      ORDER BY 1, 2, 3 LIMIT 20""").fetchall()
    total = con.execute(
        "SELECT count(*), count(DISTINCT indicator), count(DISTINCT period), count(DISTINCT org_id) FROM duck"
    ).fetchone()
    if diff:
        print("indicator cross-check FAILED: DuckDB and the engine differ (indicator, period, org, duck num/den, engine num/den):")
        for row in diff:
            print("  ", row)
        return 1
    print(f"indicator cross-check: {total[0]} values ({total[1]} indicators × {total[2]} periods × {total[3]} units) equal in DuckDB and the engine")
    return 0


if __name__ == "__main__":
    sys.exit(main())

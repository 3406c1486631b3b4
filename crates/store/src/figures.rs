//! Headline figures of a district for one calendar year, computed from the stored
//! records with SQL that is the same text on both backends. The generator's
//! calibration test and the home page read these; the indicator engine will grow out
//! of them.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::shared::Param;
use crate::year_bounds;

/// Counts behind the plan's baseline figures (five-year plan Table 1) for one year.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DistrictFigures {
    pub year: i32,
    /// Residents born on or before the year's last day (常住人口).
    pub residents: i64,
    pub households: i64,
    /// Beds of the district's own organisations (city hospitals excluded).
    pub beds: i64,
    /// Licensed (assistant) physicians: family doctors, specialists, public-health doctors.
    pub physicians: i64,
    pub nurses: i64,
    /// General practitioners (family doctors).
    pub general_practitioners: i64,
    /// Key populations (domain-rules §2): aged 60+, children 0–6, hypertension,
    /// diabetes or severe mental disorder, on the year's last day.
    pub key_population: i64,
    /// … of whom with a contract covering the year's last day.
    pub key_population_signed: i64,
    /// Residents with a contract covering the year's last day.
    pub signed_residents: i64,
    /// Outpatient visits in the year by signed residents.
    pub signed_visits: i64,
    /// … at their contract's community health centre or one of its stations.
    pub signed_visits_in_centre: i64,
    /// … at any of the three organisations of their combination.
    pub signed_visits_in_combination: i64,
    /// Residents 18+ with a hypertension diagnosis.
    pub hypertensives: i64,
    /// … with at least one hypertension follow-up in the year.
    pub hypertensives_managed: i64,
    /// Residents 35+ with a type 2 diabetes diagnosis.
    pub diabetics: i64,
    /// … with at least one diabetes follow-up in the year.
    pub diabetics_managed: i64,
}

impl DistrictFigures {
    pub fn per_1000(&self, n: i64) -> f64 {
        if self.residents == 0 {
            0.0
        } else {
            n as f64 * 1000.0 / self.residents as f64
        }
    }

    /// `num / den` as a percentage (0 when the denominator is 0).
    pub fn percent(num: i64, den: i64) -> f64 {
        if den == 0 {
            0.0
        } else {
            num as f64 * 100.0 / den as f64
        }
    }
}

/// One query returning one row of BIGINT columns.
#[derive(Debug, Clone)]
pub(crate) struct FigureQuery {
    pub sql: &'static str,
    pub params: Vec<Param>,
    pub columns: usize,
}

pub(crate) fn queries(district: &str, year: i32) -> Vec<FigureQuery> {
    let (start, next, last) = year_bounds(year);
    let d = || Param::Text(district.to_string());
    let years_before = |n: u32| Param::Date(last - Months::new(12 * n));
    let start_ts = Param::DateTime(start.and_hms_opt(0, 0, 0).expect("midnight"));
    let next_ts = Param::DateTime(next.and_hms_opt(0, 0, 0).expect("midnight"));
    vec![
        FigureQuery {
            sql: "SELECT COUNT(*) FROM residents WHERE district_code = $1 AND birth_date <= $2",
            params: vec![d(), Param::Date(last)],
            columns: 1,
        },
        FigureQuery {
            sql: "SELECT COUNT(*) FROM households WHERE district_code = $1",
            params: vec![d()],
            columns: 1,
        },
        FigureQuery {
            sql: "SELECT CAST(COALESCE(SUM(beds), 0) AS BIGINT) FROM organisations WHERE district_code = $1",
            params: vec![d()],
            columns: 1,
        },
        FigureQuery {
            sql: "SELECT \
                CAST(COALESCE(SUM(CASE WHEN role IN ('family_doctor', 'specialist', 'public_health_doctor') THEN 1 ELSE 0 END), 0) AS BIGINT), \
                CAST(COALESCE(SUM(CASE WHEN role = 'nurse' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                CAST(COALESCE(SUM(CASE WHEN role = 'family_doctor' THEN 1 ELSE 0 END), 0) AS BIGINT) \
                FROM practitioners WHERE district_code = $1",
            params: vec![d()],
            columns: 3,
        },
        // Key population and its signing (domain-rules §2): $3 = born on or before
        // this date is 60+, $4 = born after this date is 0–6.
        FigureQuery {
            sql: "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM contracts c \
                   WHERE c.resident_id = r.id AND c.status <> 'ended' AND c.start_date <= $2 AND c.end_date >= $2) \
                   THEN 1 ELSE 0 END), 0) AS BIGINT) \
                FROM residents r WHERE r.district_code = $1 AND r.birth_date <= $2 AND ( \
                   r.birth_date <= $3 OR r.birth_date > $4 OR EXISTS (SELECT 1 FROM conditions k \
                   WHERE k.resident_id = r.id AND k.onset <= $2 AND k.category IS NOT NULL))",
            params: vec![d(), Param::Date(last), years_before(60), years_before(7)],
            columns: 2,
        },
        FigureQuery {
            sql: "SELECT COUNT(*) FROM residents r WHERE r.district_code = $1 AND EXISTS (SELECT 1 FROM contracts c \
                   WHERE c.resident_id = r.id AND c.status <> 'ended' AND c.start_date <= $2 AND c.end_date >= $2)",
            params: vec![d(), Param::Date(last)],
            columns: 1,
        },
        // Visits of signed residents: in the centre (or a station under it), and in
        // the combination (domain-rules §2).
        FigureQuery {
            sql: "SELECT COUNT(*), \
                CAST(COALESCE(SUM(CASE WHEN e.org_id = c.centre_org_id OR o.parent_id = c.centre_org_id THEN 1 ELSE 0 END), 0) AS BIGINT), \
                CAST(COALESCE(SUM(CASE WHEN e.org_id = c.centre_org_id OR o.parent_id = c.centre_org_id \
                     OR e.org_id = c.district_hospital_id OR e.org_id = c.city_hospital_id THEN 1 ELSE 0 END), 0) AS BIGINT) \
                FROM encounters e \
                JOIN contracts c ON c.resident_id = e.resident_id AND c.status <> 'ended' AND c.start_date <= $2 AND c.end_date >= $2 \
                JOIN residents r ON r.id = e.resident_id AND r.district_code = $1 \
                JOIN organisations o ON o.id = e.org_id \
                WHERE e.kind = 'outpatient' AND e.start_time >= $3 AND e.start_time < $4",
            params: vec![d(), Param::Date(last), start_ts.clone(), next_ts.clone()],
            columns: 3,
        },
        management_query("hypertension", 18, district, last, &start_ts, &next_ts),
        management_query("diabetes", 35, district, last, &start_ts, &next_ts),
    ]
}

/// Residents of `min_age`+ diagnosed in `category`, and those followed up in the year.
fn management_query(
    category: &'static str,
    min_age: u32,
    district: &str,
    last: NaiveDate,
    start_ts: &Param,
    next_ts: &Param,
) -> FigureQuery {
    FigureQuery {
        sql: "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM encounters e \
               WHERE e.resident_id = r.id AND e.programme = $5 AND e.start_time >= $3 AND e.start_time < $4) \
               THEN 1 ELSE 0 END), 0) AS BIGINT) \
            FROM residents r WHERE r.district_code = $1 AND r.birth_date <= $6 AND EXISTS (SELECT 1 FROM conditions k \
               WHERE k.resident_id = r.id AND k.category = $5 AND k.onset <= $2)",
        params: vec![
            Param::Text(district.to_string()),
            Param::Date(last),
            start_ts.clone(),
            next_ts.clone(),
            Param::Text(category.to_string()),
            Param::Date(last - Months::new(12 * min_age)),
        ],
        columns: 2,
    }
}

/// Put the query results (in `queries` order) into the figures.
pub(crate) fn assemble(year: i32, rows: Vec<Vec<i64>>) -> DistrictFigures {
    let v = |q: usize, c: usize| rows.get(q).and_then(|r| r.get(c)).copied().unwrap_or(0);
    DistrictFigures {
        year,
        residents: v(0, 0),
        households: v(1, 0),
        beds: v(2, 0),
        physicians: v(3, 0),
        nurses: v(3, 1),
        general_practitioners: v(3, 2),
        key_population: v(4, 0),
        key_population_signed: v(4, 1),
        signed_residents: v(5, 0),
        signed_visits: v(6, 0),
        signed_visits_in_centre: v(6, 1),
        signed_visits_in_combination: v(6, 2),
        hypertensives: v(7, 0),
        hypertensives_managed: v(7, 1),
        diabetics: v(8, 0),
        diabetics_managed: v(8, 1),
    }
}

//! The generator's inputs as data: the district's shape (`data/district/qingpu.toml`)
//! and the calibration targets (`data/calibration/qingpu-2020.toml`).

use std::collections::HashMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct DistrictConfig {
    pub city: Named,
    pub district: DistrictInfo,
    #[serde(rename = "area")]
    pub areas: Vec<Area>,
    #[serde(rename = "centre")]
    pub centres: Vec<Centre>,
    #[serde(rename = "hospital")]
    pub hospitals: Vec<Hospital>,
    #[serde(rename = "city_hospital")]
    pub city_hospitals: Vec<CityHospital>,
    pub population: Population,
    pub model: Model,
}

/// Who lives in the district.
#[derive(Debug, Clone, Deserialize)]
pub struct Population {
    pub migrant_regions: Vec<String>,
    pub age_bands: Vec<f64>,
    pub registered_by_age: RegisteredByAge,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Named {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DistrictInfo {
    pub code: String,
    pub old_county_code: String,
    pub county_code_until: i32,
    pub name_zh: String,
    pub name_en: String,
    pub commission_zh: String,
    pub commission_en: String,
    pub cdc_zh: String,
    pub cdc_en: String,
    pub public_health_doctors_per_1000: f64,
    pub community_nurse_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Area {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub kind: String,
    pub zone: String,
    pub share: f64,
    pub roads: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Centre {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub area: String,
    pub share: f64,
    pub beds_weight: f64,
    pub stations: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hospital {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub level: i64,
    pub beds_weight: f64,
    pub zone: String,
    #[serde(default)]
    pub combination: HashMap<String, f64>,
    #[serde(default)]
    pub maternity: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CityHospital {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub weight: f64,
    pub beds: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegisteredByAge {
    pub child: f64,
    pub adult: f64,
    pub elderly: f64,
}

/// Rates of the history model (see the `[model]` table of the district file).
#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    pub hypertension: Vec<(u32, f64)>,
    pub diabetes: Vec<(u32, f64)>,
    pub severe_mental_disorder: f64,
    pub other_conditions: Vec<(String, u32, f64)>,
    pub followups_per_year: Vec<f64>,
    pub outpatient_visits: Vec<(u32, f64)>,
    pub chronic_extra_visits: f64,
    pub inpatient_rate: (f64, f64),
    pub unsigned_visit_share: (f64, f64, f64),
    pub non_key_signing: f64,
    pub signing_start_year: i32,
    pub renewal: f64,
    pub station_share: f64,
    pub dose_uptake: f64,
    pub dose_delay: Vec<(f64, u32)>,
    pub programmes: ProgrammeModel,
    pub surveillance: SurveillanceModel,
}

/// Notifiable-disease reports and sentinel counts (`[model.surveillance]`).
#[derive(Debug, Clone, Deserialize)]
pub struct SurveillanceModel {
    pub population: f64,
    pub outbreaks_per_year: f64,
    pub recent_outbreaks: usize,
    pub recent_days: i64,
    pub outbreak_cases: (i64, i64),
    pub outbreak_days: (i64, i64),
    pub on_time: f64,
    pub excluded: f64,
    pub sentinel_years: i64,
    pub sentinel_missing: f64,
    pub sentinel_means: Vec<(String, f64)>,
    pub fixed_cases: Vec<(String, i64)>,
    pub sporadic: Vec<(String, f64)>,
    pub disease: Vec<SeasonalDisease>,
}

/// A common disease with a seasonal baseline and outbreaks of its own.
#[derive(Debug, Clone, Deserialize)]
pub struct SeasonalDisease {
    pub code: String,
    /// Cases per 100,000 per year.
    pub incidence: f64,
    /// Relative level by calendar month (January first).
    pub season: [f64; 12],
    /// Relative chance that an injected outbreak is of this disease.
    pub outbreak: f64,
}

/// Rates of the public-health programmes in the history (`[model.programmes]`).
#[derive(Debug, Clone, Deserialize)]
pub struct ProgrammeModel {
    pub elderly_check: f64,
    pub self_care: Vec<f64>,
    pub disabled_elderly: f64,
    pub pregnancy_rate: f64,
    pub first_visit_on_time: f64,
    pub prenatal_uptake: f64,
    pub postpartum_uptake: f64,
    pub pregnancy_risks: Vec<(String, f64)>,
    pub anaemia: f64,
    pub child_visit_uptake: f64,
    pub child_hb_uptake: f64,
    pub mental_followups_per_year: Vec<f64>,
    pub danger_level: Vec<f64>,
}

/// The value of an age-banded table for `age` (bands are `[from_age, value]`, ascending).
pub fn banded(table: &[(u32, f64)], age: u32) -> f64 {
    table
        .iter()
        .rev()
        .find(|(from, _)| age >= *from)
        .map(|(_, v)| *v)
        .unwrap_or(0.0)
}

pub use dhp_core::plan::{Calibration, Target};

pub fn district() -> DistrictConfig {
    toml::from_str(include_str!("../../../data/district/qingpu.toml"))
        .expect("data/district/qingpu.toml is valid")
}

pub fn calibration() -> &'static Calibration {
    dhp_core::plan::calibration()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_files_load_and_agree() {
        let d = district();
        let c = calibration();
        assert_eq!(d.areas.len(), 11, "Qingpu's 3 streets and 8 towns");
        assert_eq!(d.centres.len(), 12, "the plan's twelve centres");
        for centre in &d.centres {
            assert!(
                d.areas.iter().any(|a| a.code == centre.area),
                "{}",
                centre.code
            );
        }
        for a in &d.areas {
            let share: f64 = d
                .centres
                .iter()
                .filter(|c| c.area == a.code)
                .map(|c| c.share)
                .sum();
            assert!(
                (share - 1.0).abs() < 1e-9,
                "{} centres' shares sum to {share}",
                a.code
            );
        }
        let total: f64 = d.areas.iter().map(|a| a.share).sum();
        assert!((total - 1.0).abs() < 1e-9, "area shares sum to {total}");
        for key in [
            "key_population_signing_rate",
            "community_visit_rate",
            "in_combination_visit_rate",
            "hypertension_management_rate",
            "diabetes_management_rate",
            "beds_per_1000",
            "physicians_per_1000",
            "nurses_per_1000",
            "gps_per_1000",
        ] {
            assert!(c.value(key) > 0.0);
        }
        assert_eq!(banded(&d.model.hypertension, 17), 0.0);
        assert_eq!(banded(&d.model.hypertension, 18), 0.03);
        assert_eq!(banded(&d.model.hypertension, 80), 0.55);
    }
}

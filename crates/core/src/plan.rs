//! Plan figures as data: the 2020 baselines the synthetic district is calibrated to
//! (`data/calibration/qingpu-2020.toml`), each with the plan clause it comes from.

use std::sync::OnceLock;

use serde::Deserialize;

/// One plan figure with its source clause.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Target {
    pub key: String,
    /// The indicator (data/indicators/indicators.toml) that measures this figure.
    pub indicator: String,
    pub name_zh: String,
    pub value: f64,
    /// `%` or `per 1,000`.
    pub unit: String,
    /// Allowed distance of a generated district: points for %, relative % otherwise.
    pub tolerance: f64,
    pub clause: String,
}

impl Target {
    pub fn is_percent(&self) -> bool {
        self.unit == "%"
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Calibration {
    #[serde(rename = "target")]
    pub targets: Vec<Target>,
}

impl Calibration {
    pub fn target(&self, key: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.key == key)
    }

    /// The value for `key`; the file is compiled in and its keys are checked by tests,
    /// so a missing key is a programming error.
    pub fn value(&self, key: &str) -> f64 {
        self.target(key)
            .map(|t| t.value)
            .unwrap_or_else(|| panic!("calibration target {key} missing"))
    }
}

/// The Qingpu 2020 baseline figures.
pub fn calibration() -> &'static Calibration {
    static CAL: OnceLock<Calibration> = OnceLock::new();
    CAL.get_or_init(|| {
        toml::from_str(include_str!("../../../data/calibration/qingpu-2020.toml"))
            .expect("data/calibration/qingpu-2020.toml is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_cites_its_clause() {
        let c = calibration();
        assert_eq!(c.value("key_population_signing_rate"), 83.4);
        assert_eq!(c.value("gps_per_1000"), 0.35);
        for t in &c.targets {
            assert!(!t.clause.is_empty() && t.tolerance > 0.0, "{}", t.key);
            let ind = crate::indicators::indicator(&t.indicator)
                .unwrap_or_else(|| panic!("{}: no indicator {}", t.key, t.indicator));
            assert!(ind.supported, "{}", t.key);
        }
    }
}

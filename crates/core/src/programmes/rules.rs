//! The programme rule table (`data/programme-rules.toml`), parsed once. Every threshold,
//! interval and window of domain-rules §2, §4 and §5 lives there, not in code.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::codes::Span;

/// The whole rule table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProgrammeRules {
    pub immunization: ImmunizationRules,
    pub hypertension: ChronicRules,
    pub diabetes: ChronicRules,
    pub elderly: ElderlyRules,
    pub maternal: MaternalRules,
    pub child: ChildRules,
    pub mental: MentalRules,
    pub key_population: KeyPopulationRules,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ImmunizationRules {
    pub overdue_grace: Span,
    pub live_injectable_gap: Span,
    pub catch_up_until: Span,
}

/// Hypertension or type-2 diabetes follow-up rules (domain-rules §4). Thresholds a
/// programme does not use are absent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChronicRules {
    pub min_age: u32,
    pub followups_per_year: u32,
    pub interval: Span,
    pub window_before: Span,
    pub grace: Span,
    pub controlled_sbp_below: Option<f64>,
    pub controlled_dbp_below: Option<f64>,
    pub older_from_age: Option<u32>,
    pub older_controlled_sbp_below: Option<f64>,
    pub older_controlled_dbp_below: Option<f64>,
    pub controlled_glucose_below: Option<f64>,
    pub emergency_sbp_at_least: f64,
    pub emergency_dbp_at_least: f64,
    pub emergency_glucose_at_least: Option<f64>,
    pub emergency_glucose_at_most: Option<f64>,
    pub emergency_heart_rate_above: Option<f64>,
    pub emergency_temperature_above: Option<f64>,
    pub revisit_after_uncontrolled: Span,
    pub consecutive_uncontrolled_to_refer: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SelfCareBand {
    pub from: u32,
    pub band: String,
    pub name_zh: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ElderlyRules {
    pub min_age: u32,
    pub interval: Span,
    pub window_before: Span,
    pub grace: Span,
    pub self_care_bands: Vec<SelfCareBand>,
}

/// A scheduled contact with a window, in gestational weeks or in ages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WeekWindow {
    pub key: String,
    pub from_week: u32,
    pub to_week: u32,
    pub name_zh: String,
    pub name_en: String,
}

/// Colours of the pregnancy risk grading, lowest first (purple apart).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskColour {
    Green,
    Yellow,
    Orange,
    Red,
    Purple,
}

impl RiskColour {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskColour::Green => "green",
            RiskColour::Yellow => "yellow",
            RiskColour::Orange => "orange",
            RiskColour::Red => "red",
            RiskColour::Purple => "purple",
        }
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            RiskColour::Green => "绿色（低风险）",
            RiskColour::Yellow => "黄色（一般风险）",
            RiskColour::Orange => "橙色（较高风险）",
            RiskColour::Red => "红色（高风险）",
            RiskColour::Purple => "紫色（传染性疾病）",
        }
    }
}

/// One factor of the five-colour grading (domain-rules §5).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RiskFactor {
    pub colour: RiskColour,
    pub factor: String,
    pub age_at_least: Option<u32>,
    pub age_at_most: Option<u32>,
    /// Observation key (`haemoglobin`, `platelets`, `bmi`).
    pub observation: Option<String>,
    pub at_least: Option<f64>,
    pub at_most: Option<f64>,
    pub above: Option<f64>,
    pub below: Option<f64>,
    #[serde(default)]
    pub any_of: Vec<String>,
    #[serde(default)]
    pub all_of: Vec<Vec<String>>,
}

impl RiskFactor {
    /// Whether `x` lies in the factor's observation range.
    pub fn in_range(&self, x: f64) -> bool {
        self.at_least.is_none_or(|b| x >= b)
            && self.at_most.is_none_or(|b| x <= b)
            && self.above.is_none_or(|b| x > b)
            && self.below.is_none_or(|b| x < b)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MaternalRules {
    pub pregnancy_codes: Vec<String>,
    pub delivery_codes: Vec<String>,
    pub followed_to_week: u32,
    pub hospital_stay: Span,
    pub prenatal: Vec<WeekWindow>,
    pub postpartum_visit_within: Span,
    pub check_42_at: Span,
    pub check_42_grace: Span,
    pub risk: Vec<RiskFactor>,
}

/// A contact due between two ages.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AgeWindow {
    pub key: String,
    pub from: Span,
    pub to: Span,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChildRules {
    pub until_age: Span,
    pub newborn_visit_within: Span,
    pub visits: Vec<AgeWindow>,
    pub haemoglobin: Vec<AgeWindow>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DangerLevel {
    pub level: u8,
    pub refer: bool,
    pub first: Span,
    pub then: Span,
    pub name_zh: String,
    pub name_en: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MentalRules {
    pub grace: Span,
    pub window_before: Span,
    pub levels: Vec<DangerLevel>,
}

impl MentalRules {
    pub fn level(&self, level: u8) -> Option<&DangerLevel> {
        self.levels.iter().find(|l| l.level == level)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct KeyPopulationRules {
    pub older_from_age: u32,
    pub children_until_age: u32,
    pub disability_levels_from: u8,
}

/// The rule table in force.
pub fn programme_rules() -> &'static ProgrammeRules {
    static RULES: OnceLock<ProgrammeRules> = OnceLock::new();
    RULES.get_or_init(|| {
        toml::from_str(include_str!("../../../../data/programme-rules.toml"))
            .expect("data/programme-rules.toml is valid")
    })
}

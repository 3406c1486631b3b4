//! Outbreak-detection algorithms (暴发探测), domain-rules §6. Each takes a series of
//! counts (daily or weekly, oldest first) and scores every point it has enough history
//! for: the statistic, a threshold on the count scale where one exists, the expected
//! count, and whether it alarms.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use statrs::distribution::{
    ContinuousCDF, DiscreteCDF, NegativeBinomial, Normal, Poisson, StudentsT,
};

use super::glm;

mod farrington;
pub use farrington::*;

/// How often a series is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cadence {
    Daily,
    Weekly,
}

impl Cadence {
    /// Points per year: the lag to "the same time last year".
    pub fn period(self) -> usize {
        match self {
            Cadence::Daily => 365,
            Cadence::Weekly => 52,
        }
    }

    /// Points in the CIDARS observation window (7 days).
    pub fn week(self) -> usize {
        match self {
            Cadence::Daily => 7,
            Cadence::Weekly => 1,
        }
    }
}

/// One scored point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Score {
    /// The count compared with the threshold: the point's count, or the 7-day total
    /// for the moving percentile and Farrington on daily counts.
    pub observed: f64,
    /// The algorithm's own statistic (count, C-statistic, CUSUM sum, Farrington score).
    pub statistic: f64,
    /// Upper bound on the count scale (NaN where the algorithm gives none, e.g. too few
    /// recent cases for Farrington).
    pub threshold: f64,
    /// Baseline expectation (mean, fitted μ₀, reference mean); NaN where none.
    pub expected: f64,
    pub alarm: bool,
}

/// A bad algorithm name or parameter; names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DetectError {
    #[error("unknown algorithm `{0}`; known: fixed, mpm, ears-c1, ears-c2, ears-c3, ears-c3-hutwagner, farrington, farrington-noufaily, cusum")]
    UnknownAlgorithm(String),
    #[error("{algorithm}: unknown parameter `{name}`; accepted: {accepted}")]
    UnknownParameter {
        algorithm: &'static str,
        name: String,
        accepted: &'static str,
    },
    #[error("{algorithm}: parameter `{name}` = `{value}`: {reason}")]
    BadValue {
        algorithm: &'static str,
        name: String,
        value: String,
        reason: &'static str,
    },
}

/// Percentile interpolation between order statistics (R quantile types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// R type 7: linear between the two neighbouring order statistics.
    Linear,
    Lower,
    Higher,
    Nearest,
}

/// Fixed threshold (CIDARS single-case diseases): alarm when the count reaches `cases`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fixed {
    pub cases: f64,
}

/// CIDARS moving percentile method.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MovingPercentile {
    /// Percentile of the baseline, 0–100 (default 80).
    pub percentile: f64,
    /// Years of history (default 3).
    pub years: usize,
    /// Windows either side of the same window in each year (default 2).
    pub side_windows: usize,
    /// `>` (true, default) or `≥` against the percentile.
    pub strict: bool,
    pub interpolation: Interpolation,
    /// No alarm on a week with fewer cases than this (default 1): small areas whose
    /// baseline is mostly zero would otherwise alarm on single cases.
    pub min_cases: f64,
}

/// EARS C1 / C2 / C3 (R `surveillance::earsC`) and the published Hutwagner C3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ears {
    pub alpha: f64,
    pub baseline: usize,
    pub min_sigma: f64,
    /// Hutwagner C3 only: alarm when the summed excess exceeds this (default 2).
    pub limit: f64,
}

/// Threshold construction of the Farrington family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FarringtonThreshold {
    /// Delta method on the 2/3-power scale (Farrington 1996).
    Delta,
    /// Negative-binomial quantile with the plug-in mean (Noufaily 2013).
    NbPlugin,
}

/// Farrington flexible (`surveillance::farringtonFlexible`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Farrington {
    /// Years back.
    pub b: usize,
    /// Half-width of the window around the same time in earlier years.
    pub w: usize,
    pub alpha: f64,
    pub reweight: bool,
    /// Anscombe residuals above this are down-weighted (1 original, 2.58 Noufaily).
    pub weights_threshold: f64,
    pub trend: bool,
    pub p_trend: f64,
    /// No alarm unless at least `limit_cases` in the last `limit_period` points.
    pub limit_cases: f64,
    pub limit_period: usize,
    pub threshold: FarringtonThreshold,
    /// Seasonal factor levels over the whole baseline (1 = windows only).
    pub periods: usize,
    /// Most recent points left out of the baseline (default w).
    pub past_excluded: usize,
}

/// Standardised CUSUM.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cusum {
    pub k: f64,
    pub h: f64,
    /// Reference mean; when absent, the mean of the `baseline` points before `guard`.
    pub m: Option<f64>,
    pub baseline: usize,
    pub guard: usize,
    /// Smallest mean used in the standardisation, so a zero baseline still scales.
    pub min_mean: f64,
    pub reset: bool,
}

/// A configured detector.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "algorithm", rename_all = "kebab-case")]
pub enum Algorithm {
    Fixed(Fixed),
    Mpm(MovingPercentile),
    EarsC1(Ears),
    EarsC2(Ears),
    EarsC3(Ears),
    EarsC3Hutwagner(Ears),
    Farrington(Farrington),
    FarringtonNoufaily(Farrington),
    Cusum(Cusum),
}

/// Every algorithm name, in the order the tables print them.
pub const ALGORITHMS: [&str; 9] = [
    "fixed",
    "mpm",
    "ears-c1",
    "ears-c2",
    "ears-c3",
    "ears-c3-hutwagner",
    "farrington",
    "farrington-noufaily",
    "cusum",
];

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

struct Params<'a> {
    algorithm: &'static str,
    accepted: &'static str,
    map: BTreeMap<&'a str, &'a str>,
}

impl<'a> Params<'a> {
    fn new(
        algorithm: &'static str,
        accepted: &'static str,
        params: &'a [(String, String)],
    ) -> Result<Self, DetectError> {
        let names: Vec<&str> = accepted.split(", ").collect();
        let mut map = BTreeMap::new();
        for (k, v) in params {
            if !names.contains(&k.as_str()) {
                return Err(DetectError::UnknownParameter {
                    algorithm,
                    name: k.clone(),
                    accepted,
                });
            }
            map.insert(k.as_str(), v.as_str());
        }
        Ok(Params {
            algorithm,
            accepted,
            map,
        })
    }

    fn bad(&self, name: &str, reason: &'static str) -> DetectError {
        DetectError::BadValue {
            algorithm: self.algorithm,
            name: name.to_string(),
            value: self.map.get(name).copied().unwrap_or("").to_string(),
            reason,
        }
    }

    fn f64(
        &self,
        name: &str,
        default: f64,
        ok: fn(f64) -> bool,
        why: &'static str,
    ) -> Result<f64, DetectError> {
        match self.map.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(x) if x.is_finite() && ok(x) => Ok(x),
                Ok(_) => Err(self.bad(name, why)),
                Err(_) => Err(self.bad(name, "not a number")),
            },
        }
    }

    fn usize(&self, name: &str, default: usize, min: usize) -> Result<usize, DetectError> {
        match self.map.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<usize>() {
                Ok(x) if x >= min => Ok(x),
                Ok(_) => Err(self.bad(name, "too small")),
                Err(_) => Err(self.bad(name, "not a whole number")),
            },
        }
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, DetectError> {
        match self.map.get(name).map(|v| v.trim()) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(_) => Err(self.bad(name, "expected true or false")),
        }
    }

    fn alpha(&self, alpha: Option<f64>, default: f64) -> Result<f64, DetectError> {
        let a = self.f64(
            "alpha",
            alpha.unwrap_or(default),
            |a| a > 0.0 && a < 1.0,
            "must lie strictly between 0 and 1",
        )?;
        if let Some(a) = alpha {
            if !(a > 0.0 && a < 1.0) {
                return Err(DetectError::BadValue {
                    algorithm: self.algorithm,
                    name: "alpha".into(),
                    value: a.to_string(),
                    reason: "must lie strictly between 0 and 1",
                });
            }
        }
        Ok(a)
    }

    fn no_alpha(&self, alpha: Option<f64>) -> Result<(), DetectError> {
        match alpha {
            Some(a) => Err(DetectError::BadValue {
                algorithm: self.algorithm,
                name: "alpha".into(),
                value: a.to_string(),
                reason: "this algorithm has no alpha; see its parameters",
            }),
            None => {
                let _ = self.accepted;
                Ok(())
            }
        }
    }
}

fn positive(x: f64) -> bool {
    x > 0.0
}
fn non_negative(x: f64) -> bool {
    x >= 0.0
}

impl Algorithm {
    /// The algorithm's command-line name.
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Fixed(_) => "fixed",
            Algorithm::Mpm(_) => "mpm",
            Algorithm::EarsC1(_) => "ears-c1",
            Algorithm::EarsC2(_) => "ears-c2",
            Algorithm::EarsC3(_) => "ears-c3",
            Algorithm::EarsC3Hutwagner(_) => "ears-c3-hutwagner",
            Algorithm::Farrington(_) => "farrington",
            Algorithm::FarringtonNoufaily(_) => "farrington-noufaily",
            Algorithm::Cusum(_) => "cusum",
        }
    }

    /// Builds a detector from its name, an optional α and `name=value` parameters,
    /// each defaulting to domain-rules §6.
    pub fn configure(
        name: &str,
        alpha: Option<f64>,
        params: &[(String, String)],
    ) -> Result<Algorithm, DetectError> {
        Ok(match name {
            "fixed" => {
                let p = Params::new("fixed", "cases", params)?;
                p.no_alpha(alpha)?;
                Algorithm::Fixed(Fixed {
                    cases: p.f64("cases", 1.0, positive, "must be above 0")?,
                })
            }
            "mpm" => {
                let p = Params::new(
                    "mpm",
                    "percentile, years, side_windows, strict, interpolation, min_cases",
                    params,
                )?;
                p.no_alpha(alpha)?;
                let interpolation = match p.map.get("interpolation").map(|s| s.trim()) {
                    None | Some("linear") => Interpolation::Linear,
                    Some("lower") => Interpolation::Lower,
                    Some("higher") => Interpolation::Higher,
                    Some("nearest") => Interpolation::Nearest,
                    Some(_) => {
                        return Err(
                            p.bad("interpolation", "expected linear, lower, higher or nearest")
                        )
                    }
                };
                Algorithm::Mpm(MovingPercentile {
                    percentile: p.f64(
                        "percentile",
                        80.0,
                        |x| (0.0..=100.0).contains(&x),
                        "must lie in 0–100",
                    )?,
                    years: p.usize("years", 3, 1)?,
                    side_windows: p.usize("side_windows", 2, 0)?,
                    strict: p.bool("strict", true)?,
                    interpolation,
                    min_cases: p.f64("min_cases", 1.0, non_negative, "must not be negative")?,
                })
            }
            "ears-c1" | "ears-c2" | "ears-c3" | "ears-c3-hutwagner" => {
                let algorithm: &'static str = ALGORITHMS
                    .iter()
                    .find(|a| **a == name)
                    .copied()
                    .unwrap_or("ears");
                let p = Params::new(algorithm, "alpha, baseline, min_sigma, limit", params)?;
                // R's earsC defaults: α = 0.001 for C1/C2, 0.025 for C3.
                let default_alpha = if name == "ears-c3" { 0.025 } else { 0.001 };
                let ears = Ears {
                    alpha: p.alpha(alpha, default_alpha)?,
                    baseline: p.usize("baseline", 7, 3)?,
                    min_sigma: p.f64("min_sigma", 0.0, non_negative, "must not be negative")?,
                    limit: p.f64("limit", 2.0, non_negative, "must not be negative")?,
                };
                match name {
                    "ears-c1" => Algorithm::EarsC1(ears),
                    "ears-c2" => Algorithm::EarsC2(ears),
                    "ears-c3" => Algorithm::EarsC3(ears),
                    _ => Algorithm::EarsC3Hutwagner(ears),
                }
            }
            "farrington" | "farrington-noufaily" => {
                let noufaily = name == "farrington-noufaily";
                let algorithm = if noufaily {
                    "farrington-noufaily"
                } else {
                    "farrington"
                };
                let p = Params::new(
                    algorithm,
                    "alpha, b, w, reweight, weights_threshold, trend, p_trend, limit_cases, limit_period, periods, past_excluded",
                    params,
                )?;
                let w = p.usize("w", 3, 0)?;
                let (thr, periods, excluded) = if noufaily {
                    (2.58, 10, 26)
                } else {
                    (1.0, 1, w)
                };
                Algorithm::from_farrington(
                    noufaily,
                    Farrington {
                        b: p.usize("b", 5, 1)?,
                        w,
                        alpha: p.alpha(alpha, 0.05)?,
                        reweight: p.bool("reweight", true)?,
                        weights_threshold: p.f64(
                            "weights_threshold",
                            thr,
                            non_negative,
                            "must not be negative",
                        )?,
                        trend: p.bool("trend", true)?,
                        p_trend: p.f64(
                            "p_trend",
                            0.05,
                            |x| x > 0.0 && x <= 1.0,
                            "must lie in (0, 1]",
                        )?,
                        limit_cases: p.f64(
                            "limit_cases",
                            5.0,
                            non_negative,
                            "must not be negative",
                        )?,
                        limit_period: p.usize("limit_period", 4, 1)?,
                        threshold: if noufaily {
                            FarringtonThreshold::NbPlugin
                        } else {
                            FarringtonThreshold::Delta
                        },
                        periods: p.usize("periods", periods, 1)?,
                        past_excluded: p.usize("past_excluded", excluded, 0)?,
                    },
                )
            }
            "cusum" => {
                let p = Params::new("cusum", "k, h, m, baseline, guard, min_mean, reset", params)?;
                p.no_alpha(alpha)?;
                let m = match p.map.get("m") {
                    None => None,
                    Some(_) => Some(p.f64("m", 0.0, positive, "must be above 0")?),
                };
                Algorithm::Cusum(Cusum {
                    k: p.f64("k", 1.04, non_negative, "must not be negative")?,
                    h: p.f64("h", 2.26, positive, "must be above 0")?,
                    m,
                    baseline: p.usize("baseline", 7, 1)?,
                    guard: p.usize("guard", 0, 0)?,
                    min_mean: p.f64("min_mean", 0.25, positive, "must be above 0")?,
                    reset: p.bool("reset", true)?,
                })
            }
            other => return Err(DetectError::UnknownAlgorithm(other.to_string())),
        })
    }

    fn from_farrington(noufaily: bool, f: Farrington) -> Algorithm {
        if noufaily {
            Algorithm::FarringtonNoufaily(f)
        } else {
            Algorithm::Farrington(f)
        }
    }

    /// Scores every point of `counts`; None where there is not enough history.
    pub fn score(&self, counts: &[f64], cadence: Cadence) -> Vec<Option<Score>> {
        match self {
            Algorithm::Fixed(f) => counts
                .iter()
                .map(|&x| {
                    Some(Score {
                        observed: x,
                        statistic: x,
                        threshold: f.cases,
                        expected: 0.0,
                        alarm: x >= f.cases,
                    })
                })
                .collect(),
            Algorithm::Mpm(m) => mpm(m, counts, cadence),
            Algorithm::EarsC1(e) => ears_c12(e, counts, 0),
            Algorithm::EarsC2(e) => ears_c12(e, counts, 2),
            Algorithm::EarsC3(e) => ears_c3(e, counts, false),
            Algorithm::EarsC3Hutwagner(e) => ears_c3(e, counts, true),
            Algorithm::Farrington(f) | Algorithm::FarringtonNoufaily(f) => {
                farrington(f, counts, cadence)
            }
            Algorithm::Cusum(c) => cusum(c, counts),
        }
    }
}

/// Standard normal quantile.
pub fn qnorm(p: f64) -> f64 {
    Normal::standard().inverse_cdf(p)
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    (mean, (ss / (n - 1.0)).sqrt())
}

/// EARS C1 (lag 0) and C2 (lag 2): U = μ + z·max(σ, minSigma) over `baseline` points
/// ending `lag` points before t; alarm when x_t > U.
fn ears_c12(e: &Ears, x: &[f64], lag: usize) -> Vec<Option<Score>> {
    let z = qnorm(1.0 - e.alpha);
    let first = e.baseline + lag;
    (0..x.len())
        .map(|t| {
            if t < first {
                return None;
            }
            let (mu, sd) = mean_sd(&x[t - first..t - lag]);
            let sigma = sd.max(e.min_sigma);
            let u = mu + z * sigma;
            Some(Score {
                observed: x[t],
                statistic: standardise(x[t], mu, sigma),
                threshold: u,
                expected: mu,
                alarm: x[t] > u,
            })
        })
        .collect()
}

/// (x − μ)/σ with 0/0 read as no excess.
fn standardise(x: f64, mu: f64, sigma: f64) -> f64 {
    let s = (x - mu) / sigma;
    if s.is_nan() {
        0.0
    } else {
        s
    }
}

/// EARS C3. The R variant: U = x_t + σ_t(z − p_{t−1} − p_{t−2}) clamped at 0, with
/// pᵢ = max(0, C2ᵢ − 1). The published (Hutwagner 2003) variant sums max(0, C2ᵢ − 1)
/// over t−2…t and alarms above `limit` (2).
fn ears_c3(e: &Ears, x: &[f64], hutwagner: bool) -> Vec<Option<Score>> {
    let z = qnorm(1.0 - e.alpha);
    let c2 = ears_c12(e, x, 2);
    let first = e.baseline + 4;
    (0..x.len())
        .map(|t| {
            if t < first {
                return None;
            }
            let excess = |s: &Score| (s.statistic - 1.0).max(0.0);
            let now = c2[t]?;
            let p1 = excess(&c2[t - 1]?);
            let p2 = excess(&c2[t - 2]?);
            let sigma = (now.threshold - now.expected) / z;
            let sigma = if sigma.is_finite() { sigma } else { 0.0 };
            if hutwagner {
                let statistic = p1 + p2 + excess(&now);
                let threshold = (now.expected + sigma * (1.0 + e.limit - p1 - p2)).max(0.0);
                Some(Score {
                    observed: x[t],
                    statistic,
                    threshold,
                    expected: now.expected,
                    alarm: statistic > e.limit,
                })
            } else {
                let u = if sigma > 0.0 {
                    (x[t] + sigma * (z - p1 - p2)).max(0.0)
                } else {
                    x[t].max(0.0)
                };
                Some(Score {
                    observed: x[t],
                    statistic: p1 + p2,
                    threshold: u,
                    expected: now.expected,
                    alarm: x[t] > u,
                })
            }
        })
        .collect()
}

fn percentile(sorted: &[f64], q: f64, how: Interpolation) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    match how {
        Interpolation::Linear => sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]),
        Interpolation::Lower => sorted[lo],
        Interpolation::Higher => sorted[hi],
        Interpolation::Nearest => sorted[h.round() as usize],
    }
}

/// CIDARS moving percentile: the rolling one-week count against the percentile of the
/// same week and `side_windows` weeks either side in each of `years` earlier years.
fn mpm(m: &MovingPercentile, x: &[f64], cadence: Cadence) -> Vec<Option<Score>> {
    let win = cadence.week();
    let period = cadence.period();
    // rolling[t] = sum of x[t−win+1..=t]
    let mut rolling = vec![f64::NAN; x.len()];
    let mut acc = 0.0;
    for t in 0..x.len() {
        acc += x[t];
        if t >= win {
            acc -= x[t - win];
        }
        if t + 1 >= win {
            rolling[t] = acc;
        }
    }
    let reach = m.years * period + m.side_windows * win + win - 1;
    let mut base = Vec::with_capacity(m.years * (2 * m.side_windows + 1));
    (0..x.len())
        .map(|t| {
            if t < reach {
                return None;
            }
            base.clear();
            for y in 1..=m.years {
                let centre = t - y * period;
                for j in 0..=2 * m.side_windows {
                    base.push(rolling[centre + j * win - m.side_windows * win]);
                }
            }
            base.sort_by(f64::total_cmp);
            let threshold = percentile(&base, m.percentile / 100.0, m.interpolation);
            let observed = rolling[t];
            Some(Score {
                observed,
                statistic: observed,
                threshold,
                expected: percentile(&base, 0.5, Interpolation::Linear),
                alarm: observed >= m.min_cases
                    && if m.strict {
                        observed > threshold
                    } else {
                        observed >= threshold
                    },
            })
        })
        .collect()
}

/// Standardised CUSUM: S_t = max(0, S_{t−1} + (x_t − m)/√m − k), alarm at S_t ≥ h.
fn cusum(c: &Cusum, x: &[f64]) -> Vec<Option<Score>> {
    let first = if c.m.is_some() {
        0
    } else {
        c.baseline + c.guard
    };
    let mut s = 0.0;
    (0..x.len())
        .map(|t| {
            if t < first {
                return None;
            }
            let m = match c.m {
                Some(m) => m,
                None => {
                    let from = t - c.guard - c.baseline;
                    x[from..from + c.baseline].iter().sum::<f64>() / c.baseline as f64
                }
            };
            let scale = m.max(c.min_mean).sqrt();
            let threshold = m + scale * (c.h + c.k - s);
            s = (s + (x[t] - m) / scale - c.k).max(0.0);
            let alarm = s >= c.h;
            let score = Score {
                observed: x[t],
                statistic: s,
                threshold: threshold.max(0.0),
                expected: m,
                alarm,
            };
            if alarm && c.reset {
                s = 0.0;
            }
            Some(score)
        })
        .collect()
}

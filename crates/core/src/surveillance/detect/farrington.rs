//! The Farrington (Farrington et al. 1996) and Noufaily (2013) detectors over the
//! quasi-Poisson fit of `glm`, as R's `surveillance` computes them.

use super::*;

/// Weights from Anscombe residuals: ω = γ/s² above the threshold, γ otherwise, with γ
/// chosen so the weights sum to n (domain-rules §6).
pub fn anscombe_weights(s: &[f64], threshold: f64) -> Vec<f64> {
    let denom: f64 = s
        .iter()
        .map(|&s| if s > threshold { s.powi(-2) } else { 1.0 })
        .sum();
    let gamma = s.len() as f64 / denom;
    s.iter()
        .map(|&s| {
            if s > threshold {
                gamma * s.powi(-2)
            } else {
                gamma
            }
        })
        .collect()
}

/// Delta-method threshold on the 2/3-power scale:
/// τ = φ + se²/μ₀, U = (μ₀^{2/3} + z·√(4/9·μ₀^{1/3}·τ))^{3/2}, z = Φ⁻¹(1 − α).
pub fn farrington_delta_threshold(mu0: f64, se: f64, phi: f64, alpha: f64) -> f64 {
    let tau = phi + se * se / mu0;
    let sd = (4.0 / 9.0 * mu0.powf(1.0 / 3.0) * tau).sqrt();
    (mu0.powf(2.0 / 3.0) + qnorm(1.0 - alpha) * sd).powf(1.5)
}

/// Noufaily plug-in threshold: the (1 − α) quantile of a negative binomial with mean μ₀
/// and dispersion φ (size μ₀/(φ−1), prob 1/φ), Poisson when φ = 1.
pub fn noufaily_threshold(mu0: f64, phi: f64, alpha: f64) -> f64 {
    let q = 1.0 - alpha;
    if !mu0.is_finite() || mu0 < 0.0 {
        return f64::NAN;
    }
    if phi > 1.0 {
        let (r, p) = (mu0 / (phi - 1.0), 1.0 / phi);
        // pmf(0) = pʳ; pmf(k+1) = pmf(k)·(k + r)/(k + 1)·(1 − p)
        let first = r * p.ln();
        if first > -700.0 {
            return quantile_by_pmf(first.exp(), |k| (k + r) / (k + 1.0) * (1.0 - p), q);
        }
        match NegativeBinomial::new(r, p) {
            Ok(d) => quantile_discrete(|k| d.cdf(k), q),
            Err(_) => f64::NAN,
        }
    } else if mu0 < 700.0 {
        quantile_by_pmf((-mu0).exp(), |k| mu0 / (k + 1.0), q)
    } else {
        match Poisson::new(mu0) {
            Ok(d) => quantile_discrete(|k| d.cdf(k), q),
            Err(_) => f64::NAN,
        }
    }
}

/// Smallest k whose cumulative probability reaches q (R's convention, with its
/// relative fuzz), summing the mass function from 0 with the ratio pmf(k+1)/pmf(k).
pub(super) fn quantile_by_pmf(pmf0: f64, ratio: impl Fn(f64) -> f64, q: f64) -> f64 {
    let target = q * (1.0 - 64.0 * f64::EPSILON);
    let (mut k, mut pmf, mut cdf) = (0.0, pmf0, pmf0);
    while cdf < target {
        pmf *= ratio(k);
        k += 1.0;
        cdf += pmf;
        if pmf <= 0.0 && k > 1e7 {
            return f64::NAN;
        }
    }
    k
}

/// Smallest k with F(k) ≥ q (R's convention, with its small relative fuzz).
pub(super) fn quantile_discrete(cdf: impl Fn(u64) -> f64, q: f64) -> f64 {
    let target = q * (1.0 - 64.0 * f64::EPSILON);
    let mut hi: u64 = 1;
    while cdf(hi) < target {
        hi *= 2;
        if hi > 1 << 40 {
            return f64::NAN;
        }
    }
    let mut lo: u64 = 0;
    if cdf(0) >= target {
        return 0.0;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if cdf(mid) >= target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi as f64
}

/// Whether a t statistic is significant at two-sided level `p` with `df` degrees of
/// freedom: |t| above the critical value (cached per level and df; the same decision
/// as comparing the p-value).
pub(super) fn t_significant(t: f64, df: usize, p: f64) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CRITICAL: RefCell<HashMap<(u64, usize), f64>> = RefCell::new(HashMap::new());
    }
    if df == 0 || !t.is_finite() {
        return false;
    }
    let critical = CRITICAL.with(|c| {
        *c.borrow_mut().entry((p.to_bits(), df)).or_insert_with(|| {
            StudentsT::new(0.0, 1.0, df as f64)
                .map(|d| d.inverse_cdf(1.0 - p / 2.0))
                .unwrap_or(f64::INFINITY)
        })
    });
    t.abs() > critical
}

/// One Farrington model: design rows, responses and where the prediction sits.
pub(super) struct Design {
    rows: Vec<glm::Row>,
    p: usize,
    trend: bool,
    y: Vec<f64>,
    /// Row of the point being scored (trend at t, the current season level).
    now: glm::Row,
}

/// Seasonal level of point `j` for the model scored at `t` (R `blocks`): `periods`
/// for the windows of w points around t − i·P (and around t itself), 1 … periods−1
/// for the blocks that split the stretch after each window; None outside them.
pub(super) fn farrington_level(f: &Farrington, t: usize, period: usize, j: usize) -> Option<usize> {
    let p = f.periods;
    if j + f.w >= t {
        return Some(p);
    }
    let gap = period.saturating_sub(2 * f.w + 1);
    for i in 1..=f.b {
        let reference = t - i * period;
        if j + f.w >= reference && j <= reference + f.w {
            return Some(p);
        }
        if p != 1 && j > reference + f.w && j <= reference + f.w + gap {
            let offset = j - (reference + f.w + 1);
            let size = gap / (p - 1);
            let rest = gap % (p - 1);
            // The first `rest` blocks are one longer.
            let long = rest * (size + 1);
            let level = if offset < long {
                offset / (size + 1)
            } else {
                rest + (offset - long) / size.max(1)
            };
            return Some(level + 1);
        }
    }
    None
}

pub(super) fn farrington_design(
    f: &Farrington,
    x: &[f64],
    t: usize,
    period: usize,
    trend: bool,
) -> Design {
    let start = t - f.b * period - f.w;
    let end = t.saturating_sub(f.past_excluded); // first point left out
    let mut levels = Vec::with_capacity(end.saturating_sub(start));
    for j in start..end {
        if let Some(level) = farrington_level(f, t, period, j) {
            levels.push((j, level));
        }
    }
    // Treatment contrasts: the lowest level present is the reference.
    let mut present = [false; 64];
    for &(_, l) in &levels {
        present[l.min(63)] = true;
    }
    let mut column = [None; 64];
    let mut p = 1 + usize::from(trend);
    let mut seen_reference = false;
    for (l, here) in present.iter().enumerate() {
        if *here {
            if seen_reference {
                column[l] = Some(p);
                p += 1;
            }
            seen_reference = true;
        }
    }
    let row = |j: usize, level: usize| glm::Row {
        time: (j - start) as f64,
        dummy: column[level.min(63)],
    };
    Design {
        rows: levels.iter().map(|&(j, l)| row(j, l)).collect(),
        p,
        trend,
        y: levels.iter().map(|&(j, _)| x[j]).collect(),
        now: row(t, f.periods),
    }
}

/// Fit with optional Anscombe reweighting (R `algo.farrington.fitGLM.flexible`);
/// returns the model and φ = max(1, dispersion).
/// y^{2/3}, from a table for the small counts that make up nearly every series.
pub(super) fn two_thirds(y: f64) -> f64 {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (0..1024).map(|k| (k as f64).powf(2.0 / 3.0)).collect());
    if (0.0..1024.0).contains(&y) && y.fract() == 0.0 {
        table[y as usize]
    } else {
        y.powf(2.0 / 3.0)
    }
}

pub(super) fn farrington_fit(f: &Farrington, d: &Design) -> Option<(glm::Fit, f64)> {
    let n = d.y.len();
    let ones = vec![1.0; n];
    let first = glm::quasi_poisson(&d.rows, d.p, d.trend, &d.y, &ones)?;
    if !first.converged {
        return None;
    }
    let phi = first.dispersion.max(1.0);
    if !f.reweight {
        return Some((first, phi));
    }
    let hat = first.hat_values(&d.rows);
    let s: Vec<f64> = (0..n)
        .map(|i| {
            let (y, mu) = (d.y[i], first.mu[i]);
            let a = 1.5 * (two_thirds(y) * mu.powf(-1.0 / 6.0) - mu.sqrt());
            a / (phi * (1.0 - hat[i])).sqrt()
        })
        .collect();
    let omega = anscombe_weights(&s, f.weights_threshold);
    let mut second = glm::quasi_poisson(&d.rows, d.p, d.trend, &d.y, &omega)?;
    let phi = second.dispersion.max(1.0);
    // The reference implementation stores the Anscombe weights in the model's working
    // weights after fitting, so its later standard errors (prediction and trend test)
    // use Σ ωᵢ rᵢ² / (n − p) with rᵢ = (yᵢ − μᵢ)/μᵢ. Reproduced so thresholds agree.
    let pearson: f64 = (0..n)
        .map(|i| {
            let r = (d.y[i] - second.mu[i]) / second.mu[i];
            omega[i] * r * r
        })
        .sum();
    second.dispersion = pearson / second.df_residual.max(1) as f64;
    Some((second, phi))
}

/// Farrington is a weekly method. On daily counts it scores 7-day totals: the week
/// ending on the series' last day and every 7th day before it, against the same weeks
/// of earlier years (period 52); the other days get no score.
pub(super) fn farrington(f: &Farrington, x: &[f64], cadence: Cadence) -> Vec<Option<Score>> {
    match cadence {
        Cadence::Weekly => farrington_points(f, x, 52),
        Cadence::Daily => {
            let mut out = vec![None; x.len()];
            if x.len() < 7 {
                return out;
            }
            let last = x.len() - 1;
            let ends: Vec<usize> = (0..=(last - 6) / 7).rev().map(|k| last - 7 * k).collect();
            let weekly: Vec<f64> = ends.iter().map(|&e| x[e - 6..=e].iter().sum()).collect();
            for (score, &e) in farrington_points(f, &weekly, 52).into_iter().zip(&ends) {
                out[e] = score;
            }
            out
        }
    }
}

pub(super) fn farrington_points(f: &Farrington, x: &[f64], period: usize) -> Vec<Option<Score>> {
    let first = f.b * period + f.w;
    (0..x.len())
        .map(|t| {
            if t < first || t + 1 < f.limit_period {
                return None;
            }
            let recent: f64 = x[t + 1 - f.limit_period..=t].iter().sum();
            let none = Score {
                observed: x[t],
                statistic: f64::NAN,
                threshold: f64::NAN,
                expected: f64::NAN,
                alarm: false,
            };
            if recent < f.limit_cases {
                return Some(none);
            }
            Some(farrington_point(f, x, t, period).unwrap_or(none))
        })
        .collect()
}

pub(super) fn farrington_point(
    f: &Farrington,
    x: &[f64],
    t: usize,
    period: usize,
) -> Option<Score> {
    // Trend first; kept only if significant, b ≥ 3 and no extrapolation beyond the data
    // (R `algo.farrington.glm`).
    let mut chosen = None;
    if f.trend {
        let d = farrington_design(f, x, t, period, true);
        if let Some((fit, phi)) = farrington_fit(f, &d) {
            let (eta, _) = fit.predict_link(&d.now);
            let t_value = fit.beta[1] / fit.se(1);
            let max_y = d.y.iter().copied().fold(f64::MIN, f64::max);
            if f.b >= 3 && t_significant(t_value, fit.df_residual, f.p_trend) && eta.exp() <= max_y
            {
                chosen = Some((fit, phi, d));
            }
        }
    }
    let (fit, phi, d) = match chosen {
        Some(c) => c,
        None => {
            let d = farrington_design(f, x, t, period, false);
            let (fit, phi) = farrington_fit(f, &d)?;
            (fit, phi, d)
        }
    };
    let (eta0, se_eta) = fit.predict_link(&d.now);
    let y = x[t];
    let mu0 = eta0.exp();
    let (threshold, centre) = match f.threshold {
        FarringtonThreshold::Delta => {
            let se = se_eta * mu0;
            (farrington_delta_threshold(mu0, se, phi, f.alpha), mu0)
        }
        // R scores the plug-in variant against the linear predictor.
        FarringtonThreshold::NbPlugin => (noufaily_threshold(mu0, phi, f.alpha), eta0),
    };
    let statistic = (y - centre) / (threshold - centre);
    Some(Score {
        observed: y,
        statistic,
        threshold,
        expected: mu0,
        alarm: statistic.is_finite() && statistic > 1.0 && y != 0.0,
    })
}

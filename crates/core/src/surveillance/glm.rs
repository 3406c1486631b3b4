//! Quasi-Poisson regression with a log link, fitted by iteratively reweighted least
//! squares the way R's `glm.fit` does it (start at y + 0.1, deviance convergence
//! |Δdev| / (|dev| + 0.1) < 1e-8, at most 25 iterations), so the Farrington detector
//! reproduces the reference implementation's thresholds.

/// One design row of the Farrington models: intercept, optionally a time trend, and
/// at most one seasonal-level dummy (its column). Kept sparse: three non-zeros at most,
/// so the normal equations cost O(n) rather than O(n·p²).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    pub time: f64,
    pub dummy: Option<usize>,
}

/// Non-zero (column, value) pairs of a row.
fn nonzeros(row: &Row, trend: bool) -> ([(usize, f64); 3], usize) {
    let mut out = [(0, 1.0); 3];
    let mut n = 1;
    if trend {
        out[n] = (1, row.time);
        n += 1;
    }
    if let Some(d) = row.dummy {
        out[n] = (d, 1.0);
        n += 1;
    }
    (out, n)
}

/// A fitted model: coefficients, fitted means and what the summaries need.
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    pub trend: bool,
    pub beta: Vec<f64>,
    /// Fitted means μ̂ after the last update.
    pub mu: Vec<f64>,
    /// Working weights of the last iteration (prior weight × μ of the step before).
    pub working: Vec<f64>,
    /// (XᵀWX)⁻¹ of the last iteration, row-major p × p.
    pub cov_unscaled: Vec<f64>,
    /// Pearson estimate Σ wᵢ rᵢ² / (n − p) on working residuals (R's summary dispersion).
    pub dispersion: f64,
    pub df_residual: usize,
    pub converged: bool,
}

impl Fit {
    /// Leverages hᵢ = wᵢ xᵢᵀ (XᵀWX)⁻¹ xᵢ.
    pub fn hat_values(&self, rows: &[Row]) -> Vec<f64> {
        rows.iter()
            .zip(&self.working)
            .map(|(r, w)| w * self.quad(r))
            .collect()
    }

    fn quad(&self, row: &Row) -> f64 {
        let p = self.beta.len();
        let (nz, n) = nonzeros(row, self.trend);
        let mut s = 0.0;
        for &(a, va) in &nz[..n] {
            for &(b, vb) in &nz[..n] {
                s += va * self.cov_unscaled[a * p + b] * vb;
            }
        }
        s
    }

    fn eta(&self, row: &Row) -> f64 {
        let (nz, n) = nonzeros(row, self.trend);
        nz[..n].iter().map(|&(c, v)| v * self.beta[c]).sum()
    }

    /// Linear predictor at a new design row and its standard error (raw dispersion).
    pub fn predict_link(&self, row: &Row) -> (f64, f64) {
        let var = self.quad(row) * self.dispersion;
        (self.eta(row), var.max(0.0).sqrt())
    }

    /// Standard error of coefficient j under the raw dispersion.
    pub fn se(&self, j: usize) -> f64 {
        let p = self.beta.len();
        (self.cov_unscaled[j * p + j] * self.dispersion)
            .max(0.0)
            .sqrt()
    }
}

/// Poisson deviance contribution, y·log(y/μ) taken as 0 at y = 0.
/// With y·log y precomputed, y·log(y/μ) = y·log y − y·η: no logarithm per iteration.
fn deviance(y: &[f64], ylogy: &[f64], eta: &[f64], mu: &[f64], prior: &[f64]) -> f64 {
    let mut d = 0.0;
    for i in 0..y.len() {
        let ylog = if y[i] > 0.0 {
            ylogy[i] - y[i] * eta[i]
        } else {
            0.0
        };
        d += 2.0 * prior[i] * (ylog - (y[i] - mu[i]));
    }
    d
}

/// Fits log μ = Xβ with quasi-Poisson variance; X has `p` columns (intercept, trend
/// when `trend`, then dummies). Returns None when the normal equations are singular.
pub(crate) fn quasi_poisson(
    x: &[Row],
    p: usize,
    trend: bool,
    y: &[f64],
    prior: &[f64],
) -> Option<Fit> {
    let n = y.len();
    debug_assert_eq!(x.len(), n);
    let mut mu: Vec<f64> = y.iter().map(|y| y + 0.1).collect();
    let mut eta: Vec<f64> = mu.iter().map(|m| m.ln()).collect();
    let ylogy: Vec<f64> = y
        .iter()
        .map(|&y| if y > 0.0 { y * y.ln() } else { 0.0 })
        .collect();
    let mut dev_old = deviance(y, &ylogy, &eta, &mu, prior);
    let mut working = vec![0.0; n];
    let mut beta = vec![0.0; p];
    let mut factor = vec![0.0; p * p];
    let mut converged = false;
    let mut xtwx = vec![0.0; p * p];
    let mut xtwz = vec![0.0; p];
    for _ in 0..25 {
        xtwx.iter_mut().for_each(|v| *v = 0.0);
        xtwz.iter_mut().for_each(|v| *v = 0.0);
        // X'WX and X'Wz from a row's three non-zeros at most (intercept, trend,
        // dummy), in the order a dense product would add them.
        for i in 0..n {
            let w = prior[i] * mu[i];
            let zi = eta[i] + (y[i] - mu[i]) / mu[i];
            working[i] = w;
            let wz = w * zi;
            xtwx[0] += w;
            xtwz[0] += wz;
            let t = x[i].time;
            if trend {
                let wt = w * t;
                xtwx[p] += wt;
                xtwx[p + 1] += wt * t;
                xtwz[1] += wt * zi;
                if let Some(d) = x[i].dummy {
                    xtwx[d * p] += w;
                    xtwx[d * p + 1] += wt;
                    xtwx[d * p + d] += w;
                    xtwz[d] += wz;
                }
            } else if let Some(d) = x[i].dummy {
                xtwx[d * p] += w;
                xtwx[d * p + d] += w;
                xtwz[d] += wz;
            }
        }
        for a in 0..p {
            for b in 0..a {
                xtwx[b * p + a] = xtwx[a * p + b];
            }
        }
        cholesky(&xtwx, p, &mut factor)?;
        solve(&factor, p, &xtwz, &mut beta);
        let mut dev = 0.0;
        for i in 0..n {
            let mut e = beta[0];
            if trend {
                e += x[i].time * beta[1];
            }
            if let Some(d) = x[i].dummy {
                e += beta[d];
            }
            eta[i] = e;
            mu[i] = e.exp();
            let ylog = if y[i] > 0.0 { ylogy[i] - y[i] * e } else { 0.0 };
            dev += 2.0 * prior[i] * (ylog - (y[i] - mu[i]));
        }
        if !dev.is_finite() {
            return None;
        }
        if (dev - dev_old).abs() / (dev.abs() + 0.1) < 1e-8 {
            converged = true;
            break;
        }
        dev_old = dev;
    }
    let used = working.iter().filter(|w| **w > 0.0).count();
    let df_residual = used.saturating_sub(p);
    let pearson: f64 = (0..n)
        .filter(|&i| working[i] > 0.0)
        .map(|i| {
            let r = (y[i] - mu[i]) / mu[i];
            working[i] * r * r
        })
        .sum();
    let dispersion = if df_residual > 0 {
        pearson / df_residual as f64
    } else {
        f64::NAN
    };
    Some(Fit {
        trend,
        beta,
        mu,
        working,
        cov_unscaled: invert(&factor, p),
        dispersion,
        df_residual,
        converged,
    })
}

/// Cholesky factor L (row-major, lower) of a symmetric positive-definite matrix;
/// None when it is singular.
fn cholesky(a: &[f64], p: usize, l: &mut [f64]) -> Option<()> {
    l.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..p {
        for j in 0..=i {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            if i == j {
                if s <= a[i * p + i].abs() * 1e-13 || s <= 0.0 {
                    return None;
                }
                l[i * p + i] = s.sqrt();
            } else {
                l[i * p + j] = s / l[j * p + j];
            }
        }
    }
    Some(())
}

/// Solves L Lᵀ x = b.
fn solve(l: &[f64], p: usize, b: &[f64], x: &mut [f64]) {
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = x[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
}

/// (L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹.
fn invert(l: &[f64], p: usize) -> Vec<f64> {
    let mut li = vec![0.0; p * p];
    for i in 0..p {
        li[i * p + i] = 1.0 / l[i * p + i];
        for j in 0..i {
            let mut s = 0.0;
            for k in j..i {
                s -= l[i * p + k] * li[k * p + j];
            }
            li[i * p + j] = s / l[i * p + i];
        }
    }
    let mut inv = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = (i..p).map(|k| li[k * p + i] * li[k * p + j]).sum();
            inv[i * p + j] = s;
            inv[j * p + i] = s;
        }
    }
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_the_mean() {
        let y = [2.0, 4.0, 6.0, 0.0, 3.0];
        let x = vec![
            Row {
                time: 0.0,
                dummy: None
            };
            5
        ];
        let fit = quasi_poisson(&x, 1, false, &y, &[1.0; 5]).unwrap();
        assert!(fit.converged);
        assert!((fit.mu[0] - 3.0).abs() < 1e-9);
        // Pearson: Σ (y − 3)² / 3 / 4 = (1 + 1 + 9 + 9 + 0) / 12.
        assert!((fit.dispersion - 20.0 / 12.0).abs() < 1e-6);
    }

    #[test]
    fn log_linear_trend_is_recovered() {
        let n = 20;
        let x: Vec<Row> = (0..n)
            .map(|t| Row {
                time: t as f64,
                dummy: None,
            })
            .collect();
        let y: Vec<f64> = (0..n).map(|t| (1.0 + 0.1 * t as f64).exp()).collect();
        let fit = quasi_poisson(&x, 2, true, &y, &vec![1.0; n]).unwrap();
        assert!((fit.beta[0] - 1.0).abs() < 1e-6);
        assert!((fit.beta[1] - 0.1).abs() < 1e-6);
    }
}

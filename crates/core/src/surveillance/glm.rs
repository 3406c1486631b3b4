//! Quasi-Poisson regression with a log link, fitted by iteratively reweighted least
//! squares the way R's `glm.fit` does it (start at y + 0.1, deviance convergence
//! |Δdev| / (|dev| + 0.1) < 1e-8, at most 25 iterations), so the Farrington detector
//! reproduces the reference implementation's thresholds.

/// A fitted model: coefficients, fitted means and what the summaries need.
#[derive(Debug, Clone)]
pub(crate) struct Fit {
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
    pub fn hat_values(&self, x: &[f64], p: usize) -> Vec<f64> {
        self.working
            .iter()
            .enumerate()
            .map(|(i, w)| w * quad(&self.cov_unscaled, &x[i * p..(i + 1) * p]))
            .collect()
    }

    /// Linear predictor at a new design row and its standard error (raw dispersion).
    pub fn predict_link(&self, row: &[f64]) -> (f64, f64) {
        let eta: f64 = row.iter().zip(&self.beta).map(|(a, b)| a * b).sum();
        let var = quad(&self.cov_unscaled, row) * self.dispersion;
        (eta, var.max(0.0).sqrt())
    }

    /// Standard error of coefficient j under the raw dispersion.
    pub fn se(&self, j: usize) -> f64 {
        let p = self.beta.len();
        (self.cov_unscaled[j * p + j] * self.dispersion)
            .max(0.0)
            .sqrt()
    }
}

fn quad(c: &[f64], v: &[f64]) -> f64 {
    let p = v.len();
    let mut s = 0.0;
    for a in 0..p {
        for b in 0..p {
            s += v[a] * c[a * p + b] * v[b];
        }
    }
    s
}

/// Poisson deviance contribution, y·log(y/μ) taken as 0 at y = 0.
fn deviance(y: &[f64], mu: &[f64], prior: &[f64]) -> f64 {
    y.iter()
        .zip(mu)
        .zip(prior)
        .map(|((&y, &m), &w)| {
            let ylog = if y > 0.0 { y * (y / m).ln() } else { 0.0 };
            2.0 * w * (ylog - (y - m))
        })
        .sum()
}

/// Fits log μ = Xβ with quasi-Poisson variance. `x` is row-major n × p.
/// Returns None when the normal equations are singular.
pub(crate) fn quasi_poisson(x: &[f64], p: usize, y: &[f64], prior: &[f64]) -> Option<Fit> {
    let n = y.len();
    debug_assert_eq!(x.len(), n * p);
    let mut mu: Vec<f64> = y.iter().map(|y| y + 0.1).collect();
    let mut eta: Vec<f64> = mu.iter().map(|m| m.ln()).collect();
    let mut dev_old = deviance(y, &mu, prior);
    let mut working = vec![0.0; n];
    let mut z = vec![0.0; n];
    let mut beta = vec![0.0; p];
    let mut inverse = vec![0.0; p * p];
    let mut converged = false;
    let mut xtwx = vec![0.0; p * p];
    let mut xtwz = vec![0.0; p];
    for _ in 0..25 {
        for i in 0..n {
            z[i] = eta[i] + (y[i] - mu[i]) / mu[i];
            working[i] = prior[i] * mu[i];
        }
        xtwx.iter_mut().for_each(|v| *v = 0.0);
        xtwz.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            let row = &x[i * p..(i + 1) * p];
            let w = working[i];
            for a in 0..p {
                let wa = w * row[a];
                xtwz[a] += wa * z[i];
                for b in 0..=a {
                    xtwx[a * p + b] += wa * row[b];
                }
            }
        }
        for a in 0..p {
            for b in 0..a {
                xtwx[b * p + a] = xtwx[a * p + b];
            }
        }
        inverse = invert_spd(&xtwx, p)?;
        for (a, slot) in beta.iter_mut().enumerate() {
            *slot = (0..p).map(|b| inverse[a * p + b] * xtwz[b]).sum();
        }
        for i in 0..n {
            let row = &x[i * p..(i + 1) * p];
            eta[i] = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
            mu[i] = eta[i].exp();
        }
        let dev = deviance(y, &mu, prior);
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
        beta,
        mu,
        working,
        cov_unscaled: inverse,
        dispersion,
        df_residual,
        converged,
    })
}

/// Inverse of a symmetric positive-definite matrix through its Cholesky factor.
fn invert_spd(a: &[f64], p: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; p * p];
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
    // Invert L, then A⁻¹ = L⁻ᵀ L⁻¹.
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
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_the_mean() {
        let y = [2.0, 4.0, 6.0, 0.0, 3.0];
        let x = vec![1.0; 5];
        let fit = quasi_poisson(&x, 1, &y, &[1.0; 5]).unwrap();
        assert!(fit.converged);
        assert!((fit.mu[0] - 3.0).abs() < 1e-9);
        // Pearson: Σ (y − 3)² / 3 / 4 = (1 + 1 + 9 + 9 + 0) / 12.
        assert!((fit.dispersion - 20.0 / 12.0).abs() < 1e-6);
    }

    #[test]
    fn log_linear_trend_is_recovered() {
        let n = 20;
        let x: Vec<f64> = (0..n).flat_map(|t| [1.0, t as f64]).collect();
        let y: Vec<f64> = (0..n).map(|t| (1.0 + 0.1 * t as f64).exp()).collect();
        let fit = quasi_poisson(&x, 2, &y, &vec![1.0; n]).unwrap();
        assert!((fit.beta[0] - 1.0).abs() < 1e-6);
        assert!((fit.beta[1] - 0.1).abs() < 1e-6);
    }
}

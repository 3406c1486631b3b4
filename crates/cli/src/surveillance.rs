//! `dhp surveillance …`: detection over an epidemiologist's own series, the daily run
//! over a district's reports, and the evaluation against injected outbreaks.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use dhp_core::surveillance::{Algorithm, Cadence};

/// Reads `date,count` rows (a header line is allowed), daily or weekly, evenly spaced.
pub fn read_series(input: impl BufRead) -> Result<(Vec<NaiveDate>, Vec<f64>, Cadence)> {
    let mut dates = Vec::new();
    let mut counts = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.context("reading standard input")?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (d, c) = line
            .split_once(',')
            .with_context(|| format!("line {}: expected `date,count`, got `{line}`", n + 1))?;
        let (d, c) = (d.trim(), c.trim());
        let date = match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(date) => date,
            Err(_) if dates.is_empty() && n == 0 => continue, // header
            Err(_) => bail!("line {}: date: `{d}` is not YYYY-MM-DD", n + 1),
        };
        let count: f64 = c
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .with_context(|| format!("line {}: count: `{c}` is not a count (0 or more)", n + 1))?;
        dates.push(date);
        counts.push(count);
    }
    if dates.len() < 2 {
        bail!("the series needs at least two rows of `date,count`");
    }
    let step = (dates[1] - dates[0]).num_days();
    let cadence = match step {
        1 => Cadence::Daily,
        7 => Cadence::Weekly,
        _ => bail!(
            "line 2: date: rows must be 1 day (daily) or 7 days (weekly) apart, got {step} days"
        ),
    };
    for i in 1..dates.len() {
        if (dates[i] - dates[i - 1]).num_days() != step {
            bail!(
                "date: {} follows {}: a {} series must have every {} in order, none missing",
                dates[i],
                dates[i - 1],
                if step == 1 { "daily" } else { "weekly" },
                if step == 1 { "day" } else { "week" }
            );
        }
    }
    Ok((dates, counts, cadence))
}

/// `dhp surveillance detect`: prints `date,count,threshold,alarm` for every point the
/// algorithm scores (threshold `NA` where it gives none).
pub fn detect(algorithm: &str, alpha: Option<f64>, params: &[String]) -> Result<ExitCode> {
    let mut pairs = Vec::new();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--param `{p}`: expected name=value"))?;
        pairs.push((k.trim().to_string(), v.trim().to_string()));
    }
    let algorithm = Algorithm::configure(algorithm, alpha, &pairs)?;
    let (dates, counts, cadence) = read_series(std::io::stdin().lock())?;
    let scores = algorithm.score(&counts, cadence);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "date,count,threshold,alarm")?;
    let mut scored = 0;
    for ((d, c), s) in dates.iter().zip(&counts).zip(&scores) {
        if let Some(s) = s {
            scored += 1;
            let threshold = if s.threshold.is_finite() {
                format!("{:.6}", s.threshold)
            } else {
                "NA".into()
            };
            writeln!(out, "{d},{c},{threshold},{}", u8::from(s.alarm))?;
        }
    }
    out.flush()?;
    if scored == 0 {
        eprintln!(
            "note: {} needs more history than these {} points; nothing scored",
            algorithm.name(),
            counts.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

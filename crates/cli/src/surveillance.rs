//! `dhp surveillance …`: detection over an epidemiologist's own series, the daily run
//! over a district's reports, and the evaluation against injected outbreaks.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use dhp_core::surveillance::{Algorithm, Cadence};

/// Reads `date,count` rows from standard input (see [`dhp_core::surveillance::read_series`]).
pub fn read_series(mut input: impl BufRead) -> Result<(Vec<NaiveDate>, Vec<f64>, Cadence)> {
    let mut text = String::new();
    input
        .read_to_string(&mut text)
        .context("reading standard input")?;
    dhp_core::surveillance::read_series(&text).map_err(anyhow::Error::msg)
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

/// `dhp surveillance run`.
pub async fn run(store: &dyn dhp_store::Store, from: NaiveDate, to: NaiveDate) -> Result<ExitCode> {
    if from > to {
        bail!("--from {from} is after --date {to}");
    }
    let now = dhp_core::clock::now();
    let r = dhp_analytics::surveillance::run(store, from, to, now).await?;
    println!(
        "surveillance run {}{}: {} series, {} case alarms, {} sentinel alarms → {} new signals, {} updated ({:.2} s)",
        if from == to { String::new() } else { format!("{from} … ") },
        to,
        r.series,
        r.case_alarms,
        r.sentinel_alarms,
        r.new_signals,
        r.updated_signals,
        r.seconds
    );
    for m in &r.missing {
        println!(
            "missing report: site {} has not reported for {} day{} (last report {})",
            m.site,
            m.days,
            if m.days == 1 { "" } else { "s" },
            m.last_report.map_or("never".to_string(), |d| d.to_string())
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `dhp surveillance evaluate`.
pub async fn evaluate(store: &dyn dhp_store::Store, format: &str) -> Result<ExitCode> {
    if !matches!(format, "table" | "csv" | "json") {
        bail!("--format: `{format}` is not one of table, csv, json");
    }
    let started = std::time::Instant::now();
    let (rows, series) = dhp_analytics::surveillance::evaluate_store(store).await?;
    let outbreaks = rows.first().map_or(0, |r| r.outbreaks);
    if outbreaks == 0 {
        bail!("the database has no injected outbreaks after the baseline years to evaluate against (generate a district with dhp generate --years 10)");
    }
    let median = |m: Option<f64>| m.map_or("-".to_string(), |m| format!("{m:.1}"));
    match format {
        "json" => println!("{}", serde_json::to_string_pretty(&rows)?),
        "csv" => {
            println!("algorithm,outbreaks,detected,sensitivity_pct,false_per_100_area_weeks,false_alarm_day_rate_pct,median_days_to_detection,signals,false_signals");
            for r in &rows {
                println!(
                    "{},{},{},{:.1},{:.3},{:.3},{},{},{}",
                    r.algorithm,
                    r.outbreaks,
                    r.detected,
                    r.sensitivity,
                    r.false_per_100_area_weeks,
                    r.false_alarm_day_rate,
                    median(r.median_days_to_detection),
                    r.signals,
                    r.false_signals
                );
            }
        }
        _ => {
            println!(
                "{} injected outbreaks, {} disease × area series ({} days each, scored after {} days of history); {:.1} s",
                outbreaks,
                series.keys.len(),
                series.len,
                dhp_analytics::surveillance::HISTORY_DAYS,
                started.elapsed().as_secs_f64()
            );
            println!(
                "{:<22} {:>11} {:>12} {:>17} {:>16} {:>14}",
                "algorithm",
                "sensitivity",
                "detected",
                "false /100 a-wk",
                "false-day rate",
                "median days"
            );
            for r in &rows {
                println!(
                    "{:<22} {:>10.1}% {:>12} {:>17.3} {:>15.2}% {:>14}",
                    r.algorithm,
                    r.sensitivity,
                    format!("{}/{}", r.detected, r.outbreaks),
                    r.false_per_100_area_weeks,
                    r.false_alarm_day_rate,
                    median(r.median_days_to_detection)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `dhp bench surveillance`: 40 diseases × 12 areas of daily counts (seasonal Poisson,
/// means from 0.02 to 8 a day), 5 years scored after 5 years of history, every
/// algorithm over every point.
pub fn bench(seed: u64, repeat: usize) -> Result<ExitCode> {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Distribution, Poisson};
    use rayon::prelude::*;
    let (diseases, areas, days) = (40usize, 12usize, 10 * 365 + 3);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let series: Vec<Vec<f64>> = (0..diseases * areas)
        .map(|_| {
            let mean: f64 = 0.02 * 400f64.powf(rng.random_range(0.0..1.0));
            let phase: f64 = rng.random_range(0.0..365.0);
            (0..days)
                .map(|t| {
                    let season =
                        1.0 + 0.6 * ((t as f64 - phase) / 365.0 * std::f64::consts::TAU).cos();
                    Poisson::new(mean * season).map_or(0.0, |p| p.sample(&mut rng))
                })
                .collect()
        })
        .collect();
    let algorithms: Vec<Algorithm> = dhp_core::surveillance::ALGORITHMS
        .iter()
        .map(|a| Algorithm::configure(a, None, &[]).expect("defaults are valid"))
        .collect();
    println!(
        "{} series ({} diseases × {} areas) × {} days (5 years scored after 5 years of history), {} algorithms, {} threads",
        series.len(),
        diseases,
        areas,
        days,
        algorithms.len(),
        rayon::current_num_threads()
    );
    let scored_from = days - 5 * 365;
    let mut totals = Vec::new();
    for rep in 0..repeat.max(1) {
        let mut line = Vec::new();
        let all = std::time::Instant::now();
        let mut points = 0usize;
        for a in &algorithms {
            let t = std::time::Instant::now();
            let (scored, alarms) = series
                .par_iter()
                .map(|x| {
                    let s = a.score(x, Cadence::Daily);
                    let tail = &s[scored_from..];
                    (
                        tail.iter().filter(|s| s.is_some()).count(),
                        tail.iter().flatten().filter(|s| s.alarm).count(),
                    )
                })
                .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            points += scored;
            line.push(format!(
                "{} {:.0} ms ({} alarms)",
                a.name(),
                t.elapsed().as_secs_f64() * 1e3,
                alarms
            ));
        }
        let total = all.elapsed().as_secs_f64();
        totals.push(total);
        println!(
            "run {}: {:.3} s for {} scored points — {}",
            rep + 1,
            total,
            points,
            line.join(", ")
        );
    }
    totals.sort_by(f64::total_cmp);
    println!(
        "fastest {:.3} s, median {:.3} s",
        totals[0],
        totals[totals.len() / 2]
    );
    Ok(ExitCode::SUCCESS)
}

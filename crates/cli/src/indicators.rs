//! `dhp indicators …`: the plan scorecard of one org unit and period from the stored
//! counts, and the full recompute (`rebuild`).

use std::io::Write;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use dhp_analytics::indicators::{self as engine, ScoreRow};
use dhp_core::indicators::Period;
use dhp_core::OrgKind;
use dhp_store::Store;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// `dhp indicators rebuild`: compute every indicator again and replace the stored
/// counts in one transaction.
pub async fn rebuild(store: &dyn Store, from: Option<i32>, to: Option<i32>) -> Result<ExitCode> {
    let computed = rebuild_quietly(store, from, to, true).await?;
    println!(
        "indicators rebuilt: {} counts over {} periods from {} residents, {} case reports, {} signals in {:.2} s",
        computed.counts.len(),
        computed.periods,
        computed.residents,
        computed.case_reports,
        computed.signals,
        computed.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The rebuild behind `dhp indicators rebuild`, `generate` and `demo`: years `from`
/// (default 2020) to `to` (default the year of the latest record), with a progress bar
/// when asked.
pub async fn rebuild_quietly(
    store: &dyn Store,
    from: Option<i32>,
    to: Option<i32>,
    show: bool,
) -> Result<engine::Computed> {
    let residents = store.count(dhp_store::Table::Residents).await?;
    let last_year = match to {
        Some(y) => y,
        None => latest_year(store).await?,
    };
    let first_year = from.unwrap_or(2020.min(last_year));
    if first_year > last_year {
        bail!("--from {first_year} is after --to {last_year}");
    }
    let periods = engine::tracked_periods(first_year, last_year, 2);
    let bar = if show {
        let bar = ProgressBar::new(residents.max(0) as u64);
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} residents ({eta})")
                .expect("valid template"),
        );
        bar.set_message("indicators");
        bar
    } else {
        ProgressBar::hidden()
    };
    let computed = engine::rebuild(store, &periods, &mut |n| bar.set_position(n as u64))
        .await
        .context("rebuilding the indicators")?;
    bar.finish_and_clear();
    Ok(computed)
}

/// The year of the district's last recorded day (the generator's `end_date`).
async fn latest_year(store: &dyn Store) -> Result<i32> {
    use chrono::Datelike;
    let today = match store.meta("end_date").await? {
        Some(d) => d.parse::<chrono::NaiveDate>().ok(),
        None => None,
    };
    Ok(today
        .unwrap_or_else(|| chrono::Local::now().date_naive())
        .year())
}

#[derive(Serialize)]
struct Line<'a> {
    indicator: &'a str,
    name_zh: &'a str,
    name_en: &'a str,
    org: &'a str,
    period: String,
    numerator: i64,
    denominator: i64,
    value: Option<f64>,
    unit: &'static str,
    baseline_2020: Option<f64>,
    target: Option<String>,
    gap: Option<f64>,
    on_track: Option<bool>,
    supported: bool,
    source: &'a str,
}

fn line<'a>(r: &'a ScoreRow, org: &'a str, period: Period) -> Line<'a> {
    let i = r.indicator;
    Line {
        indicator: &i.id,
        name_zh: &i.name_zh,
        name_en: &i.name_en,
        org,
        period: period.to_string(),
        numerator: r.num,
        denominator: r.den,
        value: r.value.map(round4),
        unit: i.unit.symbol(),
        baseline_2020: i.baseline.as_ref().map(|b| b.value),
        target: r.target.map(|t| {
            format!(
                "{} {}{} ({})",
                t.year,
                t.op.symbol(),
                t.value,
                i.unit.symbol()
            )
        }),
        gap: r.gap.map(round4),
        on_track: r.on_track,
        supported: i.supported,
        source: &i.source,
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `dhp indicators`: the scorecard of `org` (default the district) in `period`
/// (default the latest year counted), as a table, CSV or JSON.
pub async fn show(
    store: &dyn Store,
    period: Option<&str>,
    org: Option<&str>,
    format: &str,
) -> Result<ExitCode> {
    if !matches!(format, "table" | "csv" | "json") {
        bail!("--format: `{format}` is not table, csv or json");
    }
    let stored = engine::stored_periods(store).await?;
    if stored.is_empty() {
        bail!("no indicator counts are stored yet: run `dhp indicators rebuild` first");
    }
    let period = match period {
        Some(p) => Period::parse(p).map_err(|e| anyhow::anyhow!("--{e}"))?,
        None => *stored
            .iter()
            .filter(|p| matches!(p, Period::Year(_)))
            .max()
            .context("no year is counted")?,
    };
    if !stored.contains(&period) {
        bail!(
            "--period: {period} is not counted (counted: {} to {}; rebuild with --from/--to for others)",
            stored.first().map(|p| p.to_string()).unwrap_or_default(),
            stored.last().map(|p| p.to_string()).unwrap_or_default()
        );
    }
    let orgs = dhp_store::organisations(store).await?;
    let unit = match org {
        Some(code) => orgs
            .iter()
            .find(|o| o.code == code)
            .with_context(|| format!("--org: no organisation has the code `{code}`"))?,
        None => orgs
            .iter()
            .find(|o| o.kind == OrgKind::District)
            .context("the database has no district")?,
    };
    let counts = store
        .indicator_counts(None, Some(period), Some(unit.id))
        .await?;
    let rows = engine::scorecard(&counts, unit.id, period);
    let lines: Vec<Line<'_>> = rows.iter().map(|r| line(r, &unit.code, period)).collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        "json" => {
            serde_json::to_writer_pretty(&mut out, &lines)?;
            writeln!(out)?;
        }
        "csv" => {
            writeln!(out, "indicator,org,period,numerator,denominator,value,unit,baseline_2020,target,gap,on_track,supported")?;
            for l in &lines {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
                    l.indicator,
                    l.org,
                    l.period,
                    l.numerator,
                    l.denominator,
                    opt(l.value),
                    l.unit,
                    opt(l.baseline_2020),
                    csv_field(l.target.as_deref().unwrap_or("")),
                    opt(l.gap),
                    l.on_track.map(|b| b.to_string()).unwrap_or_default(),
                    l.supported
                )?;
            }
        }
        _ => {
            writeln!(out, "{} {} — {period}", unit.name_zh, unit.code)?;
            writeln!(
                out,
                "{:<30} {:>10} {:>10} {:>10} {:>8} {:>22} {:>8}",
                "indicator", "numerator", "denom.", "value", "2020", "target", "on track"
            )?;
            for l in &lines {
                let value = if !l.supported {
                    "n/s".to_string()
                } else {
                    l.value
                        .map(|v| format!("{v:.2}"))
                        .unwrap_or_else(|| "—".into())
                };
                writeln!(
                    out,
                    "{:<30} {:>10} {:>10} {:>10} {:>8} {:>22} {:>8}",
                    l.indicator,
                    l.numerator,
                    l.denominator,
                    value,
                    l.baseline_2020.map(|b| b.to_string()).unwrap_or_default(),
                    l.target.as_deref().unwrap_or(""),
                    match l.on_track {
                        Some(true) => "yes",
                        Some(false) => "NO",
                        None => "",
                    }
                )?;
            }
            writeln!(
                out,
                "n/s: not supported by the records (see data/indicators/indicators.toml for why)"
            )?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

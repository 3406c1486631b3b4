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

/// One line saying what a rebuild counted.
pub fn print_counted(computed: &engine::Computed) {
    println!(
        "indicators counted: {} values over {} periods in {:.1} s",
        computed.counts.len(),
        computed.periods,
        computed.elapsed.as_secs_f64()
    );
}

/// The year of the district's last recorded day (the generator's `end_date`).
async fn latest_year(store: &dyn Store) -> Result<i32> {
    use chrono::Datelike;
    Ok(dhp_store::as_of(store).await?.year())
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
    source_zh: &'a str,
    source_en: &'a str,
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
        source_zh: &i.source_zh,
        source_en: &i.source_en,
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// `dhp indicators`: the scorecard of `org` (default the district) in `period`
/// (default the last complete year counted), as a table, CSV or JSON.
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
    let today = dhp_store::as_of(store).await?;
    let period = match period {
        Some(p) => Period::parse(p).map_err(|e| anyhow::anyhow!("--{e}"))?,
        None => engine::default_period(&stored, today),
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
    if engine::in_progress(period, today) {
        eprintln!(
            "note: {period} has not ended — the records run to {today}; as-at figures are read at {} and are provisional",
            period.end()
        );
    }
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
    dhp_core::csv::cell(s)
}

/// `dhp bench indicators`: full recompute, the cost of keeping counts current per
/// write, the scorecard read, and DuckDB over the same records when asked.
pub async fn bench(
    store: &dyn Store,
    url: &str,
    writes: usize,
    only: Option<Period>,
    duckdb: Option<&str>,
) -> Result<ExitCode> {
    use std::time::Instant;

    use dhp_core::{Encounter, EncounterType};
    use dhp_store::{Table, WriteSet};

    let periods = engine::stored_periods(store).await?;
    if periods.is_empty() {
        bail!("no indicator counts are stored yet: run `dhp indicators rebuild` first");
    }
    let computing: Vec<Period> = match only {
        Some(p) if !periods.contains(&p) => bail!("--period {p} is not a tracked period"),
        Some(p) => vec![p],
        None => periods.clone(),
    };
    let residents = store.count(Table::Residents).await?;
    println!(
        "indicators over {residents} residents, {} supported indicators × {} period(s) ({})",
        dhp_core::indicators::supported().len(),
        computing.len(),
        store.backend()
    );
    let started = Instant::now();
    let computed = engine::compute(store, &computing, &mut |_| {}).await?;
    let full = started.elapsed().as_secs_f64();
    println!(
        "full recompute: {full:.2} s ({} counts, {:.0} residents/s)",
        computed.counts.len(),
        computed.residents as f64 / full
    );

    // Writes: one outpatient visit each, for residents spread over the district, with
    // the counts kept and (periods hidden for a moment) without.
    let orgs = dhp_store::organisations(store).await?;
    let centre = orgs
        .iter()
        .find(|o| o.kind == OrgKind::CommunityHealthCentre)
        .context("no community health centre")?
        .id;
    let last_day = periods.iter().map(|p| p.end()).max().unwrap_or_default();
    let first_id = store.reserve_ids("Encounter", 2 * writes as i64).await?;
    let step = (residents / writes.max(1) as i64).max(1);
    let timed = |offset: usize| async move {
        let mut spent = 0.0;
        for i in 0..writes {
            let id = first_id + (offset + i) as i64;
            let mut w = WriteSet::default();
            w.core.encounters.push(Encounter {
                id,
                resident_id: 1 + (i as i64 * step) % residents.max(1),
                kind: EncounterType::Outpatient,
                programme: None,
                org_id: centre,
                practitioner_id: None,
                start: last_day.and_hms_opt(9, 0, 0).expect("valid"),
            });
            let t = Instant::now();
            store.write_resources(&w).await?;
            spent += t.elapsed().as_secs_f64();
        }
        Result::<f64>::Ok(spent / writes.max(1) as f64)
    };
    let kept = timed(0).await?;
    let list = store.meta(engine::PERIODS_META).await?.unwrap_or_default();
    let delete = |from: usize| WriteSet {
        core_deletes: (from..from + writes)
            .map(|i| (Table::Encounters, first_id + i as i64))
            .collect(),
        ..WriteSet::default()
    };
    // Untracked for a moment: the same writes without keeping counts, taken out again
    // before the counts are tracked again.
    store.set_meta(engine::PERIODS_META, "").await?;
    let bare = async {
        let bare = timed(writes).await?;
        store.write_resources(&delete(writes)).await?;
        Result::<f64>::Ok(bare)
    }
    .await;
    store.set_meta(engine::PERIODS_META, &list).await?;
    let bare = bare?;
    // Take the tracked visits out again (their counts move back with them).
    store.write_resources(&delete(0)).await?;
    println!(
        "write with counts kept: {:.3} ms; without: {:.3} ms; keeping the counts: {:.3} ms per write",
        kept * 1e3,
        bare * 1e3,
        (kept - bare) * 1e3
    );

    // The scorecard's read: one unit and period from the stored counts.
    let district = orgs
        .iter()
        .find(|o| o.kind == OrgKind::District)
        .context("no district")?;
    let year = *periods
        .iter()
        .filter(|p| matches!(p, Period::Year(_)))
        .max()
        .context("no year counted")?;
    let t = Instant::now();
    let rounds = 50;
    for _ in 0..rounds {
        let counts = store
            .indicator_counts(None, Some(year), Some(district.id))
            .await?;
        std::hint::black_box(engine::scorecard(&counts, district.id, year));
    }
    println!(
        "scorecard read: {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds)
    );

    if let Some(python) = duckdb {
        let Some(path) = dhp_store::sqlite_path(url) else {
            bail!("--duckdb reads the records of a SQLite database");
        };
        let work = std::env::temp_dir().join(format!("dhp-bench-duckdb-{}", std::process::id()));
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/duckdb/crosscheck.py"
        );
        let mut command = std::process::Command::new(python);
        command.arg(script).arg(path).arg(&work);
        if let Some(p) = only {
            command.arg("--period").arg(p.to_string());
        }
        let out = command
            .output()
            .with_context(|| format!("running {python}"))?;
        let _ = std::fs::remove_dir_all(&work);
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        if let Some(secs) = text
            .lines()
            .find_map(|l| l.strip_prefix("duckdb compute: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|s| s.parse::<f64>().ok())
        {
            println!(
                "engine / DuckDB: {:.2} (DuckDB computes the cross-checked subset of the {} indicators)",
                full / secs,
                dhp_core::indicators::supported().len()
            );
        }
        if !out.status.success() {
            bail!(
                "the DuckDB run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

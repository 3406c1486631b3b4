//! `dhp due` (the due list as CSV or JSON) and `dhp bench due` (every resident's due
//! list at district scale, reading and assessing timed apart).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use dhp_core::Programme;
use dhp_server::workbench::{assess_all, assess_cohort, cohort_of, due_list, DueQuery, DueRow};
use dhp_store::{Cohort, Reading, Store};

/// Print the due list of `org` (the whole district when `None`) on `date`.
pub async fn print(
    store: Arc<dyn Store>,
    org: Option<&str>,
    date: NaiveDate,
    programme: Option<&str>,
    within: Option<u32>,
    format: &str,
) -> Result<ExitCode> {
    if !matches!(format, "csv" | "json") {
        bail!("--format {format:?} must be csv or json");
    }
    let programme = match programme {
        Some(p) => Some(Programme::parse(p).with_context(|| {
            format!(
                "--programme {p:?} is not one of {}",
                Programme::ALL.map(|p| p.as_str()).join(", ")
            )
        })?),
        None => None,
    };
    let cohort = match org {
        None => Cohort::All,
        Some(code) => {
            let orgs: std::collections::HashMap<_, _> = dhp_store::organisations(&*store)
                .await?
                .into_iter()
                .map(|o| (o.id, o))
                .collect();
            let org = orgs
                .values()
                .find(|o| o.code == code)
                .with_context(|| format!("--org {code:?}: no organisation has this code"))?;
            cohort_of(org, &orgs).map_err(|why| anyhow::anyhow!("--org: {why}"))?
        }
    };
    let rows = due_list(
        &*store,
        &cohort,
        date,
        &DueQuery {
            programme,
            within_days: within,
        },
    )
    .await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if format == "json" {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else {
        write_csv(&mut out, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_csv(out: impl Write, rows: &[DueRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "programme",
        "resident_id",
        "resident_name",
        "key",
        "item",
        "earliest",
        "due",
        "overdue_after",
        "status",
        "rule",
    ])?;
    for r in rows {
        let i = &r.item;
        w.write_record([
            i.programme.as_str(),
            &r.resident_id.to_string(),
            &dhp_core::csv::neutralise(&r.resident_name),
            &i.key,
            &i.what_en,
            &i.earliest.to_string(),
            &i.due.to_string(),
            &i.overdue_after.to_string(),
            i.status.as_str(),
            &i.rule,
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Every resident's due list: records read page by page (the next page read while
/// this one is assessed), timed as a whole and for the assessment alone.
pub async fn bench(store: Arc<dyn Store>, date: NaiveDate) -> Result<()> {
    const PAGE: i64 = 20_000;
    let started = Instant::now();
    let (mut residents, mut items, mut overdue) = (0usize, 0usize, 0usize);
    assess_cohort(&*store, &Cohort::All, date, PAGE, |_, a| {
        residents += 1;
        items += a.items.len();
        overdue += a
            .items
            .iter()
            .filter(|i| i.status == dhp_core::programmes::DueStatus::Overdue)
            .count();
    })
    .await?;
    let total = started.elapsed();
    // The assessment alone, over the first page, to show its share.
    let sample = store
        .programme_records(&Cohort::All, Reading::Programmes, date, 0, PAGE)
        .await?;
    let t = Instant::now();
    let _ = assess_all(&sample, date);
    let per = t.elapsed().as_secs_f64() / sample.len().max(1) as f64;
    println!(
        "| residents | items | overdue | total s | residents/s | assessment alone, residents/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {residents} | {items} | {overdue} | {:.2} | {:.0} | {:.0} |",
        total.as_secs_f64(),
        residents as f64 / total.as_secs_f64().max(1e-9),
        1.0 / per.max(1e-12)
    );
    Ok(())
}

//! `dhp due` (the due list as CSV or JSON) and `dhp bench due` (every resident's due
//! list at district scale, reading and assessing timed apart).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use dhp_core::Programme;
use dhp_server::workbench::{assess_all, cohort_of, due_list, DueQuery, DueRow};
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
            &r.resident_name,
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

/// Read every resident's record page by page and assess it, timing both.
pub async fn bench(store: Arc<dyn Store>, date: NaiveDate) -> Result<()> {
    const PAGE: i64 = 5_000;
    let (mut read, mut compute) = (Duration::ZERO, Duration::ZERO);
    let (mut residents, mut items, mut overdue) = (0usize, 0usize, 0usize);
    let mut after = 0;
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let records = store
            .programme_records(&Cohort::All, Reading::Programmes, date, after, PAGE)
            .await?;
        read += t.elapsed();
        let Some(last) = records.last() else { break };
        after = last.resident.id;
        let t = Instant::now();
        let assessed = assess_all(&records, date);
        compute += t.elapsed();
        residents += records.len();
        for a in &assessed {
            items += a.items.len();
            overdue += a
                .items
                .iter()
                .filter(|i| i.status == dhp_core::programmes::DueStatus::Overdue)
                .count();
        }
        if (records.len() as i64) < PAGE {
            break;
        }
    }
    let total = started.elapsed();
    println!(
        "| residents | items | overdue | read s | assess s | total s | residents/s (assess) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {residents} | {items} | {overdue} | {:.2} | {:.2} | {:.2} | {:.0} |",
        read.as_secs_f64(),
        compute.as_secs_f64(),
        total.as_secs_f64(),
        residents as f64 / compute.as_secs_f64().max(1e-9)
    );
    Ok(())
}

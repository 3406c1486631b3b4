//! `dhp`: the District Health Platform in one binary.

mod accounts;
mod audit;
mod backup;
mod bench_booking;
mod bench_fhir;
mod bench_recognition;
mod commands;
mod due;
mod indicators;
mod surveillance;
mod transfer;

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "dhp",
    version,
    about = "District Health Platform (区域数字健康平台)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where and how the server is reached.
#[derive(Debug, Clone, clap::Args)]
struct Listen {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// The URL people and systems reach the server at (links in answers are built from
    /// it, and only its origin may post forms); default http://LISTEN.
    #[arg(long, env = "DHP_BASE_URL")]
    base_url: Option<String>,
    /// The server's certificate chain (PEM): serve over TLS (with --tls-key).
    #[arg(long, env = "DHP_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, env = "DHP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Days a person's password lasts before it must be changed (0: no expiry).
    #[arg(long, env = "DHP_PASSWORD_MAX_AGE_DAYS", default_value_t = 90)]
    password_max_age_days: i64,
    /// Earlier passwords of an account that may not be chosen again.
    #[arg(long, env = "DHP_PASSWORD_HISTORY", default_value_t = 5)]
    password_history: usize,
    /// Post appointment reminders as JSON to this http:// URL (an SMS gateway beside the
    /// server); without it they are written to the log.
    #[arg(long, env = "DHP_REMINDER_WEBHOOK")]
    reminder_webhook: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a demo district into ./dhp-demo.db if absent, then serve it.
    Demo {
        /// Residents of the demo district (when it has to be generated).
        #[arg(long, default_value_t = 50_000)]
        residents: u64,
        #[command(flatten)]
        listen: Listen,
        #[arg(long, default_value = "dhp-demo.db")]
        path: String,
    },
    /// Serve the portal and API over a database.
    Serve {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[command(flatten)]
        listen: Listen,
    },
    /// Generate a synthetic district into an empty database.
    Generate {
        /// sqlite://PATH (a new file) or postgres://USER@HOST/DB (an empty database).
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long)]
        residents: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Years of history.
        #[arg(long, default_value_t = 10)]
        years: u32,
        /// Last day of the history (YYYY-MM-DD).
        #[arg(long)]
        end_date: Option<chrono::NaiveDate>,
    },
    /// Login accounts of people.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Integrating-system clients (client_credentials grant).
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Load FHIR into a database: transaction or batch Bundles (.json, each one
    /// transaction) and bulk NDJSON (.ndjson, ids kept). Resumable: files already
    /// imported are skipped.
    Import {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// Files or directories (walked for .json and .ndjson).
        #[arg(required = true)]
        inputs: Vec<std::path::PathBuf>,
    },
    /// Write residents' records as FHIR NDJSON (one file per type), or as one
    /// transaction Bundle per resident (Synthea layout) with --bundles.
    Export {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long)]
        bundles: bool,
    },
    /// Row counts and a content digest of a database.
    Stats {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The programme due list (待办清单) of a centre, street or town, or the whole
    /// district: what is due or overdue on a day, each with its programme, resident,
    /// dates, status and rule.
    Due {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// Code of a community health centre, street, town or the district (whole
        /// district when left out).
        #[arg(long)]
        org: Option<String>,
        /// The day (YYYY-MM-DD).
        #[arg(long)]
        date: chrono::NaiveDate,
        /// Only this programme: immunization, hypertension, diabetes, elderly, maternal,
        /// child or mental.
        #[arg(long)]
        programme: Option<String>,
        /// Also list upcoming items that may be done within this many days.
        #[arg(long)]
        within: Option<u32>,
        /// csv (default) or json.
        #[arg(long, default_value = "csv")]
        format: String,
    },
    /// Infectious-disease surveillance: detection over a series, the daily run over a
    /// district's reports, and evaluation against injected outbreaks.
    Surveillance {
        #[command(subcommand)]
        command: SurveillanceCommand,
    },
    /// Indicators and the plan scorecard: `dhp indicators --period 2025 --org CODE`
    /// prints one unit's scorecard from the stored counts; `dhp indicators rebuild`
    /// recomputes every count from the records.
    #[command(args_conflicts_with_subcommands = true)]
    Indicators {
        #[command(subcommand)]
        command: Option<IndicatorsCommand>,
        #[arg(long, env = "DHP_DATABASE")]
        database: Option<String>,
        /// A year (2025), quarter (2025Q3) or month (2025-07); default the latest year.
        #[arg(long)]
        period: Option<String>,
        /// Org unit code (district, street or town, centre, hospital); default the
        /// district.
        #[arg(long)]
        org: Option<String>,
        /// table (default), csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// The audit log: `verify` checks its hash chain (and archive files); `archive`
    /// moves entries older than the retention period to compressed files.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// A consistent copy of a district taken while it is in use (SQLite: online
    /// backup; PostgreSQL: pg_dump's snapshot, proven by restoring it to a scratch
    /// database), with a manifest of its SHA-256 and content digest (`FILE.json`).
    Backup {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Put a backup back into a new SQLite file or an empty PostgreSQL database,
    /// checked against its manifest: the file's SHA-256 before, the restored
    /// district's content digest after.
    Restore {
        #[arg(long)]
        from: std::path::PathBuf,
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
    },
    /// Resident identity numbers.
    Id {
        #[command(subcommand)]
        command: IdCommand,
    },
    /// Benchmarks at district scale (not run by the tests).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an account. The password is read from standard input (one line) or from
    /// DHP_PASSWORD, never from the command line; its owner must change it at the
    /// first login.
    Add {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long)]
        username: String,
        /// manager, public_health_doctor, family_doctor, hospital_clinician, resident,
        /// or one of the three administrators: system_admin, security_admin,
        /// audit_admin.
        #[arg(long)]
        role: String,
        /// Code of the organisation the person works at (staff and administrators).
        #[arg(long)]
        org: Option<String>,
        /// Identity number of the resident (role resident).
        #[arg(long)]
        resident: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Set a new password for an account (read from standard input or DHP_PASSWORD);
    /// its owner must change it at the next login. Audited.
    Passwd {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// The account's username.
        username: String,
    },
    /// Unlock an account locked after failed logins (audited).
    Unlock {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// The account's username.
        username: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Add an integrating-system client. The secret is read from standard input (one
    /// line) or from DHP_CLIENT_SECRET.
    Add {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SurveillanceCommand {
    /// Score your own series: reads `date,count` rows (daily or weekly) from standard
    /// input and prints `date,count,threshold,alarm` for every point the algorithm can
    /// score. Algorithms: fixed, mpm, ears-c1, ears-c2, ears-c3, ears-c3-hutwagner,
    /// farrington, farrington-noufaily, cusum.
    Detect {
        #[arg(long)]
        algorithm: String,
        #[arg(long)]
        alpha: Option<f64>,
        /// Algorithm parameter as name=value (repeatable), e.g. --param percentile=75.
        #[arg(long = "param")]
        params: Vec<String>,
    },
    /// The daily run: every disease's detectors over every street and the district,
    /// sentinel detectors over every site, for --date (or each day from --from to
    /// --date); alarms become signals, merged with those already raised. Prints the
    /// run's figures and the sites with missing reports.
    Run {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// The day to run (YYYY-MM-DD).
        #[arg(long)]
        date: NaiveDate,
        /// First day of a backfill (YYYY-MM-DD).
        #[arg(long)]
        from: Option<NaiveDate>,
    },
    /// Every algorithm against the outbreaks the generator injected: sensitivity,
    /// false alarms per 100 area-weeks, median days to detection.
    Evaluate {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// table (default), csv or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum IndicatorsCommand {
    /// Recompute every indicator count from the stored records and replace the stored
    /// counts in one transaction.
    Rebuild {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// First year counted (default 2020).
        #[arg(long)]
        from: Option<i32>,
        /// Last year counted (default the year of the district's last recorded day).
        #[arg(long)]
        to: Option<i32>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Seal new entries into the chain, then check every link from the last archived
    /// entry to the head; with --archives, the archive files too. Exit 1 if broken.
    Verify {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// A directory of archives written by `dhp audit archive`.
        #[arg(long)]
        archives: Option<std::path::PathBuf>,
    },
    /// Move entries recorded more than --keep-days ago (at least 183: six months) to
    /// gzip-compressed NDJSON files in --out, each with a manifest carrying its SHA-256
    /// and the chain hashes it spans.
    Archive {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = audit::MIN_KEEP_DAYS)]
        keep_days: i64,
    },
}

#[derive(Debug, Subcommand)]
enum IdCommand {
    /// Validate an 18-digit resident identity number (GB 11643-1999).
    Check { number: String },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Generator throughput into a fresh SQLite file (and PostgreSQL if given).
    Generate {
        #[arg(long, default_value_t = 100_000)]
        residents: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also measure PostgreSQL: an admin URL; a scratch database is made and dropped.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Transaction-bundle ingest: a generated district's residents as Synthea-layout
    /// Bundles, imported into an empty district (SQLite, and PostgreSQL if given).
    Ingest {
        #[arg(long, default_value_t = 2_000)]
        residents: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Also measure PostgreSQL: an admin URL; a scratch database is made and dropped.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// The audit log's hash chain: --entries entries written, then sealed and
    /// verified, timed apart (SQLite, and PostgreSQL if given).
    Audit {
        #[arg(long, default_value_t = 1_000_000)]
        entries: u64,
        /// Also measure PostgreSQL: an admin URL; a scratch database is made and dropped.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// Due lists of every resident of an existing (generated) database: reading the
    /// records and assessing every programme, timed apart.
    Due {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// The day (default: the last day of the district's records).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
    /// Detection over 5 years of daily counts × 40 diseases × every street and the
    /// district (12 areas), all algorithms, each with the history it needs before.
    Surveillance {
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Repetitions (the figure is the fastest and the median).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
    },
    /// Indicators over an existing (generated) database: the full recompute, the
    /// extra cost a write pays to keep the counts current, the scorecard read; with
    /// --duckdb, DuckDB's computation of the cross-checked indicators over the same
    /// records exported to CSV. Adds and then deletes --writes encounters.
    Indicators {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        #[arg(long, default_value_t = 200)]
        writes: usize,
        /// Compute one period only (e.g. 2025: every indicator × every unit × that
        /// year), in the engine and in DuckDB; default: every tracked period.
        #[arg(long)]
        period: Option<String>,
        /// A Python with duckdb (e.g. target/duckdb-venv/bin/python).
        #[arg(long)]
        duckdb: Option<String>,
    },
    /// Concurrent bookings against a district-sized slot pool (a generated district
    /// with schedules at its hospitals): bookings/s, p50/p99, and the slots booked
    /// beyond capacity, counted again from the appointments (must be 0).
    Booking {
        #[arg(long, default_value_t = 20_000)]
        residents: u64,
        /// Open slots in the pool.
        #[arg(long, default_value_t = 100_000)]
        slots: usize,
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Also measure PostgreSQL: an admin URL; a scratch database is made and dropped.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// The recognition check on order at large-district scale: a generated district
    /// grown to --residents (copies under new identity numbers, each with an encounter
    /// and two laboratory results), p50/p99 of 1,000 checks (SQLite, and PostgreSQL if
    /// given).
    Recognition {
        #[arg(long, default_value_t = 1_300_000)]
        residents: u64,
        /// Also measure PostgreSQL: an admin URL; a scratch database is made and dropped.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// FHIR read and search throughput with p50/p99 latency, over HTTP on loopback,
    /// against an existing (generated) database.
    Fhir {
        #[arg(long, env = "DHP_DATABASE")]
        database: String,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Seconds per kind of request.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = matches!(cli.command, Command::Serve { .. } | Command::Demo { .. });
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DHP_LOG").unwrap_or_else(|_| {
                if verbose {
                    "info,sqlx=warn".into()
                } else {
                    "warn".into()
                }
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

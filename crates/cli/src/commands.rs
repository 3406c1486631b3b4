//! The subcommands. Each parses its flags into library calls and prints the result.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dhp_core::IdentityNumber;
use dhp_server::DemoAccount;
use dhp_store::{redact_url, sqlite_path, Store};
use dhp_synth::{generate_into, Params, Progress};
use indicatif::{ProgressBar, ProgressStyle};

use crate::accounts;
use crate::{
    AuditCommand, BenchCommand, ClientCommand, Command, IdCommand, IndicatorsCommand,
    SurveillanceCommand, UserCommand,
};

pub async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Id {
            command: IdCommand::Check { number },
        } => Ok(id_check(&number)),
        Command::Generate {
            database,
            residents,
            seed,
            years,
            end_date,
        } => {
            let mut params = Params::new(residents, seed);
            params.years = years;
            if let Some(end) = end_date {
                params.end = end;
            }
            let (store, _) = generate(&database, &params).await?;
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command:
                UserCommand::Add {
                    database,
                    username,
                    role,
                    org,
                    resident,
                    display_name,
                },
        } => {
            let password = secret("DHP_PASSWORD", "password")?;
            let account = accounts::NewAccount {
                username,
                role,
                org,
                resident,
                display_name,
                password,
            };
            add_account(&database, account).await
        }
        Command::Client {
            command:
                ClientCommand::Add {
                    database,
                    client_id,
                    display_name,
                },
        } => {
            let password = secret("DHP_CLIENT_SECRET", "client secret")?;
            let account = accounts::NewAccount {
                username: client_id,
                role: "system".into(),
                org: None,
                resident: None,
                display_name,
                password,
            };
            add_account(&database, account).await
        }
        Command::Import { database, inputs } => crate::transfer::import(&database, &inputs).await,
        Command::Export {
            database,
            out,
            bundles,
        } => {
            crate::transfer::export_cmd(&database, &out, bundles).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Ingest {
                    residents,
                    seed,
                    postgres,
                },
        } => {
            crate::transfer::bench_ingest(residents, seed, postgres.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command: BenchCommand::Audit { entries, postgres },
        } => {
            crate::audit::bench(entries, postgres.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { database, out } => {
            crate::backup::backup(&database, &out).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { from, database } => {
            crate::backup::restore(&from, &database).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify { database, archives },
        } => crate::audit::verify(&database, archives.as_deref()).await,
        Command::Audit {
            command:
                AuditCommand::Archive {
                    database,
                    out,
                    keep_days,
                },
        } => {
            crate::audit::archive(&database, &out, keep_days).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command: UserCommand::Passwd { database, username },
        } => {
            let password = secret("DHP_PASSWORD", "password")?;
            let store = open_existing(&database).await?;
            let done = accounts::reset_password(&*store, &username, &password).await;
            store.close().await;
            println!("{}", done?);
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command: UserCommand::Unlock { database, username },
        } => {
            let store = open_existing(&database).await?;
            let by = format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "operator".into())
            );
            let had = dhp_server::security::login::unlock(&*store, &username, &by).await?;
            store.close().await;
            println!(
                "{username}: {}",
                if had {
                    "unlocked (failed logins forgotten)"
                } else {
                    "had no failed logins on record"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { database, json } => {
            stats(&database, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { database, listen } => {
            let store = open_existing(&database).await?;
            serve(store, &listen).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo {
            residents,
            listen,
            path,
        } => {
            demo(residents, &listen, &path).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Surveillance {
            command:
                SurveillanceCommand::Detect {
                    algorithm,
                    alpha,
                    params,
                },
        } => crate::surveillance::detect(&algorithm, alpha, &params),
        Command::Surveillance {
            command:
                SurveillanceCommand::Run {
                    database,
                    date,
                    from,
                },
        } => {
            let store = open_existing(&database).await?;
            let code = crate::surveillance::run(&*store, from.unwrap_or(date), date).await;
            store.close().await;
            code
        }
        Command::Surveillance {
            command: SurveillanceCommand::Evaluate { database, format },
        } => {
            let store = open_existing(&database).await?;
            let code = crate::surveillance::evaluate(&*store, &format).await;
            store.close().await;
            code
        }
        Command::Indicators {
            command: Some(IndicatorsCommand::Rebuild { database, from, to }),
            ..
        } => {
            let store = open_existing(&database).await?;
            let code = crate::indicators::rebuild(&*store, from, to).await;
            store.close().await;
            code
        }
        Command::Indicators {
            command: None,
            database,
            period,
            org,
            format,
        } => {
            let database = database.context("--database (or DHP_DATABASE) is required")?;
            let store = open_existing(&database).await?;
            let code =
                crate::indicators::show(&*store, period.as_deref(), org.as_deref(), &format).await;
            store.close().await;
            code
        }
        Command::Bench {
            command: BenchCommand::Surveillance { seed, repeat },
        } => crate::surveillance::bench(seed, repeat),
        Command::Due {
            database,
            org,
            date,
            programme,
            within,
            format,
        } => {
            let store = open_existing(&database).await?;
            let code = crate::due::print(
                store.clone(),
                org.as_deref(),
                date,
                programme.as_deref(),
                within,
                &format,
            )
            .await;
            store.close().await;
            code
        }
        Command::Bench {
            command:
                BenchCommand::Indicators {
                    database,
                    writes,
                    period,
                    duckdb,
                },
        } => {
            let period = match period.as_deref().map(dhp_core::indicators::Period::parse) {
                Some(Err(e)) => bail!("--period: {e}"),
                Some(Ok(p)) => Some(p),
                None => None,
            };
            let store = open_existing(&database).await?;
            let code =
                crate::indicators::bench(&*store, &database, writes, period, duckdb.as_deref())
                    .await;
            store.close().await;
            code
        }
        Command::Bench {
            command: BenchCommand::Due { database, date },
        } => {
            let store = open_existing(&database).await?;
            let date = match date {
                Some(d) => d,
                None => dhp_store::as_of(&*store).await?,
            };
            crate::due::bench(store.clone(), date).await?;
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Booking {
                    residents,
                    slots,
                    connections,
                    seconds,
                    postgres,
                },
        } => {
            crate::bench_booking::bench(
                residents,
                slots,
                connections.max(1),
                seconds,
                postgres.as_deref(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Recognition {
                    residents,
                    postgres,
                },
        } => {
            crate::bench_recognition::bench(residents, postgres.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Fhir {
                    database,
                    connections,
                    seconds,
                },
        } => {
            let store = open_existing(&database).await?;
            let figures =
                crate::bench_fhir::run(store.clone(), connections.max(1), seconds).await?;
            println!("| request | connections | requests | per second | p50 ms | p99 ms |");
            println!("|---|---:|---:|---:|---:|---:|");
            for f in figures {
                println!(
                    "| {} | {connections} | {} | {:.0} | {:.2} | {:.2} |",
                    f.kind, f.requests, f.per_second, f.p50_ms, f.p99_ms
                );
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench {
            command:
                BenchCommand::Generate {
                    residents,
                    seed,
                    postgres,
                },
        } => {
            bench_generate(residents, seed, postgres.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Write one account into the database at `url` and say what was added.
async fn add_account(url: &str, account: accounts::NewAccount) -> Result<ExitCode> {
    let store = open_existing(url).await?;
    let result = accounts::add(&*store, account).await;
    store.close().await;
    println!("added {}", result?);
    Ok(ExitCode::SUCCESS)
}

/// A password or secret from the environment, or else one line of standard input.
fn secret(env: &str, what: &str) -> Result<String> {
    let value = match std::env::var(env) {
        Ok(v) => v,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .with_context(|| format!("failed to read the {what}"))?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    if value.is_empty() {
        bail!("the {what} is empty (give it on standard input or in {env})");
    }
    Ok(value)
}

/// `dhp id check`: JSON on stdout; exit 1 with the reason when invalid.
fn id_check(number: &str) -> ExitCode {
    let today = dhp_core::clock::today();
    match IdentityNumber::parse(number, today) {
        Ok(id) => {
            #[derive(serde::Serialize)]
            struct Valid<'a> {
                valid: bool,
                birth_date: String,
                sex: dhp_core::Sex,
                region: &'a str,
            }
            let out = Valid {
                valid: true,
                birth_date: id.birth_date().to_string(),
                sex: id.sex(),
                region: id.region(),
            };
            println!("{}", serde_json::to_string(&out).expect("serialisable"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            #[derive(serde::Serialize)]
            struct Invalid {
                valid: bool,
                reason: String,
            }
            let out = Invalid {
                valid: false,
                reason: e.to_string(),
            };
            println!("{}", serde_json::to_string(&out).expect("serialisable"));
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Open a database that must already exist (serve, stats): a mistyped SQLite path is
/// an error, not a new empty file.
pub(crate) async fn open_existing(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = sqlite_path(url) {
        if !Path::new(path).exists() {
            bail!("database file {path} does not exist (create one with dhp generate)");
        }
    }
    dhp_store::connect(url)
        .await
        .with_context(|| format!("failed to open {}", redact_url(url)))
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn begin(&self, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn advance(&self, residents: u64, _rows: u64) {
        self.0.inc(residents);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

fn bar() -> Bar {
    let pb = ProgressBar::new(0);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} generating [{bar:40}] {pos}/{len} residents ({per_sec}, {eta} left)",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    Bar(pb)
}

async fn generate(url: &str, params: &Params) -> Result<(Arc<dyn Store>, Vec<DemoAccount>)> {
    let progress = bar();
    let (store, summary) = generate_into(url, params, &progress)
        .await
        .with_context(|| format!("failed to generate into {}", redact_url(url)))?;
    let accounts = dhp_server::create_demo_accounts(&*store)
        .await
        .context("failed to create the demo accounts")?;
    let computed = crate::indicators::rebuild_quietly(&*store, None, None, true).await?;
    println!(
        "generated {} residents, {} rows in {:.1} s ({:.0} residents/s, {:.0} rows/s) into {}",
        summary.residents,
        summary.rows,
        summary.seconds,
        summary.residents as f64 / summary.seconds,
        summary.rows as f64 / summary.seconds,
        redact_url(url)
    );
    crate::indicators::print_counted(&computed);
    print_accounts(&accounts);
    Ok((store, accounts))
}

fn print_accounts(accounts: &[DemoAccount]) {
    if accounts.is_empty() {
        return;
    }
    println!("demo accounts (password = username; for the demo only):");
    for a in accounts {
        println!("  {:<10} {:<22} {}", a.username, a.role, a.display_name);
    }
}

async fn stats(url: &str, json: bool) -> Result<()> {
    let store = open_existing(url).await?;
    let (counts, digest) = dhp_store::content_digest(&*store).await?;
    let seed = store.meta("seed").await?;
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(t, n)| (t.name().to_string(), (*n).into()))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "backend": store.backend(), "seed": seed, "tables": tables, "digest": digest })
        );
    } else {
        for (t, n) in &counts {
            println!("{:<14} {:>12}", t.name(), n);
        }
        println!(
            "{:<14} {:>12}",
            "total",
            counts.iter().map(|(_, n)| n).sum::<i64>()
        );
        println!("digest         sha256:{digest}");
    }
    store.close().await;
    Ok(())
}

async fn serve(store: Arc<dyn Store>, listen: &crate::Listen) -> Result<()> {
    let std_listener = std::net::TcpListener::bind(&listen.listen)
        .with_context(|| format!("failed to listen on {}", listen.listen))?;
    let addr = std_listener.local_addr()?;
    let mut config = dhp_server::ServerConfig::default();
    if listen.password_max_age_days < 0 {
        bail!("--password-max-age-days must be 0 (no expiry) or more");
    }
    config.passwords = dhp_core::password::Lifecycle {
        max_age_days: listen.password_max_age_days,
        history: listen.password_history,
    };
    if let Some(url) = &listen.reminder_webhook {
        config.reminders = dhp_server::outbox::Reminders::webhook(url)
            .map_err(|e| anyhow::anyhow!("--reminder-webhook {e}"))?;
    }
    let tls = match (&listen.tls_cert, &listen.tls_key) {
        (Some(cert), Some(key)) => Some(dhp_server::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    config.tls = tls.is_some();
    let scheme = if config.tls { "https" } else { "http" };
    match &listen.base_url {
        Some(base) => {
            config.base_url =
                url::Url::parse(base).with_context(|| format!("--base-url {base} is not a URL"))?;
            config.base_url_configured = true;
        }
        None => config.base_url = url::Url::parse(&format!("{scheme}://{addr}/"))?,
    }
    println!(
        "serving {scheme}://{addr}/ as {}  (Ctrl-C to stop)",
        config.base()
    );
    match tls {
        Some(files) => {
            eprintln!(
                "serving over TLS with {}; cookies are Secure",
                files.cert.display()
            );
            dhp_server::serve_tls(store.clone(), std_listener, config, &files).await?;
        }
        None => {
            eprintln!(
                "warning: serving without TLS: passwords and records cross the network in clear; \
                 use this only on loopback or behind a TLS proxy, or give --tls-cert and --tls-key"
            );
            std_listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            dhp_server::serve(store.clone(), listener, config).await?;
        }
    }
    store.close().await;
    Ok(())
}

async fn demo(residents: u64, listen: &crate::Listen, path: &str) -> Result<()> {
    let url = format!("sqlite://{path}");
    let store = if Path::new(path).exists() {
        println!("using the existing demo district in {path}");
        let store = open_existing(&url).await?;
        let accounts = dhp_server::create_demo_accounts(&*store).await?;
        print_accounts(&accounts);
        if accounts.is_empty() {
            println!("demo accounts: manager, phdoctor, doctor, clinician, resident, sysadmin, secadmin, auditor (password = username)");
        }
        // A demo district made before indicators were counted: count them now.
        if dhp_analytics::indicators::stored_periods(&*store)
            .await?
            .is_empty()
        {
            let computed = crate::indicators::rebuild_quietly(&*store, None, None, true).await?;
            crate::indicators::print_counted(&computed);
        }
        store
    } else {
        println!("generating a demo district of {residents} residents into {path} …");
        let params = Params::new(residents, 1);
        let store = generate(&url, &params).await?.0;
        // The CDC page opens on the last weeks' signals: run detection over them.
        let from = params.end - chrono::Days::new(45);
        crate::surveillance::run(&*store, from, params.end).await?;
        store
    };
    serve(store, listen).await
}

async fn bench_generate(residents: u64, seed: u64, postgres: Option<&str>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("dhp-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let params = Params::new(residents, seed);
    let mut rows_out = Vec::new();
    let sqlite_url = format!("sqlite://{}", dir.join("bench.db").display());
    let started = Instant::now();
    let result = generate_into(&sqlite_url, &params, &bar()).await;
    let _ = std::fs::remove_dir_all(&dir);
    let (_, s) = result?;
    rows_out.push((
        "sqlite",
        s.residents,
        s.rows,
        started.elapsed().as_secs_f64(),
    ));
    if let Some(admin) = postgres {
        let name = format!("dhp_bench_{}", std::process::id());
        let pool = sqlx_admin(admin).await?;
        sqlx_exec(&pool, &format!("CREATE DATABASE {name}")).await?;
        let (base, _) = admin
            .rsplit_once('/')
            .context("postgres url needs a database name")?;
        let url = format!("{base}/{name}");
        let started = Instant::now();
        let result = generate_into(&url, &params, &bar()).await;
        let elapsed = started.elapsed().as_secs_f64();
        if let Ok((store, _)) = &result {
            drop(store.clone());
        }
        let outcome = result.map(|(_, s)| s);
        sqlx_exec(
            &pool,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        )
        .await?;
        let s = outcome?;
        rows_out.push(("postgres", s.residents, s.rows, elapsed));
    }
    println!("| backend | residents | rows | seconds | residents/s | rows/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (backend, residents, rows, secs) in rows_out {
        println!(
            "| {backend} | {residents} | {rows} | {secs:.1} | {:.0} | {:.0} |",
            residents as f64 / secs,
            rows as f64 / secs
        );
    }
    Ok(())
}

async fn sqlx_admin(url: &str) -> Result<dhp_store::AdminPool> {
    dhp_store::AdminPool::connect(url)
        .await
        .context("failed to reach PostgreSQL")
}

async fn sqlx_exec(pool: &dhp_store::AdminPool, sql: &str) -> Result<()> {
    pool.execute(sql)
        .await
        .with_context(|| format!("failed to run {sql}"))
}

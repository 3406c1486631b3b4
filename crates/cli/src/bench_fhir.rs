//! `dhp bench fhir`: read and search throughput of the FHIR API under concurrent load,
//! over real HTTP on loopback (hyper client, keep-alive connections), with latency
//! percentiles. Each request is a full authenticated, scoped and audited request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use dhp_store::{Store, Table};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;

/// What one kind of request achieved.
#[derive(Debug)]
pub struct Figures {
    pub kind: &'static str,
    pub requests: usize,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn system_token(addr: &str) -> Result<String> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = Request::post("/auth/token")
        .header("host", addr)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials&client_id=system&client_secret=system",
        )))?;
    let res = sender.send_request(req).await?;
    let body = res.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    v["access_token"]
        .as_str()
        .map(str::to_string)
        .context("the database has no `system` client (made by dhp generate)")
}

/// Run `connections` keep-alive connections for `seconds`, each sending requests of one
/// kind built by `path`, and measure.
async fn load(
    addr: &str,
    token: &str,
    kind: &'static str,
    connections: usize,
    seconds: f64,
    paths: Arc<Vec<String>>,
) -> Result<Figures> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let addr = addr.to_string();
        let token = format!("Bearer {token}");
        let paths = Arc::clone(&paths);
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(c as u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let path = &paths[rng.random_range(0..paths.len())];
                let req = Request::get(path.as_str())
                    .header("host", addr.as_str())
                    .header("authorization", token.as_str())
                    .body(Empty::<Bytes>::new())?;
                let t = Instant::now();
                let res = sender.send_request(req).await?;
                let status = res.status();
                res.into_body().collect().await?;
                if !status.is_success() {
                    anyhow::bail!("{path} answered {status}");
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    Ok(Figures {
        kind,
        requests: all.len(),
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
    })
}

/// Serve `store` on a loopback port and load it.
pub async fn run(store: Arc<dyn Store>, connections: usize, seconds: f64) -> Result<Vec<Figures>> {
    let residents = store.count(Table::Residents).await?;
    if residents == 0 {
        bail!("the database has no residents; run dhp generate first");
    }
    // A sample of residents to read and search for, spread over the id range.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut ids = Vec::new();
    let mut numbers = Vec::new();
    for _ in 0..200 {
        let after = rng.random_range(0..residents.max(1));
        if let Some(r) = store
            .page(Table::Residents, after, 1)
            .await?
            .residents
            .into_iter()
            .next()
        {
            ids.push(r.id);
            numbers.push(r.identity_number.as_str().to_string());
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    let server = tokio::spawn(dhp_server::serve(
        Arc::clone(&store),
        listener,
        dhp_server::ServerConfig::default(),
    ));
    let token = system_token(&addr).await?;
    let reads = Arc::new(
        ids.iter()
            .map(|id| format!("/fhir/Patient/{id}"))
            .collect::<Vec<_>>(),
    );
    let searches = Arc::new(
        numbers
            .iter()
            .map(|n| format!("/fhir/Patient?identifier={n}"))
            .collect::<Vec<_>>(),
    );
    let mut out = vec![
        load(
            &addr,
            &token,
            "read Patient/{id}",
            connections,
            seconds,
            reads,
        )
        .await?,
    ];
    out.push(
        load(
            &addr,
            &token,
            "search Patient?identifier=",
            connections,
            seconds,
            searches,
        )
        .await?,
    );
    server.abort();
    Ok(out)
}

//! dhp-server: the HTTP face of the platform — the portal's pages (Chinese and
//! English), the JSON API and the FHIR R4 API. One folder per capability, each with its
//! `routes()`, merged in [`app`]; what they share (the request context, security, the
//! audit writer, the message catalogues, charts) sits beside them and imports none of
//! them. Handlers parse, ask the store, and render; no SQL and no domain rules live
//! here (docs/ARCHITECTURE.md).

// Shared by every capability (they import none of the capabilities).
mod audit;
mod charts;
mod context;
pub mod i18n;
pub mod security;

// One folder per capability, each with its `routes()`.
pub mod accounts;
mod care;
pub mod contracts;
mod emergency;
mod fhir;
mod home;
pub mod indicators;
mod portal;
mod signin;
pub mod surveillance;
pub mod workbench;

pub use care::outbox;
pub use fhir::export;
pub use security::{auth, token};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use dhp_store::{Store, StoreError, Table};
use tokio::sync::OnceCell;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use auth::{create_demo_accounts, DemoAccount};

/// Shared state of the server.
#[derive(Debug)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sessions: security::session::Sessions,
    /// The gate of every password check (lockout, throttling, bounded memory).
    pub login: security::login::LoginGuard,
    pub config: ServerConfig,
    /// HS256 key that signs bearer tokens; kept in the store so tokens outlive a restart.
    pub(crate) token_key: Vec<u8>,
    /// Tokens issued before their account's password was last set, refused.
    pub(crate) revoked: security::token::Revocations,
    /// The organisation registry, read once: it changes only with a new district.
    orgs: OnceCell<std::collections::HashMap<dhp_core::Id, dhp_core::Organisation>>,
    /// Values of the `meta` table the FHIR layer reads on every request.
    place: OnceCell<Place>,
    /// Bulk export jobs.
    pub(crate) jobs: fhir::bulk::Jobs,
    /// The bound on refused FHIR writes per account.
    pub(crate) refusals: security::refusals::RefusalGuard,
}

/// Largest request body the server reads (1 MiB).
pub const BODY_LIMIT: usize = 1 << 20;

/// How the server is reached and what its protections allow.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL the server is reached at; links in answers (FHIR `fullUrl`, paging,
    /// `Location`) are built from it, never from the request's `Host`.
    pub base_url: url::Url,
    /// Whether the base URL was configured: then only its origin may post forms.
    pub base_url_configured: bool,
    /// Served over TLS: cookies are `Secure`.
    pub tls: bool,
    pub login: security::login::LoginPolicy,
    pub sessions: security::session::SessionPolicy,
    /// How long passwords last and how many earlier ones may not come back.
    pub passwords: dhp_core::password::Lifecycle,
    /// Where appointment reminders go.
    pub reminders: care::outbox::Reminders,
    /// Refused FHIR writes an account may meet per minute before it is held back.
    pub refused_writes_per_minute: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            base_url: url::Url::parse("http://127.0.0.1:8080/").expect("a valid URL"),
            base_url_configured: false,
            tls: false,
            login: Default::default(),
            sessions: Default::default(),
            passwords: Default::default(),
            reminders: Default::default(),
            refused_writes_per_minute: security::refusals::REFUSED_WRITES_PER_MINUTE,
        }
    }
}

impl ServerConfig {
    /// `base` without a trailing slash, e.g. `http://127.0.0.1:8080`.
    pub fn base(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_string()
    }
}

/// The district's names and the time generated records count as last updated.
#[derive(Debug, Clone, Default)]
pub(crate) struct Place {
    pub city: String,
    pub district: String,
    pub district_code: String,
    pub former_codes: Vec<String>,
    /// `lastUpdated` of generated rows that were never written through the API.
    pub generated: String,
}

impl AppState {
    /// State over `store`, creating the token-signing key on first use.
    pub async fn open(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        Self::open_with(store, ServerConfig::default()).await
    }

    /// State over `store` with `config`.
    pub async fn open_with(
        store: Arc<dyn Store>,
        config: ServerConfig,
    ) -> Result<Arc<Self>, StoreError> {
        let token_key = match store.meta("token_key").await? {
            Some(hex_key) => {
                hex::decode(hex_key).map_err(|e| StoreError::Corrupt(format!("token_key: {e}")))?
            }
            None => {
                let key = auth::random_bytes::<32>().to_vec();
                store.set_meta("token_key", &hex::encode(&key)).await?;
                key
            }
        };
        Ok(Arc::new(Self {
            store,
            sessions: security::session::Sessions::new(config.sessions.clone()),
            login: security::login::LoginGuard::new(config.login.clone()),
            token_key,
            revoked: Default::default(),
            orgs: OnceCell::new(),
            place: OnceCell::new(),
            refusals: security::refusals::RefusalGuard::new(config.refused_writes_per_minute),
            config,
            jobs: fhir::bulk::Jobs::default(),
        }))
    }

    /// Every organisation by id.
    pub(crate) async fn orgs(
        &self,
    ) -> Result<&std::collections::HashMap<dhp_core::Id, dhp_core::Organisation>, StoreError> {
        self.orgs
            .get_or_try_init(|| async {
                let page = self.store.page(Table::Organisations, 0, i64::MAX).await?;
                Ok(page.organisations.into_iter().map(|o| (o.id, o)).collect())
            })
            .await
    }

    pub(crate) async fn place(&self) -> Result<&Place, StoreError> {
        self.place
            .get_or_try_init(|| async {
                let get = |k: &'static str| async move {
                    self.store.meta(k).await.map(Option::unwrap_or_default)
                };
                let end = get("end_date").await?;
                Ok(Place {
                    city: get("city_name_zh").await?,
                    district: get("district_name_zh").await?,
                    district_code: get("district_code").await?,
                    former_codes: get("district_former_codes")
                        .await?
                        .split(',')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect(),
                    generated: if end.is_empty() {
                        "1970-01-01T00:00:00.000Z".into()
                    } else {
                        format!("{end}T00:00:00.000Z")
                    },
                })
            })
            .await
    }
}

/// The application's routes over `state`: every capability's, behind the guards every
/// request passes.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(home::routes())
        .merge(signin::routes())
        .merge(accounts::routes())
        .merge(emergency::routes())
        .merge(workbench::routes())
        .merge(contracts::routes())
        .merge(surveillance::routes())
        .merge(indicators::routes())
        .merge(care::routes())
        .merge(portal::routes())
        .nest("/fhir", fhir::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::refusal_gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::password::gate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::web::guard,
        ))
        // Outside the guards, so that what they refuse is a styled page too.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::styled_errors,
        ))
        .layer(axum::middleware::from_fn(i18n::remember_page))
        .layer(TraceLayer::new_for_http())
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::from_fn(fhir::negotiate))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::middleware::from_fn(security::web::headers))
        .with_state(state)
}

/// Carry out a transaction or batch Bundle as the integrating system `client` (import):
/// the response Bundle, or the outcome that refused all of it.
pub async fn import_bundle(
    state: &AppState,
    client: &str,
    bundle: serde_json::Value,
) -> Result<Result<serde_json::Value, dhp_fhir::OperationOutcome>, AppError> {
    let mut answers = import_bundles(state, client, vec![Import::new(bundle)]).await?;
    Ok(answers.pop().unwrap_or_else(|| {
        Err(dhp_fhir::OperationOutcome::one(dhp_fhir::Issue::new(
            dhp_fhir::IssueCode::Exception,
            "no answer",
        )))
    }))
}

/// The value of an import's mark once a file is in.
pub const IMPORTED: &str = "done";

/// One Bundle to import, and the setting that marks it imported: written (to
/// [`IMPORTED`]) in the transaction that writes the Bundle, so that an import resumed
/// after a crash at any moment writes nothing twice.
#[derive(Debug, Clone)]
pub struct Import {
    pub bundle: serde_json::Value,
    pub mark: Option<String>,
}

impl Import {
    pub fn new(bundle: serde_json::Value) -> Self {
        Self { bundle, mark: None }
    }

    pub fn marked(bundle: serde_json::Value, key: impl Into<String>) -> Self {
        Self {
            bundle,
            mark: Some(key.into()),
        }
    }
}

/// Carry out several transaction Bundles as the integrating system `client`, committed
/// together (one database transaction for the group); each Bundle is still all or
/// nothing: a refused one is left out, and a clash at commit is narrowed down by
/// halving the group until only the Bundle at fault fails. One answer per Bundle, in
/// order.
pub async fn import_bundles(
    state: &AppState,
    client: &str,
    bundles: Vec<Import>,
) -> Result<Vec<Result<serde_json::Value, dhp_fhir::OperationOutcome>>, AppError> {
    fhir::import_bundles(state, client, bundles).await
}

/// Write `resources` (each with its own `id`, as a bulk NDJSON export carries them) as
/// the integrating system `client`, in one transaction: `Ok(n)`, or the index and
/// outcome of the first refused one (and nothing written). `mark` (key, value) is
/// written in the same transaction: how far an import has got.
pub async fn import_resources(
    state: &AppState,
    client: &str,
    resources: Vec<serde_json::Value>,
    mark: Option<(&str, &str)>,
) -> Result<Result<usize, (usize, dhp_fhir::OperationOutcome)>, AppError> {
    fhir::import_resources(state, client, resources, mark).await
}

/// Serve `store` on `listener` until Ctrl-C.
pub async fn serve(
    store: Arc<dyn Store>,
    listener: tokio::net::TcpListener,
    config: ServerConfig,
) -> std::io::Result<()> {
    run(store, config, |app| async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    })
    .await
}

/// The server's certificate chain and private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// Serve `store` over TLS (rustls: TLS 1.2 and 1.3, the `ring` provider's safe
/// defaults) on `listener` until Ctrl-C. `config.tls` should be set: cookies are then
/// `Secure`.
pub async fn serve_tls(
    store: Arc<dyn Store>,
    listener: std::net::TcpListener,
    config: ServerConfig,
    files: &TlsFiles,
) -> std::io::Result<()> {
    // One process-wide provider; a second install (tests) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&files.cert, &files.key)
        .await
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "the certificate {} or key {} cannot be used: {e}",
                    files.cert.display(),
                    files.key.display()
                ),
            )
        })?;
    listener.set_nonblocking(true)?;
    let server = axum_server::tls_rustls::from_tcp_rustls(listener, tls)?;
    run(store, config, |app| async move {
        let handle = axum_server::Handle::new();
        let stop = handle.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.graceful_shutdown(Some(Duration::from_secs(10)));
        });
        server
            .handle(handle)
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
    })
    .await
}

/// Open the state, seal the audit log every second and run the booking day's round
/// every minute while `serve` runs the app, and seal what was written last once it
/// stops.
async fn run<F, Fut>(store: Arc<dyn Store>, config: ServerConfig, serve: F) -> std::io::Result<()>
where
    F: FnOnce(Router) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let state = AppState::open_with(store.clone(), config)
        .await
        .map_err(std::io::Error::other)?;
    let sealer = tokio::spawn(seal_audit_log(store.clone()));
    let booking_day = tokio::spawn(care::outbox::run(state.clone()));
    let served = serve(app(state)).await;
    sealer.abort();
    booking_day.abort();
    // What was written last is sealed before the server stops.
    if let Err(e) = store.seal_audit().await {
        tracing::warn!(error = %e, "sealing the audit log failed");
    }
    served
}

async fn seal_audit_log(store: Arc<dyn Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = store.seal_audit().await {
            tracing::warn!(error = %e, "sealing the audit log failed; trying again");
        }
    }
}

/// A failure while answering: logged in full, shown without internals.
#[derive(Debug)]
pub enum AppError {
    Store(StoreError),
    Render(askama::Error),
    /// Anything else the server could not do (a file it could not write).
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Store(e)
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Render(e)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = ?self, "request failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: the server could not answer; see its log",
        )
            .into_response()
    }
}

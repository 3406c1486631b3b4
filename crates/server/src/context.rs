//! The request context every capability shares: who is asking (a portal session or a
//! bearer token) and their principal, the organisation facts their scope is decided
//! on, the district's "today", the page language, the audited read of one resident's
//! record, and one refusal type that answers in the form of the surface asked
//! (`/fhir`: an OperationOutcome; `/api`: `{"error", "field"}`; pages: a styled page).
//! No capability imports another capability's helpers: what two need lives here.

use askama::Template;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use dhp_core::access::{OrgFacts, Principal, Role};
use dhp_core::programmes::ResidentRecord;
use dhp_core::Id;
use dhp_fhir::{Issue, IssueCode, OperationOutcome};
use dhp_store::{Cohort, Reading, StoreError, User};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::i18n::{messages, Messages};
use crate::security::session::SignedIn;
use crate::security::web::session_token;
use crate::{AppError, AppState};

/// The live session of a request's cookie, if it may act (a session whose password
/// must be changed first opens only the password page).
pub(crate) fn current_user(state: &AppState, headers: &HeaderMap) -> Option<SignedIn> {
    session_token(headers)
        .and_then(|t| state.sessions.get(&t))
        .filter(|s| s.change.is_none())
}

/// The district's "today": the last day of its records (a generated district ends on a
/// fixed day), else the calendar's today.
pub async fn as_of(state: &AppState) -> Result<NaiveDate, StoreError> {
    dhp_store::as_of(&*state.store).await
}

/// The district's present moment: its "today" (the last day of a generated district's
/// records, else the calendar's) at the clock's time of day.
pub async fn district_now(state: &AppState) -> Result<chrono::NaiveDateTime, StoreError> {
    Ok(as_of(state).await?.and_time(dhp_core::clock::now().time()))
}

/// What a read of one resident's record came to.
#[derive(Debug)]
pub(crate) enum Readable {
    Record(Box<ResidentRecord>),
    NotFound,
    Denied,
}

/// Resident `id`'s record (as much as `reading` asks) if `who` may read it on `on`;
/// the attempt is audited either way, as `action` on `Patient/{id}`.
pub(crate) async fn readable(
    state: &AppState,
    who: &Principal,
    id: Id,
    on: NaiveDate,
    action: &str,
    reading: Reading,
) -> Result<Readable, AppError> {
    let actor = Actor::from(who);
    let resource = format!("Patient/{id}");
    let facts = match state.store.resident_access_facts(id, on).await {
        Ok(f) => f,
        Err(StoreError::NotFound(_)) => {
            audit::record(
                &*state.store,
                &actor,
                action,
                &resource,
                None,
                "not-found",
                "workbench",
            )
            .await?;
            return Ok(Readable::NotFound);
        }
        Err(e) => return Err(e.into()),
    };
    let org = org_facts(state, who).await?;
    if !dhp_core::access::may_read_resident(who, org.as_ref(), &facts).allowed() {
        audit::record(
            &*state.store,
            &actor,
            action,
            &resource,
            Some(id),
            "denied",
            "workbench",
        )
        .await?;
        return Ok(Readable::Denied);
    }
    audit::record(
        &*state.store,
        &actor,
        action,
        &resource,
        Some(id),
        "success",
        "workbench",
    )
    .await?;
    Ok(
        match state
            .store
            .programme_records(&Cohort::Resident(id), reading, on, id - 1, 1)
            .await?
            .pop()
        {
            Some(rec) => Readable::Record(Box::new(rec)),
            None => Readable::NotFound,
        },
    )
}

/// A JSON request body for `/api` read as the object `T` (after the caller is
/// known), or the refusal `400 {"error", "field"}` naming the field at fault (its path
/// in the body; `body` when the body as a whole is wrong: empty, not JSON, not an
/// object), in words, never the parser's. Only an object is read: serde would take an
/// array as the fields in order, which no client means.
pub(crate) fn api_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => {
            return Err(Refusal::bad(
                "body",
                "the body is empty: a JSON object is expected",
            ))
        }
        Some(b'{') => {}
        Some(_) if serde_json::from_slice::<serde_json::Value>(body).is_err() => {
            return Err(Refusal::bad(
                "body",
                "the body is not JSON: a JSON object is expected",
            ))
        }
        Some(_) => return Err(Refusal::bad("body", "the body must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let text = inner.to_string();
        // serde's own words name a missing or repeated field at its object's path.
        let named = ["missing field `", "duplicate field `"]
            .iter()
            .find_map(|p| text.strip_prefix(p)?.split('`').next());
        let field = match (path.as_str(), named) {
            _ if inner.is_syntax() || inner.is_eof() => "body".to_string(),
            ("" | "." | "?", Some(f)) => f.to_string(),
            (p, Some(f)) => format!("{p}.{f}"),
            ("" | "." | "?", None) => "body".to_string(),
            (p, None) => p.to_string(),
        };
        let why = if inner.is_syntax() || inner.is_eof() {
            "the body is not JSON (cut short, or a character out of place)".to_string()
        } else if let Some(f) = named {
            if text.starts_with("missing") {
                format!("{f} is required")
            } else {
                format!("{f} is given twice")
            }
        } else {
            expected(&text)
        };
        Refusal::bad(&field, why)
    })?;
    de.end()
        .map_err(|_| Refusal::bad("body", "the body goes on after its JSON object"))?;
    Ok(value)
}

/// What a field should have been, in words, from serde's "invalid type: string
/// \"abc\", expected i64 at line 1 column 9".
fn expected(text: &str) -> String {
    let wanted = text
        .split(" at line ")
        .next()
        .unwrap_or(text)
        .rsplit("expected ")
        .next()
        .unwrap_or_default();
    let words = match wanted {
        w if w.contains("i64") || w.contains("i32") || w.contains("u32") || w.contains("u64") => {
            "a whole number"
        }
        w if w.contains("f64") || w.contains("f32") => "a number",
        w if w.contains("string") || w.contains("str") => "text",
        w if w.contains("bool") => "true or false",
        w if w.contains("sequence") => "a list",
        w if w.contains("struct") || w.contains("map") => "an object",
        w if w.starts_with("an id") => w,
        w if w.contains("variant") => "one of the values the field takes",
        _ if text.contains("out of range") => "a number in range",
        _ => "a different value",
    };
    format!("must be {words}")
}

/// An id a client may send as a number (as `/api` lists give it) or as text.
pub(crate) fn number_or_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) if n.is_i64() => Ok(Some(n.to_string())),
        Some(serde_json::Value::String(t)) => Ok(Some(t)),
        Some(_) => Err(serde::de::Error::custom(
            "invalid type: expected an id (a whole number or text)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        resident_id: i64,
        code: String,
        #[serde(default, deserialize_with = "number_or_text")]
        slot: Option<String>,
    }

    fn refused(body: &str) -> (String, String) {
        let r = api_body::<Order>(body.as_bytes()).unwrap_err();
        (r.field.unwrap_or_default(), r.message)
    }

    #[test]
    fn a_body_is_read_as_an_object_and_faults_name_their_field() {
        let o: Order = api_body(br#"{"resident_id": 4, "code": "24627-2", "slot": 7}"#).unwrap();
        assert_eq!((o.resident_id, o.slot.as_deref()), (4, Some("7")));
        let o: Order = api_body(br#"{"resident_id": 4, "code": "x", "slot": "8"}"#).unwrap();
        assert_eq!(o.slot.as_deref(), Some("8"));
        assert_eq!(refused(r#"[4, "24627-2"]"#).0, "body");
        assert_eq!(refused("null").0, "body");
        assert_eq!(refused("").0, "body");
        assert_eq!(refused("   ").0, "body");
        assert_eq!(refused("resident=4").0, "body");
        assert_eq!(refused(r#"{"resident_id": 4"#).0, "body");
        assert_eq!(
            refused(r#"{"code": "x"}"#),
            (
                "resident_id".to_string(),
                "resident_id is required".to_string()
            )
        );
        assert_eq!(
            refused(r#"{"resident_id": 4, "resident_id": 5, "code": "x"}"#).0,
            "resident_id"
        );
        assert_eq!(
            refused(r#"{"resident_id": null, "code": "x"}"#).0,
            "resident_id"
        );
        assert_eq!(refused(r#"{"resident_id": 4, "code": 3}"#).0, "code");
        assert!(!refused(r#"{"resident_id": 4, "code": 3}"#)
            .1
            .contains("line"));
        assert_eq!(refused(r#"{"resident_id": 4, "code": "x"} {}"#).0, "body");
    }
}

/// A request refused: its status, the field at fault (in the request's words, when one
/// is) and why. One type for every surface: [`Refusal::api`] for `/api`,
/// [`Refusal::outcome`] for `/fhir`, [`Refusal::page`] for pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub field: Option<String>,
    pub message: String,
}

impl Refusal {
    /// Refused for `field`.
    pub fn new(status: StatusCode, field: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// `400`: `field` is wrong.
    pub fn bad(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, field, message)
    }

    /// Refused as a whole (no one field at fault).
    pub fn bare(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            field: None,
            message: message.into(),
        }
    }

    /// The `/api` answer: `{"error": …, "field": …}` (`field` left out when none is).
    pub fn api(&self) -> Response {
        let body = match &self.field {
            Some(f) => serde_json::json!({ "error": self.message, "field": f }),
            None => serde_json::json!({ "error": self.message }),
        };
        (self.status, Json(body)).into_response()
    }

    /// The `/fhir` form: an OperationOutcome whose issue names the field as its
    /// location, with the refusal's status (the FHIR layer answers it).
    pub fn outcome(&self) -> OperationOutcome {
        let code = match self.status {
            StatusCode::UNAUTHORIZED => IssueCode::Login,
            StatusCode::FORBIDDEN => IssueCode::Forbidden,
            StatusCode::NOT_FOUND => IssueCode::NotFound,
            StatusCode::CONFLICT => IssueCode::Conflict,
            s if s.is_server_error() => IssueCode::Exception,
            _ => IssueCode::Invalid,
        };
        let issue = match &self.field {
            Some(f) => Issue::at(code, f.as_str(), &self.message),
            None => Issue::new(code, self.message.clone()),
        };
        OperationOutcome::one(issue).with_status(self.status.as_u16())
    }

    /// A page in the reader's language: what was refused, the field at fault, and a
    /// way back (`back`: a same-site path and its label's message key).
    pub fn page(
        &self,
        t: &'static Messages,
        user: Option<SignedIn>,
        back: (&str, &str),
    ) -> Response {
        let title = match self.status.as_u16() {
            401 | 403 => "err_title_forbidden",
            404 => "err_title_not_found",
            429 => "err_title_busy",
            s if s >= 500 => "err_title_failed",
            _ => "bad_request",
        };
        let page = RefusalPage {
            t,
            title: t.get(title),
            user,
            field: self.field.clone().unwrap_or_default(),
            message: self.message.clone(),
            // The way back keeps the page's language.
            back: crate::i18n::with_lang(back.0, t.get("lang")),
            back_label: t.get(back.1).to_string(),
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(e) => AppError::from(e).into_response(),
        }
    }
}

#[derive(Template)]
#[template(path = "refusal.html")]
struct RefusalPage {
    pub(crate) t: &'static Messages,
    pub(crate) user: Option<SignedIn>,
    /// The page's heading: what kind of refusal it is.
    pub(crate) title: &'static str,
    pub(crate) field: String,
    pub(crate) message: String,
    pub(crate) back: String,
    pub(crate) back_label: String,
}

/// The principal of a portal session.
pub(crate) fn principal_of(user: &User) -> Option<Principal> {
    Some(Principal {
        username: user.username.clone(),
        role: Role::parse(&user.role)?,
        org_id: user.org_id,
        practitioner_id: user.practitioner_id,
        resident_id: user.resident_id,
    })
}

/// The session of a page's request, or the answer that sends the browser to the login
/// (in the page's language), coming back to `path` after it.
pub(crate) fn session_or_login(
    state: &AppState,
    headers: &HeaderMap,
    t: &Messages,
    path: &str,
) -> Result<SignedIn, Box<Response>> {
    current_user(state, headers).ok_or_else(|| {
        let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        Box::new(
            axum::response::Redirect::to(&format!("/login?lang={}&next={next}", t.get("lang")))
                .into_response(),
        )
    })
}

/// The bound on refused writes (`security::refusals`) in force on every write (any method but GET, HEAD, OPTIONS; a FHIR
/// `_search` is a read) of a signed-in account, bearer token or portal session: an
/// account past it is answered `429` before its write is read (an OperationOutcome
/// under `/fhir`, `{"error"}` under `/api`, a page elsewhere), audited without a
/// resident; every write answered as refused counts.
pub(crate) async fn refusal_gate(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, Method, StatusCode};
    use axum::response::IntoResponse;
    let path = req.uri().path().to_string();
    // Signing out and changing one's password stay open to a held-back account.
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !path.ends_with("/_search")
        && !matches!(path.as_str(), "/logout" | "/password" | "/auth/password");
    let who = if writes {
        crate::context::caller(&state, req.headers()).await
    } else {
        None
    };
    let Some(who) = who else {
        return next.run(req).await;
    };
    if let Some(wait) = state.refusals.held(&who.username) {
        if let Err(e) = crate::audit::record(
            &*state.store,
            &crate::audit::Actor::from(&who),
            "write",
            &path,
            None,
            "denied",
            "429: too many refused writes; held back",
        )
        .await
        {
            return crate::AppError::from(e).into_response();
        }
        let seconds = wait.as_secs().max(1);
        let t = crate::i18n::messages(if path.starts_with("/fhir") || path.starts_with("/api") {
            "en"
        } else {
            crate::context::lang_of(req.uri())
        });
        let why = t
            .get("held_back")
            .replace("{seconds}", &seconds.to_string());
        let mut res = if path.starts_with("/fhir") {
            let o = dhp_fhir::OperationOutcome::one(dhp_fhir::Issue::new(
                dhp_fhir::IssueCode::Throttled,
                why,
            ));
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::CONTENT_TYPE, dhp_fhir::FHIR_JSON)],
                o.to_json().to_string(),
            )
                .into_response()
        } else {
            let r = crate::context::Refusal::bare(StatusCode::TOO_MANY_REQUESTS, why);
            if path.starts_with("/api") {
                r.api()
            } else {
                r.page(
                    t,
                    crate::context::current_user(&state, req.headers()),
                    ("/", "back_home"),
                )
            }
        };
        res.headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
        return res;
    }
    let kind = path
        .trim_start_matches("/fhir")
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut res = next.run(req).await;
    if crate::security::refusals::counts(res.status().as_u16()) {
        state.refusals.refused(&who.username);
    }
    // A FHIR write the platform's own rules refuse with 405 (a referral's request is
    // moved on by its Task; tiered care's records are not deleted) says what the URL
    // takes.
    if path.starts_with("/fhir")
        && res.status() == StatusCode::METHOD_NOT_ALLOWED
        && !res.headers().contains_key(header::ALLOW)
    {
        let allow = if kind == "ServiceRequest" {
            "GET, HEAD"
        } else {
            "GET, HEAD, PUT"
        };
        res.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    res
}

/// Every error a page route answers is a styled page in the page's language: a bare
/// catalogue sentence (`<p>…</p>` or text) keeps its words, the framework's own
/// plain-text answers (a bad path or query parameter: "Cannot parse …", a method the
/// URL does not take, a body too large) are said in words — never the parser's.
/// `/api`, `/fhir`, `/auth`, static files and the health check keep their own forms.
pub(crate) async fn styled_errors(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    if ["/api", "/fhir", "/auth", "/static", "/healthz"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        return next.run(req).await;
    }
    let lang = lang_of(req.uri());
    let t = messages(lang);
    let user = current_user(&state, req.headers());
    let back = return_to(&req);
    let mut res = next.run(req).await;
    let status = res.status();
    if status.is_redirection() {
        // Sent to sign in: come back to this page (its query kept) afterwards.
        let to_login = res
            .headers()
            .get(axum::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|l| l == "/login" || l.starts_with("/login?"));
        if to_login && back != "/" && !back.starts_with("/login") {
            let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
            if let Ok(v) = format!("/login?lang={lang}&next={next}").parse() {
                res.headers_mut().insert(axum::http::header::LOCATION, v);
            }
        }
        return res;
    }
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let kind = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if kind.starts_with("application/json") {
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Refusal::bare(status, t.get("err_failed")).page(t, user, ("/", "back_home"));
    };
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim_start();
    if kind.starts_with("text/html")
        && trimmed.len() > 9
        && trimmed[..9].eq_ignore_ascii_case("<!doctype")
    {
        // Already a whole page.
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    }
    let message = if kind.starts_with("text/html") && !trimmed.is_empty() {
        trimmed
            .trim_start_matches("<p>")
            .trim_end()
            .trim_end_matches("</p>")
            .to_string()
    } else {
        t.get(match status.as_u16() {
            404 => "err_not_found",
            405 => "err_method",
            413 => "err_too_large",
            400 | 422 => "err_bad_address",
            _ => "err_failed",
        })
        .to_string()
    };
    let mut out = Refusal::bare(status, message).page(t, user, ("/", "back_home"));
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        out.headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    out
}

/// Where a request would come back to after signing in: a page's path and query (its
/// `lang` left to the sign-in page); for a form sent without a session, the
/// same-site page the form was on.
fn return_to(req: &axum::extract::Request) -> String {
    let page = if req.method() == axum::http::Method::GET {
        req.uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default()
    } else {
        req.headers()
            .get(axum::http::header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.parse::<axum::http::Uri>().ok())
            .filter(|u| {
                u.authority().is_none()
                    || u.authority().map(|a| a.as_str())
                        == req
                            .headers()
                            .get(axum::http::header::HOST)
                            .and_then(|h| h.to_str().ok())
            })
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_string()))
            .unwrap_or_default()
    };
    let page = crate::i18n::without_lang(&page);
    crate::security::web::same_site_path(&page)
        .unwrap_or("/")
        .to_string()
}

/// The page a role lands on after signing in.
pub(crate) fn start_page(role: &str) -> &'static str {
    match Role::parse(role) {
        Some(Role::Resident) => "/me",
        Some(Role::FamilyDoctor) => "/workbench",
        Some(Role::HospitalClinician) => "/care",
        Some(Role::PublicHealthDoctor) => "/surveillance",
        Some(Role::Manager) => "/indicators",
        Some(Role::SystemAdmin | Role::SecurityAdmin) => "/admin/accounts",
        Some(Role::AuditAdmin) => "/emergency-access",
        _ => "/",
    }
}

/// The page language a request's query asks for (`zh` unless `lang=en`).
pub(crate) fn lang_of(uri: &axum::http::Uri) -> &'static str {
    let en = uri.query().is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "lang" && v == "en")
    });
    if en {
        "en"
    } else {
        "zh"
    }
}

/// The caller of an API request: bearer token or portal session.
pub(crate) async fn caller(state: &AppState, headers: &HeaderMap) -> Option<Principal> {
    if let Ok((who, issued)) = crate::security::token::principal(&state.token_key, headers) {
        // A token issued before the password was last set is no one's.
        return state
            .revoked
            .check(&*state.store, &who.username, issued)
            .await
            .ok()
            .map(|()| who);
    }
    current_user(state, headers).and_then(|u| principal_of(&u))
}

/// The organisation facts the access rules decide `who`'s scope on (none for an
/// account without an organisation).
pub(crate) async fn org_facts(
    state: &AppState,
    who: &Principal,
) -> Result<Option<OrgFacts>, StoreError> {
    Ok(match who.org_id {
        Some(o) => {
            let o = state
                .orgs()
                .await?
                .get(&o)
                .cloned()
                .ok_or_else(|| StoreError::NotFound(format!("organisation {o}")))?;
            Some(OrgFacts {
                id: o.id,
                kind: o.kind,
                parent_id: o.parent_id,
                district_code: o.district_code,
            })
        }
        None => None,
    })
}

/// The page language (`?lang=zh`, the default, or `en`) and, on the login page, where
/// to go next.
#[derive(Debug, Deserialize)]
pub struct LangQuery {
    #[serde(default, deserialize_with = "crate::i18n::page_lang")]
    pub(crate) lang: Option<String>,
    /// Where to go after logging in (a path on this server).
    pub(crate) next: Option<String>,
}

impl LangQuery {
    /// The message catalogue of the page's language.
    pub(crate) fn messages(&self) -> &'static Messages {
        messages(self.lang.as_deref().unwrap_or("zh"))
    }
}

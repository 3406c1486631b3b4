//! What every browser-facing request passes: cross-site refusal (`Sec-Fetch-Site`,
//! `Origin`), the session's CSRF token on state-changing forms, JSON only on the JSON
//! API, security headers on every answer, and same-site paths only after login.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "dhp_session";
/// The form field that carries the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf";
/// The header that carries it on JSON requests made with the session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The content security policy of every answer: scripts and styles from this server
/// only (style attributes allowed for bar widths), no framing, forms to this server.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    style-src-attr 'unsafe-inline'; img-src 'self' data:; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The client address of a request (`in-process` when it came without a socket).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
                .unwrap_or_else(|| "in-process".into()),
        ))
    }
}

/// The session token of a request's cookie.
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value that opens (`Some(token)`) or ends (`None`) a session;
/// `Secure` when the server is reached over TLS.
pub fn session_cookie(token: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match token {
        Some(t) => format!("{SESSION_COOKIE}={t}; HttpOnly; SameSite=Lax; Path=/{secure}"),
        None => format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0{secure}"),
    }
}

/// `next` if it is a path on this server (where to go after login), else `None`:
/// `//host`, `/\host`, schemes and control characters are refused.
pub fn same_site_path(next: &str) -> Option<&str> {
    if !next.starts_with('/')
        || next.starts_with("//")
        || next.contains('\\')
        || next.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    let base = url::Url::parse("http://dhp.invalid/").ok()?;
    let joined = base.join(next).ok()?;
    (joined.host_str() == Some("dhp.invalid") && joined.scheme() == "http").then_some(next)
}

fn refuse(status: StatusCode, field: &str, error: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": error, "field": field })),
    )
        .into_response()
}

/// A refused request of a page (not `/api`, `/fhir`, `/auth`): the catalogue's
/// sentence in the page's language, which the page layer shows as a styled page.
fn refuse_page(status: StatusCode, uri: &axum::http::Uri, key: &str) -> Response {
    let t = crate::i18n::messages(
        if uri.query().is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "lang" && v == "en")
        }) {
            "en"
        } else {
            "zh"
        },
    );
    (
        status,
        axum::response::Html(format!("<p>{}</p>", t.get(key))),
    )
        .into_response()
}

/// `refuse` for the APIs, `refuse_page` for a page.
fn refuse_either(
    uri: &axum::http::Uri,
    status: StatusCode,
    field: &str,
    error: &str,
    key: &str,
) -> Response {
    let path = uri.path();
    if ["/api", "/fhir", "/auth"]
        .iter()
        .any(|p| path.starts_with(p))
    {
        refuse(status, field, error)
    } else {
        refuse_page(status, uri, key)
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|c| c == "application/x-www-form-urlencoded")
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
}

/// Whether `origin` (`scheme://host[:port]`) is this server's: the configured base
/// URL's; without one, also the origin the request's `Host` names (only compared, never
/// used to build a link: a browser sends its own page's origin and the target's host).
fn own_origin(state: &AppState, headers: &HeaderMap, origin: &str) -> bool {
    if origin == state.config.base_url.origin().ascii_serialization() {
        return true;
    }
    if state.config.base_url_configured {
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let scheme = if state.config.tls { "https" } else { "http" };
    origin == format!("{scheme}://{host}")
}

/// Refuse state-changing requests that a browser made for another site, form posts
/// of a session without its CSRF token, and JSON API requests that are not JSON.
pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let bearer = headers.contains_key(header::AUTHORIZATION);
    if !bearer {
        // Fetch metadata: a browser says where the request comes from.
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            if !matches!(site, "same-origin" | "none") {
                tracing::warn!(site, path = req.uri().path(), "cross-site request refused");
                return refuse_either(
                    req.uri(),
                    StatusCode::FORBIDDEN,
                    "Sec-Fetch-Site",
                    "a request from another site may not change anything here",
                    "cross_site_refused",
                );
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if !own_origin(&state, headers, origin) {
                return refuse_either(
                    req.uri(),
                    StatusCode::FORBIDDEN,
                    "Origin",
                    "a request from another origin may not change anything here",
                    "cross_site_refused",
                );
            }
        }
    }
    let path = req.uri().path().to_string();
    let json_api = path.starts_with("/api/");
    if json_api && content_type(headers).as_deref() != Some("application/json") {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
            "the JSON API takes application/json bodies only",
        );
    }
    let session = session_token(headers).and_then(|t| state.sessions.get(&t));
    let Some(session) = session.filter(|_| !bearer) else {
        return next.run(req).await;
    };
    // A request that rides on the session cookie proves it came from our own page.
    if json_api {
        let token = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !session.csrf_matches(token) {
            return refuse(
                StatusCode::FORBIDDEN,
                CSRF_HEADER,
                "a request made with the session cookie must carry the session's CSRF token",
            );
        }
        return next.run(req).await;
    }
    if !is_form(headers) {
        return refuse_either(
            req.uri(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type",
            "forms are sent as application/x-www-form-urlencoded",
            "form_kind_refused",
        );
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::BODY_LIMIT).await else {
        return refuse_either(
            &parts.uri,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
            "the form is too large",
            "err_too_large",
        );
    };
    let token = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if !session.csrf_matches(&token) {
        tracing::warn!(username = %session.username, path, "form without its CSRF token");
        return refuse_page(StatusCode::FORBIDDEN, &parts.uri, "form_expired");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Security headers on every answer (those a handler set itself are kept).
pub async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_server_are_followed_after_login() {
        for ok in ["/", "/workbench?lang=en", "/indicators/x?org=1&period=2025"] {
            assert_eq!(same_site_path(ok), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example/",
            "/\\evil.example/",
            "/\\/evil.example",
            "https://evil.example/",
            "evil.example",
            "/\t/evil.example",
            "/ /evil.example",
            "",
            "javascript:alert(1)",
        ] {
            assert_eq!(same_site_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cookies_are_secure_over_tls() {
        assert!(session_cookie(Some("t"), true).ends_with("; Secure"));
        assert!(!session_cookie(Some("t"), false).contains("Secure"));
        assert!(session_cookie(None, false).contains("Max-Age=0"));
    }
}

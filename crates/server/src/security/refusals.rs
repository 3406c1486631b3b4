//! A bound on refused writes per account. Every refused write is audited against the
//! resident it names, so an account out of a resident's scope could otherwise fill
//! that resident's trail ("who tried to write my record") with thousands of entries
//! a minute. Past the bound the account's writes are held back for a while (`429`,
//! `Retry-After`) before any of them is read; the held-back attempts are audited
//! without a resident. Legitimate writers are refused rarely: the bound counts
//! refusals, never accepted writes.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Refused writes an account may meet per minute (and at once) before it is held back.
pub const REFUSED_WRITES_PER_MINUTE: u32 = 60;

pub struct RefusalGuard {
    /// Refusals a minute.
    per_minute: u32,
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    held: Mutex<HashMap<String, Instant>>,
}

impl RefusalGuard {
    /// A guard letting `per_minute` refusals a minute through (at least one).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).expect("at least one");
        Self {
            per_minute: n.get(),
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)),
            clock: DefaultClock::default(),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// How long `account` is still held back, if it is.
    pub fn held(&self, account: &str) -> Option<Duration> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let until = *held.get(account)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            held.remove(account);
            None
        }
    }

    /// Count one refused write of `account`; past the bound it is held back until the
    /// limiter lets a refusal through again.
    pub fn refused(&self, account: &str) {
        let key = account.to_string();
        if let Err(not_until) = self.limiter.check_key(&key) {
            let wait = not_until.wait_time_from(self.clock.now());
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            // Accounts are few (they are signed in); the map is still kept small.
            if held.len() > 10_000 {
                let now = Instant::now();
                held.retain(|_, until| *until > now);
                self.limiter.retain_recent();
            }
            held.insert(key, Instant::now() + wait);
        }
    }
}

/// The bound in force on every write (any method but GET, HEAD, OPTIONS; a FHIR
/// `_search` is a read) of a signed-in account, bearer token or portal session: an
/// account past it is answered `429` before its write is read (an OperationOutcome
/// under `/fhir`, `{"error"}` under `/api`, a page elsewhere), audited without a
/// resident; every write answered as refused counts.
pub(crate) async fn gate(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, Method, StatusCode};
    use axum::response::IntoResponse;
    let path = req.uri().path().to_string();
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !path.ends_with("/_search");
    let Some(who) = writes
        .then(|| crate::context::caller(&state, req.headers()))
        .flatten()
    else {
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
            crate::fhir::throttled(&why)
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
    if matches!(
        res.status().as_u16(),
        400 | 403 | 404 | 405 | 409 | 412 | 422
    ) {
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

impl std::fmt::Debug for RefusalGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalGuard")
            .field("per_minute", &self.per_minute)
            .finish_non_exhaustive()
    }
}

impl Default for RefusalGuard {
    fn default() -> Self {
        Self::new(REFUSED_WRITES_PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_held_back_past_its_refusals_and_others_are_not() {
        let g = RefusalGuard::new(3);
        for _ in 0..3 {
            g.refused("a");
            assert_eq!(g.held("a"), None);
        }
        g.refused("a");
        let wait = g.held("a").expect("held back after the fourth refusal");
        assert!(wait <= Duration::from_secs(20), "{wait:?}");
        assert_eq!(g.held("b"), None);
    }
}

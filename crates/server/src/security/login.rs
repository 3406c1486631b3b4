//! Login protection (GB/T 22239-2019 level 3, identification and authentication: login
//! failure handling, limits on failed attempts): every password check goes through
//! [`LoginGuard::attempt`], which
//! - refuses an account (a name tried, known or not) after `account_failures` failures
//!   inside `window`, until the oldest of them ages out, without checking the password;
//! - throttles a client address after `address_failures` failures inside `window`;
//! - runs at most `concurrent_checks` argon2 checks at once (each takes ~19 MiB), with at
//!   most `queue` more waiting up to `wait`; the rest are answered "busy" at once, so
//!   memory stays bounded whatever the number of attempts;
//! - checks an unknown name against a decoy hash of the same strength, so that known
//!   and unknown names cost the same;
//! - audits each attempt: success, failure, refusal while locked or throttled, the lock
//!   itself, and "busy".

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use dhp_store::{Store, StoreError, User};
use tokio::sync::Semaphore;

use crate::audit::{self, Actor};
use crate::security::auth;

/// The numbers of the login policy.
#[derive(Debug, Clone)]
pub struct LoginPolicy {
    /// Failures of one account inside `window` that lock it.
    pub account_failures: usize,
    /// Failures from one client address inside `window` that throttle it.
    pub address_failures: i64,
    pub window: Duration,
    /// Password checks running at once.
    pub concurrent_checks: usize,
    /// Attempts waiting for a check; beyond this they are answered "busy".
    pub queue: usize,
    /// How long an attempt waits for a check before it is answered "busy".
    pub wait: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            account_failures: 5,
            address_failures: 20,
            window: Duration::from_secs(15 * 60),
            concurrent_checks: cores.max(2),
            queue: 64,
            wait: Duration::from_secs(5),
        }
    }
}

/// How an attempt ended.
#[derive(Debug)]
pub enum LoginOutcome {
    Verified(User),
    /// Unknown name or wrong secret (the two are not told apart).
    Wrong,
    /// The account is locked until then (UTC).
    Locked(NaiveDateTime),
    /// The client address made too many failed attempts; retry after this many seconds.
    Throttled(u64),
    /// Too many checks at once; retry in a moment.
    Busy,
}

/// Where an attempt came from and what it asked for, for the audit entry.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub username: &'a str,
    pub secret: &'a str,
    /// Only integrating systems' clients may pass (the `client_credentials` grant).
    pub systems_only: bool,
    pub address: &'a str,
    /// `/login` or `/auth/token`.
    pub resource: &'a str,
    /// `password` or the grant type.
    pub method: &'a str,
}

/// Counts of what the guard did, for tests and the benchmark.
#[derive(Debug, Default)]
pub struct GuardCounts {
    in_flight: AtomicUsize,
    /// The most checks that ever ran at once.
    pub peak: AtomicUsize,
    /// Password checks run (decoy checks included).
    pub checks: AtomicU64,
}

/// A password check handed to the checking threads: secret, stored hash, where the
/// answer goes.
type Check = (String, String, tokio::sync::oneshot::Sender<bool>);

/// The threads that run password checks: a fixed few, so that the ~19 MiB each argon2
/// check allocates is reused by the same few threads (and their allocator arenas)
/// instead of being left behind in every thread of a growing blocking pool.
#[derive(Debug)]
struct Checkers(std::sync::Mutex<std::sync::mpsc::Sender<Check>>);

impl Checkers {
    fn start(n: usize) -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<Check>();
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..n.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || {
                    let mut blocks = Vec::new();
                    loop {
                        let job = rx.lock().map(|r| r.recv());
                        let Ok(Ok((secret, hash, answer))) = job else {
                            return;
                        };
                        let ok = auth::verify_password_reusing(&secret, &hash, &mut blocks);
                        let _ = answer.send(ok);
                    }
                })
                .expect("a password-check thread starts");
        }
        Self(std::sync::Mutex::new(tx))
    }

    async fn check(&self, secret: String, hash: String) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .0
            .lock()
            .map(|s| s.send((secret, hash, tx)).is_ok())
            .unwrap_or(false);
        sent && rx.await.unwrap_or(false)
    }
}

/// The one gate every password check passes through.
#[derive(Debug)]
pub struct LoginGuard {
    pub policy: LoginPolicy,
    checkers: Checkers,
    checks: Semaphore,
    queue: Semaphore,
    decoy: String,
    pub counts: GuardCounts,
}

impl LoginGuard {
    pub fn new(policy: LoginPolicy) -> Self {
        let decoy = auth::hash_password(&hex::encode(auth::random_bytes::<16>()));
        Self {
            checkers: Checkers::start(policy.concurrent_checks),
            checks: Semaphore::new(policy.concurrent_checks),
            queue: Semaphore::new(policy.concurrent_checks + policy.queue),
            policy,
            decoy,
            counts: GuardCounts::default(),
        }
    }

    /// Try `attempt`: audited, whatever the outcome.
    pub async fn attempt(
        &self,
        store: &dyn Store,
        attempt: Attempt<'_>,
    ) -> Result<LoginOutcome, StoreError> {
        let now = Utc::now().naive_utc();
        let window = chrono::Duration::from_std(self.policy.window).unwrap_or_default();
        let since = now - window;
        let failures = store
            .login_failures(attempt.username, attempt.address, since)
            .await?;
        let refuse = |outcome: &'static str, detail: String| async move {
            self.audit(store, &attempt, None, outcome, &detail).await
        };
        if failures.address >= self.policy.address_failures {
            refuse(
                "throttled",
                format!(
                    "{} failed logins from {} within {} min",
                    failures.address,
                    attempt.address,
                    self.policy.window.as_secs() / 60
                ),
            )
            .await?;
            return Ok(LoginOutcome::Throttled(self.policy.window.as_secs()));
        }
        if let Some(until) = self.locked_until(&failures.account, window) {
            refuse("locked", format!("account locked until {until} UTC")).await?;
            return Ok(LoginOutcome::Locked(until));
        }
        // A place in the queue, then a check; the rest are turned away, not queued.
        let Ok(_place) = self.queue.try_acquire() else {
            refuse("busy", "too many logins at once".into()).await?;
            return Ok(LoginOutcome::Busy);
        };
        let permit = match tokio::time::timeout(self.policy.wait, self.checks.acquire()).await {
            Ok(Ok(p)) => p,
            _ => {
                refuse("busy", "too many logins at once".into()).await?;
                return Ok(LoginOutcome::Busy);
            }
        };
        let user = match store.user_by_username(attempt.username).await {
            Ok(u) => Some(u),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let allowed = user
            .as_ref()
            .is_some_and(|u| !attempt.systems_only || u.role == "system");
        let hash = match &user {
            Some(u) if allowed => u.password_hash.clone(),
            _ => self.decoy.clone(),
        };
        let secret = attempt.secret.to_string();
        let running = self.counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts.peak.fetch_max(running, Ordering::SeqCst);
        self.counts.checks.fetch_add(1, Ordering::SeqCst);
        // argon2 is deliberately slow: off the async workers, on the checking threads.
        let ok = self.checkers.check(secret, hash).await;
        self.counts.in_flight.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        match user {
            Some(user) if ok && allowed => {
                store.clear_login_failures(attempt.username).await?;
                self.audit(store, &attempt, Some(&user), "success", attempt.method)
                    .await?;
                Ok(LoginOutcome::Verified(user))
            }
            _ => {
                store
                    .record_login_failure(attempt.username, attempt.address, now, since)
                    .await?;
                // A failed sign-in to a resident's account is in that resident's
                // trail ("who tried my account"), under the name that was tried.
                let resident = user.as_ref().and_then(|u| u.resident_id);
                self.audit_for(store, &attempt, None, resident, "failed", attempt.method)
                    .await?;
                let mut times = failures.account;
                times.push(now);
                if let Some(until) = self.locked_until(&times, window) {
                    self.audit_for(
                        store,
                        &attempt,
                        None,
                        resident,
                        "locked",
                        &format!(
                            "{} failed logins within {} min: account locked until {until} UTC",
                            times.len(),
                            self.policy.window.as_secs() / 60
                        ),
                    )
                    .await?;
                }
                Ok(LoginOutcome::Wrong)
            }
        }
    }

    /// Whether `secret` matches one of `hashes` (earlier passwords of an account),
    /// checked on the checking threads under the same bound as logins.
    pub async fn matches_any(&self, secret: &str, hashes: &[String]) -> bool {
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        for hash in hashes {
            self.counts.checks.fetch_add(1, Ordering::SeqCst);
            if self.checkers.check(secret.to_string(), hash.clone()).await {
                return true;
            }
        }
        false
    }

    /// The hash of a new password, made under the same bound as the checks.
    pub async fn hash(&self, secret: &str) -> String {
        let _permit = self.checks.acquire().await;
        let secret = secret.to_string();
        tokio::task::spawn_blocking(move || auth::hash_password(&secret))
            .await
            .expect("hashing a password does not panic")
    }

    /// When the lock of an account with these failures (oldest first, inside the
    /// window) ends; `None` if it is not locked.
    fn locked_until(
        &self,
        times: &[NaiveDateTime],
        window: chrono::Duration,
    ) -> Option<NaiveDateTime> {
        let n = self.policy.account_failures;
        (n > 0 && times.len() >= n).then(|| times[times.len() - n] + window)
    }

    async fn audit(
        &self,
        store: &dyn Store,
        attempt: &Attempt<'_>,
        user: Option<&User>,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let resident = user.and_then(|u| u.resident_id);
        self.audit_for(store, attempt, user, resident, outcome, detail)
            .await
    }

    async fn audit_for(
        &self,
        store: &dyn Store,
        attempt: &Attempt<'_>,
        user: Option<&User>,
        resident: Option<dhp_core::Id>,
        outcome: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let actor = match user {
            Some(u) => Actor::from(u),
            None => Actor::unverified(attempt.username),
        };
        audit::record(
            store,
            &actor,
            "login",
            attempt.resource,
            resident,
            outcome,
            &format!("{detail}; from {}", attempt.address),
        )
        .await
    }
}

/// Unlock `username` (an administrator's act): its failures are forgotten and the act
/// is audited under `by`.
pub async fn unlock(store: &dyn Store, username: &str, by: &str) -> Result<bool, StoreError> {
    let since = Utc::now().naive_utc() - chrono::Duration::days(1);
    let had = !store
        .login_failures(username, "", since)
        .await?
        .account
        .is_empty();
    store.clear_login_failures(username).await?;
    record_admin_act(
        store,
        by,
        "unlock",
        username,
        if had {
            "failed logins forgotten, account unlocked"
        } else {
            "no failed logins on record"
        },
    )
    .await?;
    Ok(had)
}

/// Audit an administrator's act `action` on the account `username`, done by `by`.
pub async fn record_admin_act(
    store: &dyn Store,
    by: &str,
    action: &str,
    username: &str,
    detail: &str,
) -> Result<(), StoreError> {
    audit::record(
        store,
        &Actor::unverified(by),
        action,
        &format!("User/{username}"),
        None,
        "success",
        detail,
    )
    .await
}

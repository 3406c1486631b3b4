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

/// Whether an answer of this status counts toward the bound: a refusal of the write
/// itself (bad input, out of scope, no such record, a method the URL does not take).
/// A conflict (`409`: the slot is full, the resident already booked that day) or a
/// stale version (`412`) is the normal outcome of writers racing for one record by
/// accounts allowed to write it, and never holds anyone back.
pub fn counts(status: u16) -> bool {
    matches!(status, 400 | 403 | 404 | 405 | 413 | 415 | 422)
}

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

    #[test]
    fn conflicts_from_racing_writers_do_not_count() {
        assert!(counts(403) && counts(400) && counts(422) && counts(404));
        assert!(!counts(409) && !counts(412) && !counts(201) && !counts(500));
    }
}

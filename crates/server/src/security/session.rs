//! Portal sessions (server side, keyed by a random cookie token), each with its own
//! CSRF token; a session ends after `idle` without a request or `absolute` after it
//! opened, whichever comes first (GB/T 22239-2019 level 3: automatic log-out when a
//! login connection times out).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dhp_core::password::ChangeReason;
use dhp_store::User;
use subtle::ConstantTimeEq;

use crate::security::auth::random_bytes;

/// How long sessions last and how many there may be.
#[derive(Debug, Clone)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
    /// Sessions kept at once; opening one more ends the least recently used.
    pub max_sessions: usize,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 60 * 60),
            max_sessions: 100_000,
        }
    }
}

/// A signed-in person as a page sees them: the account, and the token their forms
/// carry. Derefs to the account.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub csrf: String,
    /// The password must be changed before anything else: then the session opens only
    /// the password page (see [`crate::security::password`]).
    pub change: Option<ChangeReason>,
}

impl Deref for SignedIn {
    type Target = User;
    fn deref(&self) -> &User {
        &self.user
    }
}

impl SignedIn {
    /// Whether `token` (a form's `csrf` field) is this session's, compared in constant
    /// time.
    pub fn csrf_matches(&self, token: &str) -> bool {
        !token.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes()))
    }
}

#[derive(Debug)]
struct Session {
    who: SignedIn,
    opened: Instant,
    seen: Instant,
}

/// Logged-in users by session token.
#[derive(Debug, Default)]
pub struct Sessions {
    policy: SessionPolicy,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Self {
        Self {
            policy,
            map: Mutex::default(),
        }
    }

    /// Open a session for `user`: its cookie token.
    pub fn open(&self, user: User) -> String {
        self.open_at(user, None, Instant::now())
    }

    /// Open a session for `user` whose password must be changed first.
    pub fn open_for_change(&self, user: User, reason: ChangeReason) -> String {
        self.open_at(user, Some(reason), Instant::now())
    }

    pub(crate) fn open_at(&self, user: User, change: Option<ChangeReason>, now: Instant) -> String {
        let token = hex::encode(random_bytes::<32>());
        let csrf = hex::encode(random_bytes::<32>());
        let mut map = self.map.lock().expect("sessions lock");
        map.retain(|_, s| self.live(s, now));
        if map.len() >= self.policy.max_sessions.max(1) {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            token.clone(),
            Session {
                who: SignedIn { user, csrf, change },
                opened: now,
                seen: now,
            },
        );
        token
    }

    /// The session of `token` if it is still live (and it counts as used now).
    pub fn get(&self, token: &str) -> Option<SignedIn> {
        self.get_at(token, Instant::now())
    }

    pub(crate) fn get_at(&self, token: &str, now: Instant) -> Option<SignedIn> {
        let mut map = self.map.lock().expect("sessions lock");
        let session = map.get_mut(token)?;
        if !self.live(session, now) {
            map.remove(token);
            return None;
        }
        session.seen = now;
        Some(session.who.clone())
    }

    /// The account of a live session.
    pub fn user(&self, token: &str) -> Option<User> {
        self.get(token).map(|s| s.user)
    }

    pub fn close(&self, token: &str) {
        self.map.lock().expect("sessions lock").remove(token);
    }

    /// End every session of `username` (its account was locked or changed).
    pub fn close_user(&self, username: &str) {
        self.map
            .lock()
            .expect("sessions lock")
            .retain(|_, s| s.who.user.username != username);
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(s.seen) < self.policy.idle
            && now.saturating_duration_since(s.opened) < self.policy.absolute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User {
            id: 1,
            username: name.into(),
            password_hash: String::new(),
            role: "manager".into(),
            display_name: name.into(),
            org_id: None,
            practitioner_id: None,
            resident_id: None,
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_session_ends_after_30_idle_minutes() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let token = s.open_at(user("a"), None, t0);
        assert!(s.get_at(&token, t0 + 29 * MIN).is_some());
        // Used at 29 min: idle counts from then.
        assert!(s.get_at(&token, t0 + 58 * MIN).is_some());
        assert!(s.get_at(&token, t0 + 89 * MIN).is_none());
        // Gone for good, not only refused.
        assert!(s.get_at(&token, t0 + 59 * MIN).is_none());
    }

    #[test]
    fn a_session_ends_12_hours_after_it_opened_however_busy() {
        let s = Sessions::default();
        let t0 = Instant::now();
        let token = s.open_at(user("a"), None, t0);
        let mut t = t0;
        while t < t0 + 12 * 60 * MIN - 20 * MIN {
            t += 20 * MIN;
            assert!(s.get_at(&token, t).is_some(), "live at {:?}", t - t0);
        }
        assert!(s.get_at(&token, t0 + 12 * 60 * MIN).is_none());
    }

    #[test]
    fn each_session_has_its_own_csrf_token() {
        let s = Sessions::default();
        let a = s.get(&s.open(user("a"))).unwrap();
        let b = s.get(&s.open(user("a"))).unwrap();
        assert_eq!(a.csrf.len(), 64);
        assert_ne!(a.csrf, b.csrf);
        assert!(a.csrf_matches(&a.csrf.clone()));
        assert!(!a.csrf_matches(&b.csrf));
        assert!(!a.csrf_matches(""));
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::new(SessionPolicy {
            max_sessions: 3,
            ..SessionPolicy::default()
        });
        let t0 = Instant::now();
        let first = s.open_at(user("a"), None, t0);
        for i in 1..=3u64 {
            s.open_at(user("b"), None, t0 + Duration::from_secs(i));
        }
        assert_eq!(s.map.lock().unwrap().len(), 3);
        assert!(
            s.get_at(&first, t0 + MIN).is_none(),
            "least recently used ends"
        );
        s.close_user("b");
        assert!(s.map.lock().unwrap().is_empty());
    }
}

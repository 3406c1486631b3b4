//! The password life cycle: a password an administrator set, or one past its days,
//! must be changed before the account does anything else; a new password is checked
//! against the rules and the account's last passwords; every change is audited.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use dhp_server::auth::hash_password;

use super::fhir::token_request;
use super::security::post;
use super::{get, login, site, Site};

const FORM: &str = "application/x-www-form-urlencoded";

/// The CSRF token a page carries.
fn csrf_in(page: &str) -> String {
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("the page carries the CSRF token");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn change_on_page(
    s: &Site,
    cookie: &str,
    current: &str,
    new: &str,
    again: &str,
) -> (StatusCode, String) {
    let (_, page) = get(s, "/password?lang=en", Some(cookie)).await;
    let csrf = csrf_in(&page);
    let form = format!(
        "csrf={csrf}&current_password={current}&new_password={new}&confirm_password={again}"
    );
    post(
        s,
        "/password?lang=en&next=%2Fcontracts",
        cookie,
        FORM,
        &form,
        &[],
    )
    .await
}

async fn api_change(
    s: &Site,
    user: &str,
    current: &str,
    new: &str,
) -> (StatusCode, serde_json::Value) {
    let a = super::fhir::call(
        s,
        axum::http::Request::post("/auth/password")
            .header(axum::http::header::CONTENT_TYPE, FORM)
            .body(axum::body::Body::from(format!(
                "username={user}&password={current}&new_password={new}"
            )))
            .unwrap(),
    )
    .await;
    (a.status, a.json)
}

fn password_audits(events: &[dhp_store::AuditEvent], user: &str) -> Vec<String> {
    let mut v: Vec<String> = events
        .iter()
        .filter(|e| e.action == "password" && e.username == user)
        .map(|e| e.outcome.clone())
        .collect();
    v.reverse();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_set_by_an_administrator_is_changed_at_the_first_login_before_anything_else() {
    let s = site(200).await;
    let store = &s.state.store;
    store
        .require_password_change("manager", true, None)
        .await
        .unwrap();

    // The login lands on the password page, keeping where the person was going.
    let (status, cookie, _) = login(&s, "manager", "manager").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap();
    let (_, page) = get(&s, "/password?lang=en", Some(&cookie)).await;
    assert!(page.contains("An administrator set this account"), "{page}");
    // Every other page sends the person back there; the JSON API refuses.
    for path in ["/contracts?lang=en", "/indicators?lang=en", "/"] {
        let req = axum::http::Request::get(path)
            .header(axum::http::header::COOKIE, &cookie)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = tower::ServiceExt::oneshot(dhp_server::app(s.state.clone()), req)
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        let to = res.headers()["location"].to_str().unwrap();
        assert!(to.starts_with("/password?"), "{path} → {to}");
    }
    let (status, _) = get(&s, "/api/contracts/rates", Some(&cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No token either.
    let t = token_request(&s, "grant_type=password&username=manager&password=manager").await;
    assert_eq!(t.status, StatusCode::BAD_REQUEST);
    assert!(t.json["error_description"]
        .as_str()
        .unwrap()
        .contains("must be changed first (set by an administrator)"));

    // Bad choices are refused with their reason, and change nothing.
    for (current, new, again, status, says) in [
        (
            "wrong",
            "Qingpu-2026-zx",
            "Qingpu-2026-zx",
            StatusCode::UNAUTHORIZED,
            "current password is wrong",
        ),
        (
            "manager",
            "Qingpu-2026-zx",
            "Qingpu-2026-zy",
            StatusCode::BAD_REQUEST,
            "two new passwords differ",
        ),
        (
            "manager",
            "short1A",
            "short1A",
            StatusCode::BAD_REQUEST,
            "at least 10 characters",
        ),
        (
            "manager",
            "Manager-2026-x",
            "Manager-2026-x",
            StatusCode::BAD_REQUEST,
            "must not contain the username",
        ),
    ] {
        let (got, page) = change_on_page(&s, &cookie, current, new, again).await;
        assert_eq!(got, status, "{new}: {page}");
        assert!(page.contains(says), "{new}: {page}");
    }
    assert!(
        store
            .password_state("manager", 5)
            .await
            .unwrap()
            .must_change
    );

    // The change: a fresh session, on to where the person was going.
    let (status, _) =
        change_on_page(&s, &cookie, "manager", "Qingpu-2026-zx", "Qingpu-2026-zx").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let token = cookie.trim_start_matches("dhp_session=");
    assert!(
        s.state.sessions.get(token).is_none(),
        "the session that owed the change has ended"
    );
    let (status, fresh, _) = login(&s, "manager", "Qingpu-2026-zx").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, page) = get(&s, "/contracts?lang=en", Some(&fresh.unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Signed in as"));
    let (status, _, _) = login(&s, "manager", "manager").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");

    let st = store.password_state("manager", 5).await.unwrap();
    assert!(!st.must_change);
    assert_eq!(st.previous.len(), 1);
    assert!(!st.previous[0].contains("manager"), "hashes only");
    let events = store.audit_events(None, 10_000).await.unwrap();
    assert_eq!(
        password_audits(&events, "manager"),
        ["refused", "refused", "success"],
        "the wrong current password is audited as a failed login; the mismatch is caught before any check"
    );
    assert!(events
        .iter()
        .all(|e| !e.detail.contains("Qingpu-2026") && !e.detail.contains("Manager-2026")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_password_gets_no_token_and_none_of_the_last_five_comes_back() {
    let s = site(200).await;
    let store = &s.state.store;
    let long_ago = Utc::now().naive_utc() - Duration::days(91);
    store
        .set_password("doctor", &hash_password("Zhujiajiao-2026"), false, long_ago)
        .await
        .unwrap();
    let t = token_request(
        &s,
        "grant_type=password&username=doctor&password=Zhujiajiao-2026",
    )
    .await;
    assert_eq!(t.status, StatusCode::BAD_REQUEST);
    assert!(t.json["error_description"]
        .as_str()
        .unwrap()
        .contains("(expired)"));
    let (status, cookie, _) = login(&s, "doctor", "Zhujiajiao-2026").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = get(&s, "/password?lang=zh", Some(&cookie.unwrap())).await;
    assert!(page.contains("密码已超过有效期"), "{page}");

    // Through the API: the current one may not come back, nor any of the last five.
    let chain = [
        "Qingpu-2026-a1",
        "Qingpu-2026-b2",
        "Qingpu-2026-c3",
        "Qingpu-2026-d4",
        "Qingpu-2026-e5",
        "Qingpu-2026-f6",
    ];
    let (status, json) = api_change(&s, "doctor", "Zhujiajiao-2026", "Zhujiajiao-2026").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["field"], "new_password");
    let mut current = "Zhujiajiao-2026";
    for next in chain {
        let (status, json) = api_change(&s, "doctor", current, next).await;
        assert_eq!(status, StatusCode::OK, "{next}: {json}");
        current = next;
    }
    for old in ["Qingpu-2026-b2", "Qingpu-2026-e5"] {
        let (status, json) = api_change(&s, "doctor", current, old).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{old}");
        assert!(json["error_description"]
            .as_str()
            .unwrap()
            .contains("the last 5"));
    }
    let (status, _) = api_change(&s, "doctor", current, "Qingpu-2026-a1").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "five changes ago is remembered"
    );
    let (status, json) = api_change(&s, "doctor", current, "Zhujiajiao-2026").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "six changes ago is free again: {json}"
    );
    let t = token_request(
        &s,
        "grant_type=password&username=doctor&password=Zhujiajiao-2026",
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.json);
    // Integrating systems' secrets are not people's passwords: they do not expire.
    store
        .set_password("system", &hash_password("system"), false, long_ago)
        .await
        .unwrap();
    let t = token_request(
        &s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await;
    assert_eq!(t.status, StatusCode::OK);
}

/// A bearer token ends with the password it was issued under: changed by its owner
/// (at once), reset by an administrator, or set at the console (another process: a
/// server that reads the account afresh refuses it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_before_a_password_change_are_refused() {
    let s = site(200).await;
    let read = |t: String| {
        axum::http::Request::get("/fhir/Organization?_count=1")
            .header(axum::http::header::AUTHORIZATION, format!("Bearer {t}"))
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let old = super::fhir::token(&s, "doctor").await;
    assert_eq!(
        super::fhir::call(&s, read(old.clone())).await.status,
        StatusCode::OK
    );

    let (status, json) = api_change(&s, "doctor", "doctor", "Qingpu-2026-t1").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let refused = super::fhir::call(&s, read(old.clone())).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.json);
    assert!(refused.json["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("before the account's password was last set"));
    // The same token is no one's on the JSON APIs either.
    let req = axum::http::Request::get("/api/contracts/rates")
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {old}"))
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(
        super::fhir::call(&s, req).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A token under the new password works.
    let t = token_request(
        &s,
        "grant_type=password&username=doctor&password=Qingpu-2026-t1",
    )
    .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.json);
    let fresh = t.json["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        super::fhir::call(&s, read(fresh.clone())).await.status,
        StatusCode::OK
    );

    // Set at the console, through the store: a server reading the account afresh (a
    // restart, another instance) refuses the token issued before.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.state
        .store
        .set_password(
            "doctor",
            &hash_password("Qingpu-2026-t2"),
            true,
            Utc::now().naive_utc(),
        )
        .await
        .unwrap();
    let again = Site {
        state: dhp_server::AppState::open_with(s.state.store.clone(), Default::default())
            .await
            .unwrap(),
        dir: s.dir.clone(),
    };
    assert_eq!(
        super::fhir::call(&again, read(fresh)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

//! What the security review found, each reproduced: unbounded password checks, no
//! lockout, cross-site forms, open redirects after login, links built from `Host`,
//! missing security headers.

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dhp_server::security::login::LoginPolicy;
use dhp_server::{app, ServerConfig};
use dhp_store::Store;
use serde_json::Value;
use tower::ServiceExt;

use super::fhir::{call, token_request};
use super::{csrf_of, get, login, site, site_with, Site};

fn with_login(policy: LoginPolicy) -> ServerConfig {
    ServerConfig {
        login: policy,
        ..ServerConfig::default()
    }
}

async fn audit_outcomes(store: &dyn Store, username: &str) -> Vec<String> {
    let mut v: Vec<String> = store
        .audit_events(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "login" && e.username == username)
        .map(|e| e.outcome)
        .collect();
    v.reverse();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_logins_run_a_bounded_number_of_password_checks() {
    let s = site_with(
        50,
        with_login(LoginPolicy {
            concurrent_checks: 2,
            queue: 6,
            address_failures: 1_000,
            ..LoginPolicy::default()
        }),
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let state = s.state.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::post("/auth/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!(
                    "grant_type=password&username=nobody{i}&password=wrong"
                )))
                .unwrap();
            app(state).oneshot(req).await.unwrap().status()
        }));
    }
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    let counts = &s.state.login.counts;
    let peak = counts.peak.load(Ordering::SeqCst);
    assert!(peak <= 2, "{peak} password checks ran at once");
    assert!(
        busy > 0,
        "64 attempts with room for 8: some must be turned away"
    );
    assert_eq!(counts.checks.load(Ordering::SeqCst), 64 - busy);
    // Every attempt is in the audit log, the busy ones too.
    let logins = s
        .state
        .store
        .audit_events(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "login")
        .count();
    assert_eq!(logins, 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_lock_an_account_until_unlocked_and_the_right_password_waits() {
    let s = site(50).await;
    for _ in 0..5 {
        let a = token_request(&s, "grant_type=password&username=doctor&password=wrong").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    // The sixth attempt, with the right password, is refused: the account is locked.
    let a = token_request(&s, "grant_type=password&username=doctor&password=doctor").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.json);
    assert_eq!(a.json["error"], "invalid_grant");
    assert!(a.json["error_description"]
        .as_str()
        .unwrap()
        .contains("locked"));
    // The portal login says the same, in the page's language.
    let (status, cookie, page) = login(&s, "doctor", "doctor").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(cookie.is_none());
    assert!(page.contains("the account is locked"), "{page}");
    let outcomes = audit_outcomes(&*s.state.store, "doctor").await;
    assert_eq!(
        outcomes,
        ["failed", "failed", "failed", "failed", "failed", "locked", "locked", "locked"],
        "each failure, the lock and each refusal while locked are audited"
    );
    // An administrator unlocks it (audited), and the right password works again.
    assert!(
        dhp_server::security::login::unlock(&*s.state.store, "doctor", "secadmin")
            .await
            .unwrap()
    );
    let unlock = s.state.store.audit_events(None, 1).await.unwrap();
    assert_eq!(unlock[0].action, "unlock");
    assert_eq!(unlock[0].resource, "User/doctor");
    assert_eq!(unlock[0].username, "secadmin");
    let a = token_request(&s, "grant_type=password&username=doctor&password=doctor").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    // A success forgets the failures: four more wrong ones do not lock.
    for _ in 0..4 {
        token_request(&s, "grant_type=password&username=doctor&password=wrong").await;
    }
    let a = token_request(&s, "grant_type=password&username=doctor&password=doctor").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_checked_and_locked_like_known_ones() {
    let s = site(50).await;
    let checks = |s: &Site| s.state.login.counts.checks.load(Ordering::SeqCst);
    let before = checks(&s);
    let known = token_request(&s, "grant_type=password&username=doctor&password=x").await;
    let unknown = token_request(&s, "grant_type=password&username=nobody&password=x").await;
    // Same answer, and one password check each (the unknown name against a decoy).
    assert_eq!(known.status, unknown.status);
    assert_eq!(known.json, unknown.json);
    assert_eq!(checks(&s) - before, 2);
    // A client id tried with the password grant's account is checked too.
    let before = checks(&s);
    let a = token_request(
        &s,
        "grant_type=client_credentials&client_id=doctor&client_secret=doctor",
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(checks(&s) - before, 1);
    // The unknown name locks after five failures just as a known one does.
    for _ in 0..4 {
        token_request(&s, "grant_type=password&username=nobody&password=x").await;
    }
    let a = token_request(&s, "grant_type=password&username=nobody&password=x").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.json["error_description"]
        .as_str()
        .unwrap()
        .contains("locked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_spraying_many_names_is_throttled() {
    let s = site_with(
        50,
        with_login(LoginPolicy {
            address_failures: 3,
            ..LoginPolicy::default()
        }),
    )
    .await;
    for name in ["a", "b", "c"] {
        let a = token_request(
            &s,
            &format!("grant_type=password&username={name}&password=x"),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let before = s.state.login.counts.checks.load(Ordering::SeqCst);
    let a = token_request(&s, "grant_type=password&username=doctor&password=doctor").await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.json);
    assert_eq!(
        s.state.login.counts.checks.load(Ordering::SeqCst),
        before,
        "no password is checked for a throttled address"
    );
    assert_eq!(
        audit_outcomes(&*s.state.store, "doctor").await,
        ["throttled"]
    );
    let (status, _, page) = login(&s, "manager", "manager").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many failed logins from this computer"));
}

/// A form post as a browser sends it: the session cookie, the form, and what the
/// browser says of where the request came from.
pub(crate) async fn post(
    s: &Site,
    path: &str,
    cookie: &str,
    content_type: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut req = Request::post(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::COOKIE, cookie)
        .header(header::HOST, "127.0.0.1:8080");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = app(s.state.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn first_contracted_resident(s: &Site) -> i64 {
    let today = dhp_store::as_of(&*s.state.store).await.unwrap();
    let doctor = s.state.store.user_by_username("doctor").await.unwrap();
    let contracts = s
        .state
        .store
        .page(dhp_store::Table::Contracts, 0, 100_000)
        .await
        .unwrap()
        .contracts;
    contracts
        .iter()
        .find(|c| {
            Some(c.centre_org_id) == doctor.org_id
                && c.status != dhp_core::ContractStatus::Ended
                && c.start <= today
                && today <= c.end
        })
        .expect("the doctor's centre has contracts")
        .resident_id
}

async fn audit_count(s: &Site) -> usize {
    s.state
        .store
        .audit_events(None, 100_000)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_from_another_site_or_without_the_token_change_nothing() {
    let s = site(2_000).await;
    let (_, cookie, _) = login(&s, "doctor", "doctor").await;
    let cookie = cookie.unwrap();
    let resident = first_contracted_resident(&s).await;
    let path = format!("/workbench/resident/{resident}/contract?lang=en");
    let contracts_before = s
        .state
        .store
        .count(dhp_store::Table::Contracts)
        .await
        .unwrap();
    let form = "action=end";
    let urlencoded = "application/x-www-form-urlencoded";
    // What the review did: a form posted from another site with the user's cookie,
    // as the browser labels it (fetch metadata) or by its origin.
    for header in [
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ] {
        let (status, _) = post(&s, &path, &cookie, urlencoded, form, &[header]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{header:?}");
    }
    // An older browser that sends neither: the token decides.
    let (status, page) = post(&s, &path, &cookie, urlencoded, form, &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("reload the page"), "{page}");
    let (status, _) = post(&s, &path, &cookie, urlencoded, "action=end&csrf=00", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The JSON API with the cookie and a text/plain body (no preflight needed).
    let json = format!(r#"{{"resident_id":{resident},"action":"end"}}"#);
    let (status, _) = post(&s, "/api/contracts", &cookie, "text/plain", &json, &[]).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // application/json with the cookie but without the session's token.
    let (status, _) = post(
        &s,
        "/api/contracts",
        &cookie,
        "application/json",
        &json,
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Detection run from another site.
    let (status, _) = post(
        &s,
        "/surveillance/run?lang=en",
        &cookie,
        urlencoded,
        "",
        &[("sec-fetch-site", "same-site")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing changed: the contract is still in force.
    let facts = s
        .state
        .store
        .page(dhp_store::Table::Contracts, 0, 100_000)
        .await
        .unwrap()
        .contracts;
    assert_eq!(facts.len() as i64, contracts_before);
    assert!(facts
        .iter()
        .any(|c| c.resident_id == resident && c.status != dhp_core::ContractStatus::Ended));
    // The same form from our own page, with its token, goes through.
    let csrf = csrf_of(&s, &cookie).await;
    let before = audit_count(&s).await;
    let (status, _) = post(
        &s,
        &path,
        &cookie,
        urlencoded,
        &format!("{form}&csrf={csrf}"),
        &[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8080"),
        ],
    )
    .await;
    assert!(status.is_redirection() || status.is_success(), "{status}");
    assert!(audit_count(&s).await > before, "the change is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_goes_only_to_paths_on_this_site() {
    let s = site(50).await;
    // A `next` off the site is dropped: the doctor lands on their own start page.
    for (next, to) in [
        ("/\\evil.example/", "/workbench?lang=en"),
        ("//evil.example/", "/workbench?lang=en"),
        ("https://evil.example/", "/workbench?lang=en"),
        ("/care?lang=en", "/care?lang=en"),
    ] {
        let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
        let req = Request::post(format!("/login?lang=en&next={enc}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("username=doctor&password=doctor"))
            .unwrap();
        let res = app(s.state.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()[header::LOCATION], to, "next={next}");
    }
    // Each role lands on its own start page.
    for (user, to) in [
        ("resident", "/me?lang=zh"),
        ("doctor", "/workbench?lang=zh"),
        ("clinician", "/care?lang=zh"),
        ("phdoctor", "/surveillance?lang=zh"),
        ("manager", "/indicators?lang=zh"),
        ("auditor", "/emergency-access?lang=zh"),
    ] {
        let req = Request::post("/login")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("username={user}&password={user}")))
            .unwrap();
        let res = app(s.state.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{user}");
        assert_eq!(res.headers()[header::LOCATION], to, "{user}");
    }
    // The login form keeps a same-site `next` and drops another.
    let (_, page) = get(&s, "/login?lang=en&next=/workbench", None).await;
    assert!(page.contains("&amp;next=/workbench\""), "{page}");
    let (_, page) = get(&s, "/login?lang=en&next=//evil.example", None).await;
    assert!(!page.contains("next=//evil"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_carry_security_headers_and_links_from_the_base_url() {
    let s = site_with(
        50,
        ServerConfig {
            base_url: url::Url::parse("https://health.example.gov.cn/").unwrap(),
            base_url_configured: true,
            tls: true,
            ..ServerConfig::default()
        },
    )
    .await;
    for path in ["/", "/login", "/fhir/metadata", "/healthz"] {
        let res = app(s.state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let h = res.headers();
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{path}"
        );
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "same-origin", "{path}");
    }
    // Links come from the configured base URL, whatever Host the request names.
    let tok = super::fhir::token(&s, "system").await;
    let a = call(
        &s,
        Request::get("/fhir/Patient?_count=1")
            .header(header::AUTHORIZATION, format!("Bearer {tok}"))
            .header(header::HOST, "evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let links: Vec<&Value> = a.json["link"].as_array().unwrap().iter().collect();
    assert!(!links.is_empty());
    for l in links {
        assert!(
            l["url"]
                .as_str()
                .unwrap()
                .starts_with("https://health.example.gov.cn/fhir"),
            "{l}"
        );
    }
    // Over TLS the session cookie is Secure; a form from the base URL's origin passes
    // the origin check, one from the Host it names does not.
    let req = Request::post("/login?lang=en")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "https://health.example.gov.cn")
        .body(Body::from("username=doctor&password=doctor"))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cookie = res.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let req = Request::post("/login?lang=en")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "evil.example")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from("username=doctor&password=doctor"))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_manager_receives_never_rebuilds_an_identity_number() {
    let s = site(1_000).await;
    let store = &*s.state.store;
    // A Patient written with a second identifier and a narrative that repeats the
    // number, as an outside system may send it.
    let system = super::fhir::token(&s, "system").await;
    let r = store
        .page(dhp_store::Table::Residents, 0, 1)
        .await
        .unwrap()
        .residents[0]
        .clone();
    let mut stored = super::fhir::read(&s, Some(&system), &format!("/fhir/Patient/{}", r.id))
        .await
        .json;
    let number = r.identity_number.as_str().to_string();
    stored["identifier"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "system": "urn:oid:2.16.156.10011.1.13", "value": number }));
    stored["text"] = serde_json::json!({
        "status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{number}</div>"),
    });
    let put = call(
        &s,
        Request::put(format!("/fhir/Patient/{}", r.id))
            .header(header::AUTHORIZATION, format!("Bearer {system}"))
            .header(header::CONTENT_TYPE, "application/fhir+json")
            .body(Body::from(stored.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.json);
    // Every Patient the manager can page through: no full number, no full birth date,
    // no narrative; every identifier under any system masked.
    let manager = super::fhir::token(&s, "manager").await;
    let residents = store
        .page(dhp_store::Table::Residents, 0, 10_000)
        .await
        .unwrap()
        .residents;
    let mut seen = 0;
    let mut next = Some("/fhir/Patient?_count=200".to_string());
    while let Some(path) = next.take() {
        let page = super::fhir::read(&s, Some(&manager), &path).await.json;
        let text = page.to_string();
        for entry in page["entry"].as_array().into_iter().flatten() {
            let p = &entry["resource"];
            seen += 1;
            assert_eq!(p["birthDate"].as_str().unwrap().len(), 4, "{p}");
            assert!(p.get("text").is_none(), "{p}");
            for id in p["identifier"].as_array().unwrap() {
                assert!(id["value"].as_str().unwrap().contains('*'), "{p}");
            }
        }
        for r in &residents {
            assert!(
                !text.contains(r.identity_number.as_str()),
                "full number of {}",
                r.id
            );
        }
        next = page["link"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(|u| u[u.find("/fhir/").unwrap()..].to_string());
    }
    assert_eq!(seen, residents.len());
    // The indicator drill-down's CSV and page give the birth year, not the date.
    dhp_analytics::indicators::rebuild(
        store,
        &dhp_analytics::indicators::tracked_periods(2020, 2026, 2),
        &mut |_| {},
    )
    .await
    .unwrap();
    let (_, cookie, _) = login(&s, "manager", "manager").await;
    let cookie = cookie.unwrap();
    let street = store
        .page(dhp_store::Table::Organisations, 0, 10_000)
        .await
        .unwrap()
        .organisations
        .into_iter()
        .find(|o| o.kind == dhp_core::OrgKind::Street)
        .unwrap();
    for path in [
        format!(
            "/indicators/key_population_signing/residents?org={}&period=2025&format=csv",
            street.code
        ),
        format!(
            "/indicators/key_population_signing/residents?org={}&period=2025",
            street.code
        ),
    ] {
        let (status, body) = get(&s, &path, Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains("********"), "{path}");
        for r in &residents {
            assert!(!body.contains(r.identity_number.as_str()), "{path}");
            assert!(
                !body.contains(&r.birth_date.to_string()),
                "{path}: birth date of {}",
                r.id
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_empty_searches_are_audited_without_the_values() {
    let s = site(50).await;
    let t = super::fhir::token(&s, "doctor").await;
    // A search that matches nobody: who searched, for which parameters, 0 matches.
    let a = super::fhir::read(&s, Some(&t), "/fhir/Patient?identifier=110105194912310029").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["total"], 0);
    let e = last_audit(&s).await;
    assert_eq!(
        (e.action.as_str(), e.username.as_str()),
        ("search", "doctor")
    );
    assert_eq!(e.resource, "Patient?identifier");
    assert_eq!(e.detail, "0 matches");
    // A search answered 400.
    let a = super::fhir::read(
        &s,
        Some(&t),
        "/fhir/Observation?date=ge2025-06-01T09:00:00%2B99:00",
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let e = last_audit(&s).await;
    assert_eq!(
        (e.resource.as_str(), e.outcome.as_str()),
        ("Observation?date", "invalid")
    );
    // The value searched for never reaches the log.
    let all = s.state.store.audit_events(None, 1_000).await.unwrap();
    assert!(all
        .iter()
        .all(|e| !e.detail.contains("110105194912310029")
            && !e.resource.contains("110105194912310029")));
}

async fn last_audit(s: &Site) -> dhp_store::AuditEvent {
    s.state.store.audit_events(None, 1).await.unwrap().remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_log_read_without_a_token_is_audited() {
    let s = site(50).await;
    let a = super::fhir::read(&s, None, "/fhir/AuditEvent?_count=5").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let e = last_audit(&s).await;
    assert_eq!(
        (e.action.as_str(), e.resource.as_str()),
        ("search", "AuditEvent")
    );
    assert_eq!(e.username, "");
}

/// A four-hour emergency grant to the hospital clinician, stored as `POST
/// /api/emergency-access` would store it.
async fn grant(
    store: &dyn dhp_store::Store,
    id: &str,
    org_id: Option<i64>,
    resident_id: i64,
    reason: &str,
    granted: chrono::NaiveDateTime,
) {
    store
        .grant_emergency_access(&dhp_store::EmergencyGrant {
            id: id.into(),
            username: "clinician".into(),
            role: "hospital_clinician".into(),
            org_id,
            resident_id,
            reason: reason.into(),
            granted,
            expires: granted + chrono::Duration::hours(4),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_see_every_emergency_access_on_a_page_in_their_language() {
    let s = site(50).await;
    let store = &*s.state.store;
    let resident = store
        .page(dhp_store::Table::Residents, 0, 1)
        .await
        .unwrap()
        .residents[0]
        .clone();
    let clinician = store.user_by_username("clinician").await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    grant(
        store,
        "g-page",
        clinician.org_id,
        resident.id,
        "车祸昏迷，急诊抢救",
        now,
    )
    .await;
    let (_, cookie, _) = login(&s, "manager", "manager").await;
    let cookie = cookie.unwrap();
    let (status, zh) = get(&s, "/emergency-access?lang=zh", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "紧急授权访问记录",
        "车祸昏迷，急诊抢救",
        "医院临床医生",
        "生效中",
        "GB/T 22239-2019",
        &resident.name,
    ] {
        assert!(zh.contains(shown), "{shown}");
    }
    // Masked: the manager never receives the full identity number; the header's
    // role is in Chinese too.
    assert!(!zh.contains(resident.identity_number.as_str()));
    assert!(!zh.contains("hospital_clinician") && !zh.contains("· manager"));
    let (_, en) = get(&s, "/emergency-access?lang=en&days=7", Some(&cookie)).await;
    assert!(en.contains("Emergency access") && en.contains("hospital clinician"));
    assert!(en.contains("<b>7 days</b>"), "the chosen period is marked");
    // Reading the report is audited; others are refused (and that is audited too).
    let e = last_audit(&s).await;
    assert_eq!(
        (e.username.as_str(), e.resource.as_str()),
        ("manager", "emergency-access")
    );
    let (_, cookie, _) = login(&s, "doctor", "doctor").await;
    let (status, _) = get(&s, "/emergency-access", cookie.as_deref()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(last_audit(&s).await.outcome, "denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emergency_access_report_pages_through_every_grant() {
    let s = site(50).await;
    let store = &*s.state.store;
    let resident = store
        .page(dhp_store::Table::Residents, 0, 1)
        .await
        .unwrap()
        .residents[0]
        .clone();
    let now = chrono::Utc::now().naive_utc();
    for i in 0..120 {
        let reason = format!("急诊抢救 {i:03}");
        let at = now - chrono::Duration::minutes(i);
        grant(store, &format!("g-{i:03}"), None, resident.id, &reason, at).await;
    }
    let (_, cookie, _) = login(&s, "manager", "manager").await;
    let cookie = cookie.unwrap();
    let rows = |page: &str| page.matches("<tr").count() - 1;
    let (_, first) = get(&s, "/emergency-access?lang=zh", Some(&cookie)).await;
    assert!(first.contains("共120次授权 · 第1/3页"), "{first}");
    assert_eq!(rows(&first), 50);
    assert!(first.contains("急诊抢救 000") && !first.contains("急诊抢救 050"));
    assert!(first.contains("page=2") && first.contains("下一页"));
    let (_, last) = get(
        &s,
        "/emergency-access?lang=en&days=30&page=3",
        Some(&cookie),
    )
    .await;
    assert!(last.contains("120 grants · page 3 of 3"));
    assert_eq!(rows(&last), 20);
    assert!(last.contains("急诊抢救 119") && last.contains("days=30&amp;lang=en&amp;page=2"));
    // Past the end: the last page, not an empty one.
    let (_, beyond) = get(&s, "/emergency-access?lang=en&page=99", Some(&cookie)).await;
    assert_eq!(rows(&beyond), 20);
    // The audit administrator reviews the accesses without the residents' names.
    let (_, aud, _) = login(&s, "auditor", "auditor").await;
    let (status, page) = get(&s, "/emergency-access?lang=zh", aud.as_deref()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains(&resident.name) && page.contains(&format!("居民记录号 {}", resident.id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_sends_one_to_sign_in_and_back_and_refuses_in_the_pages_words() {
    let s = site(200).await;
    let location = |res: &axum::response::Response| {
        res.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_string()
    };
    // Without a session a page sends one to sign in, coming back to it with its query.
    let res = app(s.state.clone())
        .oneshot(
            Request::get("/workbench?programme=hypertension&lang=en")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(&res);
    assert_eq!(
        to,
        "/login?lang=en&next=%2Fworkbench%3Fprogramme%3Dhypertension"
    );
    // Signing in there goes back, in the language chosen on the sign-in page.
    let post = |uri: String| {
        Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("username=doctor&password=doctor"))
            .unwrap()
    };
    let res = app(s.state.clone())
        .oneshot(post(to.replace("lang=en", "lang=zh")))
        .await
        .unwrap();
    assert_eq!(location(&res), "/workbench?programme=hypertension&lang=zh");
    // A `lang` that is neither language is never echoed (a CR LF would break the
    // answer's header): the page is Chinese.
    let res = app(s.state.clone())
        .oneshot(post("/login?lang=%0D%0ASet-Cookie:%20x%3D1".into()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/workbench?lang=zh");
    assert!(res.headers().get_all(header::SET_COOKIE).iter().count() == 1);

    // The language link of a page whose path names another site links to this one.
    for path in ["//evil.example/me"] {
        let (_, page) = get(&s, path, None).await;
        assert!(
            !page.contains("href=\"//evil") && !page.contains("href=\"/\\evil"),
            "{path}: {page}"
        );
    }

    // A bad filter on a page answers a page in its language naming the field in words.
    let (_, cookie, _) = login(&s, "doctor", "doctor").await;
    let cookie = cookie.unwrap();
    let (status, page) = get(&s, "/workbench?date=yesterday", Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(
        page.contains("<b>日期</b>") && page.contains("“yesterday”不是日期"),
        "{page}"
    );
    assert!(
        !page.contains("YYYY") && !page.contains("must be"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/workbench?lang=zh\""),
        "the way back keeps the language"
    );
    let (_, manager, _) = login(&s, "manager", "manager").await;
    let (status, page) = get(&s, "/indicators?period=2026Q9", Some(&manager.unwrap())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("<b>统计期</b>") && page.contains("“2026Q9”不是统计期"),
        "{page}"
    );
    assert!(!page.contains("is not a period"), "{page}");

    // A form without its CSRF token is refused on a styled page in its language.
    let req = Request::post("/workbench/resident/1/contract?lang=en")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("action=renew"))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        page.starts_with("<!doctype html>") && page.contains("Signed in as"),
        "{page}"
    );
    assert!(page.contains("The form has expired"), "{page}");

    // The contracting figures: a resident is known and refused (403), nobody is 401.
    let (_, resident, _) = login(&s, "resident", "resident").await;
    let (status, _) = get(&s, "/api/contracts/rates", Some(&resident.unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&s, "/api/contracts/rates", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An account that owes a password change comes to its own start page after it.
    s.state
        .store
        .require_password_change("resident", true, None)
        .await
        .unwrap();
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("username=resident&password=resident"))
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(location(&res), "/password?lang=zh&next=%2Fme");
}

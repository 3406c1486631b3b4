//! Separation of duties (三员管理): the system administrator makes staff accounts and
//! resets their passwords, the security administrator unlocks accounts, the audit
//! administrator reads the audit log; none reads resident records, none does another's
//! act, none acts on an administrator's account; every act is in the audit log the
//! audit administrator reads.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;

use super::fhir::{call, read, token, token_request, Answer};
use super::{get, login, site};

async fn post_json(s: &super::Site, bearer: &str, path: &str, body: Value) -> Answer {
    call(
        s,
        Request::post(path)
            .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_administrator_does_only_their_own_duty_and_none_reads_residents() {
    let s = site(300).await;
    let sys = token(&s, "sysadmin").await;
    let sec = token(&s, "secadmin").await;
    let aud = token(&s, "auditor").await;
    let centre = s
        .state
        .store
        .organisation(
            s.state
                .store
                .user_by_username("doctor")
                .await
                .unwrap()
                .org_id
                .unwrap(),
        )
        .await
        .unwrap();

    // No administrator reads a resident record.
    let patient = s
        .state
        .store
        .page(dhp_store::Table::Residents, 0, 1)
        .await
        .unwrap()
        .residents[0]
        .id;
    for t in [&sys, &sec, &aud] {
        let one = read(&s, Some(t), &format!("/fhir/Patient/{patient}")).await;
        assert!(
            matches!(one.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{}",
            one.status
        );
        let all = read(&s, Some(t), "/fhir/Patient?_count=5").await;
        assert!(
            all.status == StatusCode::FORBIDDEN || all.json["total"] == 0,
            "{} {}",
            all.status,
            all.json
        );
    }
    // Only the audit administrator (of the three) reads the audit log.
    for t in [&sys, &sec] {
        assert_eq!(
            read(&s, Some(t), "/fhir/AuditEvent").await.status,
            StatusCode::FORBIDDEN
        );
    }

    // The system administrator makes a staff account with a one-time password…
    let made = post_json(
        &s,
        &sys,
        "/api/admin/accounts",
        serde_json::json!({"username": "dr.wang", "role": "family_doctor", "org": centre.code, "display_name": "王医生"}),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let one_time = made.json["one_time_password"].as_str().unwrap().to_string();
    // …which gets no token until its owner has changed it.
    let t = token_request(
        &s,
        &format!("grant_type=password&username=dr.wang&password={one_time}"),
    )
    .await;
    assert_eq!(t.status, StatusCode::BAD_REQUEST);
    let changed = call(
        &s,
        Request::post("/auth/password")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "username=dr.wang&password={one_time}&new_password=Dianshanhu-2027"
            )))
            .unwrap(),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.json);
    let t = token_request(
        &s,
        "grant_type=password&username=dr.wang&password=Dianshanhu-2027",
    )
    .await;
    assert_eq!(t.status, StatusCode::OK);

    // Bad input names the field and makes nothing.
    for (body, field) in [
        (
            serde_json::json!({"username": "x y", "role": "family_doctor", "org": centre.code}),
            "username",
        ),
        (
            serde_json::json!({"username": "dr.wang", "role": "family_doctor", "org": centre.code}),
            "username",
        ),
        (
            serde_json::json!({"username": "x1", "role": "family_doctor", "org": "NOPE"}),
            "org",
        ),
        (
            serde_json::json!({"username": "x2", "role": "family_doctor"}),
            "org",
        ),
        (
            serde_json::json!({"username": "x3", "role": "wizard", "org": centre.code}),
            "role",
        ),
    ] {
        let a = post_json(&s, &sys, "/api/admin/accounts", body.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.json);
        assert_eq!(a.json["field"], field, "{body}");
    }
    let users = s.state.store.users().await.unwrap().len();

    // What is not the system administrator's: unlocking, administrators' accounts,
    // their own, residents' and clients'.
    let refused = [
        ("/api/admin/accounts/doctor/unlock", Value::Null),
        ("/api/admin/accounts/secadmin/password", Value::Null),
        ("/api/admin/accounts/sysadmin/password", Value::Null),
        ("/api/admin/accounts/resident/password", Value::Null),
        ("/api/admin/accounts/system/password", Value::Null),
        (
            "/api/admin/accounts",
            serde_json::json!({"username": "aud2", "role": "audit_admin", "org": centre.code}),
        ),
        (
            "/api/admin/accounts",
            serde_json::json!({"username": "sys2", "role": "system"}),
        ),
    ];
    for (path, body) in &refused {
        let a = post_json(&s, &sys, path, body.clone()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path} {body}: {}", a.json);
    }
    let before = s
        .state
        .store
        .user_by_username("secadmin")
        .await
        .unwrap()
        .password_hash;

    // The security administrator unlocks a locked account, and does nothing else.
    for _ in 0..5 {
        token_request(&s, "grant_type=password&username=doctor&password=wrong").await;
    }
    assert_eq!(
        token_request(&s, "grant_type=password&username=doctor&password=doctor")
            .await
            .status,
        StatusCode::BAD_REQUEST,
        "locked"
    );
    let list = read(&s, Some(&sec), "/api/admin/accounts?q=doctor").await;
    assert_eq!(list.status, StatusCode::OK);
    let doctor = list.json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "doctor")
        .unwrap()
        .clone();
    assert!(doctor["locked_until"].is_string(), "{doctor}");
    assert!(
        !list.json.to_string().contains("identity"),
        "no resident data"
    );
    for (path, body) in [
        ("/api/admin/accounts/doctor/password", Value::Null),
        ("/api/admin/accounts/secadmin/unlock", Value::Null),
        ("/api/admin/accounts/sysadmin/unlock", Value::Null),
        (
            "/api/admin/accounts",
            serde_json::json!({"username": "x9", "role": "manager", "org": centre.code}),
        ),
    ] {
        let a = post_json(&s, &sec, path, body.clone()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.json);
    }
    let a = post_json(&s, &sec, "/api/admin/accounts/doctor/unlock", Value::Null).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["was_locked"], true);
    assert_eq!(
        token_request(&s, "grant_type=password&username=doctor&password=doctor")
            .await
            .status,
        StatusCode::OK
    );

    // The audit administrator manages no account and reads every administrator's acts.
    assert_eq!(
        read(&s, Some(&aud), "/api/admin/accounts").await.status,
        StatusCode::FORBIDDEN
    );
    for (path, body) in [
        ("/api/admin/accounts/doctor/unlock", Value::Null),
        ("/api/admin/accounts/doctor/password", Value::Null),
        (
            "/api/admin/accounts",
            serde_json::json!({"username": "x8", "role": "manager", "org": centre.code}),
        ),
    ] {
        assert_eq!(
            post_json(&s, &aud, path, body).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    assert_eq!(
        s.state.store.users().await.unwrap().len(),
        users,
        "nothing more was made"
    );
    assert_eq!(
        s.state
            .store
            .user_by_username("secadmin")
            .await
            .unwrap()
            .password_hash,
        before
    );
    let log = read(&s, Some(&aud), "/fhir/AuditEvent?_count=100").await;
    assert_eq!(log.status, StatusCode::OK);
    let events = s.state.store.audit_events(None, 100_000).await.unwrap();
    let by = |user: &str, action: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e.username == user && e.action == action && e.outcome == outcome)
            .count()
    };
    assert_eq!(by("sysadmin", "account", "success"), 1);
    assert_eq!(by("sysadmin", "password", "denied"), 4);
    assert_eq!(by("sysadmin", "account", "denied"), 2);
    assert_eq!(by("sysadmin", "unlock", "denied"), 1);
    assert_eq!(by("secadmin", "unlock", "success"), 1);
    assert_eq!(by("secadmin", "unlock", "denied"), 2);
    assert_eq!(by("auditor", "password", "denied"), 1);
    let text = log.json.to_string();
    assert!(
        text.contains("sysadmin") && text.contains("secadmin"),
        "the audit administrator sees both"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_page_offers_each_administrator_only_their_own_acts() {
    let s = site(200).await;
    for _ in 0..5 {
        login(&s, "clinician", "wrong").await;
    }
    let (_, sys, _) = login(&s, "sysadmin", "sysadmin").await;
    let (status, page) = get(&s, "/admin/accounts?lang=zh", Some(&sys.unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("新建账号") && page.contains("重置密码"));
    assert!(
        !page.contains(">解锁<"),
        "unlocking is not the system administrator's"
    );
    assert!(page.contains("已锁定至"));
    // Not on administrators' rows: four administrators' and clients' rows have no button.
    let resets = page.matches(">重置密码<").count();
    assert_eq!(resets, 4, "manager, phdoctor, doctor, clinician");

    let (_, sec, _) = login(&s, "secadmin", "secadmin").await;
    let (status, page) = get(&s, "/admin/accounts?lang=en", Some(&sec.unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("New account") && !page.contains(">Reset password<"));
    assert_eq!(
        page.matches(">Unlock<").count(),
        1,
        "the one locked account"
    );

    let (_, aud, _) = login(&s, "auditor", "auditor").await;
    let (status, _) = get(&s, "/admin/accounts?lang=en", Some(&aud.unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

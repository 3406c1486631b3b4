//! The server answered in-process (`oneshot`) over a real generated district.

mod care;
mod children;
mod contract_ask;
mod contracts;
mod duties;
mod fhir;
mod moving;
mod passwords;
mod portal;
mod reminders;
mod roundtrip;
mod scheduling;
mod search;
mod security;
mod surveillance;
mod survey;
mod workbench;
mod write;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dhp_server::{app, create_demo_accounts, AppState};
use dhp_store::Store;
use dhp_synth::{generate_into, Params, Quiet};
use tower::ServiceExt;

struct Site {
    state: Arc<AppState>,
    dir: PathBuf,
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("dhp_server_{name}_{}_{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn site(residents: u64) -> Site {
    site_with(residents, dhp_server::ServerConfig::default()).await
}

async fn site_with(residents: u64, config: dhp_server::ServerConfig) -> Site {
    let dir = temp_dir("site");
    let url = format!("sqlite://{}", dir.join("d.db").display());
    let store: Arc<dyn Store> = if residents > 0 {
        let (store, _) = generate_into(&url, &Params::new(residents, 3), &Quiet)
            .await
            .unwrap();
        create_demo_accounts(&*store).await.unwrap();
        store
    } else {
        dhp_store::connect(&url).await.unwrap()
    };
    Site {
        state: AppState::open_with(store, config).await.unwrap(),
        dir,
    }
}

async fn get(site: &Site, uri: &str, cookie: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = app(site.state.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The CSRF token of a session, as its pages carry it (the logout form of every page).
/// A portal account of resident `resident` (password = username), signed in: its
/// session cookie.
async fn resident_account(site: &Site, username: &str, resident: i64) -> String {
    let store = &site.state.store;
    let users = store.users().await.unwrap();
    store
        .insert_user(&dhp_store::User {
            id: users.iter().map(|u| u.id).max().unwrap_or(0) + 1,
            username: username.into(),
            password_hash: dhp_server::auth::hash_password(username),
            role: "resident".into(),
            display_name: String::new(),
            org_id: None,
            practitioner_id: None,
            resident_id: Some(resident),
        })
        .await
        .unwrap();
    let (status, cookie, _) = login(site, username, username).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{username} signs in");
    cookie.unwrap()
}

/// The generated district's last day (its "today").
async fn end_date(site: &Site) -> chrono::NaiveDate {
    site.state
        .store
        .meta("end_date")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

async fn csrf_of(site: &Site, cookie: &str) -> String {
    let (_, page) = get(site, "/?lang=en", Some(cookie)).await;
    let at = page
        .find(r#"name="csrf" value=""#)
        .expect("a signed-in page carries the CSRF token");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn login(
    site: &Site,
    username: &str,
    password: &str,
) -> (StatusCode, Option<String>, String) {
    let body = format!("username={username}&password={password}");
    let req = Request::post("/login?lang=en")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let res = app(site.state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let cookie = res
        .headers()
        .get(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, cookie, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_reports_the_store() {
    let s = site(200).await;
    let (status, body) = get(&s, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(v["residents"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_page_shows_the_district_in_both_languages() {
    let s = site(2_000).await;
    // Before the indicators are counted the page has no headline figures.
    let (status, zh) = get(&s, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!zh.contains("重点人群家庭医生签约覆盖率"));
    // The headline figures are the stored indicator counts of the calibration year.
    let periods = dhp_analytics::indicators::tracked_periods(2020, 2026, 2);
    dhp_analytics::indicators::rebuild(&*s.state.store, &periods, &mut |_| {})
        .await
        .unwrap();
    let (status, zh) = get(&s, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    for text in [
        "青浦区",
        "夏阳街道",
        "朱家角镇社区卫生服务中心",
        "复旦大学附属中山医院青浦分院",
        "2,000",
        "重点人群家庭医生签约覆盖率",
        "千人口医疗卫生机构床位数",
        "83.4%",
        "登录",
    ] {
        assert!(zh.contains(text), "zh page lacks {text}");
    }
    let (_, en) = get(&s, "/?lang=en", None).await;
    for text in [
        "Qingpu District",
        "Xiayang Subdistrict",
        "Key-population family-doctor coverage",
        "Log in",
    ] {
        assert!(en.contains(text), "en page lacks {text}");
    }
    let (status, css) = get(&s, "/static/app.css", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("Noto Sans CJK SC"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_argon2_and_a_session_cookie() {
    let s = site(300).await;
    let (status, cookie, body) = login(&s, "doctor", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    assert!(body.contains("Wrong username or password"));
    let (status, _, _) = login(&s, "nobody", "nobody").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, cookie, _) = login(&s, "doctor", "doctor").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.expect("session cookie");
    let user = s.state.store.user_by_username("doctor").await.unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    let (_, home) = get(&s, "/?lang=en", Some(&cookie)).await;
    assert!(home.contains(&user.display_name), "signed-in name shown");
    // The role in the page's language, not its internal name.
    assert!(home.contains("family doctor") && !home.contains("family_doctor"));
    let (_, zh) = get(&s, "/?lang=zh", Some(&cookie)).await;
    assert!(zh.contains("家庭医生"));
    // A forged cookie is nobody.
    let (_, anon) = get(&s, "/?lang=en", Some("dhp_session=forged")).await;
    assert!(!anon.contains("Signed in as"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_accounts_cover_every_role_once() {
    let s = site(300).await;
    let users = s.state.store.users().await.unwrap();
    let mut roles: Vec<&str> = users.iter().map(|u| u.role.as_str()).collect();
    roles.sort();
    let mut expected = dhp_server::auth::ROLES.to_vec();
    expected.sort();
    assert_eq!(roles, expected);
    // Asking again creates nothing more.
    assert!(create_demo_accounts(&*s.state.store)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_database_says_so() {
    let s = site(0).await;
    let (status, body) = get(&s, "/?lang=en", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Run dhp generate first"));
}

//! Pages as a person sees them: the real server, headless Chromium, a screenshot.
//! Skipped (with a note) where Chromium is not installed, except in CI where it must be.

use std::ffi::OsStr;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::{dhp, stderr, Scratch};

pub struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

pub fn start_server(url: &str) -> (Server, String) {
    let (child, base) = crate::serve_on(url, &[], Stdio::null(), "http");
    (Server(child), base)
}

fn browse(chrome: &Path, profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .arg(url)
        .output()
        .unwrap()
}

/// Where screenshots are kept for a person to look at: target/tmp/screenshots/.
pub fn shots_dir() -> PathBuf {
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

/// One browser over the DevTools protocol, used as a person uses it: a tab that opens
/// pages, signs in through the login form and keeps its session cookie between pages.
pub struct Walk {
    _browser: Browser,
    pub tab: std::sync::Arc<headless_chrome::Tab>,
    base: String,
    shots: PathBuf,
}

impl Walk {
    pub fn new(chrome: &Path, base: &str, size: (u32, u32)) -> Self {
        let browser = Browser::new(
            LaunchOptions::default_builder()
                .path(Some(chrome.to_path_buf()))
                .headless(true)
                .sandbox(false)
                .window_size(Some(size))
                .idle_browser_timeout(std::time::Duration::from_secs(120))
                .args(vec![
                    OsStr::new("--disable-gpu"),
                    OsStr::new("--disable-background-networking"),
                    OsStr::new("--hide-scrollbars"),
                ])
                .build()
                .unwrap(),
        )
        .unwrap();
        let tab = browser.new_tab().unwrap();
        // Chromium keeps a window at least 500 px wide; a phone's width is set on the
        // page's viewport itself, as a phone (mobile layout, touch-sized text).
        if size.0 < 500 {
            use headless_chrome::protocol::cdp::Emulation::SetDeviceMetricsOverride;
            tab.call_method(SetDeviceMetricsOverride {
                width: size.0,
                height: size.1,
                device_scale_factor: 1.0,
                mobile: true,
                scale: None,
                screen_width: Some(size.0),
                screen_height: Some(size.1),
                position_x: None,
                position_y: None,
                dont_set_visible_size: None,
                screen_orientation: None,
                viewport: None,
                display_feature: None,
                device_posture: None,
            })
            .unwrap();
        }
        Self {
            _browser: browser,
            tab,
            base: base.trim_end_matches('/').to_string(),
            shots: shots_dir(),
        }
    }

    /// Open `path` and wait for it: the page's HTML.
    pub fn open(&self, path: &str) -> String {
        self.tab
            .navigate_to(&format!("{}{}", self.base, path))
            .unwrap()
            .wait_until_navigated()
            .unwrap();
        self.tab.get_content().unwrap()
    }

    /// Click into `selector` and type `text`.
    pub fn type_into(&self, selector: &str, text: &str) {
        self.tab
            .wait_for_element(selector)
            .unwrap()
            .click()
            .unwrap();
        self.tab.type_str(text).unwrap();
    }

    /// Click `selector` and wait for the next page to land (its `then` element).
    pub fn click(&self, selector: &str, then: &str) -> String {
        self.tab
            .wait_for_element(selector)
            .unwrap_or_else(|e| panic!("no {selector}: {e}"))
            .click()
            .unwrap();
        self.tab
            .wait_for_element(then)
            .unwrap_or_else(|e| panic!("after {selector}, no {then}: {e}"));
        self.tab.get_content().unwrap()
    }

    /// Sign in through the login page (password = username, the demo accounts').
    pub fn sign_in(&self, user: &str) {
        self.open("/login");
        self.type_into("input[name=username]", user);
        self.type_into("input[name=password]", user);
        self.tab
            .wait_for_element("button[type=submit]")
            .unwrap()
            .click()
            .unwrap();
        // The next page has the logout button (waits for the navigation to land).
        self.tab
            .wait_for_element("form[action='/logout'] button")
            .unwrap_or_else(|e| panic!("{user} is not signed in: {e}"));
        assert!(self.tab.get_content().unwrap().contains("退出"));
    }

    /// Sign out with the page's own button (its form carries the session's token).
    pub fn sign_out(&self) {
        self.tab
            .wait_for_element("form[action='/logout'] button")
            .unwrap()
            .click()
            .unwrap();
        // Signed out: the page offers the login link again.
        self.tab
            .wait_for_element("a.button[href^='/login']")
            .expect("signed out, the login link shows");
    }

    /// A screenshot of the whole page the tab shows now, as `name`.png.
    pub fn shoot(&self, name: &str) {
        let png = self
            .tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        assert!(
            png.len() > 20_000,
            "{name} screenshot is {} bytes",
            png.len()
        );
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    /// The text a person reads on the page now.
    pub fn text(&self) -> String {
        self.tab
            .evaluate("document.body.innerText", false)
            .unwrap()
            .value
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// A district of `residents` generated with `seed` into a new scratch directory
/// `name`: the directory and the database's URL.
pub fn generated(name: &str, residents: u32, seed: u32) -> (Scratch, String) {
    let dir = Scratch::new(name);
    let url = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &url,
        "--residents",
        &residents.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, url)
}

/// Chromium, or `None` where it is not installed (outside CI, which must have it).
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium (.ci/run does)"
        );
        eprintln!("chromium not installed: page test skipped");
    }
    found
}

#[test]
fn home_and_login_pages_render_in_chromium() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    let (dir, url) = generated("browser", 3000, 9);
    // The last weeks' detection run, so the CDC view has signals to show.
    let o = dhp(&[
        "surveillance",
        "run",
        "--database",
        &url,
        "--date",
        "2026-06-30",
        "--from",
        "2026-05-16",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_server, base) = start_server(&url);
    let profile = dir.0.join("profile");

    // What a person's browser builds from the page.
    let dom = browse(&chrome, &profile, &["--dump-dom"], &base);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for text in [
        "青浦区",
        "夏阳街道",
        "复旦大学附属中山医院青浦分院",
        "3,000",
        "重点人群家庭医生签约覆盖率",
    ] {
        assert!(dom.contains(text), "rendered page lacks {text}");
    }

    // Screenshots kept for a person to look at: target/tmp/screenshots/.
    let shots = shots_dir();
    // A screenshot of `page` as `name`.png, with more Chromium flags; it must hold a page.
    let screenshot = |name: &str, page: &str, flags: &[&str]| {
        let file = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&file);
        let target = format!("--screenshot={}", file.display());
        let mut all = vec![target.as_str()];
        all.extend_from_slice(flags);
        browse(&chrome, &profile, &all, page);
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 20_000, "{name} screenshot is {size} bytes");
    };
    for (name, page) in [
        ("home-zh", base.clone()),
        ("home-en", format!("{base}?lang=en")),
        ("login", format!("{base}login")),
    ] {
        screenshot(name, &page, &["--window-size=1280,1500"]);
    }

    // Signed in as a person does it: the login page, typing, the button. One browser
    // over the DevTools protocol, so the session cookie lives on between pages.
    let walk = Walk::new(&chrome, &base, (1280, 1500));
    let tab = &walk.tab;
    let open = |path: &str| walk.open(path);
    let sign_in = |user: &str| walk.sign_in(user);
    let sign_out = || walk.sign_out();
    let shoot = |name: &str| walk.shoot(name);

    // The family doctor's workbench: the due list, a resident's page and the printable
    // vaccination plan.
    sign_in("doctor");
    let first_resident = |dom: &str| {
        dom.split("/workbench/resident/")
            .nth(1)
            .and_then(|s| s.split('?').next())
            .map(str::to_string)
    };
    let dom = open("/workbench");
    for text in ["家庭医生工作台", "逾期", "高血压", "domain-rules §"] {
        assert!(dom.contains(text), "workbench lacks {text}");
    }
    let resident = first_resident(&dom).expect("the due list links to residents");
    let child = first_resident(&open("/workbench?programme=immunization"))
        .expect("a child with a vaccine due");
    let plan = open(&format!("/workbench/resident/{child}/vaccines"));
    for text in ["预防接种计划", "乙肝疫苗", "麻腮风疫苗", "建议日期"] {
        assert!(plan.contains(text), "vaccination plan lacks {text}");
    }
    for (name, next) in [
        ("workbench", "/workbench".to_string()),
        ("resident", format!("/workbench/resident/{resident}")),
        ("panel", "/workbench/panel".to_string()),
        ("vaccines", format!("/workbench/resident/{child}/vaccines")),
        ("contracts", "/contracts".to_string()),
    ] {
        open(&next);
        shoot(name);
    }
    sign_out();

    // The CDC's view: street grid, signals, series with thresholds; a signal's page.
    sign_in("phdoctor");
    let cdc = open("/surveillance");
    for text in [
        "传染病监测预警",
        "街镇预警态势",
        "预警信号",
        "手足口病",
        "预警阈值",
        "哨点缺报",
    ] {
        assert!(cdc.contains(text), "CDC page lacks {text}");
    }
    let signal = cdc
        .split("/surveillance/signal/")
        .nth(1)
        .and_then(|s| s.split('?').next())
        .expect("the CDC page links to signals")
        .to_string();
    for (name, next) in [
        ("surveillance", "/surveillance".to_string()),
        ("signal", format!("/surveillance/signal/{signal}")),
        ("disease", "/surveillance/disease/hfmd".to_string()),
    ] {
        open(&next);
        shoot(name);
    }
    sign_out();

    // The manager's plan scorecard, one indicator's charts and the residents behind a
    // street's figure.
    sign_in("manager");
    let card = open("/indicators");
    for text in [
        "规划指标监测",
        "千人口医疗卫生机构床位数",
        "2020 基线",
        "7.48",
        "数据暂不支持",
        "人均预期寿命",
        "夏阳街道",
    ] {
        assert!(card.contains(text), "scorecard lacks {text}");
    }
    // The district's records end 2026-06-30: the page opens on 2025, offers 2026's
    // quarters only as far as they have begun, and says 2026's figures are provisional.
    assert!(!card.contains("本期尚未结束"), "2025 is complete");
    assert!(card.contains("period=2026Q2"), "2026Q2 has begun");
    assert!(!card.contains("period=2026Q3"), "2026Q3 has not begun");
    let running = open("/indicators?period=2026");
    assert!(
        running.contains("本期尚未结束：记录截至 2026-06-30"),
        "2026 is not marked as running"
    );
    open("/indicators/key_population_signing?org=310118001");
    // ECharts drew under the content security policy: each chart holds a canvas.
    tab.wait_for_element("#bars canvas").unwrap();
    let one = tab.get_content().unwrap();
    assert!(one.contains("年度趋势"), "indicator page lacks its trend");
    assert!(
        one.matches("<canvas").count() >= 3,
        "indicator charts did not draw"
    );
    let who = open("/indicators/key_population_signing/residents?org=310118001");
    assert!(
        who.contains("计入分母的居民"),
        "drill-down lacks its residents"
    );
    assert!(who.contains("********"), "identity numbers are masked");
    for (name, next) in [
        ("scorecard", "/indicators"),
        ("scorecard-running", "/indicators?period=2026"),
        ("indicator", "/indicators/community_visit_rate"),
        (
            "indicator-street",
            "/indicators/key_population_signing?org=310118001",
        ),
        (
            "indicator-residents",
            "/indicators/key_population_signing/residents?org=310118001",
        ),
    ] {
        open(next);
        if next.starts_with("/indicators/") && !next.contains("residents") {
            tab.wait_for_element("#bars canvas").unwrap();
        }
        shoot(name);
    }

    // The emergency access report: a clinician's grant, as the manager reads it.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = dhp_store::connect(&url).await.unwrap();
        let clinician = store.user_by_username("clinician").await.unwrap();
        let resident = store
            .page(dhp_store::Table::Residents, 0, 1)
            .await
            .unwrap()
            .residents[0]
            .id;
        let now = chrono::Utc::now().naive_utc();
        store
            .grant_emergency_access(&dhp_store::EmergencyGrant {
                id: "browser-grant".into(),
                username: "clinician".into(),
                role: "hospital_clinician".into(),
                org_id: clinician.org_id,
                resident_id: resident,
                reason: "车祸昏迷，急诊抢救".into(),
                granted: now,
                expires: now + chrono::Duration::hours(4),
            })
            .await
            .unwrap();
        store.close().await;
    });
    let report = open("/emergency-access");
    for text in [
        "紧急授权访问记录",
        "车祸昏迷，急诊抢救",
        "医院临床医生",
        "生效中",
    ] {
        assert!(
            report.contains(text),
            "emergency access report lacks {text}"
        );
    }
    shoot("emergency-access");
    let report = open("/emergency-access?lang=en");
    assert!(report.contains("hospital clinician"));
    shoot("emergency-access-en");
    sign_out();

    // The system administrator's day: a new family doctor's account through the form,
    // its one-time password shown once; the doctor's first login lands on the password
    // page, and the new password opens the portal.
    sign_in("sysadmin");
    let accounts = open("/admin/accounts");
    for text in ["账号管理", "新建账号", "重置密码", "系统管理员"] {
        assert!(accounts.contains(text), "accounts page lacks {text}");
    }
    tab.wait_for_element("details.card summary")
        .unwrap()
        .click()
        .unwrap();
    walk.type_into("input[name=username]", "dr.zhou");
    walk.type_into("input[name=display_name]", "周医生");
    tab.evaluate(
        "document.querySelector('select[name=role]').value = 'family_doctor'; \
         document.querySelector('select[name=org]').value = '310118-CHC-ZJJ';",
        false,
    )
    .unwrap();
    tab.wait_for_element("details.card button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    let made = tab.wait_for_element("p.notice.ok b.mono").unwrap();
    let one_time = made.get_inner_text().unwrap();
    assert_eq!(one_time.chars().count(), 16, "{one_time}");
    shoot("accounts");
    open("/admin/accounts?lang=en");
    shoot("accounts-en");
    sign_out();
    open("/login");
    walk.type_into("input[name=username]", "dr.zhou");
    walk.type_into("input[name=password]", &one_time);
    tab.wait_for_element("button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    tab.wait_for_element("input[name=new_password]").unwrap();
    let owed = tab.get_content().unwrap();
    assert!(
        owed.contains("首次登录须先修改密码"),
        "the change is not asked for"
    );
    shoot("password");
    for (field, value) in [
        ("current_password", one_time.as_str()),
        ("new_password", "Zhujiajiao-2027"),
        ("confirm_password", "Zhujiajiao-2027"),
    ] {
        walk.type_into(&format!("input[name={field}]"), value);
    }
    tab.wait_for_element("section.login button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    // The full menu again (the password page that owed the change has none).
    tab.wait_for_element("header a[href^='/password']").unwrap();
    let home = tab.get_content().unwrap();
    assert!(
        home.contains("周医生"),
        "the doctor is not signed in after the change"
    );
    sign_out();

    // A CJK font is installed, so the Chinese text renders as glyphs, not boxes.
    let fonts = Command::new("fc-list")
        .arg(":lang=zh")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    assert!(!fonts.is_empty(), "no CJK font: install fonts-noto-cjk");
}

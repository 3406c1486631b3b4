//! The resident portal and every role's start page in headless Chromium, at phone
//! size (390×844) and desktop size, in Chinese and English: the resident signs in,
//! lands on their record, switches language on the same page, opens who looked at
//! their record. Screenshots land in target/tmp/screenshots/ for a person to look at.

use crate::browser::{chromium_or_skip, start_server, Walk};
use crate::{dhp, stderr, Scratch};

/// Text that shows a message key, a raw placeholder or an English heading where
/// Chinese should be.
fn untranslated(text: &str) -> Vec<&'static str> {
    [
        "me_", "svc_", "appt_", "care_", "wb_", "prog_", "enc_", "{", "}", "My ", "Result", "High",
        "Low", "Allowed", "Refused",
    ]
    .into_iter()
    .filter(|w| text.contains(w))
    .collect()
}

/// The page is no wider than the window (nothing runs off a phone's screen).
fn fits(walk: &Walk, width: u32) -> bool {
    walk.tab
        .evaluate("document.documentElement.scrollWidth", false)
        .unwrap()
        .value
        .and_then(|v| v.as_u64())
        .is_some_and(|w| w <= u64::from(width))
}

#[test]
fn a_resident_reads_their_record_on_a_phone_and_every_role_lands_on_its_page() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    let dir = Scratch::new("portal-walk");
    let url = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &url,
        "--residents",
        "3000",
        "--seed",
        "11",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (_server, base) = start_server(&url);

    // On a phone: the resident lands on their own record.
    let phone = Walk::new(&chrome, &base, (390, 844));
    phone.sign_in("resident");
    let url_now = phone.tab.get_url();
    assert!(url_now.contains("/me"), "the resident landed on {url_now}");
    let page = phone.tab.get_content().unwrap();
    for text in ["我的健康档案", "我的家庭医生", "待办提醒", "健康记录"] {
        assert!(page.contains(text), "the record lacks {text}");
    }
    let text = phone.text();
    assert!(untranslated(&text).is_empty(), "{:?}", untranslated(&text));
    assert!(fits(&phone, 390), "the record runs off a phone's screen");
    phone.shoot("resident-me-phone-zh");
    // The language switch keeps the page.
    let english = phone.click("a.lang", "section.hero h1");
    assert!(phone.tab.get_url().contains("/me?lang=en"));
    assert!(english.contains("My health record") && english.contains("Health timeline"));
    assert!(!phone.text().contains("我的家庭医生"));
    phone.shoot("resident-me-phone-en");
    // Who looked at my record, both languages.
    let access = phone.open("/me/access");
    assert!(access.contains("谁查看了我的档案"));
    assert!(
        untranslated(&phone.text()).is_empty(),
        "{:?}",
        untranslated(&phone.text())
    );
    assert!(
        fits(&phone, 390),
        "the access log runs off a phone's screen"
    );
    phone.shoot("resident-access-phone-zh");
    phone.open("/me/access?lang=en");
    phone.shoot("resident-access-phone-en");
    phone.sign_out();

    // On a desktop, the same pages, and each role's start page in both languages.
    let desk = Walk::new(&chrome, &base, (1280, 1000));
    desk.sign_in("resident");
    desk.shoot("resident-me-desktop-zh");
    desk.open("/me?lang=en");
    desk.shoot("resident-me-desktop-en");
    desk.sign_out();
    for (user, start) in [
        ("doctor", "/workbench"),
        ("clinician", "/care"),
        ("phdoctor", "/surveillance"),
        ("manager", "/indicators"),
    ] {
        desk.sign_in(user);
        let at = desk.tab.get_url();
        assert!(at.contains(start), "{user} landed on {at}");
        desk.shoot(&format!("start-{user}-zh"));
        desk.click("a.lang", "main");
        assert!(desk.tab.get_url().contains("lang=en"));
        desk.shoot(&format!("start-{user}-en"));
        desk.open(&format!("{start}?lang=zh"));
        desk.sign_out();
    }
}

//! The resident portal and every role's start page in headless Chromium, at phone
//! size (390×844) and desktop size, in Chinese and English: the resident signs in,
//! lands on their record, switches language on the same page, opens who looked at
//! their record. Screenshots land in target/tmp/screenshots/ for a person to look at.

use crate::browser::{chromium_or_skip, generated, start_server, Walk};

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

/// How wide the page is laid out, and the widest element running past `width`
/// (nothing may run off a phone's screen).
fn overflow(walk: &Walk, width: u32) -> Option<String> {
    let js = format!(
        "(() => {{ const w = document.documentElement.scrollWidth; if (w <= {width}) return ''; \
         const e = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > {width}) \
         .sort((a, b) => b.getBoundingClientRect().width - a.getBoundingClientRect().width)[0]; \
         return w + 'px: ' + (e ? e.tagName + '.' + e.className + ' ' + e.textContent.slice(0, 60) : ''); }})()"
    );
    let v = walk.tab.evaluate(&js, false).unwrap().value;
    v.and_then(|v| v.as_str().map(str::to_string))
        .filter(|s| !s.is_empty())
}

#[test]
fn a_resident_reads_their_record_on_a_phone_and_every_role_lands_on_its_page() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    let (_dir, url) = generated("portal-walk", 3000, 11);
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
    phone.shoot("resident-me-phone-zh");
    assert!(untranslated(&text).is_empty(), "{:?}", untranslated(&text));
    assert_eq!(
        overflow(&phone, 390),
        None,
        "the record runs off a phone's screen"
    );
    // Further down: the timeline of results, flagged against their ranges.
    phone
        .tab
        .evaluate(
            "document.querySelector('ul.timeline, h2:last-of-type').scrollIntoView()",
            false,
        )
        .unwrap();
    phone.shoot("resident-me-phone-timeline-zh");
    // The language switch keeps the page.
    let english = phone.click("a.lang", "section.hero h1");
    assert!(phone.tab.get_url().contains("/me?lang=en"));
    assert!(english.contains("My health record") && english.contains("Health timeline"));
    assert!(!phone.text().contains("我的家庭医生"));
    phone.shoot("resident-me-phone-en");
    // Who looked at my record, both languages.
    let access = phone.open("/me/access");
    assert!(access.contains("谁查看了我的档案"));
    phone.shoot("resident-access-phone-zh");
    assert!(
        untranslated(&phone.text()).is_empty(),
        "{:?}",
        untranslated(&phone.text())
    );
    assert_eq!(
        overflow(&phone, 390),
        None,
        "the access log runs off a phone's screen"
    );
    phone.open("/me/access?lang=en");
    phone.shoot("resident-access-phone-en");
    // Booking: the search form and the open places fit a phone, in both languages.
    for lang in ["zh", "en"] {
        let page = phone.open(&format!("/me/book?lang={lang}&service=cardiology"));
        assert!(page.contains("name=\"slot\""), "open places are offered");
        phone.shoot(&format!("resident-book-phone-{lang}"));
        assert_eq!(
            overflow(&phone, 390),
            None,
            "the booking page runs off a phone's screen ({lang})"
        );
        if lang == "zh" {
            assert!(
                untranslated(&phone.text()).is_empty(),
                "{:?}",
                untranslated(&phone.text())
            );
        }
    }
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

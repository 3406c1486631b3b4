//! Tiered care walked in headless Chromium, as the family doctor and the hospital
//! clinician do it: the doctor refers a resident up with a reserved slot; the clinician
//! finds it in the inbox, accepts it, sees the community centre's result in the shared
//! record, orders the same test and is shown the earlier result, uses it, and refers
//! the patient down; the doctor sees the follow-up on the due list. Screenshots in
//! Chinese and English land in target/tmp/screenshots/ for a person to look at.

use chrono::Duration;
use dhp_core::{Encounter, EncounterType, ImagingStudy, Observation};
use dhp_store::{Batch, Table};

use crate::browser::{chromium_or_skip, generated, start_server, Walk};

/// The resident, the hospital's name and the centre's name the walk uses.
struct Cast {
    resident: i64,
    name: String,
    hospital: String,
    centre: String,
}

/// An adult of the doctor's area with nothing booked, given an HbA1c and an ECG at the
/// centre five days ago (the results the clinician will be shown).
fn cast(url: &str) -> Cast {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = dhp_store::connect(url).await.unwrap();
        let doctor = store.user_by_username("doctor").await.unwrap();
        let clinician = store.user_by_username("clinician").await.unwrap();
        let orgs = store
            .page(Table::Organisations, 0, 1_000)
            .await
            .unwrap()
            .organisations;
        let centre = orgs.iter().find(|o| Some(o.id) == doctor.org_id).unwrap();
        let hospital = orgs
            .iter()
            .find(|o| Some(o.id) == clinician.org_id)
            .unwrap();
        let on: chrono::NaiveDate = "2026-06-30".parse().unwrap();
        let mut chosen = None;
        for r in store
            .page(Table::Residents, 0, 3_000)
            .await
            .unwrap()
            .residents
        {
            if Some(r.street_org_id) == centre.parent_id
                && r.age_on(on) >= 45
                && store.appointments_of(r.id).await.unwrap().is_empty()
                && store.referrals_of(r.id).await.unwrap().is_empty()
            {
                chosen = Some(r);
                break;
            }
        }
        let r = chosen.expect("an adult of the doctor's area");
        let e = store.reserve_ids("Encounter", 1).await.unwrap();
        let o = store.reserve_ids("Observation", 1).await.unwrap();
        let m = store.reserve_ids("ImagingStudy", 1).await.unwrap();
        let when = on.and_hms_opt(9, 30, 0).unwrap() - Duration::days(5);
        store
            .insert_batch(&Batch {
                encounters: vec![Encounter {
                    id: e,
                    resident_id: r.id,
                    kind: EncounterType::Outpatient,
                    programme: None,
                    org_id: centre.id,
                    practitioner_id: None,
                    start: when,
                }],
                observations: vec![Observation {
                    id: o,
                    resident_id: r.id,
                    encounter_id: Some(e),
                    code: "4548-4".into(),
                    value: 8.4,
                    unit: "%".into(),
                    effective: when,
                }],
                imaging_studies: vec![ImagingStudy {
                    id: m,
                    resident_id: r.id,
                    encounter_id: e,
                    org_id: centre.id,
                    code: "11524-6".into(),
                    modality: "ECG".into(),
                    started: when + Duration::minutes(15),
                    uid: format!("urn:oid:2.25.{m}"),
                    findings: "窦性心律，左心室高电压".into(),
                }],
                ..Batch::default()
            })
            .await
            .unwrap();
        store.close().await;
        Cast {
            resident: r.id,
            name: r.name,
            hospital: hospital.name_zh.clone(),
            centre: centre.name_zh.clone(),
        }
    })
}

/// Text that shows a message key or an English word where Chinese should be.
fn untranslated(text: &str) -> Vec<&'static str> {
    [
        "care_",
        "svc_",
        "appt_",
        "wb_",
        "Referral",
        "referral",
        "requested",
        "accepted",
        "Results",
        "Order",
    ]
    .into_iter()
    .filter(|w| text.contains(w))
    .collect()
}

#[test]
fn a_referral_walks_up_to_the_hospital_and_back_down_in_chromium() {
    let Some(chrome) = chromium_or_skip() else {
        return;
    };
    let (_dir, url) = generated("care-walk", 3000, 9);
    let cast = cast(&url);
    let (_server, base) = start_server(&url);
    let walk = Walk::new(&chrome, &base, (1280, 1600));
    let patient = format!("/care/patients/{}", cast.resident);

    // The family doctor refers the resident up, booking a reserved slot at the hospital.
    walk.sign_in("doctor");
    let page = walk.open(&patient);
    assert!(
        page.contains("转诊到医院"),
        "the doctor has no referral form"
    );
    let picked = walk
        .tab
        .evaluate(
            &format!(
                "(() => {{ const s = document.querySelector('select[name=slot]'); \
                 const o = [...s.options].find(o => o.text.startsWith('{}')); \
                 if (o) {{ s.value = o.value; }} return o ? o.text : ''; }})()",
                cast.hospital
            ),
            false,
        )
        .unwrap()
        .value
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(!picked.is_empty(), "no reserved slot at {}", cast.hospital);
    walk.type_into(
        "form.refer input[name=reason]",
        "两次随访血糖控制不满意，请专科调整方案",
    );
    walk.shoot("care-refer-up");
    let sent = walk.click("form.refer button", "section.hero .badge");
    for text in ["上转", "已提交", "预留号源", &cast.hospital, "已预约"] {
        assert!(sent.contains(text), "the sent referral lacks {text}");
    }
    walk.shoot("care-referral-sent");
    walk.sign_out();

    // The clinician: the inbox, the referral, accepting it.
    walk.sign_in("clinician");
    let inbox = walk.open("/care");
    assert!(inbox.contains(&cast.name), "the inbox lacks the referral");
    assert!(inbox.contains("今日就诊预约"));
    assert!(
        untranslated(&walk.text()).is_empty(),
        "{:?}",
        untranslated(&walk.text())
    );
    walk.shoot("care-inbox");
    let referral = inbox
        .split("/care/referrals/")
        .nth(1)
        .and_then(|s| s.split('?').next())
        .unwrap()
        .to_string();
    walk.open(&format!("/care/referrals/{referral}"));
    let accepted = walk.click("button[value=accept]", "p.notice.ok");
    assert!(accepted.contains("已接受"), "the referral is not accepted");
    walk.shoot("care-referral-accepted");

    // The shared record: the centre's result, marked recognised; ordering it again
    // shows the earlier result, and using it avoids the repeat.
    let record = walk.open(&patient);
    for text in [
        "共享健康档案",
        "糖化血红蛋白",
        "心电图",
        "窦性心律，左心室高电压",
        "HR",
        &cast.centre,
        "家庭医生签约",
    ] {
        assert!(record.contains(text), "the shared record lacks {text}");
    }
    assert!(
        untranslated(&walk.text()).is_empty(),
        "{:?}",
        untranslated(&walk.text())
    );
    walk.shoot("care-patient");
    walk.tab
        .evaluate(
            "document.querySelector('select[name=code]').value = '4548-4'",
            false,
        )
        .unwrap();
    let warned = walk.click(
        "form[action$='/order?lang=zh'] button",
        "div.notice.standing",
    );
    assert!(warned.contains("8.4 %"), "the earlier result is not shown");
    walk.shoot("care-order-warned");
    let used = walk.click("button[name=use_standing]", "p.notice.ok");
    assert!(
        used.contains("避免了一次重复检验"),
        "the earlier result was not used"
    );

    // Down to the community, with the discharge summary; the follow-up day is two
    // weeks ahead (the form's default).
    walk.type_into("form.refer input[name=reason]", "出院后社区随访，监测血糖");
    walk.type_into(
        "form.refer textarea[name=summary]",
        "住院 5 天，胰岛素方案已调整，血糖平稳",
    );
    let down = walk.click("form.refer button", "section.hero .badge");
    assert!(
        down.contains("下转") && down.contains("出院小结"),
        "the down-referral was not made"
    );
    walk.shoot("care-referral-down");
    // The same pages in English.
    walk.open("/care?lang=en");
    walk.shoot("care-inbox-en");
    let english = walk.open(&format!("{patient}?lang=en"));
    assert!(
        english.contains("Shared health record") && english.contains("Refer back to the community")
    );
    walk.shoot("care-patient-en");
    walk.sign_out();

    // The family doctor: the referral back, and the follow-up on the month's due list.
    walk.sign_in("doctor");
    let due = walk.open("/workbench?within=30");
    assert!(
        due.contains("出院后随访：出院后社区随访，监测血糖") && due.contains(&cast.name),
        "the due list lacks the follow-up"
    );
    walk.shoot("care-due-list");
    let back = walk.open("/care?box=inbox");
    assert!(back.contains("下转") && back.contains(&cast.name));
    walk.shoot("care-doctor-inbox");
    walk.sign_out();

    // The commission's manager reads the year in figures, in both languages.
    walk.sign_in("manager");
    let figures = walk.open("/care/figures");
    for text in [
        "分级诊疗数据",
        "上转",
        "接收率",
        "避免重复检查",
        "重复检查的原因",
    ] {
        assert!(figures.contains(text), "the figures lack {text}");
    }
    assert!(
        untranslated(&walk.text()).is_empty() && !walk.text().contains("condition-changed"),
        "{:?}",
        untranslated(&walk.text())
    );
    walk.shoot("care-figures");
    let english = walk.open("/care/figures?lang=en");
    assert!(
        english.contains("Tiered care in figures")
            && english.contains("Reasons for repeating a test")
    );
    walk.shoot("care-figures-en");
    walk.sign_out();
}

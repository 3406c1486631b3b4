//! The FHIR API end to end: tokens, scope by role and organisation unit, masking,
//! OperationOutcome errors, and an audit row for every access.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use dhp_core::OrgKind;
use dhp_server::app;
use dhp_store::Table;
use serde_json::Value;
use tower::ServiceExt;

use super::{site, Site};

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    content_type: String,
    www_authenticate: Option<String>,
    pub(crate) json: Value,
}

pub(crate) async fn call(s: &Site, req: Request<Body>) -> Answer {
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let header_text = |name| {
        res.headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let content_type = header_text(header::CONTENT_TYPE).unwrap_or_default();
    let www_authenticate = header_text(header::WWW_AUTHENTICATE);
    let body = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        www_authenticate,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
    }
}

/// The demo family doctor, their centre and its street or town, and every resident and
/// contract: what the scope tests count from.
pub(crate) struct DoctorView {
    pub(crate) doctor: dhp_store::User,
    pub(crate) centre: dhp_core::Organisation,
    pub(crate) area: i64,
    pub(crate) residents: Vec<dhp_core::Resident>,
    pub(crate) contracts: Vec<dhp_core::Contract>,
    /// Residents referred to the centre (by a referral not rejected or withdrawn) or
    /// holding a booking there.
    pub(crate) coming: std::collections::BTreeSet<i64>,
}

impl DoctorView {
    /// The residents the doctor may see on `today`, counted from the rows: those living
    /// in the centre's street or town, those with a contract in force with the centre
    /// or the doctor, and those referred to or booked at the centre.
    pub(crate) fn in_scope(&self, today: chrono::NaiveDate) -> Vec<i64> {
        self.residents
            .iter()
            .filter(|r| {
                r.street_org_id == self.area
                    || self.coming.contains(&r.id)
                    || self.contracts.iter().any(|c| {
                        c.resident_id == r.id
                            && c.status != dhp_core::ContractStatus::Ended
                            && c.start <= today
                            && today <= c.end
                            && (c.centre_org_id == self.centre.id
                                || Some(c.doctor_id) == self.doctor.practitioner_id)
                    })
            })
            .map(|r| r.id)
            .collect()
    }
}

pub(crate) async fn doctor_view(store: &dyn dhp_store::Store) -> DoctorView {
    let doctor = store.user_by_username("doctor").await.unwrap();
    let centre = store.organisation(doctor.org_id.unwrap()).await.unwrap();
    let area = centre.parent_id.unwrap();
    let residents = store
        .page(Table::Residents, 0, 10_000)
        .await
        .unwrap()
        .residents;
    let contracts = store
        .page(Table::Contracts, 0, 1_000_000)
        .await
        .unwrap()
        .contracts;
    // Referred here, or booked here (attended too) on any day of the pool.
    let referrals = dhp_store::ReferralFilter {
        org: centre.id,
        received: true,
        direction: None,
        open_only: false,
    };
    let mut coming: std::collections::BTreeSet<i64> = store
        .referrals(&referrals, 1_000_000, 0)
        .await
        .unwrap()
        .0
        .iter()
        .filter(|r| r.status.engages_receiver())
        .map(|r| r.resident_id)
        .collect();
    // The generator's pool spans a past year and four weeks ahead.
    let first = dhp_store::as_of(store).await.unwrap() - chrono::Duration::days(370);
    for d in 0..400 {
        for a in store
            .appointments_at(centre.id, first + chrono::Duration::days(d))
            .await
            .unwrap()
        {
            if a.appointment.status.holds_place() {
                coming.insert(a.appointment.resident_id);
            }
        }
    }
    DoctorView {
        doctor,
        centre,
        area,
        residents,
        contracts,
        coming,
    }
}

pub(crate) async fn token_request(s: &Site, form: &str) -> Answer {
    call(
        s,
        Request::post("/auth/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form.to_string()))
            .unwrap(),
    )
    .await
}

pub(crate) async fn token(s: &Site, user: &str) -> String {
    let a = token_request(
        s,
        &format!("grant_type=password&username={user}&password={user}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    a.json["access_token"].as_str().unwrap().to_string()
}

pub(crate) async fn read(s: &Site, token: Option<&str>, path: &str) -> Answer {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    call(s, req.body(Body::empty()).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_follow_the_oauth2_grants() {
    let s = site(300).await;
    let ok = token_request(&s, "grant_type=password&username=doctor&password=doctor").await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json["token_type"], "Bearer");
    assert_eq!(ok.json["expires_in"], 3600);
    let client = token_request(
        &s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await;
    assert_eq!(client.status, StatusCode::OK);
    // A person's account is not a client.
    let not_client = token_request(
        &s,
        "grant_type=client_credentials&client_id=doctor&client_secret=doctor",
    )
    .await;
    assert_eq!(
        (not_client.status, not_client.json["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let wrong = token_request(&s, "grant_type=password&username=doctor&password=nope").await;
    assert_eq!(
        (wrong.status, wrong.json["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_grant"))
    );
    let grant = token_request(&s, "grant_type=implicit&username=doctor&password=doctor").await;
    assert_eq!(
        (grant.status, grant.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let missing = token_request(&s, "grant_type=password&username=doctor").await;
    assert_eq!(
        (missing.status, missing.json["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // Failed logins are in the audit log.
    let failed: Vec<_> = s
        .state
        .store
        .audit_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "login" && e.outcome == "failed")
        .collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().any(|e| e.username == "doctor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_tells_the_truth_and_the_rest_is_not_supported() {
    let s = site(50).await;
    let m = read(&s, None, "/fhir/metadata").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.content_type.starts_with("application/fhir+json"));
    assert_eq!(m.json["resourceType"], "CapabilityStatement");
    assert_eq!(m.json["fhirVersion"], "4.0.1");
    assert_eq!(m.json["rest"][0]["resource"][0]["type"], "Patient");
    let types: Vec<&str> = m.json["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"CareTeam") && types.contains(&"Observation"));
    let other = read(&s, None, "/fhir/Medication/1").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.json["resourceType"], "OperationOutcome");
    assert_eq!(other.json["issue"][0]["code"], "not-supported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_reads_are_scoped_masked_and_audited() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let audit_before = store.audit_events(None, 10_000).await.unwrap().len();

    // The family doctor's centre and its street or town.
    let DoctorView {
        doctor,
        centre,
        area,
        residents,
        contracts,
        coming,
    } = doctor_view(store).await;
    assert_eq!(centre.kind, OrgKind::CommunityHealthCentre);
    let inside = residents.iter().find(|r| r.street_org_id == area).unwrap();
    let outside = residents
        .iter()
        .find(|r| {
            r.street_org_id != area
                && !coming.contains(&r.id)
                && !contracts.iter().any(|c| {
                    c.resident_id == r.id
                        && (c.centre_org_id == centre.id
                            || Some(c.doctor_id) == doctor.practitioner_id)
                })
        })
        .unwrap();

    // No token, a forged token: login required.
    let none = read(&s, None, &format!("/fhir/Patient/{}", inside.id)).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.json["issue"][0]["code"], "login");
    assert_eq!(none.www_authenticate.as_deref(), Some("Bearer"));
    let forged = read(
        &s,
        Some("not.a.token"),
        &format!("/fhir/Patient/{}", inside.id),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    // The family doctor: inside their area yes, in full; outside no.
    let t = token(&s, "doctor").await;
    let yes = read(&s, Some(&t), &format!("/fhir/Patient/{}", inside.id)).await;
    assert_eq!(yes.status, StatusCode::OK, "{}", yes.json);
    assert_eq!(yes.json["resourceType"], "Patient");
    assert_eq!(
        yes.json["identifier"][0]["value"],
        inside.identity_number.as_str()
    );
    assert_eq!(yes.json["name"][0]["text"], inside.name);
    let no = read(&s, Some(&t), &format!("/fhir/Patient/{}", outside.id)).await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    assert_eq!(no.json["resourceType"], "OperationOutcome");
    assert_eq!(no.json["issue"][0]["code"], "forbidden");
    assert!(no
        .json
        .to_string()
        .find(outside.identity_number.as_str())
        .is_none());

    // The manager sees the district, masked.
    let m = token(&s, "manager").await;
    let masked = read(&s, Some(&m), &format!("/fhir/Patient/{}", outside.id)).await;
    assert_eq!(masked.status, StatusCode::OK);
    assert_eq!(
        masked.json["identifier"][0]["value"],
        outside.identity_number.masked()
    );
    assert_eq!(masked.json["meta"]["security"][0]["code"], "MASKED");
    assert!(masked.json.get("telecom").is_none());

    // A resident sees only themself.
    let me = store
        .user_by_username("resident")
        .await
        .unwrap()
        .resident_id
        .unwrap();
    let r = token(&s, "resident").await;
    assert_eq!(
        read(&s, Some(&r), &format!("/fhir/Patient/{me}"))
            .await
            .status,
        StatusCode::OK
    );
    let other = if me == inside.id {
        outside.id
    } else {
        inside.id
    };
    // Another resident's record answers as no record does: a resident cannot tell
    // which numbers are residents; the refusal is still audited against it.
    let theirs = read(&s, Some(&r), &format!("/fhir/Patient/{other}")).await;
    let nobody = read(&s, Some(&r), "/fhir/Patient/987654321").await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    assert_eq!(
        theirs.json["issue"][0]["code"],
        nobody.json["issue"][0]["code"]
    );
    for tail in ["/$everything", "/_history"] {
        let theirs = read(&s, Some(&r), &format!("/fhir/Patient/{other}{tail}")).await;
        let nobody = read(&s, Some(&r), &format!("/fhir/Patient/987654321{tail}")).await;
        assert_eq!(
            (theirs.status, nobody.status),
            (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
            "{tail}"
        );
    }
    let trail = store.audit_events(None, 100_000).await.unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.resident_id == Some(other) && e.outcome == "denied"),
        "the refused read is audited against the other resident"
    );

    // A hospital clinician sees residents with an encounter at their hospital only.
    let clinician = store.user_by_username("clinician").await.unwrap();
    let hospital = clinician.org_id.unwrap();
    let encounters = store
        .page(Table::Encounters, 0, 10_000_000)
        .await
        .unwrap()
        .encounters;
    let seen_there = encounters
        .iter()
        .find(|e| e.org_id == hospital)
        .unwrap()
        .resident_id;
    let never_there = residents
        .iter()
        .find(|r| {
            !encounters
                .iter()
                .any(|e| e.resident_id == r.id && e.org_id == hospital)
        })
        .unwrap()
        .id;
    let c = token(&s, "clinician").await;
    assert_eq!(
        read(&s, Some(&c), &format!("/fhir/Patient/{seen_there}"))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        read(&s, Some(&c), &format!("/fhir/Patient/{never_there}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Unknown ids are not-found outcomes.
    for bad in ["999999999", "abc"] {
        let a = read(&s, Some(&t), &format!("/fhir/Patient/{bad}")).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert_eq!(a.json["issue"][0]["code"], "not-found");
    }

    // Every attempt left one audit row: 2 unauthenticated, 10 reads, 4 whole-record or
    // history attempts, 4 token logins.
    let after = store.audit_events(None, 10_000).await.unwrap();
    let new = &after[..after.len() - audit_before];
    let count = |action: &str, outcome: &str| {
        new.iter()
            .filter(|e| e.action == action && e.outcome == outcome)
            .count()
    };
    assert_eq!(count("read", "unauthenticated"), 2);
    assert_eq!(count("read", "success"), 4); // doctor, manager, resident, clinician
    assert_eq!(count("read", "denied"), 3); // doctor, resident, clinician outside their scope
    assert_eq!(count("read", "not-found"), 3); // the resident's and two unknown ids
    assert_eq!(count("login", "success"), 4);
    // The resident's whole-record and history attempts, another's and none's.
    assert_eq!(
        count("everything", "denied") + count("history", "denied"),
        2
    );
    assert_eq!(new.len(), 20);
    let reads: Vec<_> = new.iter().filter(|e| e.action == "read").collect();
    let denied = store.audit_events(Some(outside.id), 10).await.unwrap();
    assert!(denied.iter().any(|e| e.username == "doctor"
        && e.outcome == "denied"
        && e.resource == format!("Patient/{}", outside.id)));
    assert!(reads.iter().any(|e| e.username == "manager"
        && e.outcome == "success"
        && e.resident_id == Some(outside.id)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_residents_records_follow_the_residents_scope() {
    let s = site(1_500).await;
    let store = &*s.state.store;
    let DoctorView {
        doctor,
        centre,
        area,
        residents,
        contracts,
        coming,
    } = doctor_view(store).await;
    let encounters = store
        .page(Table::Encounters, 0, 10_000_000)
        .await
        .unwrap()
        .encounters;
    let in_scope = |rid: i64| {
        residents
            .iter()
            .any(|r| r.id == rid && r.street_org_id == area)
            || coming.contains(&rid)
            || contracts.iter().any(|c| {
                c.resident_id == rid
                    && (c.centre_org_id == centre.id || Some(c.doctor_id) == doctor.practitioner_id)
            })
    };
    let mine = encounters
        .iter()
        .find(|e| {
            residents
                .iter()
                .any(|r| r.id == e.resident_id && r.street_org_id == area)
        })
        .unwrap();
    let theirs = encounters
        .iter()
        .find(|e| !in_scope(e.resident_id))
        .unwrap();
    let t = token(&s, "doctor").await;
    let yes = read(&s, Some(&t), &format!("/fhir/Encounter/{}", mine.id)).await;
    assert_eq!(yes.status, StatusCode::OK, "{}", yes.json);
    assert_eq!(
        yes.json["subject"]["reference"],
        format!("Patient/{}", mine.resident_id)
    );
    let no = read(&s, Some(&t), &format!("/fhir/Encounter/{}", theirs.id)).await;
    assert_eq!(no.status, StatusCode::FORBIDDEN);
    let audit = store
        .audit_events(Some(theirs.resident_id), 10)
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|e| e.resource == format!("Encounter/{}", theirs.id) && e.outcome == "denied"));

    // Registry resources: any signed-in account, no resident involved.
    let org = read(&s, Some(&t), &format!("/fhir/Organization/{}", centre.id)).await;
    assert_eq!(org.status, StatusCode::OK);
    assert_eq!(org.json["name"], centre.name_zh);
    assert_eq!(
        org.json["partOf"]["reference"],
        format!("Organization/{area}")
    );
    assert_eq!(
        read(&s, None, &format!("/fhir/Organization/{}", centre.id))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    // Every record type of a resident reads through the system client.
    let sys = token_request(
        &s,
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .await;
    let sys = sys.json["access_token"].as_str().unwrap().to_string();
    let b = |table| async move { store.page(table, 0, 1).await.unwrap() };
    let condition = b(Table::Conditions).await.conditions[0].id;
    let observation = b(Table::Observations).await.observations[0].id;
    let contract = b(Table::Contracts).await.contracts[0].id;
    for (path, kind) in [
        (format!("/fhir/Condition/{condition}"), "Condition"),
        (format!("/fhir/Observation/{observation}"), "Observation"),
        (format!("/fhir/CareTeam/{contract}"), "CareTeam"),
        (
            format!("/fhir/Practitioner/{}", doctor.practitioner_id.unwrap()),
            "Practitioner",
        ),
    ] {
        let a = read(&s, Some(&sys), &path).await;
        assert_eq!(
            (a.status, a.json["resourceType"].as_str()),
            (StatusCode::OK, Some(kind)),
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_search_stays_in_scope_pages_and_reports_bad_parameters() {
    let s = site(1_500).await;
    let store = &*s.state.store;
    let today = dhp_core::clock::today();
    let view = doctor_view(store).await;
    // Counted here from the rows, independently of the store's search SQL.
    let in_scope: Vec<i64> = view.in_scope(today);
    let residents = view.residents;
    let t = token(&s, "doctor").await;
    let all = read(&s, Some(&t), "/fhir/Patient?_summary=count").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.json["resourceType"], "Bundle");
    assert_eq!(all.json["type"], "searchset");
    assert_eq!(all.json["total"], in_scope.len() as i64);
    assert!(all.json.get("entry").is_none());

    // Page through everything in scope, 50 at a time, following the next links.
    let mut seen = Vec::new();
    let mut next = Some("/fhir/Patient?_count=50".to_string());
    while let Some(path) = next.take() {
        let page = read(&s, Some(&t), &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        for e in page.json["entry"].as_array().cloned().unwrap_or_default() {
            seen.push(
                e["resource"]["id"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap(),
            );
        }
        next = page.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                l["url"]
                    .as_str()
                    .unwrap()
                    .split_once("/fhir")
                    .unwrap()
                    .1
                    .to_string()
            })
            .map(|p| format!("/fhir{p}"));
    }
    assert_eq!(seen, in_scope, "every resident in scope once, in id order");

    // Filters: every match satisfies them.
    let born = read(
        &s,
        Some(&t),
        "/fhir/Patient?birthdate=ge1960-01-01&birthdate=lt1970&gender=female&_count=200",
    )
    .await;
    let entries = born.json["entry"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty());
    for e in &entries {
        let d = e["resource"]["birthDate"].as_str().unwrap();
        assert!(("1960-01-01".."1970-01-01").contains(&d), "{d}");
        assert_eq!(e["resource"]["gender"], "female");
    }
    let someone = residents.iter().find(|r| in_scope.contains(&r.id)).unwrap();
    let by_id = read(
        &s,
        Some(&t),
        &format!("/fhir/Patient?identifier={}", someone.identity_number),
    )
    .await;
    assert_eq!(by_id.json["total"], 1);
    let family: String = someone.name.chars().take(1).collect();
    let by_family = read(
        &s,
        Some(&t),
        &format!("/fhir/Patient?family={}&_count=200", urlencoding(&family)),
    )
    .await;
    for e in by_family.json["entry"].as_array().unwrap() {
        assert!(e["resource"]["name"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with(&family));
    }

    // POST _search answers the same.
    let post = call(
        &s,
        Request::post("/fhir/Patient/_search")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("_summary=count"))
            .unwrap(),
    )
    .await;
    assert_eq!(post.json["total"], in_scope.len() as i64);

    // Unknown parameters are reported, unless the client asks for lenience.
    let unknown = read(&s, Some(&t), "/fhir/Patient?colour=red").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.json["issue"][0]["code"], "not-supported");
    assert_eq!(unknown.json["issue"][0]["expression"][0], "Patient?colour");
    let lenient = call(
        &s,
        Request::get("/fhir/Patient?colour=red&_summary=count")
            .header(header::AUTHORIZATION, format!("Bearer {t}"))
            .header("prefer", "handling=lenient")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(lenient.status, StatusCode::OK);
    let bad = read(&s, Some(&t), "/fhir/Patient?gender=x&birthdate=sa2000").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json["issue"].as_array().unwrap().len(), 2);

    // One audit row per resident disclosed.
    let audited = store
        .audit_events(None, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "search" && e.resident_id.is_some())
        .count();
    let disclosed =
        seen.len() + entries.len() + 1 + by_family.json["entry"].as_array().unwrap().len();
    assert_eq!(audited, disclosed);
}

pub(crate) fn urlencoding(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_read_the_audit_log_through_fhir() {
    let s = site(300).await;
    let d = token(&s, "doctor").await;
    // Leave a trace: the doctor reads a resident outside scope or inside, either way audited.
    let residents = s
        .state
        .store
        .page(Table::Residents, 0, 10)
        .await
        .unwrap()
        .residents;
    let target = residents[0].id;
    read(&s, Some(&d), &format!("/fhir/Patient/{target}")).await;
    // The doctor may not read the log.
    let refused = read(&s, Some(&d), "/fhir/AuditEvent").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let m = token(&s, "manager").await;
    let log = read(
        &s,
        Some(&m),
        &format!("/fhir/AuditEvent?patient=Patient/{target}&_count=10"),
    )
    .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.json);
    let entries = log.json["entry"].as_array().unwrap();
    assert!(entries
        .iter()
        .all(|e| e["resource"]["entity"][0]["what"]["reference"] == format!("Patient/{target}")));
    assert!(entries
        .iter()
        .any(|e| e["resource"]["agent"][0]["who"]["identifier"]["value"] == "doctor"));
    let all = read(&s, Some(&m), "/fhir/AuditEvent?_count=100").await;
    let kinds: Vec<&str> = all.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["type"]["code"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"110114"), "logins are in the log");
    let bad = read(&s, Some(&m), "/fhir/AuditEvent?who=x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Paged, newest first, by the next link: every entry of the resident once, none
    // skipped, however many reviews are logged meanwhile (each page read is one).
    for _ in 0..6 {
        read(&s, Some(&d), &format!("/fhir/Patient/{target}")).await;
    }
    let before: Vec<String> = s
        .state
        .store
        .audit_events(Some(target), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert!(before.len() >= 7);
    let mut next = Some(format!("/fhir/AuditEvent?patient={target}&_count=3"));
    let mut paged = Vec::new();
    while let Some(path) = next.take() {
        let page = read(&s, Some(&m), &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.json);
        let entries = page.json["entry"].as_array().cloned().unwrap_or_default();
        assert!(entries.len() <= 3);
        paged.extend(
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_string()),
        );
        next = page.json["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                url[url.find("/fhir/").unwrap()..].to_string()
            });
        assert!(paged.len() <= before.len(), "paging does not end");
    }
    assert_eq!(paged, before);
    // By the day it was recorded (Shanghai time unless a zone is named).
    let today = (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive();
    let on = |q: String| {
        let s = &s;
        let m = m.clone();
        async move {
            read(
                s,
                Some(&m),
                &format!("/fhir/AuditEvent?patient={target}&{q}"),
            )
            .await
        }
    };
    let later = on(format!("date=gt{today}")).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.json);
    assert!(later.json.get("entry").is_none(), "{}", later.json);
    let now = on(format!("date={today}&_count=500")).await;
    assert!(now.json["entry"].as_array().unwrap().len() >= before.len());
    let twice = format!("patient={target}");
    for bad in ["date=yesterday", "_page=12_x", "_count=0", twice.as_str()] {
        let r = on(bad.to_string()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let field = bad.split('=').next().unwrap();
        assert_eq!(
            r.json["issue"][0]["expression"][0],
            format!("AuditEvent?{field}"),
            "{}",
            r.json
        );
    }
    // The refusal and the reviews are themselves in the log.
    let rows = s.state.store.audit_events(None, 1000).await.unwrap();
    assert!(rows
        .iter()
        .any(|e| e.username == "doctor" && e.resource == "AuditEvent" && e.outcome == "denied"));
    assert!(rows
        .iter()
        .any(|e| e.username == "manager" && e.resource == "AuditEvent" && e.outcome == "success"));
}

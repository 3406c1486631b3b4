//! Resources kept as received: checked, searched and scoped.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_kept_as_received_are_checked_searched_and_scoped() {
    let s = site(1_500).await;
    let store = &*s.state.store;
    let t = system_token(&s).await;
    let DoctorView {
        doctor: _,
        area,
        residents,
        contracts,
        coming,
        ..
    } = doctor_view(store).await;
    let mine = residents.iter().find(|r| r.street_org_id == area).unwrap();
    let outsider = residents
        .iter()
        .find(|r| {
            r.street_org_id != area
                && !coming.contains(&r.id)
                && !contracts.iter().any(|c| c.resident_id == r.id)
        })
        .unwrap();
    let hospital = dhp_store::organisations(store)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.kind == dhp_core::OrgKind::Hospital)
        .unwrap();
    // The generated district's own referrals to that hospital, active already.
    let already = {
        let a = read(
            &s,
            Some(t.as_str()),
            &format!(
                "/fhir/ServiceRequest?performer=Organization/{}&status=active&_count=200",
                hospital.id
            ),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
        ids(&a.json, "ServiceRequest", "match")
    };
    let created = |r: &crate::write::Reply| -> String {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
        r.json["id"].as_str().unwrap().to_string()
    };
    let referral = created(
        &send(
            &s,
            "POST",
            "/fhir/ServiceRequest",
            &t,
            Some(&json!({
                "resourceType": "ServiceRequest",
                "status": "active",
                "intent": "order",
                "subject": { "reference": format!("Patient/{}", mine.id) },
                "authoredOn": "2026-11-20T10:00:00+08:00",
                "performer": [{ "reference": format!("Organization/{}", hospital.id) }],
                "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral" }] },
            })),
            &[],
        )
        .await,
    );
    for body in [
        json!({
            "resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": { "reference": format!("Patient/{}", mine.id) },
            "medicationCodeableConcept": { "coding": [{ "system": "http://www.whocc.no/atc", "code": "C09AA02" }] },
            "authoredOn": "2026-11-21",
        }),
        json!({
            "resourceType": "DiagnosticReport", "status": "final",
            "subject": { "reference": format!("Patient/{}", mine.id) },
            "code": { "coding": [{ "system": "http://loinc.org", "code": "58410-2" }] },
            "effectiveDateTime": "2026-11-22T08:00:00+08:00",
        }),
    ] {
        let kind = body["resourceType"].as_str().unwrap().to_string();
        created(&send(&s, "POST", &format!("/fhir/{kind}"), &t, Some(&body), &[]).await);
    }

    // Searches by the extracted columns.
    let (site_ref, token_ref) = (&s, t.as_str());
    let hits = |path: String| async move {
        let a = read(site_ref, Some(token_ref), &path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.json);
        a.json
    };
    let a = hits(format!(
        "/fhir/ServiceRequest?performer=Organization/{}&status=active",
        hospital.id
    ))
    .await;
    let mut expected = already.clone();
    expected.push(referral.parse::<i64>().unwrap());
    expected.sort_unstable();
    let mut got = ids(&a, "ServiceRequest", "match");
    got.sort_unstable();
    assert_eq!(got, expected, "the generated ones and the one just made");
    let a = hits("/fhir/MedicationRequest?code=C09AA02&authoredon=2026-11".to_string()).await;
    assert_eq!(a["total"], 1);
    let a = hits(format!(
        "/fhir/Patient?_id={}&_revinclude=ServiceRequest:patient&_revinclude=DiagnosticReport:subject",
        mine.id
    ))
    .await;
    assert_eq!(ids(&a, "ServiceRequest", "include").len(), 1);
    assert_eq!(ids(&a, "DiagnosticReport", "include").len(), 1);
    let everything = hits(format!("/fhir/Patient/{}/$everything", mine.id)).await;
    for kind in ["ServiceRequest", "MedicationRequest", "DiagnosticReport"] {
        assert_eq!(ids(&everything, kind, "match").len(), 1, "{kind}");
    }

    // Bad input names the element and stores nothing.
    let before = store
        .resources("MedicationRequest", &(1..=50).collect::<Vec<_>>())
        .await
        .unwrap()
        .len();
    for (kind, body, at) in [
        (
            "ServiceRequest",
            json!({ "resourceType": "ServiceRequest", "status": "active", "subject": { "reference": format!("Patient/{}", mine.id) } }),
            "ServiceRequest.intent",
        ),
        (
            "MedicationRequest",
            json!({ "resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": { "reference": format!("Patient/{}", mine.id) }, "medicationCodeableConcept": { "coding": [{ "code": "X" }] }, "authoredOn": "next week" }),
            "MedicationRequest.authoredOn",
        ),
    ] {
        let r = send(&s, "POST", &format!("/fhir/{kind}"), &t, Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{kind}: {}", r.json);
        assert_eq!(r.json["issue"][0]["expression"][0], at, "{}", r.json);
    }
    assert_eq!(
        store
            .resources("MedicationRequest", &(1..=50).collect::<Vec<_>>())
            .await
            .unwrap()
            .len(),
        before
    );

    // A family doctor writes and reads these within scope only.
    let d = token(&s, "doctor").await;
    let outside = send(
        &s,
        "POST",
        "/fhir/ServiceRequest",
        &d,
        Some(&json!({
            "resourceType": "ServiceRequest", "status": "active", "intent": "order",
            "subject": { "reference": format!("Patient/{}", outsider.id) },
        })),
        &[],
    )
    .await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN);
    let a = read(&s, Some(&d), &format!("/fhir/ServiceRequest/{referral}")).await;
    assert_eq!(a.status, StatusCode::OK);
    let r = send(
        &s,
        "DELETE",
        &format!("/fhir/ServiceRequest/{referral}"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let a = hits(format!("/fhir/ServiceRequest?patient={}", mine.id)).await;
    assert_eq!(a["total"], 0, "deleted ones are not found");
}

//! Writes that try to widen a writer's scope, and implausible records and hostile requests, refused in FHIR terms.

use super::*;

fn encounter_at(resident: i64, org: &str, start: &str) -> Value {
    json!({
        "resourceType": "Encounter", "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
        "subject": { "reference": format!("Patient/{resident}") },
        "serviceProvider": { "reference": format!("Organization/{org}") },
        "period": { "start": start },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_cannot_write_a_resident_into_their_own_scope() {
    let s = site(2_000).await;
    let store = &*s.state.store;
    let clinician = store.user_by_username("clinician").await.unwrap();
    let hospital = clinician.org_id.unwrap();
    let today = dhp_store::as_of(store).await.unwrap();
    let residents = store
        .page(Table::Residents, 0, 10_000)
        .await
        .unwrap()
        .residents;
    let mut stranger = None;
    let mut known = None;
    let mut strangers = Vec::new();
    for r in &residents {
        let facts = store.resident_access_facts(r.id, today).await.unwrap();
        let seen = facts.encounter_orgs.contains(&hospital)
            || facts.referred_or_booked.contains(&hospital);
        match (seen, stranger, known) {
            (false, None, _) => stranger = Some(r.id),
            (false, Some(_), _) => strangers.push(r.id),
            (true, _, None) => known = Some(r.id),
            _ => {}
        }
    }
    let (stranger, known) = (
        stranger.unwrap(),
        known.expect("someone seen at the hospital"),
    );
    let t = person(&s, "clinician").await;
    let before = content_digest(store).await.unwrap();
    let encounter =
        |resident: i64| encounter_at(resident, &hospital.to_string(), "2026-06-01T09:00:00+08:00");
    // What the review did: an encounter for a resident never seen at the hospital...
    let r = send(
        &s,
        "POST",
        "/fhir/Encounter",
        &t,
        Some(&encounter(stranger)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json);
    // ...and then the whole record: still refused, and nothing was written.
    let all = send(
        &s,
        "GET",
        &format!("/fhir/Patient/{stranger}/$everything"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(all.status, StatusCode::FORBIDDEN);
    assert_eq!(content_digest(store).await.unwrap(), before);
    // A resident already seen there can have another encounter recorded.
    let r = send(
        &s,
        "POST",
        "/fhir/Encounter",
        &t,
        Some(&encounter(known)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);

    // Breaking the glass: a reason is required, the grant is audited and opens the
    // record for a few hours, every access under it says so, and the managers see it.
    let number = store.resident(stranger).await.unwrap().identity_number;
    let glass = |token: String, body: Value| {
        let req = Request::post("/api/emergency-access")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let state = s.state.clone();
        async move {
            let res = app(state).oneshot(req).await.unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = glass(
        t.clone(),
        json!({ "identity_number": number.as_str(), "reason": " " }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "reason");
    let manager = person(&s, "manager").await;
    let (status, _) = glass(
        manager.clone(),
        json!({ "identity_number": number.as_str(), "reason": "急诊抢救，昏迷" }),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a manager does not treat patients"
    );
    let (status, body) = glass(
        t.clone(),
        json!({ "identity_number": number.as_str(), "reason": "急诊抢救，昏迷" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["patient"], format!("Patient/{stranger}"));
    let all = send(
        &s,
        "GET",
        &format!("/fhir/Patient/{stranger}/$everything"),
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(all.status, StatusCode::OK);
    let r = send(
        &s,
        "POST",
        "/fhir/Encounter",
        &t,
        Some(&encounter(stranger)),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let trail = store.audit_events(Some(stranger), 100).await.unwrap();
    assert!(trail
        .iter()
        .any(|e| e.action == "break-glass" && e.detail.contains("急诊抢救")));
    assert!(
        trail
            .iter()
            .filter(|e| e.username == "clinician"
                && e.action != "break-glass"
                && e.outcome == "success")
            .all(|e| e.detail.contains("break the glass")),
        "{trail:?}"
    );
    // The report: who, why, and how many accesses under the grant.
    let req = Request::get("/api/emergency-access")
        .header(header::AUTHORIZATION, format!("Bearer {manager}"))
        .body(Body::empty())
        .unwrap();
    let res = app(s.state.clone()).oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let report: Value = serde_json::from_slice(
        &axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    let grant = &report["grants"][0];
    assert_eq!(grant["username"], "clinician");
    assert_eq!(grant["reason"], "急诊抢救，昏迷");
    assert_eq!(grant["active"], true);
    assert!(grant["accesses"].as_i64().unwrap() >= 2, "{grant}");
    // Breaking the glass on resident after resident is stopped at 20 a day.
    let now = chrono::Utc::now().naive_utc();
    for i in 0..19 {
        store
            .grant_emergency_access(&dhp_store::EmergencyGrant {
                id: format!("spree-{i}"),
                username: "clinician".into(),
                role: "hospital_clinician".into(),
                org_id: Some(hospital),
                resident_id: stranger,
                reason: "测试".into(),
                granted: now,
                expires: now,
            })
            .await
            .unwrap();
    }
    // (The encounter recorded above made the first one the hospital's patient.)
    let another = store.resident(strangers[0]).await.unwrap().identity_number;
    let (status, body) = glass(
        t.clone(),
        json!({ "identity_number": another.as_str(), "reason": "急诊抢救，昏迷" }),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // The report is the managers'.
    let req = Request::get("/api/emergency-access")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app(s.state.clone()).oneshot(req).await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "the clinician does not read the report"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_records_and_hostile_requests_are_refused_in_fhir_terms() {
    let s = site(300).await;
    let store = &*s.state.store;
    let t = system(&s).await;
    let resident = store.page(Table::Residents, 0, 1).await.unwrap().residents[0].clone();
    let before = content_digest(store).await.unwrap();
    let reading = |value: f64, unit: &str, when: &str| {
        json!({
            "resourceType": "Observation", "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "8480-6" }] },
            "subject": { "reference": format!("Patient/{}", resident.id) },
            "effectiveDateTime": when,
            "valueQuantity": { "value": value, "unit": unit },
        })
    };
    let day = "2026-06-01T09:00:00+08:00";
    let born = resident.birth_date - chrono::Days::new(1);
    for (body, path) in [
        (
            reading(99_999.0, "mmHg", day),
            "Observation.valueQuantity.value",
        ),
        (
            reading(-1.0, "mmHg", day),
            "Observation.valueQuantity.value",
        ),
        (reading(120.0, "kg", day), "Observation.valueQuantity.unit"),
        (
            reading(120.0, "mmHg", "2099-01-01"),
            "Observation.effectiveDateTime",
        ),
        (
            reading(120.0, "mmHg", &born.to_string()),
            "Observation.effectiveDateTime",
        ),
    ] {
        let r = send(&s, "POST", "/fhir/Observation", &t, Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.json);
        assert_eq!(r.json["issue"][0]["expression"][0], path, "{}", r.json);
        // The same inside a transaction: all of it refused.
        let bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [
            { "resource": reading(130.0, "mmHg", day), "request": { "method": "POST", "url": "Observation" } },
            { "resource": body, "request": { "method": "POST", "url": "Observation" } },
        ]});
        let r = send(&s, "POST", "/fhir", &t, Some(&bundle), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    }
    assert_eq!(
        content_digest(store).await.unwrap(),
        before,
        "nothing written"
    );

    // Formats the server does not speak, methods it has not, bodies too large: all
    // answered with an OperationOutcome.
    let xml = send(&s, "GET", "/fhir/Patient?_format=xml", &t, None, &[]).await;
    assert_eq!(xml.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(xml.json["resourceType"], "OperationOutcome");
    let xml = send(
        &s,
        "GET",
        "/fhir/metadata",
        &t,
        None,
        &[("accept", "application/fhir+xml")],
    )
    .await;
    assert_eq!(xml.status, StatusCode::NOT_ACCEPTABLE);
    let json_ok = send(
        &s,
        "GET",
        "/fhir/metadata",
        &t,
        None,
        &[("accept", "application/fhir+json, */*;q=0.1")],
    )
    .await;
    assert_eq!(json_ok.status, StatusCode::OK);
    let patch = send(
        &s,
        "PATCH",
        &format!("/fhir/Patient/{}", resident.id),
        &t,
        Some(&json!({})),
        &[],
    )
    .await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        patch.json["resourceType"], "OperationOutcome",
        "{}",
        patch.json
    );
    let huge = json!({ "resourceType": "Patient", "text": { "div": "x".repeat(2 << 20) } });
    let big = send(&s, "POST", "/fhir/Patient", &t, Some(&huge), &[]).await;
    assert_eq!(big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(big.json["resourceType"], "OperationOutcome", "{}", big.json);
    // Paging past 2^63 and NUL bytes in a string search.
    let far = send(
        &s,
        "GET",
        "/fhir/Patient?_offset=9223372036854775800",
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(far.status, StatusCode::BAD_REQUEST);
    assert_eq!(far.json["issue"][0]["expression"][0], "Patient?_offset");
    let nul = send(
        &s,
        "GET",
        "/fhir/Patient?name=%00&_summary=count",
        &t,
        None,
        &[],
    )
    .await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST, "{}", nul.json);
    assert_eq!(
        content_digest(store).await.unwrap(),
        before,
        "nothing written"
    );
}

/// An account out of a resident's scope cannot fill the resident's audit trail with
/// refused writes: past the bound its writes are held back (429, Retry-After) before
/// they are read, audited without the resident; reads and other accounts go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_writes_past_the_bound_are_held_back_without_touching_the_residents_trail() {
    let s = crate::site_with(
        300,
        dhp_server::ServerConfig {
            refused_writes_per_minute: 5,
            ..Default::default()
        },
    )
    .await;
    let store = &*s.state.store;
    let clinician = store.user_by_username("clinician").await.unwrap();
    let hospital = clinician.org_id.unwrap();
    let today = dhp_store::as_of(store).await.unwrap();
    let mut stranger = None;
    for r in store
        .page(Table::Residents, 0, 300)
        .await
        .unwrap()
        .residents
    {
        let facts = store.resident_access_facts(r.id, today).await.unwrap();
        if !facts.encounter_orgs.contains(&hospital)
            && !facts.referred_or_booked.contains(&hospital)
        {
            stranger = Some(r.id);
            break;
        }
    }
    let stranger = stranger.expect("a resident the hospital has not seen");
    let t = person(&s, "clinician").await;
    let body = encounter_at(stranger, &hospital.to_string(), "2026-06-01T09:00:00+08:00");
    let mut answers = Vec::new();
    for _ in 0..10 {
        let r = send(&s, "POST", "/fhir/Encounter", &t, Some(&body), &[]).await;
        answers.push(r.status.as_u16());
    }
    // Five let through at once and the sixth that passes the bound, then held back.
    assert_eq!(answers, [403, 403, 403, 403, 403, 403, 429, 429, 429, 429]);
    let held = send(&s, "POST", "/fhir/Encounter", &t, Some(&body), &[]).await;
    assert_eq!(held.json["issue"][0]["code"], "throttled", "{}", held.json);
    let trail = store.audit_events(Some(stranger), 100).await.unwrap();
    assert_eq!(
        trail.iter().filter(|e| e.username == "clinician").count(),
        6,
        "{trail:?}"
    );
    let all = store.audit_events(None, 1000).await.unwrap();
    assert_eq!(
        all.iter()
            .filter(|e| e.username == "clinician" && e.detail.starts_with("429"))
            .count(),
        5,
        "every held-back attempt is audited, without the resident"
    );
    // Reads are not held back, nor another account's writes.
    let me = send(&s, "GET", "/fhir/metadata", &t, None, &[]).await;
    assert_eq!(me.status, StatusCode::OK);
    let d = person(&s, "doctor").await;
    let other = send(&s, "POST", "/fhir/Encounter", &d, Some(&json!({})), &[]).await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.json);
    // A bad update aimed at someone's record is logged against them, whatever its
    // body names.
    let obs = store
        .page(Table::Observations, 0, 1)
        .await
        .unwrap()
        .observations
        .remove(0);
    let path = format!("/fhir/Observation/{}", obs.id);
    let bad = json!({"resourceType": "Observation", "status": "final"});
    // A batch's refused entries count too: past the bound the rest are held back,
    // and the resident's trail stops growing.
    let ph = person(&s, "phdoctor").await;
    let entry = json!({ "resource": { "resourceType": "Observation", "status": "final",
        "subject": { "reference": format!("Patient/{stranger}") } },
        "request": { "method": "POST", "url": "Observation" } });
    let batch = json!({ "resourceType": "Bundle", "type": "batch",
        "entry": vec![entry; 10] });
    let r = send(&s, "POST", "/fhir", &ph, Some(&batch), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let statuses: Vec<&str> = r.json["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert!(
        statuses[..6].iter().all(|s| !s.starts_with("429")),
        "{statuses:?}"
    );
    assert!(
        statuses[6..].iter().all(|s| s.starts_with("429")),
        "{statuses:?}"
    );
    let trail = store.audit_events(Some(stranger), 1000).await.unwrap();
    assert_eq!(trail.iter().filter(|e| e.username == "phdoctor").count(), 6);
    let r = send(&s, "PUT", &path, &d, Some(&bad), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json);
    let trail = store
        .audit_events(Some(obs.resident_id), 100)
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.username == "doctor" && e.action == "update" && e.outcome == "invalid"),
        "{trail:?}"
    );
}

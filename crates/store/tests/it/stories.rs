//! The stories every backend must tell the same way.

use dhp_store::{
    content_digest, AuditEvent, Batch, Comparison, Prior, ResidentFilter, ResourceWrite, Store,
    StoreError, StoredResource, Table, User, WriteSet,
};

use crate::fixture;

pub async fn a_new_store_is_empty(s: &dyn Store) {
    for t in Table::ALL {
        assert_eq!(s.count(t).await.unwrap(), 0, "{t:?}");
    }
    assert_eq!(s.meta("seed").await.unwrap(), None);
    assert!(s.users().await.unwrap().is_empty());
}

async fn read_all(s: &dyn Store, page_size: i64) -> Batch {
    let mut all = Batch::default();
    for t in Table::ALL {
        let mut after = 0;
        loop {
            let page = s.page(t, after, page_size).await.unwrap();
            let Some(last) = page.last_id() else { break };
            after = last;
            all.organisations.extend(page.organisations);
            all.practitioners.extend(page.practitioners);
            all.households.extend(page.households);
            all.residents.extend(page.residents);
            all.contracts.extend(page.contracts);
            all.encounters.extend(page.encounters);
            all.conditions.extend(page.conditions);
            all.observations.extend(page.observations);
            all.immunizations.extend(page.immunizations);
        }
    }
    all
}

pub async fn batches_round_trip_through_pages(s: &dyn Store) {
    let batch = fixture::district();
    s.insert_batch(&batch).await.unwrap();
    assert_eq!(s.count(Table::Residents).await.unwrap(), 6);
    assert_eq!(s.count(Table::Encounters).await.unwrap(), 10);
    // A page size that splits tables exercises the keyset paging.
    assert_eq!(read_all(s, 3).await, batch);
    assert_eq!(read_all(s, 1000).await, batch);
}

pub async fn a_failing_batch_writes_nothing(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let before = content_digest(s).await.unwrap();

    // Good rows followed by one that refers to a resident that does not exist.
    let mut bad = Batch::default();
    let mut good_condition = fixture::district().conditions[0].clone();
    good_condition.id = 900;
    bad.conditions.push(good_condition);
    let mut dangling = fixture::district().immunizations[0].clone();
    dangling.id = 901;
    dangling.resident_id = 999_999;
    bad.immunizations.push(dangling);
    let err = s.insert_batch(&bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // A duplicate identity number is a conflict too.
    let mut dup = Batch::default();
    let mut twin = fixture::district().residents[0].clone();
    twin.id = 902;
    dup.residents.push(twin);
    assert!(matches!(
        s.insert_batch(&dup).await,
        Err(StoreError::Conflict(_))
    ));

    assert_eq!(
        content_digest(s).await.unwrap(),
        before,
        "nothing half-written"
    );
}

pub async fn lookups_keep_not_found_apart(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let chc = s.organisation_by_code("310118-CHC01").await.unwrap();
    assert_eq!(chc.id, 4);
    assert_eq!(chc.beds, 20);
    assert!(matches!(
        s.organisation_by_code("nope").await,
        Err(StoreError::NotFound(_))
    ));
    let r = &fixture::district().residents[2];
    let found = s
        .resident_by_identity(r.identity_number.as_str())
        .await
        .unwrap();
    assert_eq!(&found, r);
    assert!(matches!(
        s.resident_by_identity("11010519491231002X").await,
        Err(StoreError::NotFound(_))
    ));
    let areas = s.area_counts().await.unwrap();
    assert_eq!(areas.len(), 1);
    assert_eq!(
        (areas[0].org_id, areas[0].residents, areas[0].households),
        (3, 6, 2)
    );
}

pub async fn users_are_unique_and_redacted(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let u = User {
        id: 1,
        username: "doctor".into(),
        password_hash: "$argon2id$v=19$secret".into(),
        role: "family_doctor".into(),
        display_name: "医生10".into(),
        org_id: Some(4),
        practitioner_id: Some(10),
        resident_id: None,
    };
    s.insert_user(&u).await.unwrap();
    assert_eq!(s.user_by_username("doctor").await.unwrap(), u);
    let twin = User { id: 2, ..u.clone() };
    assert!(matches!(
        s.insert_user(&twin).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.user_by_username("nobody").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!format!("{u:?}").contains("secret"));
    assert_eq!(s.users().await.unwrap().len(), 1);

    // The password life cycle: dated when made, the replaced hashes remembered newest
    // first, the owed change set and cleared.
    let st = s.password_state("doctor", 5).await.unwrap();
    assert!(st.changed_at.is_some() && !st.must_change && st.previous.is_empty());
    let t0 = chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
        .unwrap()
        .and_hms_opt(8, 0, 0)
        .unwrap();
    for (i, hash) in ["h1", "h2", "h3"].into_iter().enumerate() {
        s.set_password(
            "doctor",
            hash,
            i == 2,
            t0 + chrono::Duration::days(i as i64),
        )
        .await
        .unwrap();
    }
    let st = s.password_state("doctor", 2).await.unwrap();
    assert_eq!(st.previous, ["h2", "h1"]);
    assert!(st.must_change);
    assert_eq!(st.changed_at, Some(t0 + chrono::Duration::days(2)));
    assert_eq!(
        s.user_by_username("doctor").await.unwrap().password_hash,
        "h3"
    );
    s.require_password_change("doctor", false, None)
        .await
        .unwrap();
    assert!(!s.password_state("doctor", 0).await.unwrap().must_change);
    assert!(matches!(
        s.set_password("nobody", "h", false, t0).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn meta_values_overwrite(s: &dyn Store) {
    s.set_meta("seed", "1").await.unwrap();
    s.set_meta("seed", "2").await.unwrap();
    assert_eq!(s.meta("seed").await.unwrap().as_deref(), Some("2"));
}

pub async fn clear_empties_every_table(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    s.set_meta("seed", "1").await.unwrap();
    s.clear().await.unwrap();
    a_new_store_is_empty(s).await;
}

pub async fn digest_is_the_same_on_every_backend(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let (counts, digest) = content_digest(s).await.unwrap();
    assert_eq!(
        counts.iter().map(|(_, n)| n).sum::<i64>(),
        8 + 7 + 2 + 6 + 5 + 10 + 3 + 3 + 2
    );
    // The same rows on a fresh SQLite store give the same digest.
    let reference = crate::sqlite().await;
    reference
        .store
        .insert_batch(&fixture::district())
        .await
        .unwrap();
    assert_eq!(content_digest(&*reference.store).await.unwrap().1, digest);
    reference.finish().await;
    // Any change to any row changes it.
    let mut other = fixture::district();
    other.observations[1].value = 92.6;
    let changed = crate::sqlite().await;
    changed.store.insert_batch(&other).await.unwrap();
    assert_ne!(content_digest(&*changed.store).await.unwrap().1, digest);
    changed.finish().await;
}

pub async fn single_rows_and_access_facts(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let b = fixture::district();
    assert_eq!(s.resident(202).await.unwrap(), b.residents[2]);
    assert_eq!(s.household(101).await.unwrap(), b.households[1]);
    assert_eq!(s.organisation(4).await.unwrap(), b.organisations[3]);
    assert!(matches!(s.resident(9).await, Err(StoreError::NotFound(_))));
    // Resident 200 mid-2025: contract 300 in force (299 expired in February).
    let f = s
        .resident_access_facts(200, fixture::date("2025-06-01"))
        .await
        .unwrap();
    assert_eq!(f.district_code, "310118");
    assert_eq!(f.street_org_id, 3);
    assert_eq!(f.contract_centres, vec![4]);
    assert_eq!(f.contract_doctors, vec![10]);
    let mut orgs = f.encounter_orgs.clone();
    orgs.sort();
    assert_eq!(orgs, vec![4, 5, 6]);
    // 204's contract was ended: no contract in force.
    let f = s
        .resident_access_facts(204, fixture::date("2025-06-01"))
        .await
        .unwrap();
    assert!(f.contract_centres.is_empty());
    assert!(matches!(
        s.resident_access_facts(9, fixture::date("2025-06-01"))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn audit_events_are_kept_newest_first(s: &dyn Store) {
    let event = |id: &str, at: &str, resident: Option<i64>, outcome: &str| AuditEvent {
        id: id.into(),
        recorded: fixture::at(at),
        username: "doctor".into(),
        role: "family_doctor".into(),
        org_id: Some(4),
        resident_id: resident,
        action: "read".into(),
        resource: format!("Patient/{}", resident.unwrap_or(0)),
        outcome: outcome.into(),
        detail: "lives in the centre's street or town".into(),
    };
    let a = event("01", "2025-06-01 09:00", Some(200), "success");
    let b = event("02", "2025-06-01 09:05", Some(201), "denied");
    let c = event("03", "2025-06-01 09:10", None, "not-found");
    for e in [&a, &b, &c] {
        s.insert_audit(e).await.unwrap();
    }
    assert_eq!(
        s.audit_events(None, 10).await.unwrap(),
        vec![c.clone(), b.clone(), a.clone()]
    );
    assert_eq!(s.audit_events(None, 1).await.unwrap(), vec![c]);
    assert_eq!(s.audit_events(Some(201), 10).await.unwrap(), vec![b]);
    // An audit entry is never overwritten.
    assert!(matches!(
        s.insert_audit(&a).await,
        Err(StoreError::Conflict(_))
    ));
    s.clear().await.unwrap();
    assert!(s.audit_events(None, 10).await.unwrap().is_empty());
}

pub async fn search_scope_matches_the_access_rules(s: &dyn Store) {
    use dhp_core::access::{may_read_resident, resident_scope, OrgFacts, Principal, Role};
    s.insert_batch(&fixture::district()).await.unwrap();
    let today = fixture::date("2025-06-01");
    let all_ids: Vec<i64> = fixture::district().residents.iter().map(|r| r.id).collect();
    let who =
        |role, org: Option<i64>, practitioner: Option<i64>, resident: Option<i64>| Principal {
            username: "u".into(),
            role,
            org_id: org,
            practitioner_id: practitioner,
            resident_id: resident,
        };
    let principals = [
        who(Role::System, None, None, None),
        who(Role::Manager, Some(2), None, None),
        who(Role::PublicHealthDoctor, Some(7), None, None), // works at a city hospital: city district
        who(Role::FamilyDoctor, Some(4), Some(10), None),
        who(Role::FamilyDoctor, Some(8), Some(99), None),
        who(Role::HospitalClinician, Some(6), Some(12), None),
        who(Role::HospitalClinician, Some(7), Some(15), None),
        who(Role::Resident, None, None, Some(202)),
    ];
    for p in &principals {
        let org = match p.org_id {
            Some(id) => {
                let o = s.organisation(id).await.unwrap();
                Some(OrgFacts {
                    id: o.id,
                    kind: o.kind,
                    parent_id: o.parent_id,
                    district_code: o.district_code,
                })
            }
            None => None,
        };
        let mut expected = Vec::new();
        for id in &all_ids {
            let facts = s.resident_access_facts(*id, today).await.unwrap();
            if may_read_resident(p, org.as_ref(), &facts).allowed() {
                expected.push(*id);
            }
        }
        let scope = resident_scope(p, org.as_ref());
        let (found, total) = s
            .search_residents(&ResidentFilter::default(), &scope, today, 100, 0)
            .await
            .unwrap();
        let ids: Vec<i64> = found.iter().map(|r| r.id).collect();
        assert_eq!(ids, expected, "{p:?} with {scope:?}");
        assert_eq!(total, expected.len() as i64);
    }
}

pub async fn search_filters_and_pages(s: &dyn Store) {
    use dhp_core::access::Scope;
    s.insert_batch(&fixture::district()).await.unwrap();
    let today = fixture::date("2025-06-01");
    let find = |f: ResidentFilter| async move {
        let (rows, total) = s
            .search_residents(&f, &Scope::All, today, 100, 0)
            .await
            .unwrap();
        assert_eq!(rows.len() as i64, total);
        rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    let text = |s: &str| Some(s.to_string());
    assert_eq!(
        find(ResidentFilter {
            name: text("居民20"),
            ..Default::default()
        })
        .await
        .len(),
        6
    );
    assert_eq!(
        find(ResidentFilter {
            name: text("民200"),
            ..Default::default()
        })
        .await,
        vec![200]
    );
    assert_eq!(
        find(ResidentFilter {
            family: text("居"),
            ..Default::default()
        })
        .await
        .len(),
        6
    );
    assert!(find(ResidentFilter {
        family: text("民"),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        find(ResidentFilter {
            given: text("民201"),
            ..Default::default()
        })
        .await,
        vec![201]
    );
    assert!(
        find(ResidentFilter {
            name: text("%"),
            ..Default::default()
        })
        .await
        .is_empty(),
        "LIKE wildcards are literal"
    );
    assert!(find(ResidentFilter {
        name: text("居_"),
        ..Default::default()
    })
    .await
    .is_empty());
    assert_eq!(
        find(ResidentFilter {
            sex: Some(dhp_core::Sex::Female),
            ..Default::default()
        })
        .await,
        vec![200, 203, 205]
    );
    let born = |c, d: &str| ResidentFilter {
        birth_date: vec![(c, fixture::date(d))],
        ..Default::default()
    };
    assert_eq!(
        find(born(Comparison::Ge, "1990-01-01")).await,
        vec![201, 203, 205]
    );
    assert_eq!(find(born(Comparison::Lt, "1960-02-02")).await, vec![200]);
    assert_eq!(
        find(born(Comparison::Le, "1960-02-02")).await,
        vec![200, 204]
    );
    assert_eq!(find(born(Comparison::Eq, "1980-01-15")).await, vec![202]);
    assert_eq!(find(born(Comparison::Ne, "1980-01-15")).await.len(), 5);
    let range = ResidentFilter {
        birth_date: vec![
            (Comparison::Ge, fixture::date("1950-01-01")),
            (Comparison::Lt, fixture::date("1970-01-01")),
        ],
        ..Default::default()
    };
    assert_eq!(find(range).await, vec![200, 204]);
    let id202 = fixture::district().residents[2]
        .identity_number
        .as_str()
        .to_string();
    assert_eq!(
        find(ResidentFilter {
            identity_number: Some(id202),
            ..Default::default()
        })
        .await,
        vec![202]
    );
    assert_eq!(
        find(ResidentFilter {
            id: Some(203),
            ..Default::default()
        })
        .await,
        vec![203]
    );
    let (page, total) = s
        .search_residents(&ResidentFilter::default(), &Scope::All, today, 2, 2)
        .await
        .unwrap();
    assert_eq!(
        (page.iter().map(|r| r.id).collect::<Vec<_>>(), total),
        (vec![202, 203], 6)
    );
}

pub async fn audit_batches_and_household_lookups(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let event = |id: &str| AuditEvent {
        id: id.into(),
        recorded: fixture::at("2025-06-01 09:00"),
        username: "doctor".into(),
        role: "family_doctor".into(),
        org_id: Some(4),
        resident_id: Some(200),
        action: "search".into(),
        resource: "Patient/200".into(),
        outcome: "success".into(),
        detail: "search match".into(),
    };
    let batch: Vec<AuditEvent> = (0..250).map(|i| event(&format!("{i:04}"))).collect();
    s.insert_audits(&batch).await.unwrap();
    assert_eq!(s.audit_events(None, 1000).await.unwrap().len(), 250);
    // All or none: a batch that repeats an id writes nothing.
    let clash = vec![event("x1"), event("0007")];
    assert!(matches!(
        s.insert_audits(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.audit_events(None, 1000).await.unwrap().len(), 250);
    s.insert_audits(&[]).await.unwrap();

    let mut found = s.households(&[101, 100, 999]).await.unwrap();
    found.sort_by_key(|h| h.id);
    assert_eq!(found, fixture::district().households);
    assert!(s.households(&[]).await.unwrap().is_empty());
}

fn stored(
    kind: &str,
    id: i64,
    version: i64,
    resident: Option<i64>,
    json: Option<&str>,
) -> StoredResource {
    StoredResource {
        kind: kind.into(),
        id,
        version_id: version,
        last_updated: format!("2026-11-23T10:00:0{version}.000Z"),
        resident_id: resident,
        json: json.map(str::to_string),
        status: json.map(|_| "final".to_string()),
        index: dhp_store::Index::default(),
    }
}

fn write(resource: StoredResource, prior: Prior) -> WriteSet {
    WriteSet {
        resources: vec![ResourceWrite { resource, prior }],
        ..WriteSet::default()
    }
}

pub async fn reserved_ids_start_above_existing_rows(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let max_encounter = s
        .page(Table::Encounters, 0, 1000)
        .await
        .unwrap()
        .last_id()
        .unwrap();
    let first = s.reserve_ids("Encounter", 3).await.unwrap();
    assert_eq!(first, max_encounter + 1);
    // The next reservation continues after the three, never repeating one.
    assert_eq!(s.reserve_ids("Encounter", 1).await.unwrap(), first + 3);
    // A type with no core table starts at 1.
    assert_eq!(s.reserve_ids("MedicationRequest", 2).await.unwrap(), 1);
    assert_eq!(s.reserve_ids("MedicationRequest", 1).await.unwrap(), 3);
    assert!(s.reserve_ids("Encounter", 0).await.is_err());
    // A resource written with an id of its own (an import) moves the sequence past it.
    let kept = stored("MedicationRequest", 100, 1, None, Some("{}"));
    s.write_resources(&write(kept, Prior::Nothing))
        .await
        .unwrap();
    assert_eq!(s.reserve_ids("MedicationRequest", 1).await.unwrap(), 101);
}

pub async fn resources_are_versioned_and_checked(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let id = s.reserve_ids("MedicationRequest", 1).await.unwrap();
    let v1 = stored("MedicationRequest", id, 1, Some(200), Some(r#"{"v":1}"#));
    s.write_resources(&write(v1.clone(), Prior::Nothing))
        .await
        .unwrap();
    assert_eq!(
        s.resource("MedicationRequest", id).await.unwrap(),
        Some(v1.clone())
    );
    // Creating it again is a conflict: the id is taken.
    assert!(matches!(
        s.write_resources(&write(v1.clone(), Prior::Nothing)).await,
        Err(StoreError::Conflict(_))
    ));

    let v2 = stored("MedicationRequest", id, 2, Some(200), Some(r#"{"v":2}"#));
    s.write_resources(&write(v2.clone(), Prior::Version(1)))
        .await
        .unwrap();
    // A write made on the stale version 1 is refused and changes nothing.
    let stale = stored(
        "MedicationRequest",
        id,
        2,
        Some(200),
        Some(r#"{"v":"lost"}"#),
    );
    assert!(matches!(
        s.write_resources(&write(stale, Prior::Version(1))).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.resource("MedicationRequest", id).await.unwrap(),
        Some(v2.clone())
    );

    let gone = stored("MedicationRequest", id, 3, Some(200), None);
    s.write_resources(&write(gone.clone(), Prior::Version(2)))
        .await
        .unwrap();
    let now = s.resource("MedicationRequest", id).await.unwrap().unwrap();
    assert!(now.deleted());
    assert_eq!(
        s.resource_versions("MedicationRequest", id).await.unwrap(),
        vec![gone, v2, v1]
    );
    assert_eq!(s.resource("MedicationRequest", id + 1).await.unwrap(), None);
    assert!(s
        .resource_versions("MedicationRequest", id + 1)
        .await
        .unwrap()
        .is_empty());
}

pub async fn generated_rows_become_version_one_when_updated(s: &dyn Store) {
    let district = fixture::district();
    s.insert_batch(&district).await.unwrap();
    let mut changed = district.encounters[0].clone();
    changed.org_id = 6;
    let v2 = stored(
        "Encounter",
        changed.id,
        2,
        Some(changed.resident_id),
        Some(r#"{"new":true}"#),
    );
    let mut set = write(
        v2.clone(),
        Prior::Core {
            json: r#"{"old":true}"#.into(),
            last_updated: "2026-06-30T00:00:00.000Z".into(),
        },
    );
    set.core.encounters.push(changed.clone());
    set.audits.push(audit("u-1", Some(changed.resident_id)));
    s.write_resources(&set).await.unwrap();
    // The core row is replaced in place (its observations still point at it).
    assert_eq!(
        s.get(Table::Encounters, changed.id)
            .await
            .unwrap()
            .encounters,
        vec![changed.clone()]
    );
    assert_eq!(
        s.count(Table::Encounters).await.unwrap(),
        district.encounters.len() as i64
    );
    let versions = s.resource_versions("Encounter", changed.id).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0], v2);
    assert_eq!(versions[1].version_id, 1);
    assert_eq!(versions[1].json.as_deref(), Some(r#"{"old":true}"#));
    assert_eq!(versions[1].last_updated, "2026-06-30T00:00:00.000Z");
    assert_eq!(
        s.audit_events(Some(changed.resident_id), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // A second writer who also saw only the core row loses.
    assert!(matches!(
        s.write_resources(&set).await,
        Err(StoreError::Conflict(_))
    ));
}

fn audit(id: &str, resident: Option<i64>) -> AuditEvent {
    AuditEvent {
        id: id.into(),
        recorded: chrono::NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(10, 0, 0)
            .unwrap(),
        username: "doctor".into(),
        role: "family_doctor".into(),
        org_id: Some(4),
        resident_id: resident,
        action: "update".into(),
        resource: "Encounter/400".into(),
        outcome: "success".into(),
        detail: String::new(),
    }
}

pub async fn a_failing_write_set_writes_nothing(s: &dyn Store) {
    let district = fixture::district();
    s.insert_batch(&district).await.unwrap();
    let before = content_digest(s).await.unwrap();
    let good = stored("Condition", 9_000, 1, Some(200), Some("{}"));
    let mut set = write(good, Prior::Nothing);
    let mut condition = district.conditions[0].clone();
    condition.id = 9_000;
    set.core.conditions.push(condition);
    // An immunization of a resident that does not exist fails the whole set.
    let mut dangling = district.immunizations[0].clone();
    dangling.id = 9_001;
    dangling.resident_id = 999_999;
    set.core.immunizations.push(dangling);
    set.audits.push(audit("u-2", Some(200)));
    assert!(matches!(
        s.write_resources(&set).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(content_digest(s).await.unwrap(), before);
    assert_eq!(s.resource("Condition", 9_000).await.unwrap(), None);
    assert!(s.audit_events(None, 10).await.unwrap().is_empty());

    // Deleting a resident whose records refer to it is refused, and nothing changes.
    let mut delete = write(
        stored("Patient", 200, 2, Some(200), None),
        Prior::Core {
            json: "{}".into(),
            last_updated: "2026-06-30T00:00:00.000Z".into(),
        },
    );
    delete.core_deletes.push((Table::Residents, 200));
    match s.write_resources(&delete).await {
        Err(StoreError::Conflict(why)) => assert!(why.contains("referred to"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(content_digest(s).await.unwrap(), before);
    assert!(s
        .resource_versions("Patient", 200)
        .await
        .unwrap()
        .is_empty());

    // A record nothing refers to can go: the core row and the stored form together.
    let last = district.immunizations[0].clone();
    let mut delete = write(
        stored("Immunization", last.id, 2, Some(last.resident_id), None),
        Prior::Core {
            json: "{}".into(),
            last_updated: "2026-06-30T00:00:00.000Z".into(),
        },
    );
    delete.core_deletes.push((Table::Immunizations, last.id));
    s.write_resources(&delete).await.unwrap();
    assert!(matches!(
        s.get(Table::Immunizations, last.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(s
        .resource("Immunization", last.id)
        .await
        .unwrap()
        .unwrap()
        .deleted());
}

/// A cohort's records come back whole: every row of each resident, programme
/// encounters only when asked, residents in id order and paged.
pub async fn programme_records_read_whole_records(s: &dyn Store) {
    use dhp_store::{Cohort, Reading};
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let today: chrono::NaiveDate = "2025-06-15".parse().unwrap();
    let all = s
        .programme_records(&Cohort::All, Reading::Full, today, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.resident.id).collect::<Vec<_>>(),
        b.residents.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    for r in &all {
        let id = r.resident.id;
        assert_eq!(
            r.contracts.len(),
            b.contracts.iter().filter(|c| c.resident_id == id).count()
        );
        assert_eq!(
            r.encounters.len(),
            b.encounters.iter().filter(|c| c.resident_id == id).count()
        );
        assert_eq!(
            r.conditions.len(),
            b.conditions.iter().filter(|c| c.resident_id == id).count()
        );
        assert_eq!(
            r.observations.len(),
            b.observations
                .iter()
                .filter(|c| c.resident_id == id)
                .count()
        );
        assert_eq!(
            r.immunizations.len(),
            b.immunizations
                .iter()
                .filter(|c| c.resident_id == id)
                .count()
        );
    }
    let programmes = s
        .programme_records(&Cohort::All, Reading::Programmes, today, 0, 100)
        .await
        .unwrap();
    let encounters: usize = programmes.iter().map(|r| r.encounters.len()).sum();
    assert_eq!(
        encounters,
        b.encounters
            .iter()
            .filter(|e| e.programme.is_some())
            .count()
    );
    // Paging, and a sparse cohort read by id list.
    let page = s
        .programme_records(&Cohort::All, Reading::Full, today, b.residents[1].id, 2)
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.resident.id).collect::<Vec<_>>(),
        [b.residents[2].id, b.residents[3].id]
    );
    let one = s
        .programme_records(&Cohort::Resident(202), Reading::Full, today, 0, 10)
        .await
        .unwrap();
    assert_eq!((one.len(), one[0].contracts.len()), (1, 1));
    let area = s
        .programme_records(
            &Cohort::Area(b.residents[0].street_org_id),
            Reading::Full,
            today,
            0,
            100,
        )
        .await
        .unwrap();
    assert!(
        area.iter()
            .all(|r| r.resident.street_org_id == b.residents[0].street_org_id)
            && !area.is_empty()
    );
    // A doctor's panel: contracts in force with them today.
    let panel = s
        .programme_records(
            &Cohort::Panel(b.contracts[1].doctor_id),
            Reading::Programmes,
            today,
            0,
            100,
        )
        .await
        .unwrap();
    let expect: Vec<i64> = b
        .contracts
        .iter()
        .filter(|c| c.doctor_id == b.contracts[1].doctor_id && c.covers(today))
        .map(|c| c.resident_id)
        .collect();
    assert_eq!(
        panel.iter().map(|r| r.resident.id).collect::<Vec<_>>(),
        expect
    );
}

/// A write guarded on a resident's contracts fails, writing nothing, once they change.
pub async fn contract_guards_catch_concurrent_changes(s: &dyn Store) {
    use dhp_store::Guard;
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let mine: Vec<_> = b
        .contracts
        .iter()
        .filter(|c| c.resident_id == 200)
        .cloned()
        .collect();
    let guard = Guard::contracts(200, &mine);
    let mut renewed = mine[1].clone();
    renewed.id = 900;
    renewed.start = "2026-03-01".parse().unwrap();
    renewed.end = "2027-02-28".parse().unwrap();
    let set = |c: &dhp_core::Contract| WriteSet {
        core: Batch {
            contracts: vec![c.clone()],
            ..Batch::default()
        },
        guards: vec![guard.clone()],
        ..WriteSet::default()
    };
    s.write_resources(&set(&renewed)).await.unwrap();
    assert_eq!(
        s.count(Table::Contracts).await.unwrap(),
        b.contracts.len() as i64 + 1
    );
    // The same guard again: the contracts changed since they were read.
    let mut other = renewed.clone();
    other.id = 901;
    assert!(matches!(
        s.write_resources(&set(&other)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.count(Table::Contracts).await.unwrap(),
        b.contracts.len() as i64 + 1
    );
    // A fresh guard passes.
    let now: Vec<_> = mine.iter().cloned().chain([renewed]).collect();
    let fresh = WriteSet {
        core: Batch {
            contracts: vec![other],
            ..Batch::default()
        },
        guards: vec![Guard::contracts(200, &now)],
        ..WriteSet::default()
    };
    s.write_resources(&fresh).await.unwrap();
}

pub async fn surveillance_reports_counts_and_signals(s: &dyn Store) {
    use chrono::NaiveDate;
    use dhp_core::surveillance::{
        merge_alarms, Alarm, CaseReport, CaseStatus, DateBasis, SentinelReport, SignalEvent,
        SignalStatus,
    };
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 6, d).unwrap();
    let at = |d: u32, h: u32| day(d).and_hms_opt(h, 0, 0).unwrap();
    let report = |id, disease: &str, street: &str, onset: u32, reported: u32, status| CaseReport {
        id,
        disease: disease.into(),
        resident_id: None,
        reporting_org: "H1".into(),
        street: street.into(),
        status,
        onset_date: day(onset),
        diagnosed_at: at(reported, 8),
        reported_at: at(reported, 9),
    };
    let reports = vec![
        report(1, "hfmd", "S1", 1, 2, CaseStatus::Confirmed),
        report(2, "hfmd", "S1", 1, 3, CaseStatus::Clinical),
        report(3, "hfmd", "S2", 2, 3, CaseStatus::Suspected),
        report(4, "hfmd", "S1", 1, 3, CaseStatus::Excluded),
    ];
    s.insert_case_reports(&reports, "api").await.unwrap();
    assert_eq!(s.case_report(2).await.unwrap(), reports[1]);
    let listed = s.case_reports(day(1), day(30), 10).await.unwrap();
    assert_eq!(listed.len(), 4);
    assert!(listed[0].reported_at >= listed[3].reported_at);
    let mut by_onset = s
        .case_counts(DateBasis::Onset, day(1), day(30))
        .await
        .unwrap();
    by_onset.sort_by(|a, b| (&a.street, a.day).cmp(&(&b.street, b.day)));
    let got: Vec<(&str, u32, i64)> = by_onset
        .iter()
        .map(|c| (c.street.as_str(), chrono::Datelike::day(&c.day), c.count))
        .collect();
    // The excluded case does not count.
    assert_eq!(got, vec![("S1", 1, 2), ("S2", 2, 1)]);
    let by_report = s
        .case_counts(DateBasis::Report, day(3), day(3))
        .await
        .unwrap();
    assert_eq!(by_report.iter().map(|c| c.count).sum::<i64>(), 2);

    // Sentinel: zero reports are rows; a corrected count replaces the first.
    let sentinel = |site: &str, d, count| SentinelReport {
        site: site.into(),
        date: day(d),
        syndrome: "fever".into(),
        count,
    };
    s.put_sentinel_reports(
        &[
            sentinel("A", 1, 0),
            sentinel("A", 2, 3),
            sentinel("B", 1, 5),
        ],
        at(2, 10),
    )
    .await
    .unwrap();
    s.put_sentinel_reports(&[sentinel("A", 2, 4)], at(2, 11))
        .await
        .unwrap();
    let rows = s.sentinel_reports(day(1), day(2)).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows.iter()
            .find(|r| r.site == "A" && r.date == day(2))
            .unwrap()
            .count,
        4
    );
    let mut last = s.sentinel_last_reports(day(30)).await.unwrap();
    last.sort();
    assert_eq!(
        last,
        vec![("A".to_string(), day(2)), ("B".to_string(), day(1))]
    );

    // Signals: merged, saved, extended, verified with a guard.
    let alarm = |d| Alarm {
        disease: "hfmd".into(),
        area: "S1".into(),
        algorithm: "mpm".into(),
        day: day(d),
        observed: 9.0,
        expected: 2.0,
        statistic: 9.0,
        threshold: 4.5,
        counts: vec![1, 2, 9],
    };
    let mut signals = s.signals(day(1)).await.unwrap();
    assert!(signals.is_empty());
    merge_alarms(&mut signals, &[alarm(5)], 7, at(5, 6));
    s.save_signals(&mut signals).await.unwrap();
    let id = signals[0].id;
    assert!(id > 0);
    let mut stored = s.signals(day(1)).await.unwrap();
    assert_eq!(stored, signals);
    merge_alarms(&mut stored, &[alarm(6)], 7, at(6, 6));
    s.save_signals(&mut stored).await.unwrap();
    let one = s.signal(id).await.unwrap();
    assert_eq!(
        (one.first_day, one.last_day, one.alarm_days),
        (day(5), day(6), 2)
    );
    let step = SignalEvent {
        signal_id: id,
        at: at(6, 9),
        username: "cdc".into(),
        from: SignalStatus::New,
        to: SignalStatus::Verifying,
        note: "calling the kindergarten".into(),
    };
    s.move_signal(&one, &step).await.unwrap();
    // The same step again finds the signal already moved.
    assert!(matches!(
        s.move_signal(&one, &step).await,
        Err(StoreError::Conflict(_))
    ));
    let moved = s.signal(id).await.unwrap();
    assert_eq!(moved.status, SignalStatus::Verifying);
    assert_eq!(moved.verifying_at, Some(at(6, 9)));
    assert_eq!(moved.response_hours(), Some(27.0)); // raised 5th 06:00, taken 6th 09:00
    let history = s.signal_events(id).await.unwrap();
    assert_eq!(history, vec![step]);
    assert!(matches!(
        s.signal(id + 1000).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn conditional_creates_are_one_step(s: &dyn Store) {
    use dhp_store::Guard;
    let b = fixture::district();
    s.insert_batch(&b).await.unwrap();
    let today: chrono::NaiveDate = "2026-06-30".parse().unwrap();
    let filter = ResidentFilter {
        name: Some("欧阳并发".into()),
        ..ResidentFilter::default()
    };
    let create = |id: i64| {
        let mut r = b.residents[0].clone();
        r.id = id;
        r.name = "欧阳并发".into();
        r.identity_number = dhp_core::IdentityNumber::parse(
            dhp_core::IdentityNumber::compose("310118", r.birth_date, 900 + id as u16 - 1000)
                .as_str(),
            today,
        )
        .unwrap();
        WriteSet {
            core: Batch {
                residents: vec![r],
                ..Batch::default()
            },
            guards: vec![Guard::NoResident {
                filter: Box::new(filter.clone()),
                scope: dhp_core::access::Scope::All,
                today,
            }],
            ..WriteSet::default()
        }
    };
    let (a, b2, c, d) = (create(1000), create(1001), create(1002), create(1003));
    let results = tokio::join!(
        s.write_resources(&a),
        s.write_resources(&b2),
        s.write_resources(&c),
        s.write_resources(&d)
    );
    let results = [results.0, results.1, results.2, results.3];
    let won: Vec<usize> = (0..4).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let winner = 1000 + won[0] as i64;
    for r in &results {
        match r {
            Ok(()) => {}
            Err(StoreError::Exists(id)) => assert_eq!(*id, winner),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        s.count(Table::Residents).await.unwrap(),
        b.residents.len() as i64 + 1
    );
}

pub async fn login_failures_are_counted_and_forgotten(s: &dyn Store) {
    let t = |m: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(9, m, 0)
            .unwrap()
    };
    let old = t(0);
    s.record_login_failure("doctor", "10.0.0.1", t(1), old)
        .await
        .unwrap();
    s.record_login_failure("doctor", "10.0.0.2", t(2), old)
        .await
        .unwrap();
    s.record_login_failure("nobody", "10.0.0.1", t(3), old)
        .await
        .unwrap();
    let f = s.login_failures("doctor", "10.0.0.1", t(0)).await.unwrap();
    assert_eq!(f.account, vec![t(1), t(2)]);
    assert_eq!(f.address, 2, "two names tried from 10.0.0.1");
    let f = s.login_failures("doctor", "10.0.0.1", t(2)).await.unwrap();
    assert_eq!(f.account, vec![t(2)]);
    assert_eq!(f.address, 1);
    // A later failure forgets those before the window.
    s.record_login_failure("doctor", "10.0.0.3", t(30), t(2))
        .await
        .unwrap();
    let f = s.login_failures("doctor", "10.0.0.1", t(0)).await.unwrap();
    assert_eq!(f.account, vec![t(2), t(30)]);
    s.clear_login_failures("doctor").await.unwrap();
    let f = s.login_failures("doctor", "10.0.0.1", t(0)).await.unwrap();
    assert!(f.account.is_empty());
    assert_eq!(f.address, 1, "other names' failures stay");
}

/// Run one statement on the database behind the store, around the store's back (as
/// someone with access to the database files would).
pub type Raw<'a> = &'a (dyn Fn(&'static str) -> futures_like::BoxFuture + Sync);

/// A boxed future of a raw statement.
pub mod futures_like {
    pub type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

fn sealed_entry(i: usize) -> AuditEvent {
    AuditEvent {
        id: format!("e{i:05}"),
        recorded: fixture::at("2025-06-01 09:00") + chrono::Duration::seconds(i as i64),
        username: "doctor".into(),
        role: "family_doctor".into(),
        org_id: Some(4),
        resident_id: Some(200),
        action: "read".into(),
        resource: "Patient/200".into(),
        outcome: "success".into(),
        detail: format!("d{i}"),
    }
}

/// The hash chain over the audit log: sealed in order, verified, archived in part; an
/// entry changed, one removed, or the end cut off, each found at its place.
pub async fn the_audit_chain_finds_changed_removed_and_cut_entries(s: &dyn Store, raw: Raw<'_>) {
    let head = s.audit_head().await.unwrap();
    assert_eq!(
        (head.seq, head.hash.as_str()),
        (0, dhp_store::AUDIT_GENESIS)
    );
    let ok = |r: &dhp_store::ChainReport| r.broken.is_none();
    // Written from several places at once while sealing runs: each entry sealed once.
    let (early, late): (Vec<_>, Vec<_>) = (
        (1..=200).map(sealed_entry).collect(),
        (201..=300).map(sealed_entry).collect(),
    );
    let (a, b, c, d) = tokio::join!(
        s.insert_audits(&early),
        s.seal_audit(),
        s.insert_audits(&late),
        s.seal_audit(),
    );
    a.unwrap();
    c.unwrap();
    let sealed = b.unwrap() + d.unwrap() + s.seal_audit().await.unwrap();
    assert_eq!(sealed, 300);
    assert_eq!(s.seal_audit().await.unwrap(), 0);
    let r = s.verify_audit(&mut |_| {}).await.unwrap();
    assert!(ok(&r), "{r:?}");
    assert_eq!((r.checked, r.unsealed, r.head.seq), (300, 0, 300));
    // New entries wait unsealed; verify counts them and still holds.
    s.insert_audits(&(301..=305).map(sealed_entry).collect::<Vec<_>>())
        .await
        .unwrap();
    let r = s.verify_audit(&mut |_| {}).await.unwrap();
    assert!(ok(&r));
    assert_eq!((r.checked, r.unsealed), (300, 5));
    assert_eq!(s.seal_audit().await.unwrap(), 5);

    // The first 100 archived (elsewhere) and removed: the chain verifies from there.
    let first = s.sealed_audit(0, 100).await.unwrap();
    assert_eq!(first.len(), 100);
    assert_eq!(
        first[0].hash,
        dhp_store::audit_entry_hash(dhp_store::AUDIT_GENESIS, &first[0].event)
    );
    let last = first.last().unwrap();
    assert_eq!(
        s.forget_archived_audit(last.seq, &last.hash).await.unwrap(),
        100
    );
    assert_eq!(
        s.forget_archived_audit(last.seq, &last.hash).await.unwrap(),
        0
    );
    let r = s.verify_audit(&mut |_| {}).await.unwrap();
    assert!(ok(&r), "{r:?}");
    assert_eq!((r.checked, r.head.archived_seq), (205, 100));

    // Changed after sealing.
    raw("UPDATE audit_events SET detail = 'nothing happened' WHERE chain_seq = 150").await;
    let r = s.verify_audit(&mut |_| {}).await.unwrap();
    let broken = r.broken.expect("a changed entry breaks the chain");
    assert_eq!(broken.seq, 150);
    assert!(broken.what.contains("changed"), "{}", broken.what);
    raw("UPDATE audit_events SET detail = 'd' || CAST(CAST(SUBSTR(id, 2) AS INTEGER) AS TEXT) WHERE chain_seq = 150").await;
    assert!(ok(&s.verify_audit(&mut |_| {}).await.unwrap()));
    // The end cut off (and the head left as it was).
    raw("DELETE FROM audit_events WHERE chain_seq = 305").await;
    let broken = s.verify_audit(&mut |_| {}).await.unwrap().broken.unwrap();
    assert!(
        broken.what.contains("removed from the end"),
        "{}",
        broken.what
    );
    // One removed from the middle.
    raw("DELETE FROM audit_events WHERE chain_seq = 200").await;
    let broken = s.verify_audit(&mut |_| {}).await.unwrap().broken.unwrap();
    assert_eq!(broken.seq, 200);
    assert!(
        broken.what.contains("entry #200 is missing"),
        "{}",
        broken.what
    );
}

/// An emergency grant admits its holder to the resident while it lasts, and is listed
/// with the accesses made under it; an expired one admits nobody.
pub async fn emergency_grants_open_a_record_until_they_expire(s: &dyn Store) {
    s.insert_batch(&fixture::district()).await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    let grant = |id: &str, user: &str, from: i64, to: i64| dhp_store::EmergencyGrant {
        id: id.into(),
        username: user.into(),
        role: "hospital_clinician".into(),
        org_id: Some(4),
        resident_id: 200,
        reason: "急诊抢救".into(),
        granted: now + chrono::Duration::hours(from),
        expires: now + chrono::Duration::hours(to),
    };
    s.grant_emergency_access(&grant("g1", "clinician", -5, -1))
        .await
        .unwrap();
    let today = now.date();
    assert!(s
        .resident_access_facts(200, today)
        .await
        .unwrap()
        .emergency_users
        .is_empty());
    s.grant_emergency_access(&grant("g2", "clinician", 0, 4))
        .await
        .unwrap();
    assert_eq!(
        s.resident_access_facts(200, today)
            .await
            .unwrap()
            .emergency_users,
        vec!["clinician".to_string()]
    );
    assert!(s
        .resident_access_facts(201, today)
        .await
        .unwrap()
        .emergency_users
        .is_empty());
    let mut read = audit("r1", Some(200));
    read.username = "clinician".into();
    read.recorded = now + chrono::Duration::minutes(5);
    s.insert_audit(&read).await.unwrap();
    let listed = s
        .emergency_grants(now - chrono::Duration::days(1))
        .await
        .unwrap();
    let summary: Vec<(String, i64)> = listed.iter().map(|(g, n)| (g.id.clone(), *n)).collect();
    assert_eq!(summary, vec![("g2".to_string(), 1), ("g1".to_string(), 0)]);
}

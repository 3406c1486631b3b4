//! The stories every backend must tell the same way.

use dhp_store::{
    content_digest, AuditEvent, Batch, Comparison, Prior, ResidentFilter, ResourceWrite, Store,
    StoreError, StoredResource, Table, User, WriteSet,
};

use crate::fixture;

mod audit;
mod booking;
mod portal;
mod records;
mod referral;
pub(crate) use audit::*;
pub(crate) use booking::*;
pub(crate) use portal::*;
pub(crate) use records::*;
pub(crate) use referral::*;

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
            all.imaging_studies.extend(page.imaging_studies);
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
        8 + 7 + 2 + 6 + 5 + 10 + 3 + 3 + 2 + 1
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

//! Stories of the audit chain and emergency grants.

use super::*;

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

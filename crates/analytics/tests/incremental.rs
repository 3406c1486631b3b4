//! The stored indicator counts, moved by each write in its own transaction, equal a
//! full recompute after any sequence of writes: record inserts, replacements and
//! deletions through `write_resources`, case reports and signal steps (property test on
//! SQLite, and on PostgreSQL when `DHP_TEST_POSTGRES_URL` names a server).

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use dhp_analytics::indicators::{compute, rebuild, tracked_periods};
use dhp_core::indicators::Period;
use dhp_core::surveillance::{CaseReport, CaseStatus, Signal, SignalEvent, SignalStatus};
use dhp_core::{
    Condition, Contract, ContractStatus, Encounter, EncounterType, Household, Id, IdentityNumber,
    Immunization, OrgKind, Organisation, Practitioner, PractitionerRole, Programme, Resident, Sex,
};
use dhp_store::{Batch, Store, Table, WriteSet};
use proptest::prelude::*;

const DISTRICT: Id = 1;
const STREETS: [Id; 2] = [2, 3];
const CENTRES: [Id; 2] = [4, 5];
const STATION: Id = 6;
const HOSPITAL: Id = 7;
const RESIDENTS: i64 = 6;

fn day(offset: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + Days::new(u64::from(offset))
}

fn base() -> Batch {
    let org = |id, code: &str, kind, parent, beds| Organisation {
        id,
        code: code.into(),
        name_zh: code.into(),
        name_en: code.into(),
        kind,
        level: None,
        parent_id: parent,
        district_code: "310118".into(),
        beds,
    };
    let mut b = Batch {
        organisations: vec![
            org(DISTRICT, "310118", OrgKind::District, None, 0),
            org(STREETS[0], "S1", OrgKind::Street, Some(DISTRICT), 0),
            org(STREETS[1], "S2", OrgKind::Town, Some(DISTRICT), 0),
            org(
                CENTRES[0],
                "C1",
                OrgKind::CommunityHealthCentre,
                Some(STREETS[0]),
                10,
            ),
            org(
                CENTRES[1],
                "C2",
                OrgKind::CommunityHealthCentre,
                Some(STREETS[1]),
                0,
            ),
            org(STATION, "C1-ST1", OrgKind::Station, Some(CENTRES[0]), 0),
            org(HOSPITAL, "H", OrgKind::Hospital, Some(DISTRICT), 200),
        ],
        practitioners: vec![Practitioner {
            id: 1,
            name: "医生".into(),
            role: PractitionerRole::FamilyDoctor,
            org_id: CENTRES[0],
            district_code: "310118".into(),
        }],
        ..Batch::default()
    };
    let births = [
        "1950-05-05",
        "1980-02-29",
        "2023-06-01",
        "1995-03-03",
        "2010-10-10",
        "1958-12-31",
    ];
    for (i, birth) in births.iter().enumerate() {
        let id = i as Id + 1;
        let street = STREETS[i % 2];
        let birth: NaiveDate = birth.parse().unwrap();
        b.households.push(Household {
            id,
            district_code: "310118".into(),
            street_org_id: street,
            address: "路".into(),
        });
        b.residents.push(Resident {
            id,
            district_code: "310118".into(),
            identity_number: IdentityNumber::compose("310118", birth, 100 + id as u16),
            name: "居民".into(),
            sex: if i % 2 == 0 { Sex::Male } else { Sex::Female },
            birth_date: birth,
            street_org_id: street,
            household_id: id,
            phone: "13800000000".into(),
            registered: true,
        });
    }
    b
}

/// One write of the sequence.
#[derive(Debug, Clone)]
enum Op {
    Encounter {
        resident: i64,
        what: u8,
        org: u8,
        day: u32,
    },
    Condition {
        resident: i64,
        code: u8,
        day: u32,
    },
    Contract {
        resident: i64,
        centre: u8,
        day: u32,
    },
    EndContract {
        pick: usize,
    },
    Immunization {
        resident: i64,
        dose: i32,
        day: u32,
    },
    MoveEncounter {
        pick: usize,
        resident: i64,
    },
    DeleteEncounter {
        pick: usize,
    },
    MoveHome {
        resident: i64,
        street: u8,
    },
    Report {
        street: u8,
        late: bool,
        day: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let r = 1..=RESIDENTS;
    let d = 0u32..700;
    prop_oneof![
        (r.clone(), 0u8..6, 0u8..4, d.clone()).prop_map(|(resident, what, org, day)| {
            Op::Encounter {
                resident,
                what,
                org,
                day,
            }
        }),
        (r.clone(), 0u8..5, d.clone()).prop_map(|(resident, code, day)| Op::Condition {
            resident,
            code,
            day
        }),
        (r.clone(), 0u8..2, d.clone()).prop_map(|(resident, centre, day)| Op::Contract {
            resident,
            centre,
            day
        }),
        (0usize..8).prop_map(|pick| Op::EndContract { pick }),
        (r.clone(), 1i32..=3, d.clone()).prop_map(|(resident, dose, day)| Op::Immunization {
            resident,
            dose,
            day
        }),
        (0usize..8, r.clone()).prop_map(|(pick, resident)| Op::MoveEncounter { pick, resident }),
        (0usize..8).prop_map(|pick| Op::DeleteEncounter { pick }),
        (r, 0u8..2).prop_map(|(resident, street)| Op::MoveHome { resident, street }),
        (0u8..2, any::<bool>(), d).prop_map(|(street, late, day)| Op::Report { street, late, day }),
    ]
}

/// The stored rows of `table` (the test district is small: one page holds them).
async fn stored(store: &dyn Store, table: Table) -> Batch {
    store.page(table, 0, 1000).await.unwrap()
}

/// Row number `pick` (wrapping) of `rows`, if any.
fn picked<T>(rows: Vec<T>, pick: usize) -> Option<T> {
    let n = rows.len().max(1);
    rows.into_iter().nth(pick % n)
}

async fn apply(store: &dyn Store, op: &Op, next: &mut Id) {
    let id = {
        *next += 1;
        *next
    };
    let mut w = WriteSet::default();
    match *op {
        Op::Encounter {
            resident,
            what,
            org,
            day: d,
        } => {
            let (kind, programme) = match what {
                0 => (EncounterType::Outpatient, None),
                1 => (EncounterType::FollowUp, Some(Programme::Hypertension)),
                2 => (EncounterType::FollowUp, Some(Programme::Elderly)),
                3 => (EncounterType::FollowUp, Some(Programme::Child)),
                4 => (EncounterType::HomeVisit, Some(Programme::Maternal)),
                _ => (EncounterType::FollowUp, Some(Programme::Diabetes)),
            };
            w.core.encounters.push(Encounter {
                id,
                resident_id: resident,
                kind,
                programme,
                org_id: [CENTRES[0], CENTRES[1], STATION, HOSPITAL][org as usize],
                practitioner_id: None,
                start: day(d).and_hms_opt(10, 0, 0).unwrap(),
            });
        }
        Op::Condition {
            resident,
            code,
            day: d,
        } => w.core.conditions.push(Condition {
            id,
            resident_id: resident,
            icd10: ["I10", "E11.9", "F20.0", "Z34.9", "O80"][code as usize].into(),
            onset: day(d),
            org_id: CENTRES[0],
        }),
        Op::Contract {
            resident,
            centre,
            day: d,
        } => w.core.contracts.push(Contract {
            id,
            resident_id: resident,
            centre_org_id: CENTRES[centre as usize],
            doctor_id: 1,
            district_hospital_id: HOSPITAL,
            city_hospital_id: HOSPITAL,
            start: day(d),
            end: day(d + 364),
            status: ContractStatus::Active,
        }),
        Op::EndContract { pick } => {
            let Some(c) = picked(stored(store, Table::Contracts).await.contracts, pick) else {
                return;
            };
            w.core.contracts.push(Contract {
                status: ContractStatus::Ended,
                ..c
            });
        }
        Op::Immunization {
            resident,
            dose,
            day: d,
        } => w.core.immunizations.push(Immunization {
            id,
            resident_id: resident,
            vaccine: "HepB".into(),
            dose_number: dose,
            date: day(d),
            org_id: CENTRES[0],
        }),
        Op::MoveEncounter { pick, resident } => {
            let Some(e) = picked(stored(store, Table::Encounters).await.encounters, pick) else {
                return;
            };
            w.core.encounters.push(Encounter {
                resident_id: resident,
                ..e
            });
        }
        Op::DeleteEncounter { pick } => {
            let Some(e) = picked(stored(store, Table::Encounters).await.encounters, pick) else {
                return;
            };
            w.core_deletes.push((Table::Encounters, e.id));
        }
        Op::MoveHome { resident, street } => {
            let mut r = store.resident(resident).await.unwrap();
            r.street_org_id = STREETS[street as usize];
            w.core.residents.push(r);
        }
        Op::Report {
            street,
            late,
            day: d,
        } => {
            let at = day(d).and_hms_opt(8, 0, 0).unwrap();
            let report = CaseReport {
                id,
                disease: "influenza".into(),
                resident_id: None,
                reporting_org: "H".into(),
                street: ["S1", "S2"][street as usize].into(),
                status: CaseStatus::Confirmed,
                onset_date: day(d),
                diagnosed_at: at,
                reported_at: at + chrono::Duration::hours(if late { 30 } else { 3 }),
            };
            store.insert_case_reports(&[report], "test").await.unwrap();
            return;
        }
    }
    store.write_resources(&w).await.unwrap();
}

async fn check(store: Arc<dyn Store>, ops: Vec<Op>) {
    store.clear().await.unwrap();
    store.insert_batch(&base()).await.unwrap();
    let periods: Vec<Period> = tracked_periods(2024, 2025, 2);
    rebuild(&*store, &periods, &mut |_| {}).await.unwrap();
    // A signal raised before the writes, taken up for verification among them.
    let mut signals = vec![Signal {
        id: 0,
        disease: "influenza".into(),
        area: "S1".into(),
        algorithms: "ears-c2".into(),
        first_day: day(100),
        last_day: day(100),
        alarm_days: 1,
        observed: 4.0,
        expected: 1.0,
        statistic: 3.0,
        threshold: 2.0,
        counts: vec![1, 4],
        status: SignalStatus::New,
        raised_at: day(100).and_hms_opt(6, 0, 0).unwrap(),
        verifying_at: None,
        closed_at: None,
        note: String::new(),
    }];
    store.save_signals(&mut signals).await.unwrap();
    let mut next = 1000;
    for (i, op) in ops.iter().enumerate() {
        apply(&*store, op, &mut next).await;
        if i == ops.len() / 2 {
            let s = &signals[0];
            store
                .move_signal(
                    s,
                    &SignalEvent {
                        signal_id: s.id,
                        at: day(100).and_hms_opt(7, 45, 0).unwrap(),
                        username: "cdc".into(),
                        from: SignalStatus::New,
                        to: SignalStatus::Verifying,
                        note: String::new(),
                    },
                )
                .await
                .unwrap();
        }
    }
    let kept = store.indicator_counts(None, None, None).await.unwrap();
    let full = compute(&*store, &periods, &mut |_| {})
        .await
        .unwrap()
        .counts;
    let only_kept: Vec<_> = kept.iter().filter(|c| !full.contains(c)).take(8).collect();
    let only_full: Vec<_> = full.iter().filter(|c| !kept.contains(c)).take(8).collect();
    assert!(
        only_kept.is_empty() && only_full.is_empty(),
        "{} after {ops:?}\nkept only: {only_kept:?}\nrecomputed only: {only_full:?}",
        store.backend()
    );
    // The signal's response time arrived with its step.
    assert!(kept
        .iter()
        .any(|c| c.indicator == "signal_response_minutes" && c.num == 105 && c.den == 1));
}

fn stores() -> Vec<(tokio::runtime::Runtime, Arc<dyn Store>)> {
    let mut v = Vec::new();
    let dir = std::env::temp_dir().join(format!("dhp-incremental-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.join("i.db").display())];
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    };
    if let Ok(admin_url) = std::env::var("DHP_TEST_POSTGRES_URL") {
        // A throwaway database of this test process (dropped by the next run's DROP).
        let name = format!("dhp_incremental_{}", std::process::id());
        let r = rt();
        let url = r.block_on(async {
            let admin = dhp_store::AdminPool::connect(&admin_url).await.unwrap();
            admin.fresh_database(&admin_url, &name).await.unwrap()
        });
        urls.push(url);
    }
    for url in urls {
        let r = rt();
        let store = r.block_on(dhp_store::connect(&url)).unwrap();
        v.push((r, store));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn kept_counts_equal_a_full_recompute(ops in prop::collection::vec(op(), 1..14)) {
        thread_local! {
            static STORES: Vec<(tokio::runtime::Runtime, Arc<dyn Store>)> = stores();
        }
        STORES.with(|stores| {
            for (rt, store) in stores {
                rt.block_on(check(store.clone(), ops.clone()));
            }
        });
    }
}

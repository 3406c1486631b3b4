//! Who may see which resident's record: roles scoped by organisation unit (SPEC
//! capability 8; plans: 信息安全等级保护三级). Pure decisions over facts the store
//! gathers; the server enforces them and audits every answer.

use serde::{Deserialize, Serialize};

use crate::registry::{Id, OrgKind};

/// Role of a signed-in account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An integrating system (HIS / EMR / LIS, the city platform).
    System,
    /// District health commission manager (区卫健委).
    Manager,
    /// CDC public-health doctor (疾控).
    PublicHealthDoctor,
    /// Family doctor at a community health centre (家庭医生).
    FamilyDoctor,
    /// Hospital clinician.
    HospitalClinician,
    /// A resident (居民), for their own record.
    Resident,
    /// System administrator (系统管理员): makes the accounts of staff and resets their
    /// passwords. Reads no resident record and not the audit log.
    SystemAdmin,
    /// Security administrator (安全管理员): unlocks accounts locked after failed logins
    /// and oversees emergency access. Reads no resident record and not the audit log.
    SecurityAdmin,
    /// Audit administrator (审计管理员): reads the audit log, the other administrators'
    /// acts included. Reads no resident record and manages no account.
    AuditAdmin,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::System,
        Role::Manager,
        Role::PublicHealthDoctor,
        Role::FamilyDoctor,
        Role::HospitalClinician,
        Role::Resident,
        Role::SystemAdmin,
        Role::SecurityAdmin,
        Role::AuditAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Manager => "manager",
            Role::PublicHealthDoctor => "public_health_doctor",
            Role::FamilyDoctor => "family_doctor",
            Role::HospitalClinician => "hospital_clinician",
            Role::Resident => "resident",
            Role::SystemAdmin => "system_admin",
            Role::SecurityAdmin => "security_admin",
            Role::AuditAdmin => "audit_admin",
        }
    }

    /// One of the three administrators (三员: system, security, audit), whose duties
    /// are kept apart (GB/T 22239-2019 level 3, 8.1.10.5 / 8.1.10.6: separation of
    /// system, security and audit administration).
    pub fn is_administrator(self) -> bool {
        matches!(
            self,
            Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin
        )
    }

    /// The staff roles whose accounts the system administrator makes.
    pub fn is_staff(self) -> bool {
        matches!(
            self,
            Role::Manager | Role::PublicHealthDoctor | Role::FamilyDoctor | Role::HospitalClinician
        )
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role sees identity numbers in full. Clinical and integrating roles
    /// need them to match records; a manager works with aggregates and sees them masked
    /// (domain-rules §1: "masked everywhere except where the role allows").
    pub fn sees_full_identity(self) -> bool {
        !matches!(self, Role::Manager) && !self.is_administrator()
    }
}

/// The signed-in account a request acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub username: String,
    pub role: Role,
    /// The organisation the account works at (centre, hospital, commission, CDC).
    pub org_id: Option<Id>,
    pub practitioner_id: Option<Id>,
    /// For a resident account: the resident themself.
    pub resident_id: Option<Id>,
}

/// The organisation a principal works at, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgFacts {
    pub id: Id,
    pub kind: OrgKind,
    pub parent_id: Option<Id>,
    pub district_code: String,
}

/// What the store knows about a resident that decides who may see them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidentFacts {
    pub resident_id: Id,
    pub district_code: String,
    /// The street or town of the address.
    pub street_org_id: Id,
    /// Centres and doctors of contracts in force (not ended, covering today).
    pub contract_centres: Vec<Id>,
    pub contract_doctors: Vec<Id>,
    /// Organisations where the resident has had an encounter.
    pub encounter_orgs: Vec<Id>,
    /// Organisations the resident was referred to (by a referral not rejected or
    /// withdrawn) or holds a booking at: the patient is coming into their care.
    pub referred_or_booked: Vec<Id>,
    /// Accounts holding emergency access to the resident now (break the glass).
    pub emergency_users: Vec<String>,
}

/// How long emergency access lasts once granted.
pub const EMERGENCY_HOURS: i64 = 4;

/// The reason an emergency access gives at least (characters, e.g. "急诊抢救").
pub const EMERGENCY_REASON_MIN: usize = 4;

/// Why an access under an emergency grant was allowed (the audit entry's detail).
pub const EMERGENCY_ACCESS: &str = "emergency access (break the glass)";

/// Who may break the glass: those who treat patients — a hospital clinician or a family
/// doctor meeting a resident outside their scope in an emergency. Each grant names a
/// reason, lasts [`EMERGENCY_HOURS`], is audited, and is listed to the managers.
pub fn may_break_glass(role: Role) -> bool {
    matches!(role, Role::HospitalClinician | Role::FamilyDoctor)
}

/// An access decision with the reason, for the audit log and the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(&'static str),
    Deny(&'static str),
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Decision::Allow(r) | Decision::Deny(r) => r,
        }
    }
}

/// May `who` (working at `org`) read the record of the resident `facts` describe?
///
/// - system: every resident (an integrating system of the district);
/// - manager: residents of the district their organisation belongs to;
/// - public-health doctor: residents of their district (case investigation);
/// - family doctor: residents living in their centre's street or town, residents
///   contracted with their centre or with them, and residents referred to the centre;
/// - hospital clinician: residents with an encounter at, a referral to or a booking at
///   their hospital;
/// - resident: only themself.
pub fn may_read_resident(
    who: &Principal,
    org: Option<&OrgFacts>,
    facts: &ResidentFacts,
) -> Decision {
    let decision = in_scope(who, org, facts);
    if !decision.allowed()
        && may_break_glass(who.role)
        && facts.emergency_users.contains(&who.username)
    {
        return Decision::Allow(EMERGENCY_ACCESS);
    }
    decision
}

/// The decision of the role's own scope (without emergency access).
fn in_scope(who: &Principal, org: Option<&OrgFacts>, facts: &ResidentFacts) -> Decision {
    match who.role {
        Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin => {
            Decision::Deny("administrators do not read resident records (separation of duties)")
        }
        Role::System => Decision::Allow("integrating system"),
        Role::Resident => {
            if who.resident_id == Some(facts.resident_id) {
                Decision::Allow("own record")
            } else {
                Decision::Deny("a resident sees only their own record")
            }
        }
        Role::Manager | Role::PublicHealthDoctor => match org {
            Some(o) if o.district_code == facts.district_code => {
                Decision::Allow("resident of the district")
            }
            _ => Decision::Deny("resident outside the district of the account's organisation"),
        },
        Role::FamilyDoctor => {
            let Some(o) = org else {
                return Decision::Deny("account has no organisation");
            };
            if who
                .practitioner_id
                .is_some_and(|p| facts.contract_doctors.contains(&p))
            {
                Decision::Allow("contracted with this doctor")
            } else if facts.contract_centres.contains(&o.id) {
                Decision::Allow("contracted with this centre")
            } else if facts.referred_or_booked.contains(&o.id) {
                Decision::Allow("referred to or booked at this centre")
            } else if o.kind == OrgKind::CommunityHealthCentre
                && o.parent_id == Some(facts.street_org_id)
            {
                Decision::Allow("lives in the centre's street or town")
            } else {
                Decision::Deny(
                    "resident neither lives in the centre's area nor is contracted with it",
                )
            }
        }
        Role::HospitalClinician => match org {
            Some(o) if facts.encounter_orgs.contains(&o.id) => {
                Decision::Allow("encounter at this hospital")
            }
            Some(o) if facts.referred_or_booked.contains(&o.id) => {
                Decision::Allow("referred to or booked at this hospital")
            }
            _ => Decision::Deny("resident has no encounter, referral or booking at this hospital"),
        },
    }
}

/// Who records clinical data (creates, updates, deletes), within the residents they
/// may read: integrating systems, family doctors, hospital clinicians and public-health
/// doctors. Managers review records; residents read their own.
pub fn may_write_records(role: Role) -> bool {
    matches!(
        role,
        Role::System | Role::FamilyDoctor | Role::HospitalClinician | Role::PublicHealthDoctor
    )
}

/// Who books and cancels appointments in the slot pool: those who record clinical
/// data, and residents — for themselves only (their own record is their whole scope;
/// SPEC capability 9, "booking through the unified pool").
pub fn may_book(role: Role) -> bool {
    may_write_records(role) || role == Role::Resident
}

/// A guardian's standing for a child linked to them in the registry, on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    /// Under 14: the guardian sees and acts for the child.
    Guardian,
    /// 14 to 17 and the child has given consent: as [`Proxy::Guardian`].
    Consented,
    /// 14 to 17 without the child's own consent: nothing.
    NeedsConsent,
    /// 18 or older: an adult, nobody's proxy reaches them.
    Adult,
}

impl Proxy {
    pub fn allowed(self) -> bool {
        matches!(self, Proxy::Guardian | Proxy::Consented)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proxy::Guardian => "guardian",
            Proxy::Consented => "consented",
            Proxy::NeedsConsent => "needs-consent",
            Proxy::Adult => "adult",
        }
    }
}

/// Age below which a guardian consents for the child (《个人信息保护法》第三十一条:
/// the personal information of a minor under fourteen is processed with the consent
/// of the parent or other guardian).
pub const PROXY_WITHOUT_CONSENT_BELOW: u32 = 14;
/// Age of majority (《民法典》第十七条: eighteen and over is an adult).
pub const ADULT_AT: u32 = 18;

/// What a guardian may do for a child born on `birth`, on `on`, given whether the
/// child has consented (which counts from 14 only).
pub fn proxy(birth: chrono::NaiveDate, on: chrono::NaiveDate, consented: bool) -> Proxy {
    let age = crate::registry::age_years(birth, on);
    if on < birth {
        // Not yet born on that day: nothing to see.
        return Proxy::NeedsConsent;
    }
    if age >= ADULT_AT {
        Proxy::Adult
    } else if age < PROXY_WITHOUT_CONSENT_BELOW {
        Proxy::Guardian
    } else if consented {
        Proxy::Consented
    } else {
        Proxy::NeedsConsent
    }
}

/// Who may read the audit log: the audit administrator, the commission's managers, who
/// supervise access (等保三级 audit review), and integrating systems that archive it.
/// Not the system or security administrator, whose own acts it records.
pub fn may_read_audit_log(role: Role) -> bool {
    matches!(role, Role::AuditAdmin | Role::Manager | Role::System)
}

/// What an administrator does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAct {
    /// See the accounts (names, roles, organisations, lock and password state).
    List,
    Create,
    ResetPassword,
    Unlock,
}

/// May `who` do `act` to the account `target` (its username and role; for `List` and
/// `Create`, the role asked for)? Each act belongs to one administrator; no
/// administrator acts on an administrator's account (their own included), so none can
/// become or stand in for another — those accounts are made and reset at the console,
/// where the act is audited too.
pub fn may_act_on_account(
    who: &Principal,
    act: AccountAct,
    target_username: &str,
    target: Role,
) -> Decision {
    let own = match act {
        AccountAct::List => matches!(who.role, Role::SystemAdmin | Role::SecurityAdmin),
        AccountAct::Create | AccountAct::ResetPassword => who.role == Role::SystemAdmin,
        AccountAct::Unlock => who.role == Role::SecurityAdmin,
    };
    if !own {
        return Decision::Deny(match act {
            AccountAct::List => "only the system and security administrators see the accounts",
            AccountAct::Create | AccountAct::ResetPassword => {
                "only the system administrator makes accounts and resets passwords"
            }
            AccountAct::Unlock => "only the security administrator unlocks accounts",
        });
    }
    if act == AccountAct::List {
        return Decision::Allow("account administration");
    }
    if target_username == who.username {
        return Decision::Deny("an administrator does not act on their own account");
    }
    if target.is_administrator() {
        return Decision::Deny(
            "administrators' accounts are managed at the console, never by another administrator",
        );
    }
    if act != AccountAct::Unlock && !target.is_staff() {
        return Decision::Deny(
            "residents' accounts and integrating systems' clients are not made or reset here",
        );
    }
    Decision::Allow("account administration")
}

/// The residents an account may see, as a filter a store can apply in bulk (search).
/// It selects exactly the residents [`may_read_resident`] allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    District(String),
    /// A family doctor: residents of `area` (when the account works at a centre), and
    /// residents with a contract in force with `centre` or with `practitioner`.
    FamilyDoctor {
        centre: Id,
        area: Option<Id>,
        practitioner: Option<Id>,
    },
    /// Residents with an encounter at, a referral to or a booking at this hospital.
    Hospital(Id),
    /// One resident.
    Resident(Id),
    Nothing,
}

/// The scope of `who`, working at `org`.
pub fn resident_scope(who: &Principal, org: Option<&OrgFacts>) -> Scope {
    match (who.role, org) {
        (Role::System, _) => Scope::All,
        (Role::Resident, _) => who
            .resident_id
            .map(Scope::Resident)
            .unwrap_or(Scope::Nothing),
        (Role::Manager | Role::PublicHealthDoctor, Some(o)) => {
            Scope::District(o.district_code.clone())
        }
        (Role::FamilyDoctor, Some(o)) => Scope::FamilyDoctor {
            centre: o.id,
            area: o
                .parent_id
                .filter(|_| o.kind == OrgKind::CommunityHealthCentre),
            practitioner: who.practitioner_id,
        },
        (Role::HospitalClinician, Some(o)) => Scope::Hospital(o.id),
        (Role::SystemAdmin | Role::SecurityAdmin | Role::AuditAdmin, _) => Scope::Nothing,
        (_, None) => Scope::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(
        role: Role,
        org: Option<Id>,
        practitioner: Option<Id>,
        resident: Option<Id>,
    ) -> Principal {
        Principal {
            username: "u".into(),
            role,
            org_id: org,
            practitioner_id: practitioner,
            resident_id: resident,
        }
    }

    fn org(id: Id, kind: OrgKind, parent: Option<Id>, district: &str) -> OrgFacts {
        OrgFacts {
            id,
            kind,
            parent_id: parent,
            district_code: district.into(),
        }
    }

    fn resident() -> ResidentFacts {
        ResidentFacts {
            resident_id: 7,
            district_code: "310118".into(),
            street_org_id: 3,
            contract_centres: vec![40],
            contract_doctors: vec![400],
            encounter_orgs: vec![6],
            referred_or_booked: Vec::new(),
            emergency_users: Vec::new(),
        }
    }

    #[test]
    fn residents_book_for_themselves_and_record_nothing_clinical() {
        assert!(may_book(Role::Resident) && !may_write_records(Role::Resident));
        for r in [Role::FamilyDoctor, Role::HospitalClinician, Role::System] {
            assert!(may_book(r), "{r:?}");
        }
        for r in [
            Role::Manager,
            Role::SystemAdmin,
            Role::SecurityAdmin,
            Role::AuditAdmin,
        ] {
            assert!(!may_book(r), "{r:?}");
        }
    }

    #[test]
    fn the_three_administrators_keep_to_their_own_duty() {
        let admin = |role| Principal {
            username: role_name(role).into(),
            ..who(role, Some(1), None, None)
        };
        fn role_name(r: Role) -> &'static str {
            r.as_str()
        }
        let facts = resident();
        let commission = org(1, OrgKind::Commission, None, "310118");
        for role in [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin] {
            let a = admin(role);
            assert!(!may_read_resident(&a, Some(&commission), &facts).allowed());
            assert_eq!(resident_scope(&a, Some(&commission)), Scope::Nothing);
            assert!(!may_write_records(role));
            assert!(!role.sees_full_identity());
        }
        assert!(may_read_audit_log(Role::AuditAdmin));
        assert!(!may_read_audit_log(Role::SystemAdmin));
        assert!(!may_read_audit_log(Role::SecurityAdmin));

        let sys = admin(Role::SystemAdmin);
        let sec = admin(Role::SecurityAdmin);
        let aud = admin(Role::AuditAdmin);
        let act =
            |p: &Principal, act, name: &str, role| may_act_on_account(p, act, name, role).allowed();
        assert!(act(&sys, AccountAct::Create, "dr.li", Role::FamilyDoctor));
        assert!(act(
            &sys,
            AccountAct::ResetPassword,
            "dr.li",
            Role::FamilyDoctor
        ));
        assert!(!act(&sys, AccountAct::Unlock, "dr.li", Role::FamilyDoctor));
        assert!(act(&sec, AccountAct::Unlock, "dr.li", Role::FamilyDoctor));
        assert!(act(&sec, AccountAct::Unlock, "resident", Role::Resident));
        assert!(!act(
            &sec,
            AccountAct::ResetPassword,
            "dr.li",
            Role::FamilyDoctor
        ));
        assert!(!act(&sec, AccountAct::Create, "dr.li", Role::FamilyDoctor));
        for a in [
            AccountAct::List,
            AccountAct::Create,
            AccountAct::ResetPassword,
            AccountAct::Unlock,
        ] {
            assert!(!act(&aud, a, "dr.li", Role::FamilyDoctor), "{a:?}");
        }
        // None acts on an administrator's account, their own included.
        for target in [Role::SystemAdmin, Role::SecurityAdmin, Role::AuditAdmin] {
            assert!(!act(&sys, AccountAct::ResetPassword, "other", target));
            assert!(!act(&sys, AccountAct::Create, "other", target));
            assert!(!act(&sec, AccountAct::Unlock, "other", target));
        }
        assert!(!act(
            &sec,
            AccountAct::Unlock,
            "security_admin",
            Role::SecurityAdmin
        ));
        assert!(!act(&sys, AccountAct::Create, "x", Role::System));
        assert!(!act(&sys, AccountAct::Create, "x", Role::Resident));
    }

    #[test]
    fn the_glass_is_broken_only_by_clinicians_named_in_a_live_grant() {
        let clinician = Principal {
            username: "c".into(),
            role: Role::HospitalClinician,
            org_id: Some(99),
            practitioner_id: None,
            resident_id: None,
        };
        let hospital = OrgFacts {
            id: 99,
            kind: OrgKind::Hospital,
            parent_id: None,
            district_code: "310118".into(),
        };
        let mut facts = resident();
        assert!(!may_read_resident(&clinician, Some(&hospital), &facts).allowed());
        facts.emergency_users = vec!["someone else".into()];
        assert!(!may_read_resident(&clinician, Some(&hospital), &facts).allowed());
        facts.emergency_users.push("c".into());
        assert_eq!(
            may_read_resident(&clinician, Some(&hospital), &facts),
            Decision::Allow(EMERGENCY_ACCESS)
        );
        // A resident named in a grant does not read someone else's record.
        let resident_account = Principal {
            username: "c".into(),
            role: Role::Resident,
            org_id: None,
            practitioner_id: None,
            resident_id: Some(8),
        };
        assert!(!may_read_resident(&resident_account, None, &facts).allowed());
    }

    #[track_caller]
    fn check(p: Principal, o: Option<OrgFacts>, expect: bool) {
        let d = may_read_resident(&p, o.as_ref(), &resident());
        assert_eq!(d.allowed(), expect, "{p:?}: {d:?}");
    }

    #[test]
    fn each_role_sees_its_scope_and_nothing_more() {
        use OrgKind::*;
        check(who(Role::System, None, None, None), None, true);
        check(who(Role::Resident, None, None, Some(7)), None, true);
        check(who(Role::Resident, None, None, Some(8)), None, false);
        let commission = org(2, Commission, Some(1), "310118");
        check(
            who(Role::Manager, Some(2), None, None),
            Some(commission.clone()),
            true,
        );
        check(
            who(Role::Manager, Some(9), None, None),
            Some(org(9, Commission, Some(1), "310117")),
            false,
        );
        check(
            who(Role::PublicHealthDoctor, Some(2), None, None),
            Some(commission),
            true,
        );
        // Family doctor: area of the centre, contracted centre, contracted doctor.
        check(
            who(Role::FamilyDoctor, Some(4), Some(1), None),
            Some(org(4, CommunityHealthCentre, Some(3), "310118")),
            true,
        );
        check(
            who(Role::FamilyDoctor, Some(40), Some(1), None),
            Some(org(40, CommunityHealthCentre, Some(30), "310118")),
            true,
        );
        check(
            who(Role::FamilyDoctor, Some(41), Some(400), None),
            Some(org(41, CommunityHealthCentre, Some(31), "310118")),
            true,
        );
        check(
            who(Role::FamilyDoctor, Some(41), Some(401), None),
            Some(org(41, CommunityHealthCentre, Some(31), "310118")),
            false,
        );
        check(who(Role::FamilyDoctor, None, Some(401), None), None, false);
        // Hospital clinician: only with an encounter there.
        check(
            who(Role::HospitalClinician, Some(6), Some(9), None),
            Some(org(6, Hospital, Some(2), "310118")),
            true,
        );
        check(
            who(Role::HospitalClinician, Some(5), Some(9), None),
            Some(org(5, Hospital, Some(2), "310118")),
            false,
        );
    }

    #[test]
    fn only_the_manager_and_the_administrators_see_masked_identity_numbers() {
        for r in Role::ALL {
            assert_eq!(
                r.sees_full_identity(),
                r != Role::Manager && !r.is_administrator(),
                "{r:?}"
            );
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}

#[cfg(test)]
mod scope_tests {
    use super::*;
    use proptest::prelude::*;

    /// A scope read as a predicate over facts, the way a store applies it.
    fn in_scope(scope: &Scope, f: &ResidentFacts) -> bool {
        match scope {
            Scope::All => true,
            Scope::District(d) => &f.district_code == d,
            Scope::FamilyDoctor {
                centre,
                area,
                practitioner,
            } => {
                *area == Some(f.street_org_id)
                    || f.contract_centres.contains(centre)
                    || f.referred_or_booked.contains(centre)
                    || practitioner.is_some_and(|p| f.contract_doctors.contains(&p))
            }
            Scope::Hospital(h) => f.encounter_orgs.contains(h) || f.referred_or_booked.contains(h),
            Scope::Resident(r) => *r == f.resident_id,
            Scope::Nothing => false,
        }
    }

    fn role() -> impl Strategy<Value = Role> {
        prop::sample::select(Role::ALL.to_vec())
    }

    fn kind() -> impl Strategy<Value = OrgKind> {
        prop::sample::select(vec![
            OrgKind::CommunityHealthCentre,
            OrgKind::Hospital,
            OrgKind::Commission,
            OrgKind::PublicHealth,
        ])
    }

    proptest! {
        /// Search scope and single-record decisions never disagree.
        #[test]
        fn the_scope_selects_exactly_what_may_be_read(
            role in role(),
            has_org in any::<bool>(),
            org_id in 1i64..6,
            org_kind in kind(),
            org_parent in 1i64..6,
            org_district in prop::sample::select(vec!["310118", "310117"]),
            practitioner in prop::option::of(1i64..6),
            own in prop::option::of(1i64..6),
            resident_id in 1i64..6,
            district in prop::sample::select(vec!["310118", "310117"]),
            street in 1i64..6,
            centres in prop::collection::vec(1i64..6, 0..3),
            doctors in prop::collection::vec(1i64..6, 0..3),
            encounters in prop::collection::vec(1i64..6, 0..3),
            referred in prop::collection::vec(1i64..6, 0..2),
        ) {
            let who = Principal { username: "u".into(), role, org_id: has_org.then_some(org_id), practitioner_id: practitioner, resident_id: own };
            let org = has_org.then(|| OrgFacts { id: org_id, kind: org_kind, parent_id: Some(org_parent), district_code: org_district.into() });
            let facts = ResidentFacts {
                resident_id,
                district_code: district.into(),
                street_org_id: street,
                contract_centres: centres,
                contract_doctors: doctors,
                encounter_orgs: encounters,
                referred_or_booked: referred,
                // Emergency access opens a record by id, not the search scope.
                emergency_users: Vec::new(),
            };
            let scope = resident_scope(&who, org.as_ref());
            prop_assert_eq!(in_scope(&scope, &facts), may_read_resident(&who, org.as_ref(), &facts).allowed(), "{:?}", scope);
        }
    }

    #[test]
    fn a_guardian_acts_under_14_with_consent_to_17_and_never_for_an_adult() {
        let d = |y, m, dd| chrono::NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        let born = d(2012, 6, 15);
        assert_eq!(proxy(born, d(2026, 6, 14), false), Proxy::Guardian);
        assert_eq!(proxy(born, d(2026, 6, 15), false), Proxy::NeedsConsent);
        assert_eq!(proxy(born, d(2026, 6, 15), true), Proxy::Consented);
        assert_eq!(proxy(born, d(2030, 6, 14), true), Proxy::Consented);
        assert_eq!(proxy(born, d(2030, 6, 15), true), Proxy::Adult);
        assert!(!proxy(born, d(2030, 6, 15), true).allowed());
        assert!(!proxy(born, d(2011, 1, 1), true).allowed(), "not yet born");
        assert!(proxy(born, d(2013, 1, 1), false).allowed());
    }
}

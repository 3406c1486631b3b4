//! Password hashes (argon2id at OWASP's recommended strength: 19 MiB, 2 passes, 1 lane —
//! the `argon2` crate's defaults) and the demo accounts a generated district gets (one
//! per role). Login attempts go through [`crate::security::login::LoginGuard`].

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use dhp_core::{OrgKind, PractitionerRole};
use dhp_store::{Store, StoreError, Table, User};

/// Roles of the portal (the FHIR API's access control uses the same names).
pub const ROLES: [&str; 9] = [
    "system",
    "manager",
    "public_health_doctor",
    "family_doctor",
    "hospital_clinician",
    "resident",
    "system_admin",
    "security_admin",
    "audit_admin",
];

/// Hash a password with argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Check `password` against a stored PHC hash; a malformed hash never verifies.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Check `password` against a stored PHC hash computing into `blocks`, the caller's
/// reusable argon2 memory (grown to the hash's size when needed): a thread that checks
/// passwords keeps one block of memory instead of asking the allocator for ~19 MiB a
/// check, which it may not give back. A malformed hash never verifies.
pub fn verify_password_reusing(password: &str, phc: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        argon2::Algorithm::try_from(hash.algorithm),
        argon2::Params::try_from(&hash),
        hash.salt,
        hash.hash,
    ) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
        None => argon2::Version::default(),
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let needed = params.block_count();
    if blocks.len() < needed {
        blocks.resize(needed, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..needed])
        .is_err()
    {
        return false;
    }
    use subtle::ConstantTimeEq;
    bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A demo account as printed for the person running the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub username: String,
    pub password: String,
    pub role: String,
    pub display_name: String,
}

/// Create one account per role on a generated district (password = username; for
/// the demo only). Returns the accounts; does nothing if accounts already exist.
pub async fn create_demo_accounts(store: &dyn Store) -> Result<Vec<DemoAccount>, StoreError> {
    if !store.users().await?.is_empty() {
        return Ok(Vec::new());
    }
    let orgs = dhp_store::organisations(store).await?;
    let mut practitioners = Vec::new();
    let mut after = 0;
    loop {
        let page = store.page(Table::Practitioners, after, 10_000).await?;
        let Some(last) = page.last_id() else { break };
        after = last;
        practitioners.extend(page.practitioners);
    }
    // The demo resident is a parent of a child under 14 (the portal's proxy pages have
    // someone to show), preferably one with a visit of the last weeks still to rate
    // (the satisfaction survey); else the first resident.
    let first = store.page(Table::Residents, 0, 3_000).await?.residents;
    let today = dhp_core::clock::today();
    let end: chrono::NaiveDate = match store.meta("end_date").await? {
        Some(d) => d.parse().unwrap_or(today),
        None => today,
    };
    let mut resident = first.first().cloned();
    let mut parent = None;
    for r in first.iter().filter(|r| r.age_on(end) >= 18) {
        let children = store.children_of(r.id).await?;
        let young = children.iter().any(|c| {
            first.iter().any(|k| {
                k.id == c.child_id && k.age_on(end) < dhp_core::access::PROXY_WITHOUT_CONSENT_BELOW
            })
        });
        if !young {
            continue;
        }
        parent.get_or_insert_with(|| r.clone());
        if recent_visit_to_rate(store, r.id, end).await? {
            parent = Some(r.clone());
            break;
        }
    }
    if parent.is_some() {
        resident = parent;
    }
    let org_of = |kind: OrgKind| orgs.iter().find(|o| o.kind == kind);
    let practitioner_of = |role: PractitionerRole, org_kind: OrgKind| {
        practitioners
            .iter()
            .find(|p| p.role == role && orgs.iter().any(|o| o.id == p.org_id && o.kind == org_kind))
    };
    let account = |username: &str, role: &str, display_name: String| User {
        id: 0,
        username: username.to_string(),
        password_hash: String::new(),
        role: role.to_string(),
        display_name,
        org_id: None,
        practitioner_id: None,
        resident_id: None,
    };
    let staff = |username: &str, role: &str, p: &dhp_core::Practitioner, org_id: i64| User {
        org_id: Some(org_id),
        practitioner_id: Some(p.id),
        ..account(username, role, p.name.clone())
    };
    // Accounts that are not a person of the registry carry no name of their own:
    // pages show them by their role, in the page's language.
    let mut plan = vec![account("system", "system", String::new())];
    if let (Some(m), Some(c)) = (
        practitioner_of(PractitionerRole::Manager, OrgKind::Commission),
        org_of(OrgKind::Commission),
    ) {
        plan.push(staff("manager", "manager", m, c.id));
    }
    if let Some(p) = practitioner_of(PractitionerRole::PublicHealthDoctor, OrgKind::PublicHealth) {
        plan.push(staff("phdoctor", "public_health_doctor", p, p.org_id));
    }
    if let Some(p) = practitioner_of(
        PractitionerRole::FamilyDoctor,
        OrgKind::CommunityHealthCentre,
    ) {
        plan.push(staff("doctor", "family_doctor", p, p.org_id));
    }
    if let Some(p) = practitioner_of(PractitionerRole::Specialist, OrgKind::Hospital) {
        plan.push(staff("clinician", "hospital_clinician", p, p.org_id));
    }
    // The three administrators (三员) work at the commission.
    if let Some(c) = org_of(OrgKind::Commission) {
        for (username, role) in [
            ("sysadmin", "system_admin"),
            ("secadmin", "security_admin"),
            ("auditor", "audit_admin"),
        ] {
            plan.push(User {
                org_id: Some(c.id),
                ..account(username, role, String::new())
            });
        }
    }
    if let Some(r) = &resident {
        plan.push(User {
            resident_id: Some(r.id),
            ..account("resident", "resident", r.name.clone())
        });
    }
    let mut out = Vec::new();
    for (i, mut user) in plan.into_iter().enumerate() {
        user.id = i as i64 + 1;
        // The demo password is the username.
        user.password_hash = hash_password(&user.username);
        store.insert_user(&user).await?;
        out.push(DemoAccount {
            password: user.username.clone(),
            username: user.username,
            role: user.role,
            display_name: user.display_name,
        });
    }
    Ok(out)
}

/// Whether resident `id` had a completed visit in the 20 days before `end` that has no
/// survey yet.
async fn recent_visit_to_rate(
    store: &dyn Store,
    id: dhp_core::Id,
    end: chrono::NaiveDate,
) -> Result<bool, StoreError> {
    for a in store.appointments_of(id).await? {
        if a.status != dhp_core::booking::Status::Fulfilled {
            continue;
        }
        let slot = store.slot_state(a.slot_id).await?;
        if slot.slot.start.date() > end - chrono::Duration::days(20)
            && store.surveyed(&[a.id]).await?.is_empty()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cre", &h));
        assert!(!verify_password("s3cret", "not a hash"));
        assert_ne!(hash_password("s3cret"), h, "salted");
    }

    #[test]
    fn reusing_memory_verifies_the_same() {
        let mut blocks = Vec::new();
        let h = hash_password("s3cret");
        assert!(verify_password_reusing("s3cret", &h, &mut blocks));
        assert!(!verify_password_reusing("s3cre", &h, &mut blocks));
        assert!(!verify_password_reusing(
            "s3cret",
            "not a hash",
            &mut blocks
        ));
        assert_eq!(blocks.len(), 19_456, "one block of 1 KiB per KiB of m");
        // A hash of other strength is checked with its own parameters.
        let light = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(8_192, 3, 1, None).unwrap(),
        )
        .hash_password(b"pw", &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        assert!(verify_password_reusing("pw", &light, &mut blocks));
        assert!(verify_password("pw", &light));
    }

    #[test]
    fn hashes_have_owasp_strength() {
        // OWASP Password Storage Cheat Sheet: argon2id, m = 19 MiB, t = 2, p = 1.
        let h = hash_password("s3cret");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
}

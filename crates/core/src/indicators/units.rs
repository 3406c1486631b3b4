//! Org units an indicator is reported for (district, street or town, community health
//! centre, hospital) and which of them a record counts towards.

use std::collections::HashMap;

use crate::registry::{Id, OrgKind, Organisation};

/// The organisation tree, indexed for attribution.
#[derive(Debug, Clone, Default)]
pub struct Units {
    orgs: HashMap<Id, Organisation>,
    by_code: HashMap<String, Id>,
    /// District code → the district's org id.
    districts: HashMap<String, Id>,
    /// Street or town → its first community health centre.
    street_centre: HashMap<Id, Id>,
}

impl Units {
    pub fn new(orgs: &[Organisation]) -> Self {
        let mut u = Units::default();
        let mut sorted: Vec<&Organisation> = orgs.iter().collect();
        sorted.sort_by_key(|o| o.id);
        for o in sorted {
            u.by_code.insert(o.code.clone(), o.id);
            if o.kind == OrgKind::District {
                u.districts.insert(o.code.clone(), o.id);
            }
            if o.kind == OrgKind::CommunityHealthCentre {
                if let Some(p) = o.parent_id {
                    u.street_centre.entry(p).or_insert(o.id);
                }
            }
            u.orgs.insert(o.id, o.clone());
        }
        u
    }

    pub fn get(&self, id: Id) -> Option<&Organisation> {
        self.orgs.get(&id)
    }

    pub fn by_code(&self, code: &str) -> Option<&Organisation> {
        self.by_code.get(code).and_then(|id| self.orgs.get(id))
    }

    pub fn district(&self, district_code: &str) -> Option<Id> {
        self.districts.get(district_code).copied()
    }

    /// The district code of the unit with `code` (else of the first district): where a
    /// case report or signal naming a street counts.
    pub fn district_code_of(&self, code: &str) -> String {
        self.by_code(code)
            .map(|o| o.district_code.clone())
            .or_else(|| self.districts.keys().min().cloned())
            .unwrap_or_default()
    }

    /// The centre an organisation belongs to: itself, or the centre above a station.
    pub fn centre_of(&self, org: Id) -> Option<Id> {
        let o = self.orgs.get(&org)?;
        match o.kind {
            OrgKind::CommunityHealthCentre => Some(o.id),
            OrgKind::Station => o.parent_id.filter(|p| {
                self.orgs
                    .get(p)
                    .is_some_and(|c| c.kind == OrgKind::CommunityHealthCentre)
            }),
            _ => None,
        }
    }

    /// The street or town an organisation lies in (itself if it is one).
    pub fn street_of(&self, org: Id) -> Option<Id> {
        let mut at = self.orgs.get(&org)?;
        for _ in 0..8 {
            if matches!(at.kind, OrgKind::Street | OrgKind::Town) {
                return Some(at.id);
            }
            at = self.orgs.get(&at.parent_id?)?;
        }
        None
    }

    /// The centre serving a street or town when a resident has no contract.
    pub fn centre_of_street(&self, street: Id) -> Option<Id> {
        self.street_centre.get(&street).copied()
    }

    /// The units an organisation's resources count towards: its district, street,
    /// centre (for a centre or station) and itself when it is a hospital.
    pub fn resource_units(&self, org: Id) -> Vec<Id> {
        let Some(o) = self.orgs.get(&org) else {
            return Vec::new();
        };
        let mut v = Vec::with_capacity(4);
        v.extend(self.district(&o.district_code));
        v.extend(self.street_of(org));
        v.extend(self.centre_of(org));
        if o.kind == OrgKind::Hospital {
            v.push(o.id);
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Org units shown on the dashboards: the districts, streets and towns, centres and
    /// hospitals, in tree order.
    pub fn reporting_units(&self) -> Vec<&Organisation> {
        let mut v: Vec<&Organisation> = self
            .orgs
            .values()
            .filter(|o| {
                matches!(
                    o.kind,
                    OrgKind::District
                        | OrgKind::Street
                        | OrgKind::Town
                        | OrgKind::CommunityHealthCentre
                        | OrgKind::Hospital
                )
            })
            .collect();
        v.sort_by_key(|o| (kind_rank(o.kind), o.id));
        v
    }

    /// Units directly below `parent` among the reporting units (streets under a
    /// district, centres under a street).
    pub fn children(&self, parent: Id) -> Vec<&Organisation> {
        self.reporting_units()
            .into_iter()
            .filter(|o| o.parent_id == Some(parent))
            .collect()
    }
}

fn kind_rank(k: OrgKind) -> u8 {
    match k {
        OrgKind::District => 0,
        OrgKind::Street | OrgKind::Town => 1,
        OrgKind::CommunityHealthCentre => 2,
        OrgKind::Hospital => 3,
        _ => 4,
    }
}

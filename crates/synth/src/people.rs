//! Households and residents: the age pyramid, household make-up, addresses, identity
//! numbers with the district's region codes, registered and migrant residents.

use std::collections::HashMap;

use chrono::{Datelike, Days, Months, NaiveDate};
use dhp_core::{Household, Id, IdentityNumber, Resident, Sex};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::DistrictConfig;
use crate::draw::weighted;
use crate::names;
use crate::registry::{zone_index, Registry};

/// A resident with what the history generator needs beside the record.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub resident: Resident,
    /// Index of the community health centre serving the household.
    pub centre: usize,
    /// Service circle of the address: 0 east, 1 central, 2 west.
    pub zone: usize,
}

#[derive(Debug, Default)]
pub(crate) struct People {
    pub households: Vec<Household>,
    pub persons: Vec<Person>,
    /// The parents of each minor of a household: (child, parent, HL7 RoleCode).
    pub guardians: Vec<(Id, Id, &'static str)>,
}

/// Issues identity-number sequences so that no two residents share a number.
#[derive(Default)]
struct Sequences(HashMap<(u32, NaiveDate, bool), u16>);

impl Sequences {
    fn next(&mut self, region: &str, birth: NaiveDate, sex: Sex) -> Option<u16> {
        let male = sex == Sex::Male;
        let region_n: u32 = region.parse().unwrap_or(0);
        let n = self.0.entry((region_n, birth, male)).or_insert(0);
        if *n >= 500 {
            return None;
        }
        // Start each (region, date) at a spread-out offset, as police-station prefixes do.
        let start = (region_n as u64 * 31 + birth.num_days_from_ce() as u64 * 17) % 500;
        let k = (start + *n as u64) % 500;
        *n += 1;
        Some(k as u16 * 2 + u16::from(male))
    }
}

fn birth_for_age(rng: &mut ChaCha8Rng, end: NaiveDate, age: u32) -> NaiveDate {
    let anniversary = end - Months::new(12 * age);
    let birth = anniversary - Days::new(rng.random_range(0..365));
    birth.min(end)
}

/// Generate `n` residents in households, anchored on the age pyramid.
pub(crate) fn generate(
    cfg: &DistrictConfig,
    reg: &Registry,
    n: usize,
    end: NaiveDate,
    rng: &mut ChaCha8Rng,
) -> Result<People, String> {
    let area_shares: Vec<f64> = cfg.areas.iter().map(|a| a.share).collect();
    let mut seq = Sequences::default();
    let mut people = People::default();
    let district = &cfg.district.code;
    while people.persons.len() < n {
        let area = weighted(rng, &area_shares);
        let a = &cfg.areas[area];
        let candidates: Vec<usize> = (0..cfg.centres.len())
            .filter(|&i| cfg.centres[i].area == a.code)
            .collect();
        let shares: Vec<f64> = candidates.iter().map(|&i| cfg.centres[i].share).collect();
        let centre = candidates[weighted(rng, &shares)];
        let household_id = people.households.len() as Id + 1;
        let address = format!(
            "{}{}{}号{}{:02}室",
            a.name_zh,
            a.roads[rng.random_range(0..a.roads.len())],
            rng.random_range(1..1000),
            rng.random_range(1..19),
            rng.random_range(1..5)
        );
        people.households.push(Household {
            id: household_id,
            district_code: district.clone(),
            street_org_id: reg.area_ids[area],
            address,
        });

        // Anchor member from the pyramid; the rest of the household around them.
        let band = weighted(rng, &cfg.population.age_bands) as u32;
        let anchor_age = band * 5 + rng.random_range(0..5);
        let mut members: Vec<(u32, Sex)> = Vec::new();
        let anchor_sex = if rng.random_bool(0.5) {
            Sex::Male
        } else {
            Sex::Female
        };
        members.push((anchor_age, anchor_sex));
        let opposite = |s: Sex| {
            if s == Sex::Male {
                Sex::Female
            } else {
                Sex::Male
            }
        };
        // Members (by place in `members`) who are a minor's parents, and the minors.
        let mut parents: Vec<(usize, &'static str)> = Vec::new();
        let mut minors: Vec<usize> = Vec::new();
        if anchor_age < 18 {
            let parent_age = anchor_age + rng.random_range(24..37);
            minors.push(0);
            parents.push((members.len(), "MTH"));
            members.push((parent_age, Sex::Female));
            if rng.random_bool(0.9) {
                parents.push((members.len(), "FTH"));
                members.push((parent_age + rng.random_range(0..4), Sex::Male));
            }
            if rng.random_bool(0.3) {
                let sib = anchor_age + rng.random_range(1..7);
                if sib < 18 {
                    minors.push(members.len());
                }
                members.push((
                    sib,
                    if rng.random_bool(0.5) {
                        Sex::Male
                    } else {
                        Sex::Female
                    },
                ));
            }
            if rng.random_bool(0.25) {
                members.push((
                    parent_age + rng.random_range(22..33),
                    if rng.random_bool(0.6) {
                        Sex::Female
                    } else {
                        Sex::Male
                    },
                ));
            }
        } else if anchor_age < 60 {
            if rng.random_bool(0.6) {
                let partner = (anchor_age as i64 + rng.random_range(-3..4)).max(18) as u32;
                members.push((partner, opposite(anchor_sex)));
            }
        } else if rng.random_bool(0.65) {
            let partner = (anchor_age as i64 + rng.random_range(-4..5)).max(60) as u32;
            members.push((partner, opposite(anchor_sex)));
        }

        let reg_share = match anchor_age {
            0..=17 => cfg.population.registered_by_age.child,
            18..=59 => cfg.population.registered_by_age.adult,
            _ => cfg.population.registered_by_age.elderly,
        };
        let registered = rng.random_bool(reg_share);
        let migrant_region = &cfg.population.migrant_regions
            [rng.random_range(0..cfg.population.migrant_regions.len())];
        let first_id = people.persons.len() as Id + 1;
        let written = members.len().min(n - people.persons.len());
        for &child in &minors {
            for &(parent, relation) in &parents {
                if child < written && parent < written {
                    people.guardians.push((
                        first_id + child as Id,
                        first_id + parent as Id,
                        relation,
                    ));
                }
            }
        }
        for (age, sex) in members {
            if people.persons.len() >= n {
                break;
            }
            let age = age.min(104);
            let birth = birth_for_age(rng, end, age);
            let region = if !registered {
                migrant_region.as_str()
            } else if birth.year() < cfg.district.county_code_until {
                cfg.district.old_county_code.as_str()
            } else {
                district.as_str()
            };
            let sequence = seq.next(region, birth, sex).ok_or_else(|| {
                format!("more than 500 residents share region {region}, birth date {birth} and sex")
            })?;
            let identity_number = IdentityNumber::compose(region, birth, sequence);
            let id = people.persons.len() as Id + 1;
            people.persons.push(Person {
                resident: Resident {
                    id,
                    district_code: district.clone(),
                    name: names::person_name(rng, sex == Sex::Male),
                    sex: identity_number.sex(),
                    identity_number,
                    birth_date: birth,
                    street_org_id: reg.area_ids[area],
                    household_id,
                    phone: names::phone(rng),
                    registered,
                },
                centre,
                zone: zone_index(&a.zone),
            });
        }
    }
    Ok(people)
}

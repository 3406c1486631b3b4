//! The district's organisations and staff: the real units of `data/district/qingpu.toml`
//! with beds and practitioners in the per-1,000 ratios of the calibration file.

use dhp_core::{HospitalLevel, Id, OrgKind, Organisation, Practitioner, PractitionerRole};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Calibration, DistrictConfig};
use crate::names;

/// A community health centre as the history generator needs it.
#[derive(Debug, Clone)]
pub(crate) struct CentreInfo {
    pub org_id: Id,
    pub stations: Vec<Id>,
    pub doctors: Vec<Id>,
}

/// A hospital with its specialists.
#[derive(Debug, Clone)]
pub(crate) struct HospitalInfo {
    pub org_id: Id,
    pub specialists: Vec<Id>,
    /// Weight as the district hospital of a combination, per zone (east, central, west).
    pub combination: [f64; 3],
    pub maternity: bool,
    /// City weight, for city hospitals.
    pub city_weight: f64,
}

/// Everything the history generator looks up.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    pub organisations: Vec<Organisation>,
    pub practitioners: Vec<Practitioner>,
    /// Street / town organisation ids, in config order.
    pub area_ids: Vec<Id>,
    pub centres: Vec<CentreInfo>,
    pub district_hospitals: Vec<HospitalInfo>,
    pub city_hospitals: Vec<HospitalInfo>,
}

pub(crate) fn zone_index(zone: &str) -> usize {
    match zone {
        "east" => 0,
        "central" => 1,
        _ => 2,
    }
}

/// Split `total` over `weights` by the largest-remainder method (exact total).
pub(crate) fn apportion(total: i64, weights: &[f64]) -> Vec<i64> {
    let sum: f64 = weights.iter().sum();
    if sum <= 0.0 || total <= 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut out: Vec<i64> = exact.iter().map(|x| x.floor() as i64).collect();
    let mut left = total - out.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.partial_cmp(&ra)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        out[i] += 1;
        left -= 1;
    }
    out
}

/// Build the organisation tree (ids in config order; no beds or staff yet).
pub(crate) fn build_orgs(cfg: &DistrictConfig) -> Registry {
    let d = &cfg.district;
    let mut orgs: Vec<Organisation> = Vec::new();
    let mut add = |code: &str,
                   zh: &str,
                   en: &str,
                   kind: OrgKind,
                   level: Option<HospitalLevel>,
                   parent: Option<Id>,
                   district: &str|
     -> Id {
        let id = orgs.len() as Id + 1;
        orgs.push(Organisation {
            id,
            code: code.to_string(),
            name_zh: zh.to_string(),
            name_en: en.to_string(),
            kind,
            level,
            parent_id: parent,
            district_code: district.to_string(),
            beds: 0,
        });
        id
    };
    let city = add(
        &cfg.city.code,
        &cfg.city.name_zh,
        &cfg.city.name_en,
        OrgKind::City,
        None,
        None,
        &cfg.city.code,
    );
    let district = add(
        &d.code,
        &d.name_zh,
        &d.name_en,
        OrgKind::District,
        None,
        Some(city),
        &d.code,
    );
    let commission = add(
        &format!("{}-HC", d.code),
        &d.commission_zh,
        &d.commission_en,
        OrgKind::Commission,
        None,
        Some(district),
        &d.code,
    );
    let cdc = add(
        &format!("{}-CDC", d.code),
        &d.cdc_zh,
        &d.cdc_en,
        OrgKind::PublicHealth,
        None,
        Some(district),
        &d.code,
    );
    let area_ids: Vec<Id> = cfg
        .areas
        .iter()
        .map(|a| {
            let kind = if a.kind == "street" {
                OrgKind::Street
            } else {
                OrgKind::Town
            };
            add(
                &a.code,
                &a.name_zh,
                &a.name_en,
                kind,
                None,
                Some(district),
                &d.code,
            )
        })
        .collect();
    let mut centres = Vec::new();
    for c in &cfg.centres {
        let area = cfg
            .areas
            .iter()
            .position(|a| a.code == c.area)
            .expect("centre area exists");
        let org_id = add(
            &c.code,
            &c.name_zh,
            &c.name_en,
            OrgKind::CommunityHealthCentre,
            None,
            Some(area_ids[area]),
            &d.code,
        );
        let stations = c
            .stations
            .iter()
            .enumerate()
            .map(|(i, name)| {
                add(
                    &format!("{}-ST{}", c.code, i + 1),
                    name,
                    &format!("{} station {}", c.name_en, i + 1),
                    OrgKind::Station,
                    None,
                    Some(org_id),
                    &d.code,
                )
            })
            .collect();
        centres.push(CentreInfo {
            org_id,
            stations,
            doctors: Vec::new(),
        });
    }
    let mut district_hospitals = Vec::new();
    for h in &cfg.hospitals {
        let org_id = add(
            &h.code,
            &h.name_zh,
            &h.name_en,
            OrgKind::Hospital,
            HospitalLevel::from_number(h.level),
            Some(district),
            &d.code,
        );
        let w = |z: &str| h.combination.get(z).copied().unwrap_or(0.0);
        district_hospitals.push(HospitalInfo {
            org_id,
            specialists: Vec::new(),
            combination: [w("east"), w("central"), w("west")],
            maternity: h.maternity,
            city_weight: 0.0,
        });
    }
    let mut city_hospitals = Vec::new();
    let _ = (commission, cdc);
    let mut city_beds = Vec::new();
    for h in &cfg.city_hospitals {
        let org_id = add(
            &h.code,
            &h.name_zh,
            &h.name_en,
            OrgKind::Hospital,
            Some(HospitalLevel::Tertiary),
            Some(city),
            &cfg.city.code,
        );
        city_beds.push((org_id, h.beds));
        city_hospitals.push(HospitalInfo {
            org_id,
            specialists: Vec::new(),
            combination: [0.0; 3],
            maternity: false,
            city_weight: h.weight,
        });
    }

    for (id, beds) in city_beds {
        orgs[id as usize - 1].beds = beds;
    }
    Registry {
        organisations: orgs,
        practitioners: Vec::new(),
        area_ids,
        centres,
        district_hospitals,
        city_hospitals,
    }
}

/// Give the district its beds and staff for `population` residents (counted on the
/// calibration date); `centre_population[i]` is the number centre `i` serves.
pub(crate) fn staff(
    reg: &mut Registry,
    cfg: &DistrictConfig,
    cal: &Calibration,
    population: i64,
    centre_population: &[i64],
    rng: &mut ChaCha8Rng,
) {
    let d = &cfg.district;
    let org_id = |code: String| {
        reg.organisations
            .iter()
            .find(|o| o.code == code)
            .map(|o| o.id)
            .expect("organisation built")
    };
    let commission = org_id(format!("{}-HC", d.code));
    let cdc = org_id(format!("{}-CDC", d.code));
    let orgs = &mut reg.organisations;
    let centres = &mut reg.centres;
    let district_hospitals = &mut reg.district_hospitals;
    let city_hospitals = &mut reg.city_hospitals;
    // Beds: the calibrated total over hospitals and centres by weight.
    let per_1000 = |key: &str| (cal.value(key) * population as f64 / 1000.0).round() as i64;
    let mut bed_weights: Vec<f64> = cfg.hospitals.iter().map(|h| h.beds_weight).collect();
    bed_weights.extend(cfg.centres.iter().map(|c| c.beds_weight));
    let beds = apportion(per_1000("beds_per_1000"), &bed_weights);
    let bed_holders: Vec<Id> = district_hospitals
        .iter()
        .map(|h| h.org_id)
        .chain(centres.iter().map(|c| c.org_id))
        .collect();
    for (id, n) in bed_holders.iter().zip(&beds) {
        orgs[*id as usize - 1].beds = *n;
    }

    // Staff in the calibrated ratios; every centre has at least one family doctor.
    let mut practitioners = Vec::new();
    let mut hire = |role: PractitionerRole, org: Id, district: &str, rng: &mut ChaCha8Rng| -> Id {
        let id = practitioners.len() as Id + 1;
        practitioners.push(Practitioner {
            id,
            name: {
                let male = rng.random_bool(0.5);
                names::person_name(rng, male)
            },
            role,
            org_id: org,
            district_code: district.to_string(),
        });
        id
    };
    let centre_weights: Vec<f64> = centre_population.iter().map(|&p| p.max(1) as f64).collect();
    let gps = per_1000("gps_per_1000").max(centres.len() as i64);
    let gp_split = apportion(gps - centres.len() as i64, &centre_weights);
    for (i, c) in centres.iter_mut().enumerate() {
        for _ in 0..gp_split[i] + 1 {
            c.doctors
                .push(hire(PractitionerRole::FamilyDoctor, c.org_id, &d.code, rng));
        }
    }
    // At least one public-health doctor and one specialist, however small the district.
    let public_health =
        ((d.public_health_doctors_per_1000 * population as f64 / 1000.0).round() as i64).max(1);
    for _ in 0..public_health {
        hire(PractitionerRole::PublicHealthDoctor, cdc, &d.code, rng);
    }
    let specialists = (per_1000("physicians_per_1000") - gps - public_health).max(1);
    let hospital_weights: Vec<f64> = cfg.hospitals.iter().map(|h| h.beds_weight).collect();
    for (h, n) in district_hospitals
        .iter_mut()
        .zip(apportion(specialists, &hospital_weights))
    {
        for _ in 0..n {
            h.specialists
                .push(hire(PractitionerRole::Specialist, h.org_id, &d.code, rng));
        }
    }
    let nurses = per_1000("nurses_per_1000");
    let community_nurses = (nurses as f64 * d.community_nurse_share).round() as i64;
    for (c, n) in centres
        .iter()
        .zip(apportion(community_nurses, &centre_weights))
    {
        for _ in 0..n {
            hire(PractitionerRole::Nurse, c.org_id, &d.code, rng);
        }
    }
    for (h, n) in district_hospitals
        .iter()
        .zip(apportion(nurses - community_nurses, &hospital_weights))
    {
        for _ in 0..n {
            hire(PractitionerRole::Nurse, h.org_id, &d.code, rng);
        }
    }
    // Managers (not counted among clinical staff) and the city hospitals' specialists
    // who receive referrals (counted in the city, not the district).
    for org in [commission, commission, cdc] {
        hire(PractitionerRole::Manager, org, &d.code, rng);
    }
    for c in centres.iter() {
        hire(PractitionerRole::Manager, c.org_id, &d.code, rng);
    }
    for h in district_hospitals.iter() {
        hire(PractitionerRole::Manager, h.org_id, &d.code, rng);
    }
    for h in city_hospitals.iter_mut() {
        for _ in 0..4 {
            h.specialists.push(hire(
                PractitionerRole::Specialist,
                h.org_id,
                &cfg.city.code,
                rng,
            ));
        }
    }
    reg.practitioners = practitioners;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_keeps_the_total() {
        assert_eq!(apportion(10, &[1.0, 1.0, 1.0]), vec![4, 3, 3]);
        assert_eq!(apportion(7, &[0.0, 2.0, 5.0]), vec![0, 2, 5]);
        assert_eq!(apportion(0, &[1.0]), vec![0]);
        let v = apportion(4837, &[34.0, 16.0, 10.0, 6.0, 12.0, 8.0, 1.0, 1.5]);
        assert_eq!(v.iter().sum::<i64>(), 4837);
    }
}

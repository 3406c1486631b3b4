//! `Patient` ⇄ [`Resident`]: the resident identity number is `Patient.identifier` with
//! system [`RESIDENT_ID_SYSTEM`] and type v2-0203 `NI`.

use chrono::NaiveDate;
use dhp_core::{IdentityNumber, Resident, Sex};
use serde_json::{json, Value};

use crate::outcome::{Issue, IssueCode};
use crate::RESIDENT_ID_SYSTEM;

/// Extension: whether the resident holds the district's household registration (户籍)
/// rather than living there as a migrant (常住非户籍).
pub const HOUSEHOLD_REGISTRATION_EXT: &str =
    "https://fhir.dhp.example/StructureDefinition/household-registration";

/// What a Patient is drawn from besides the resident row.
#[derive(Debug, Clone, Copy)]
pub struct PatientContext<'a> {
    /// The household's address line.
    pub address_line: Option<&'a str>,
    pub city: &'a str,
    pub district: &'a str,
    /// Show the identity number masked and leave out contact details (the reader's role
    /// does not need them); the resource is labelled `MASKED`.
    pub masked: bool,
}

fn gender(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

/// The FHIR Patient for a resident.
pub fn to_fhir(r: &Resident, ctx: &PatientContext<'_>) -> Value {
    let id_value = if ctx.masked {
        r.identity_number.masked()
    } else {
        r.identity_number.as_str().to_string()
    };
    // Chinese names: the first character is the family name (single-character
    // surnames, as the registry holds them).
    let mut chars = r.name.chars();
    let family: String = chars.next().map(String::from).unwrap_or_default();
    let given: String = chars.collect();
    let mut name = json!({ "use": "official", "text": r.name, "family": family });
    if !given.is_empty() {
        name["given"] = json!([given]);
    }
    let mut p = json!({
        "resourceType": "Patient",
        "id": r.id.to_string(),
        "identifier": [{
            "use": "official",
            "type": {
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "NI",
                    "display": "National unique individual identifier",
                }],
                "text": "居民身份证号码",
            },
            "system": RESIDENT_ID_SYSTEM,
            "value": id_value,
        }],
        "name": [name],
        "gender": gender(r.sex),
        "birthDate": if ctx.masked {
            dhp_core::identity::masked_birth(r.birth_date)
        } else {
            r.birth_date.to_string()
        },
        "extension": [{ "url": HOUSEHOLD_REGISTRATION_EXT, "valueBoolean": r.registered }],
        "managingOrganization": { "reference": format!("Organization/{}", r.street_org_id) },
    });
    let mut address = json!({
        "use": "home",
        "type": "physical",
        "city": ctx.city,
        "district": ctx.district,
        "country": "CN",
    });
    if let Some(line) = ctx.address_line.filter(|_| !ctx.masked) {
        address["line"] = json!([line]);
        address["text"] = json!(format!("{}{}{}", ctx.city, ctx.district, line));
    }
    p["address"] = json!([address]);
    if ctx.masked {
        p["meta"] = json!({
            "security": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "MASKED",
                "display": "masked",
            }]
        });
    } else {
        p["telecom"] = json!([{ "system": "phone", "value": r.phone, "use": "mobile" }]);
    }
    p
}

/// Mask a stored Patient for a reader whose role does not need the identity number:
/// every identifier masked (`110105********002X`), the birth date cut to its year, no
/// narrative, no contained resources, no telecom or contact, no address line, and the
/// `MASKED` security label — the same as [`to_fhir`] with `masked`. Nothing left
/// rebuilds the number.
pub fn mask(p: &mut Value) {
    if let Some(ids) = p.get_mut("identifier").and_then(Value::as_array_mut) {
        for id in ids {
            if let Some(v) = id.get("value").and_then(Value::as_str) {
                id["value"] = json!(dhp_core::identity::mask_text(v));
            }
        }
    }
    if let Some(born) = p.get("birthDate").and_then(Value::as_str) {
        p["birthDate"] = json!(born.chars().take(4).collect::<String>());
    }
    if let Some(obj) = p.as_object_mut() {
        obj.remove("text");
        obj.remove("contained");
    }
    if let Some(obj) = p.as_object_mut() {
        obj.remove("telecom");
        obj.remove("contact");
    }
    if let Some(addresses) = p.get_mut("address").and_then(Value::as_array_mut) {
        for a in addresses {
            if let Some(obj) = a.as_object_mut() {
                obj.remove("line");
                obj.remove("text");
            }
        }
    }
    let label = json!({
        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
        "code": "MASKED",
        "display": "masked",
    });
    if !p.get("meta").is_some_and(Value::is_object) {
        p["meta"] = json!({});
    }
    match p["meta"].get_mut("security").and_then(Value::as_array_mut) {
        Some(labels) => labels.push(label),
        None => p["meta"]["security"] = json!([label]),
    }
}

/// A resident as a client describes it in a Patient, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientInput {
    pub identity_number: IdentityNumber,
    pub name: String,
    pub sex: Sex,
    pub birth_date: NaiveDate,
    pub phone: Option<String>,
    /// Household registration, when the Patient states it.
    pub registered: Option<bool>,
    /// The home address as written (line, then text), to place the resident.
    pub address: Option<String>,
    /// `managingOrganization`, when given (`Organization/{id}`).
    pub managing_org: Option<i64>,
}

/// Read a Patient from a client, checking it against the identity rules as of `today`.
/// Every problem found is reported with the path of its element.
pub fn from_fhir(v: &Value, today: NaiveDate) -> Result<PatientInput, Vec<Issue>> {
    let mut issues = Vec::new();
    if v.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        issues.push(Issue::at(
            IssueCode::Invalid,
            "Patient.resourceType",
            "must be \"Patient\"",
        ));
        return Err(issues);
    }
    // The identifier with our system; every other identifier is kept out of the check.
    let identifiers = v
        .get("identifier")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut identity = None;
    match identifiers
        .iter()
        .position(|i| i.get("system").and_then(Value::as_str) == Some(RESIDENT_ID_SYSTEM))
    {
        None => issues.push(Issue::at(
            IssueCode::Required,
            "Patient.identifier",
            format!("an identifier with system {RESIDENT_ID_SYSTEM} (resident identity number) is required"),
        )),
        Some(i) => {
            let path = format!("Patient.identifier[{i}].value");
            match identifiers[i].get("value").and_then(Value::as_str) {
                None => issues.push(Issue::at(IssueCode::Required, path, "is required")),
                Some(raw) => match IdentityNumber::parse(raw, today) {
                    Ok(id) => identity = Some(id),
                    Err(e) => issues.push(Issue::at(
                        IssueCode::Value,
                        path,
                        e.to_string().trim_start_matches("identity number "),
                    )),
                },
            }
        }
    }
    let name = v
        .get("name")
        .and_then(Value::as_array)
        .and_then(|names| names.first())
        .and_then(|n| {
            n.get("text")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    let family = n.get("family").and_then(Value::as_str).unwrap_or_default();
                    let given: String = n
                        .get("given")
                        .and_then(Value::as_array)
                        .map(|g| g.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let full = format!("{family}{given}");
                    (!full.is_empty()).then_some(full)
                })
        })
        .filter(|n| !n.trim().is_empty());
    if name.is_none() {
        issues.push(Issue::at(
            IssueCode::Required,
            "Patient.name",
            "a name (text, or family and given) is required",
        ));
    }
    let sex = match v.get("gender").and_then(Value::as_str) {
        None => identity.as_ref().map(IdentityNumber::sex),
        Some("male") => Some(Sex::Male),
        Some("female") => Some(Sex::Female),
        Some(other) => {
            issues.push(Issue::at(
                IssueCode::Value,
                "Patient.gender",
                format!("{other:?} is not recorded on a resident identity card (male or female)"),
            ));
            None
        }
    };
    if let (Some(id), Some(s)) = (&identity, sex) {
        if id.sex() != s {
            issues.push(Issue::at(
                IssueCode::Value,
                "Patient.gender",
                format!(
                    "{} disagrees with the identity number ({})",
                    gender(s),
                    gender(id.sex())
                ),
            ));
        }
    }
    let birth_date = match v.get("birthDate").and_then(Value::as_str) {
        None => identity.as_ref().map(IdentityNumber::birth_date),
        Some(text) => match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                issues.push(Issue::at(
                    IssueCode::Value,
                    "Patient.birthDate",
                    format!("{text:?} is not a date YYYY-MM-DD"),
                ));
                None
            }
        },
    };
    if let (Some(id), Some(d)) = (&identity, birth_date) {
        if id.birth_date() != d {
            issues.push(Issue::at(
                IssueCode::Value,
                "Patient.birthDate",
                format!(
                    "{d} disagrees with the identity number ({})",
                    id.birth_date()
                ),
            ));
        }
    }
    let phone = v
        .get("telecom")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find(|c| c.get("system").and_then(Value::as_str) == Some("phone"))
        })
        .and_then(|c| c.get("value").and_then(Value::as_str))
        .map(str::to_string);
    let registered = v
        .get("extension")
        .and_then(Value::as_array)
        .and_then(|e| {
            e.iter()
                .find(|x| x.get("url").and_then(Value::as_str) == Some(HOUSEHOLD_REGISTRATION_EXT))
        })
        .and_then(|x| x.get("valueBoolean").and_then(Value::as_bool));
    let address = v
        .get("address")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter()
                .find(|x| x.get("use").and_then(Value::as_str) != Some("old"))
        })
        .and_then(|a| {
            let line: String = a
                .get("line")
                .and_then(Value::as_array)
                .map(|l| l.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let text = a.get("text").and_then(Value::as_str).unwrap_or_default();
            let full = if line.is_empty() {
                text.to_string()
            } else {
                line
            };
            (!full.trim().is_empty()).then_some(full)
        });
    let managing_org = match v
        .pointer("/managingOrganization/reference")
        .and_then(Value::as_str)
    {
        None => None,
        Some(r) => {
            match r
                .strip_prefix("Organization/")
                .and_then(|id| id.parse::<i64>().ok())
            {
                Some(id) => Some(id),
                None => {
                    issues.push(Issue::at(
                    IssueCode::Value,
                    "Patient.managingOrganization.reference",
                    format!("{r:?} is not a local reference to an Organization (e.g. Organization/4)"),
                ));
                    None
                }
            }
        }
    };
    match (identity, name, sex, birth_date) {
        (Some(identity_number), Some(name), Some(sex), Some(birth_date)) if issues.is_empty() => {
            Ok(PatientInput {
                identity_number,
                name,
                sex,
                birth_date,
                phone,
                registered,
                address,
                managing_org,
            })
        }
        _ => Err(issues),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
    }

    fn resident() -> Resident {
        let id = IdentityNumber::parse("11010519491231002X", today()).unwrap();
        Resident {
            id: 42,
            district_code: "310118".into(),
            sex: id.sex(),
            birth_date: id.birth_date(),
            identity_number: id,
            name: "王秀英".into(),
            street_org_id: 5,
            household_id: 9,
            phone: "13900000000".into(),
            registered: true,
        }
    }

    fn ctx(masked: bool) -> PatientContext<'static> {
        PatientContext {
            address_line: Some("夏阳街道城中北路1号101室"),
            city: "上海市",
            district: "青浦区",
            masked,
        }
    }

    #[test]
    fn a_resident_maps_to_patient_and_back() {
        let p = to_fhir(&resident(), &ctx(false));
        assert_eq!(p["id"], "42");
        assert_eq!(p["identifier"][0]["system"], RESIDENT_ID_SYSTEM);
        assert_eq!(p["identifier"][0]["value"], "11010519491231002X");
        assert_eq!(p["name"][0]["family"], "王");
        assert_eq!(p["name"][0]["given"][0], "秀英");
        assert_eq!(p["gender"], "female");
        assert_eq!(p["birthDate"], "1949-12-31");
        let back = from_fhir(&p, today()).unwrap();
        assert_eq!(back.identity_number.as_str(), "11010519491231002X");
        assert_eq!(back.name, "王秀英");
        assert_eq!(back.sex, Sex::Female);
        assert_eq!(back.phone.as_deref(), Some("13900000000"));
    }

    #[test]
    fn masking_a_stored_patient_matches_masking_a_mapped_one() {
        let mut stored = to_fhir(&resident(), &ctx(false));
        mask(&mut stored);
        let mapped = to_fhir(&resident(), &ctx(true));
        assert_eq!(stored["identifier"], mapped["identifier"]);
        assert_eq!(stored["meta"], mapped["meta"]);
        assert!(stored.get("telecom").is_none());
        assert!(stored["address"][0].get("line").is_none());
        assert!(!stored.to_string().contains("19491231"));
    }

    #[test]
    fn masking_hides_the_number_and_the_contact_details() {
        let p = to_fhir(&resident(), &ctx(true));
        assert_eq!(p["identifier"][0]["value"], "110105********002X");
        assert!(p.get("telecom").is_none());
        assert!(p["address"][0].get("line").is_none());
        assert_eq!(p["meta"]["security"][0]["code"], "MASKED");
        assert!(!p.to_string().contains("19491231"));
    }

    #[track_caller]
    fn check(mut patch: impl FnMut(&mut Value), expect: &[(&str, &str)]) {
        let mut p = to_fhir(&resident(), &ctx(false));
        patch(&mut p);
        let issues = from_fhir(&p, today()).unwrap_err();
        let got: Vec<(String, String)> = issues
            .iter()
            .map(|i| {
                (
                    i.expression.clone().unwrap_or_default(),
                    i.diagnostics.clone(),
                )
            })
            .collect();
        assert_eq!(got.len(), expect.len(), "{got:?}");
        for ((path, diag), (want_path, want_text)) in got.iter().zip(expect) {
            assert_eq!(path, want_path);
            assert!(diag.contains(want_text), "{diag}");
        }
    }

    #[test]
    fn bad_patients_name_the_element_at_fault() {
        check(
            |p| p["identifier"][0]["value"] = json!("110105194912310021"),
            &[(
                "Patient.identifier[0].value",
                "Patient.identifier[0].value: check character should be X, got 1",
            )],
        );
        check(
            |p| p["identifier"] = json!([]),
            &[("Patient.identifier", "is required")],
        );
        check(
            |p| p["gender"] = json!("male"),
            &[("Patient.gender", "disagrees with the identity number")],
        );
        check(
            |p| p["gender"] = json!("other"),
            &[("Patient.gender", "male or female")],
        );
        check(
            |p| p["birthDate"] = json!("1950-01-01"),
            &[("Patient.birthDate", "disagrees")],
        );
        check(
            |p| p["birthDate"] = json!("31/12/1949"),
            &[("Patient.birthDate", "not a date")],
        );
        check(
            |p| p["name"] = json!([]),
            &[("Patient.name", "is required")],
        );
        check(
            |p| p["resourceType"] = json!("Person"),
            &[("Patient.resourceType", "must be")],
        );
        // Several problems are all reported.
        check(
            |p| {
                p["name"] = json!([]);
                p["identifier"][0]["value"] = json!("11010519491231002");
            },
            &[
                ("Patient.identifier[0].value", "18 characters"),
                ("Patient.name", "is required"),
            ],
        );
    }
}

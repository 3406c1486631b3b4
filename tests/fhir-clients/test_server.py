"""Drive the running dhp server with outside FHIR code.

Every body the server returns is validated with the fhir.resources R4B models (the R4
family); reads also go through the fhirpy client. Usage: test_server.py BASE_URL
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient

BASE = sys.argv[1].rstrip("/")
RESULTS = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    if ok:
        RESULTS["passed"] += 1
        print(f"ok   {name}")
    else:
        RESULTS["failed"] += 1
        print(f"FAIL {name} {detail}")


def http(method, path, token=None, form=None, body=None, headers=None):
    data = urllib.parse.urlencode(form).encode() if form else None
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if form:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if body is not None:
        req.add_header("Content-Type", "application/fhir+json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)

    def parse(raw):
        return json.loads(raw) if raw else None

    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers.get("Content-Type", ""), parse(res.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), parse(e.read())


def identity_number(region, birth, seq):
    """An 18-character resident identity number with its GB 11643 check character."""
    body = f"{region}{birth}{seq:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(body, weights))
    return body + "10X98765432"[total % 11]


def writes(client, system, doctor):
    """Create, update, version read, history, delete and Bundles, through fhirpy and
    plain HTTP; every answer validated by the outside models."""
    centre = None
    for oid in range(1, 80):
        status, _, org = http("GET", f"/fhir/Organization/{oid}", token=system)
        if status == 200 and org["name"].endswith("社区卫生服务中心"):
            centre = org
            break
    check("a community health centre to register at", centre is not None)
    if centre is None:
        return
    created = None
    for seq in range(901, 999, 2):
        number = identity_number("310118", "19310203", seq)
        patient = client.resource(
            "Patient",
            identifier=[{"system": "https://fhir.dhp.example/sid/cn-resident-id", "value": number}],
            name=[{"family": "林", "given": ["晓峰"]}],
            gender="male",
            birthDate="1931-02-03",
            managingOrganization={"reference": f"Organization/{centre['id']}"},
        )
        try:
            patient.save()
            created = patient
            break
        except Exception:  # noqa: BLE001 - the number may be taken; try the next
            continue
    check("fhirpy creates a Patient", created is not None and created.get("id"))
    if created is None:
        return
    pid = created["id"]
    validate("created Patient", created.serialize(), "Patient")
    check("created Patient is version 1", created["meta"]["versionId"] == "1", created.get("meta"))
    created["name"] = [{"family": "林", "given": ["晓锋"]}]
    created.save()
    check("fhirpy updates the Patient to version 2", created["meta"]["versionId"] == "2", created.get("meta"))
    status, _, v1 = http("GET", f"/fhir/Patient/{pid}/_history/1", token=system)
    check("vread version 1", status == 200 and v1["name"][0]["given"] == ["晓峰"], v1)
    validate("vread", v1, "Patient")
    status, _, hist = http("GET", f"/fhir/Patient/{pid}/_history", token=system)
    check("history has both versions", status == 200 and hist["total"] == 2, hist)
    validate("history", hist, "Bundle")

    obs = client.resource(
        "Observation",
        status="final",
        category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        code={"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
        subject={"reference": f"Patient/{pid}"},
        effectiveDateTime="2026-11-02T09:30:00+08:00",
        valueQuantity={"value": 146, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    )
    obs.save()
    check("fhirpy creates an Observation", obs.get("id") is not None)
    validate("created Observation", obs.serialize(), "Observation")
    oid = obs["id"]
    obs.delete()
    status, _, gone = http("GET", f"/fhir/Observation/{oid}", token=system)
    check("a deleted Observation is gone (410)", status == 410, status)
    validate("410", gone, "OperationOutcome")

    status, _, bad = http("POST", "/fhir/Patient", token=system, body={
        "resourceType": "Patient",
        "identifier": [{"system": "https://fhir.dhp.example/sid/cn-resident-id", "value": identity_number("310118", "19310203", 3)[:17] + "0"}],
        "name": [{"text": "错误"}],
    })
    check("a bad identity number: 400", status == 400, status)
    validate("bad Patient", bad, "OperationOutcome")
    check("the outcome names the element", bad["issue"][0].get("expression") == ["Patient.identifier[0].value"], bad)

    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:6f1b9a52-0000-4000-8000-000000000001", "request": {"method": "POST", "url": "Encounter"}, "resource": {
                "resourceType": "Encounter", "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"},
                "serviceProvider": {"reference": f"Organization/{centre['id']}"},
                "period": {"start": "2026-11-03T10:00:00+08:00"},
            }},
            {"fullUrl": "urn:uuid:6f1b9a52-0000-4000-8000-000000000002", "request": {"method": "POST", "url": "Condition"}, "resource": {
                "resourceType": "Condition",
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
                "subject": {"reference": f"Patient/{pid}"},
                "encounter": {"reference": "urn:uuid:6f1b9a52-0000-4000-8000-000000000001"},
                "onsetDateTime": "2026-11-03",
            }},
        ],
    }
    status, _, answer = http("POST", "/fhir", token=system, body=bundle)
    check("transaction 200", status == 200 and answer["type"] == "transaction-response", answer)
    validate("transaction-response", answer, "Bundle")
    for e in answer.get("entry", []):
        validate("transaction entry", e["resource"], e["resource"]["resourceType"])
    if status == 200:
        enc = answer["entry"][0]["resource"]["id"]
        check("urn:uuid resolved", answer["entry"][1]["resource"]["encounter"]["reference"] == f"Encounter/{enc}")
    bundle["entry"][1]["resource"]["code"]["coding"][0]["system"] = "http://snomed.info/sct"
    status, _, refused = http("POST", "/fhir", token=system, body=bundle)
    check("a transaction with a bad entry: 400", status == 400, status)
    validate("refused transaction", refused, "OperationOutcome")
    bundle["type"] = "batch"
    status, _, batch = http("POST", "/fhir", token=system, body=bundle)
    check("batch answers per entry", status == 200 and batch["entry"][0]["response"]["status"] == "201 Created" and batch["entry"][1]["response"]["status"] == "400", batch)
    validate("batch-response", batch, "Bundle")

    status, _, refusal = http("POST", "/fhir/Observation", token=doctor, body=obs.serialize() | {"subject": {"reference": "Patient/1"}})
    check("the doctor's write outside scope or in it is answered", status in (201, 403), status)
    validate("doctor's write", refusal, "Observation" if status == 201 else "OperationOutcome")


def validate_bundle(name, bundle):
    """A Bundle and every resource in it."""
    validate(name, bundle, "Bundle")
    for e in bundle.get("entry", []):
        r = e["resource"]
        validate(f"{name} entry", r, r["resourceType"])


def searches(client, system, doctor):
    """Searches of the record types with fhirpy: prefixes, sort, paging, includes;
    $everything; bulk $export. Every resource returned is validated."""
    status, _, first = http("GET", "/fhir/Observation?_count=1&_sort=_id", token=system)
    validate_bundle("Observation search", first)
    subject = first["entry"][0]["resource"]["subject"]["reference"]
    status, _, total = http("GET", f"/fhir/Observation?subject={subject}&_summary=count", token=system)
    validate("Observation _summary=count", total, "Bundle")
    # fhirpy follows the next links page by page.
    pages = client.resources("Observation").search(subject=subject).sort("-date").limit(3)
    fetched = pages.fetch_all()
    check("fhirpy pages through every Observation of a patient", len(fetched) == total["total"], (len(fetched), total["total"]))
    dates = [o["effectiveDateTime"] for o in fetched]
    check("sorted newest first", dates == sorted(dates, reverse=True), dates[:5])
    for o in fetched:
        validate("fhirpy Observation", o.serialize(), "Observation")
    if fetched:
        cut = dates[len(dates) // 2][:10]
        later = client.resources("Observation").search(subject=subject, date__ge=cut).fetch_all()
        check("date=ge prefix", len(later) > 0 and all(o["effectiveDateTime"][:10] >= cut for o in later), cut)
        earlier = client.resources("Observation").search(subject=subject, date__lt=cut).fetch_all()
        check("ge and lt split the series", len(later) + len(earlier) == len(fetched), (len(later), len(earlier), len(fetched)))
        code = fetched[0]["code"]["coding"][0]
        same = client.resources("Observation").search(subject=subject, code=f"{code['system']}|{code['code']}").fetch_all()
        check("code with system|code", len(same) > 0 and all(o["code"]["coding"][0]["code"] == code["code"] for o in same), code)

    # Includes and reverse includes, validated as raw Bundles.
    status, _, inc = http("GET", f"/fhir/Encounter?subject={subject}&_include=Encounter:subject&_include=Encounter:service-provider", token=system)
    check("Encounter search with _include", status == 200, inc)
    validate_bundle("Encounter _include", inc)
    kinds = {e["resource"]["resourceType"] for e in inc.get("entry", []) if e["search"]["mode"] == "include"}
    check("included Patient and Organization", {"Patient", "Organization"} <= kinds or not inc.get("entry"), kinds)
    pid = subject.split("/")[1]
    status, _, rev = http("GET", f"/fhir/Patient?_id={pid}&_revinclude=Condition:subject&_revinclude=Immunization:patient&_revinclude=CareTeam:subject", token=system)
    check("Patient search with _revinclude", status == 200, rev)
    validate_bundle("Patient _revinclude", rev)
    for path in [
        "/fhir/Condition?code=http://hl7.org/fhir/sid/icd-10|I10&_count=5",
        "/fhir/Immunization?date=ge2020&status=completed&_count=5",
        "/fhir/CareTeam?status=active&_count=5&_include=CareTeam:participant",
        "/fhir/Organization?name:contains=%E7%A4%BE%E5%8C%BA&_count=50",
        "/fhir/PractitionerRole?_count=5&_include=PractitionerRole:practitioner&_include=PractitionerRole:organization",
    ]:
        status, _, b = http("GET", path, token=doctor)
        check(f"{path}: 200", status == 200, b)
        validate_bundle(path, b)
    status, _, bad = http("GET", "/fhir/Observation?date=sa2020", token=system)
    check("unsupported prefix: 400", status == 400 and bad["issue"][0]["expression"] == ["Observation?date"], bad)
    validate("unsupported prefix", bad, "OperationOutcome")

    # $everything: the whole record, every resource valid.
    status, _, everything = http("GET", f"/fhir/Patient/{pid}/$everything", token=system)
    check("$everything 200", status == 200 and everything["total"] > 1, everything.get("total"))
    validate_bundle("$everything", everything)

    # Bulk export: kick off, poll, download; every line valid.
    status, headers, body = http_raw("GET", "/fhir/$export?_type=Organization,PractitionerRole,Patient,CareTeam,Immunization", token=system, headers={"Prefer": "respond-async"})
    check("$export kick-off 202", status == 202, body)
    location = headers.get("Content-Location", "")
    manifest = None
    for _ in range(600):
        status, headers, body = http_raw("GET", location[len(BASE):], token=system)
        if status == 200:
            manifest = json.loads(body)
            break
        check_progress = status == 202 and headers.get("X-Progress")
        if not check_progress:
            check("$export status while running", False, (status, body[:200]))
            break
        time.sleep(0.1)
    check("$export finishes with a manifest", manifest is not None and manifest["requiresAccessToken"] is True, manifest)
    lines = 0
    for out in (manifest or {}).get("output", []):
        status, headers, body = http_raw("GET", out["url"][len(BASE):], token=system)
        rows = [json.loads(l) for l in body.decode().splitlines() if l]
        check(f"$export {out['type']}: {out['count']} lines", status == 200 and len(rows) == out["count"], (status, len(rows)))
        bad_rows = 0
        for r in rows:
            try:
                get_fhir_model_class(r["resourceType"]).model_validate(r)
            except Exception as e:  # noqa: BLE001
                bad_rows += 1
                if bad_rows == 1:
                    print("   ", str(e)[:300])
        check(f"$export {out['type']}: every line valid R4B", bad_rows == 0 and all(r["resourceType"] == out["type"] for r in rows), bad_rows)
        lines += len(rows)
    check("$export wrote resources", lines > 2000, lines)


def http_raw(method, path, token=None, headers=None):
    """A request whose headers and raw body matter (bulk export)."""
    req = urllib.request.Request(BASE + path, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def validate(name, body, resource_type):
    """The outside models must accept what the server sent."""
    try:
        model = get_fhir_model_class(body["resourceType"])
        model.model_validate(body)
        check(f"{name}: {resource_type} valid R4B", body["resourceType"] == resource_type, body.get("resourceType"))
    except Exception as e:  # noqa: BLE001 - any rejection is a failure to report
        check(f"{name}: {resource_type} valid R4B", False, str(e)[:400])


def token(user, grant="password"):
    form = (
        {"grant_type": "password", "username": user, "password": user}
        if grant == "password"
        else {"grant_type": "client_credentials", "client_id": user, "client_secret": user}
    )
    status, _, body = http("POST", "/auth/token", form=form)
    check(f"token for {user}", status == 200 and body.get("token_type") == "Bearer", body)
    return body.get("access_token")


def main():
    status, ctype, meta = http("GET", "/fhir/metadata")
    check("metadata 200 fhir+json", status == 200 and ctype.startswith("application/fhir+json"), ctype)
    validate("metadata", meta, "CapabilityStatement")

    system = token("system", grant="client_credentials")
    manager = token("manager")
    doctor = token("doctor")

    status, _, full = http("GET", "/fhir/Patient/1", token=system)
    check("system reads Patient/1", status == 200, full)
    validate("Patient/1 (system)", full, "Patient")
    check("identity number in full", len(full["identifier"][0]["value"]) == 18 and "*" not in full["identifier"][0]["value"])

    status, _, masked = http("GET", "/fhir/Patient/1", token=manager)
    validate("Patient/1 (manager)", masked, "Patient")
    check("identity number masked for a manager", "********" in masked["identifier"][0]["value"])

    # The fhirpy client reads the same resource.
    client = SyncFHIRClient(BASE + "/fhir", authorization=f"Bearer {system}")
    resource = client.reference("Patient", "1").to_resource()
    check("fhirpy reads Patient/1", resource["id"] == "1" and resource["birthDate"] == full["birthDate"])
    validate("Patient/1 via fhirpy", resource.serialize(), "Patient")

    # The family doctor: some residents in scope, others refused with an OperationOutcome.
    seen = {"ok": 0, "forbidden": 0}
    for rid in range(1, 201):
        status, _, body = http("GET", f"/fhir/Patient/{rid}", token=doctor)
        if status == 200:
            seen["ok"] += 1
            if seen["ok"] == 1:
                validate("Patient in the doctor's scope", body, "Patient")
        elif status == 403:
            seen["forbidden"] += 1
            if seen["forbidden"] == 1:
                validate("403", body, "OperationOutcome")
                check("403 code forbidden", body["issue"][0]["code"] == "forbidden")
    check("doctor reads some and is refused others", seen["ok"] > 0 and seen["forbidden"] > 0, seen)

    # One of each record type, found through the documented id scheme
    # (row id = resident id x 10000 + k), validated by the outside models.
    for kind in ["Encounter", "Condition", "Observation", "Immunization", "CareTeam"]:
        found = None
        for rid in range(1, 400):
            status, _, body = http("GET", f"/fhir/{kind}/{rid * 10000}", token=system)
            if status == 200:
                found = body
                break
        check(f"a {kind} is readable", found is not None)
        if found:
            validate(kind, found, kind)
    for kind, rid in [("Organization", 1), ("Organization", 20), ("Practitioner", 1)]:
        status, _, body = http("GET", f"/fhir/{kind}/{rid}", token=doctor)
        check(f"{kind}/{rid} readable", status == 200, status)
        validate(f"{kind}/{rid}", body, kind)

    # Search: a searchset Bundle the outside models accept, fhirpy's search syntax with
    # prefixes, and paging links.
    status, _, bundle = http("GET", "/fhir/Patient?birthdate=ge1950-01-01&gender=female&_count=5", token=system)
    check("search 200", status == 200, status)
    validate("search result", bundle, "Bundle")
    check("search pages", len(bundle.get("entry", [])) == 5 and any(l["relation"] == "next" for l in bundle["link"]), bundle.get("link"))
    found = client.resources("Patient").search(birthdate__ge="1950-01-01", gender="female").limit(5).fetch()
    check(
        "fhirpy search with a prefix",
        0 < len(found) <= 5 and all(p["birthDate"] >= "1950-01-01" and p["gender"] == "female" for p in found),
        [(p["birthDate"], p["gender"]) for p in found],
    )
    for p in found[:2]:
        validate("fhirpy search match", p.serialize(), "Patient")
    older = client.resources("Patient").search(birthdate__lt="1950").limit(3).fetch()
    check("fhirpy search lt a year", all(p["birthDate"] < "1950-01-01" for p in older), [p["birthDate"] for p in older])
    status, _, count = http("GET", "/fhir/Patient?_summary=count", token=doctor)
    validate("_summary=count", count, "Bundle")
    check("doctor's count is below the district's", 0 < count["total"] < 2000, count.get("total"))
    status, _, unknown = http("GET", "/fhir/Patient?colour=red", token=system)
    check("unknown parameter: 400", status == 400, status)
    validate("unknown parameter", unknown, "OperationOutcome")

    writes(client, system, doctor)
    searches(client, system, doctor)

    status, _, log = http("GET", "/fhir/AuditEvent?_count=20", token=manager)
    check("manager reads the audit log", status == 200 and len(log.get("entry", [])) > 0, status)
    validate("audit log", log, "Bundle")
    for e in log.get("entry", [])[:20]:
        validate("AuditEvent", e["resource"], "AuditEvent")

    for name, path, tok, want_status, want_code in [
        ("no token", "/fhir/Patient/1", None, 401, "login"),
        ("unknown patient", "/fhir/Patient/99999999", system, 404, "not-found"),
        ("bad id", "/fhir/Patient/abc", system, 404, "not-found"),
        ("unsupported type", "/fhir/Medication/1", system, 404, "not-supported"),
    ]:
        status, _, body = http("GET", path, token=tok)
        check(f"{name}: status {want_status}", status == want_status, status)
        validate(name, body, "OperationOutcome")
        check(f"{name}: code {want_code}", body["issue"][0]["code"] == want_code, body)

    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

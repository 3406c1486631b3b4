"""Drive the running dhp server with outside FHIR code.

Every body the server returns is validated with the fhir.resources R4B models (the R4
family); reads also go through the fhirpy client. Usage: test_server.py BASE_URL
"""

import json
import sys
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


def http(method, path, token=None, form=None):
    data = urllib.parse.urlencode(form).encode() if form else None
    req = urllib.request.Request(BASE + path, data=data, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if form:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req) as res:
            return res.status, res.headers.get("Content-Type", ""), json.loads(res.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), json.loads(e.read())


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

    status, _, log = http("GET", "/fhir/AuditEvent?_count=20", token=manager)
    check("manager reads the audit log", status == 200 and len(log.get("entry", [])) > 0, status)
    validate("audit log", log, "Bundle")
    for e in log.get("entry", [])[:20]:
        validate("AuditEvent", e["resource"], "AuditEvent")

    for name, path, tok, want_status, want_code in [
        ("no token", "/fhir/Patient/1", None, 401, "login"),
        ("unknown patient", "/fhir/Patient/99999999", system, 404, "not-found"),
        ("bad id", "/fhir/Patient/abc", system, 404, "not-found"),
        ("unsupported type", "/fhir/Appointment/1", system, 404, "not-supported"),
    ]:
        status, _, body = http("GET", path, token=tok)
        check(f"{name}: status {want_status}", status == want_status, status)
        validate(name, body, "OperationOutcome")
        check(f"{name}: code {want_code}", body["issue"][0]["code"] == want_code, body)

    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

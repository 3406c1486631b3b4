//! The FHIR JSON input path: any bytes, as a client may send them, through every
//! resource reader. None may panic; what a reader accepts must read the same again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    if let Ok(p) = dhp_fhir::patient::from_fhir(&v, today) {
        // Accepted once, accepted again with the same reading.
        let again = dhp_fhir::patient::from_fhir(&v, today).expect("deterministic");
        assert_eq!(format!("{p:?}"), format!("{again:?}"));
    }
    let _ = dhp_fhir::input::encounter(&v);
    let _ = dhp_fhir::input::condition(&v);
    let _ = dhp_fhir::input::observation(&v);
    let _ = dhp_fhir::input::immunization(&v);
    for kind in ["Appointment", "ServiceRequest", "DiagnosticReport", "Practitioner"] {
        if let Some(spec) = dhp_fhir::input::stored_spec(kind) {
            let _ = dhp_fhir::input::stored(spec, &v);
        }
    }
    if let Some(text) = v.as_str() {
        let _ = dhp_fhir::input::parse_datetime(text);
    }
});

//! The search-parameter parser: any query string, for Patient and every record type,
//! strict and lenient. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    for lenient in [false, true] {
        let _ = dhp_fhir::search::parse_patient_search(&pairs, lenient);
        for kind in dhp_fhir::search::RECORD_TYPES {
            let _ = dhp_fhir::search::parse_record_search(kind, &pairs, lenient);
        }
    }
});

//! The detection CSV reader (`dhp surveillance detect`): any text as a series, then
//! every algorithm over what it accepts. None may panic; every observed count is a number.
#![no_main]

use dhp_core::surveillance::{read_series, Algorithm, ALGORITHMS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((dates, counts, cadence)) = read_series(text) else {
        return;
    };
    assert_eq!(dates.len(), counts.len());
    if counts.len() > 600 {
        return;
    }
    for name in ALGORITHMS {
        let Ok(algorithm) = Algorithm::configure(name, None, &[]) else {
            continue;
        };
        let scores = algorithm.score(&counts, cadence);
        assert_eq!(scores.len(), counts.len());
        for s in scores.into_iter().flatten() {
            assert!(s.observed.is_finite(), "{name}");
        }
    }
});

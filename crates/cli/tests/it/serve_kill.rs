//! `dhp serve` killed with SIGKILL while clients write: after a restart every write it
//! answered `201` is there, nothing is there twice (the table grows by the answered
//! writes plus at most the ones in flight at the kill), and the audit chain verifies.
//! One client books appointments meanwhile: every booking answered `201` is there,
//! booked, and no slot holds more than its capacity.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{dhp, stderr, stdout, Scratch};

/// `dhp serve` on `url`, its process and base address.
fn serve(url: &str) -> (Child, String) {
    let (child, base) = crate::serve_on(url, &[], Stdio::null(), "http");
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    (child, addr)
}

/// One HTTP/1.1 request: the status code and body, or `None` if the server is gone.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body.as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

fn token(addr: &str) -> String {
    let (status, body) = request(
        addr,
        "POST",
        "/auth/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "grant_type=client_credentials&client_id=system&client_secret=system",
    )
    .expect("the server answers");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

fn observations(url: &str) -> i64 {
    let o = dhp(&["stats", "--database", url, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["tables"]["observations"].as_i64().unwrap()
}

/// A systolic reading for Patient/`patient`, the `n`-th of this run.
fn reading(patient: i64, n: usize) -> String {
    let minute = n % 60;
    let hour = (n / 60) % 24;
    let day = 1 + (n / 1440) % 28;
    serde_json::json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": format!("2025-03-{day:02}T{hour:02}:{minute:02}:00+08:00"),
        "valueQuantity": {"value": 100 + (n % 80), "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}
    })
    .to_string()
}

/// Three rounds: serve, write from 4 clients, SIGKILL mid-stream, restart and check.
fn killed_under_writes_loses_and_doubles_nothing(url: &str) {
    let mut n_total = 0usize;
    for round in 0..3 {
        let before = observations(url);
        let (mut child, addr) = serve(url);
        let bearer = format!("Bearer {}", token(&addr));
        let (_, body) = request(
            &addr,
            "GET",
            "/fhir/Patient?_count=1",
            &[("Authorization", &bearer)],
            "",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let patient: i64 = v["entry"][0]["resource"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();

        // Free slots the pool offers, and residents to book them for.
        // Each round on days of its own (a resident books one service once a day).
        let find = |query: &str| {
            let (_, body) = request(
                &addr,
                "GET",
                &format!("/fhir/Appointment/$find?_count=40{query}"),
                &[("Authorization", &bearer)],
                "",
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            (v, body)
        };
        let (first, _) = find("");
        let day: chrono::NaiveDate = first["entry"][0]["resource"]["start"].as_str().unwrap()[..10]
            .parse()
            .unwrap();
        let from = day + chrono::Duration::days(2 * round as i64 + 1);
        let (v, body) = find(&format!("&start={from}T00:00:00%2B08:00"));
        let slots: Vec<String> = v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["resource"]["slot"][0]["reference"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(!slots.is_empty(), "the pool offers free slots: {body}");
        let (_, body) = request(
            &addr,
            "GET",
            "/fhir/Patient?_count=200",
            &[("Authorization", &bearer)],
            "",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let patients: Vec<String> = v["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
            .collect();
        let booked = Arc::new(Mutex::new(Vec::<String>::new()));
        let booker = {
            let (booked, addr, bearer, slots) =
                (booked.clone(), addr.clone(), bearer.clone(), slots.clone());
            let offset = round as usize * 7919;
            std::thread::spawn(move || {
                for n in offset.. {
                    let body = serde_json::json!({
                        "resourceType": "Appointment",
                        "status": "booked",
                        "slot": [{ "reference": slots[n % slots.len()] }],
                        "participant": [{ "actor": { "reference": format!("Patient/{}", patients[(n * 31) % patients.len()]) }, "status": "accepted" }],
                    })
                    .to_string();
                    let answer = request(
                        &addr,
                        "POST",
                        "/fhir/Appointment",
                        &[
                            ("Authorization", &bearer),
                            ("Content-Type", "application/fhir+json"),
                        ],
                        &body,
                    );
                    match answer {
                        Some((201, body)) => {
                            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                            booked
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap().to_string());
                        }
                        // Full, or the resident already booked that day.
                        Some((409, _)) => {}
                        Some((status, body)) => panic!("booking refused: {status} {body}"),
                        None => return,
                    }
                }
            })
        };
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(n_total));
        let mut writers = Vec::new();
        for _ in 0..4 {
            let (acked, in_flight, sent, addr, bearer) = (
                acked.clone(),
                in_flight.clone(),
                sent.clone(),
                addr.clone(),
                bearer.clone(),
            );
            writers.push(std::thread::spawn(move || {
                let mut lost_answers = 0;
                loop {
                    let n = sent.fetch_add(1, Ordering::SeqCst);
                    in_flight.fetch_add(1, Ordering::SeqCst);
                    let answer = request(
                        &addr,
                        "POST",
                        "/fhir/Observation",
                        &[
                            ("Authorization", &bearer),
                            ("Content-Type", "application/fhir+json"),
                        ],
                        &reading(patient, n),
                    );
                    match answer {
                        Some((201, body)) => {
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                            acked
                                .lock()
                                .unwrap()
                                .push(v["id"].as_str().unwrap().to_string());
                        }
                        Some((status, body)) => panic!("write refused: {status} {body}"),
                        // The server is gone: this write may or may not have landed.
                        None => {
                            lost_answers += 1;
                            return lost_answers;
                        }
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(1500 + 500 * round));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let unanswered: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        booker.join().unwrap();
        let booked = booked.lock().unwrap().clone();
        assert!(
            !booked.is_empty(),
            "round {round}: no booking answered before the kill"
        );
        n_total = sent.load(Ordering::SeqCst);
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() > 20,
            "round {round}: only {} writes before the kill",
            acked.len()
        );

        // Restarted: every answered write is there, once.
        let after = observations(url);
        let grown = (after - before) as usize;
        assert!(
            grown >= acked.len() && grown <= acked.len() + unanswered,
            "round {round}: {} answered, {unanswered} unanswered, table grew by {grown}",
            acked.len()
        );
        let (mut child, addr) = serve(url);
        let bearer = format!("Bearer {}", token(&addr));
        for id in &acked {
            let (status, _) = request(
                &addr,
                "GET",
                &format!("/fhir/Observation/{id}"),
                &[("Authorization", &bearer)],
                "",
            )
            .unwrap();
            assert_eq!(
                status, 200,
                "round {round}: Observation/{id} was answered 201 and is gone"
            );
        }
        for id in &booked {
            let (status, body) = request(
                &addr,
                "GET",
                &format!("/fhir/Appointment/{id}"),
                &[("Authorization", &bearer)],
                "",
            )
            .unwrap();
            assert_eq!(
                status, 200,
                "round {round}: Appointment/{id} was answered 201 and is gone"
            );
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["status"], "booked", "round {round}: {body}");
        }
        for slot in &slots {
            let (_, body) = request(
                &addr,
                "GET",
                &format!("/fhir/{slot}"),
                &[("Authorization", &bearer)],
                "",
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let capacity = v["extension"][1]["extension"][0]["valueInteger"]
                .as_i64()
                .unwrap();
            let (_, body) = request(
                &addr,
                "GET",
                &format!("/fhir/Appointment?slot={slot}&status=booked&_summary=count"),
                &[("Authorization", &bearer)],
                "",
            )
            .unwrap();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert!(
                v["total"].as_i64().unwrap() <= capacity,
                "round {round}: {slot} holds more than its {capacity} places: {body}"
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let o = dhp(&["audit", "verify", "--database", url]);
        assert!(
            o.status.success(),
            "round {round}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        eprintln!(
            "round {round}: {} answered, {unanswered} unanswered, table grew by {grown}; {} bookings answered",
            acked.len(),
            booked.len()
        );
    }
}

fn generated(url: &str) {
    let o = dhp(&[
        "generate",
        "--database",
        url,
        "--residents",
        "200",
        "--seed",
        "5",
        "--years",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_server_killed_under_writes_keeps_every_answered_write_once_on_sqlite() {
    let dir = Scratch::new("serve-kill");
    let url = dir.url("d.db");
    generated(&url);
    killed_under_writes_loses_and_doubles_nothing(&url);
}

#[test]
fn a_server_killed_under_writes_keeps_every_answered_write_once_on_postgres() {
    let Some((url, drop_it)) = crate::cli::postgres_database("serve_kill") else {
        eprintln!("DHP_TEST_POSTGRES_URL not set: PostgreSQL kill test skipped");
        return;
    };
    generated(&url);
    killed_under_writes_loses_and_doubles_nothing(&url);
    drop_it();
}

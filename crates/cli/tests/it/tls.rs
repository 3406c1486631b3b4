//! `dhp serve --tls-cert --tls-key`: the portal over TLS (rustls), cookies `Secure`,
//! links in `https`; a key that cannot be used stops the server at start, named.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::{dhp, stderr, Scratch};

/// One request over TLS to `addr`, trusting only `root`: the whole answer as text.
fn over_tls(
    addr: &str,
    root: &rustls::pki_types::CertificateDer<'static>,
    request: &str,
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(addr).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(request.as_bytes()).unwrap();
    let mut text = String::new();
    // The server closes after the answer (Connection: close).
    let _ = tls.read_to_string(&mut text);
    text
}

#[test]
fn the_server_speaks_tls_with_its_certificate_and_sets_secure_cookies() {
    let dir = Scratch::new("tls");
    let url = dir.url("d.db");
    let o = dhp(&[
        "generate",
        "--database",
        &url,
        "--residents",
        "50",
        "--seed",
        "2",
        "--years",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = dir.0.join("cert.pem");
    let key = dir.0.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();

    let (mut child, base) = crate::serve_on(
        &url,
        &[
            "--tls-cert".as_ref(),
            cert.as_os_str(),
            "--tls-key".as_ref(),
            key.as_os_str(),
        ],
        Stdio::piped(),
        "https",
    );
    let mut said = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    assert!(said.contains("serving over TLS"), "{said}");
    assert!(!said.contains("without TLS"));
    let addr = base
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let root = certified.cert.der().clone();

    let health = over_tls(
        &addr,
        &root,
        &format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let form = "username=manager&password=manager";
    let login = over_tls(
        &addr,
        &root,
        &format!(
            "POST /login?lang=en HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            form.len()
        ),
    );
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {login}"));
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Links are https.
    let meta = over_tls(
        &addr,
        &root,
        &format!("GET /fhir/metadata HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    );
    assert!(meta.contains(&format!("https://{addr}/fhir")), "{meta}");
    // Plain HTTP to the TLS port gets no page.
    let mut plain = TcpStream::connect(&addr).unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    // The server may close the connection before the request is even written (a
    // broken pipe): that too is no page.
    let _ = write!(
        plain,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = Vec::new();
    let _ = plain.read_to_end(&mut text);
    assert!(!String::from_utf8_lossy(&text).contains("\"status\""));
    child.kill().unwrap();
    child.wait().unwrap();

    // A key that is not a key: the server says which file and does not start.
    let bad = dir.0.join("bad-key.pem");
    std::fs::write(&bad, "not a key").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_dhp"))
        .args(["serve", "--database", &url, "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&bad)
        .env("DHP_LOG", "error")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad-key.pem"), "{}", stderr(&o));
    // One without the other is refused by the command line.
    let o = dhp(&[
        "serve",
        "--database",
        &url,
        "--tls-cert",
        cert.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--tls-key"), "{}", stderr(&o));
}

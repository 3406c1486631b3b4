//! `dhp user add` and `dhp client add`, and a token for what they created.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::browser::start_server;
use crate::{dhp, stderr, stdout, Scratch};

/// Runs `dhp` with `args`, `input` on standard input.
pub(crate) fn with_stdin(args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dhp"))
        .args(args)
        .env("DHP_LOG", "error")
        .env_remove("DHP_PASSWORD")
        .env_remove("DHP_CLIENT_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// POST a form to the server and answer (status line, body).
fn post_form(base: &str, path: &str, form: &str) -> (String, String) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn accounts_are_checked_then_can_get_tokens() {
    let dir = Scratch::new("accounts");
    let url = dir.url("d.db");
    assert!(dhp(&[
        "generate",
        "--database",
        &url,
        "--residents",
        "300",
        "--seed",
        "4"
    ])
    .status
    .success());

    let ok = with_stdin(
        &["client", "add", "--database", &url, "--client-id", "lis"],
        "lis-secret-7f3a9c21\n",
    );
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("client lis (system)"));
    let again = with_stdin(
        &["client", "add", "--database", &url, "--client-id", "lis"],
        "lis-secret-7f3a9c21\n",
    );
    assert!(!again.status.success());
    assert!(stderr(&again).contains("username lis is taken"));

    let doc = with_stdin(
        &[
            "user",
            "add",
            "--database",
            &url,
            "--username",
            "dr.li",
            "--role",
            "family_doctor",
            "--org",
            "310118-CHC-ZJJ",
        ],
        "Zhujiajiao-2026\n",
    );
    assert!(doc.status.success(), "{}", stderr(&doc));
    assert!(stdout(&doc).contains("朱家角镇社区卫生服务中心"));

    for (args, input, expect) in [
        (
            vec!["--username", "x1", "--role", "family_doctor"],
            "Qingpu-2026-zx\n",
            "--org is required",
        ),
        (
            vec![
                "--username",
                "x2",
                "--role",
                "family_doctor",
                "--org",
                "NOPE",
            ],
            "Qingpu-2026-zx\n",
            "no such organisation",
        ),
        (
            vec!["--username", "x3", "--role", "wizard"],
            "Qingpu-2026-zx\n",
            "is not one of",
        ),
        (
            vec![
                "--username",
                "x4",
                "--role",
                "resident",
                "--resident",
                "11010519491231002X",
            ],
            "Qingpu-2026-zx\n",
            "no resident",
        ),
        (
            vec![
                "--username",
                "x5",
                "--role",
                "manager",
                "--org",
                "310118-HC",
            ],
            "short\n",
            "at least 10 characters",
        ),
        (
            vec![
                "--username",
                "x6",
                "--role",
                "manager",
                "--org",
                "310118-HC",
            ],
            "alllowercaseletters\n",
            "must mix at least 3 of",
        ),
        (
            vec![
                "--username",
                "wangfang",
                "--role",
                "manager",
                "--org",
                "310118-HC",
            ],
            "Wangfang-2026\n",
            "must not contain the username",
        ),
        (
            vec![
                "--username",
                "x7",
                "--role",
                "manager",
                "--org",
                "310118-HC",
            ],
            "MyPassw0rd-2026\n",
            "most common",
        ),
    ] {
        let mut full = vec!["user", "add", "--database", url.as_str()];
        full.extend(args);
        let o = with_stdin(&full, input);
        assert!(!o.status.success(), "{full:?}");
        assert!(stderr(&o).contains(expect), "{full:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).trim().lines().count(), 1);
    }

    // What the CLI created can log in; the refused ones cannot.
    let (_server, base) = start_server(&url);
    let (status, body) = post_form(
        &base,
        "/auth/token",
        "grant_type=client_credentials&client_id=lis&client_secret=lis-secret-7f3a9c21",
    );
    assert!(status.contains("200"), "{status} {body}");
    assert!(body.contains("access_token"));
    // The administrator chose dr.li's password: dr.li changes it before any token.
    let (status, body) = post_form(
        &base,
        "/auth/token",
        "grant_type=password&username=dr.li&password=Zhujiajiao-2026",
    );
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("must be changed first"), "{body}");
    let (status, body) = post_form(
        &base,
        "/auth/password",
        "username=dr.li&password=Zhujiajiao-2026&new_password=Dianshanhu-2027",
    );
    assert!(status.contains("200"), "{status} {body}");
    let (status, _) = post_form(
        &base,
        "/auth/token",
        "grant_type=password&username=dr.li&password=Dianshanhu-2027",
    );
    assert!(status.contains("200"), "{status}");

    // An administrator's reset: checked like any password, and owed a change again.
    let reset = |input: &str| with_stdin(&["user", "passwd", "--database", &url, "dr.li"], input);
    let o = reset("Dianshanhu-2027\n");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("must differ from the current one"),
        "{}",
        stderr(&o)
    );
    let o = reset("short\n");
    assert!(
        stderr(&o).contains("at least 10 characters"),
        "{}",
        stderr(&o)
    );
    let o = reset("Xujing-2027-ok\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("must be changed at the next login"));
    let (status, body) = post_form(
        &base,
        "/auth/token",
        "grant_type=password&username=dr.li&password=Xujing-2027-ok",
    );
    assert!(
        status.contains("400") && body.contains("must be changed first"),
        "{status} {body}"
    );
    let o = with_stdin(
        &["user", "passwd", "--database", &url, "nobody"],
        "Xujing-2027-ok\n",
    );
    assert!(stderr(&o).contains("no account is called nobody"));
    let (status, _) = post_form(
        &base,
        "/auth/token",
        "grant_type=password&username=x1&password=Qingpu-2026-zx",
    );
    assert!(status.contains("401"), "{status}");
}

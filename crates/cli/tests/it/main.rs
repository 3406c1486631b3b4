//! The `dhp` binary, run as a person runs it.

mod accounts;
mod browser;
mod care_walk;
mod cli;
mod portal_walk;
mod serve_kill;
mod surveillance;
mod tls;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

/// `dhp serve --database URL --listen 127.0.0.1:0` with `extra` arguments: the process
/// (its stderr as `stderr` says) and the address it printed for `scheme` (`http` or
/// `https`), e.g. `http://127.0.0.1:40123/`.
pub fn serve_on(url: &str, extra: &[&OsStr], stderr: Stdio, scheme: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dhp"))
        .args(["serve", "--database", url, "--listen", "127.0.0.1:0"])
        .args(extra)
        .env("DHP_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let prefix = format!("{scheme}://");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {scheme} address in {line:?}"))
        .to_string();
    (child, base)
}

pub fn dhp(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dhp"))
        .args(args)
        .env("DHP_LOG", "error")
        .output()
        .expect("dhp runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("dhp_cli_{name}_{}_{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn url(&self, file: &str) -> String {
        format!("sqlite://{}", self.0.join(file).display())
    }

    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

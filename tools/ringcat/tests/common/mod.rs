//! Helpers of the CLI tests: `ringcat` run to completion, `ringcat serve` as a child process,
//! and a plain HTTP GET.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// Runs `ringcat ARGS...` to completion, colours off and times shown in UTC.
pub fn ringcat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringcat"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("TZ", "UTC")
        .output()
        .expect("run ringcat")
}

/// A child process killed when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `ringcat serve --listen 127.0.0.1:0 ARGS...` and returns it with the address it
/// printed (`127.0.0.1:PORT`).
pub fn serve(args: &[&str]) -> (Running, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringcat"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ringcat serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let first = lines
        .next()
        .expect("ringcat serve printed nothing")
        .expect("read stderr");
    // Later stderr lines (read errors) must not fill the pipe and block the server.
    std::thread::spawn(move || for _ in lines {});
    let address = first
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in '{first}'"))
        .to_string();
    (Running(child), address)
}

/// `GET path` from `address` over HTTP/1.0: (status code, headers, body).
pub fn get(address: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {response:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head.to_string(), body.to_string())
}

/// Percent-encodes a query parameter.
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Runs `promtool check metrics` on `text` when promtool is installed: Some(passed, output),
/// or None (with the reason printed) when it is not.
pub fn promtool_check_metrics(text: &str, scratch: &Path) -> Option<(bool, String)> {
    let path = scratch.join("check.prom");
    std::fs::write(&path, text).unwrap();
    let input = std::fs::File::open(&path).unwrap();
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(input)
        .output()
    {
        Ok(output) => Some((
            output.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )),
        Err(error) => {
            eprintln!("promtool not run ({error}): install Debian's prometheus package");
            None
        }
    }
}

/// The value of the sample `name{labels}` (labels as rendered) in an exposition.
pub fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

//! `ringcat serve`: the rings' metrics for Prometheus, over HTTP (`/metrics`) and/or as a
//! node_exporter textfile, re-read from the files at every scrape.
//!
//! HTTP comes from `tiny_http` (request parsing, keep-alive, HEAD, malformed requests): a
//! scrape endpoint faces whatever connects to it, and a hand-made parser is the wheel not to
//! re-make. Requests are answered one at a time on one thread: a scrape is a few header reads.
//! A file that cannot be read (missing, damaged, truncated, replaced by something else) never
//! stops the server: its `ringlat_up` is 0 and `ringlat_read_error_info` carries the reason.

use crate::Failure;
use crate::duration::parse_positive_duration;
use crate::prom::{Buckets, CONTENT_TYPE, Exposition};
use clap::Args;
use ringlat_read::RingFile;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The address `serve` listens on when neither --listen nor --textfile is given.
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:9464";
/// The file `--textfile DIR` writes (node_exporter reads `*.prom`).
pub(crate) const TEXTFILE_NAME: &str = "ringlat.prom";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Ring files, each re-read at every scrape (a file may be missing or damaged for a while:
    /// its ringlat_up is then 0).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Serve /metrics on this address (default 127.0.0.1:9464 unless --textfile is given;
    /// port 0 picks a free port, printed on stderr).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// The `file` label of each file, in the order of the files (default: the path as given).
    /// Give one per file, or none.
    #[arg(long, value_name = "NAME")]
    pub label: Vec<String>,
    /// Also write the exposition to DIR/ringlat.prom for node_exporter's textfile collector,
    /// every --interval, atomically (a temporary file renamed over it).
    #[arg(long, value_name = "DIR")]
    pub textfile: Option<PathBuf>,
    /// How often --textfile is rewritten.
    #[arg(long, value_name = "DUR", value_parser = parse_positive_duration, allow_hyphen_values = true, default_value = "15s")]
    pub interval: Duration,
    /// With --textfile and no --listen: write the textfile once and exit (for cron).
    #[arg(long, requires = "textfile", conflicts_with = "listen")]
    pub once: bool,
    /// The `le` boundaries of ringlat_latency_seconds (5ms, or bare seconds as Prometheus
    /// prints them: 0.005), ascending, comma-separated; +Inf is always added.
    #[arg(long, value_name = "LE,...", value_parser = Buckets::parse, default_value_t = Buckets::default())]
    pub buckets: Buckets,
}

/// The rings to expose, with their labels.
struct Targets {
    files: Vec<(PathBuf, String)>,
    buckets: Buckets,
    /// The last error reported on stderr per label: a failure is reported when it starts or
    /// changes, and a recovery once, not at every scrape.
    reported: Mutex<HashMap<String, Option<String>>>,
}

impl Targets {
    fn new(args: &ServeArgs) -> Result<Targets, Failure> {
        if !args.label.is_empty() && args.label.len() != args.files.len() {
            return Err(Failure::Usage(format!(
                "--label given {} times for {} files: give one per file, or none",
                args.label.len(),
                args.files.len()
            )));
        }
        let files: Vec<(PathBuf, String)> = args
            .files
            .iter()
            .enumerate()
            .map(|(index, path)| {
                let label = args
                    .label
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| path.display().to_string());
                (path.clone(), label)
            })
            .collect();
        let mut seen = HashSet::new();
        for (_, label) in &files {
            if !seen.insert(label.as_str()) {
                return Err(Failure::Usage(format!(
                    "the file label '{label}' is given twice: series would collide (use --label)"
                )));
            }
        }
        Ok(Targets {
            files,
            buckets: args.buckets.clone(),
            reported: Mutex::new(HashMap::new()),
        })
    }

    /// One scrape: every file opened afresh and read.
    fn exposition(&self) -> String {
        let mut exposition = Exposition::default();
        let mut rings = Exposition::default();
        for (path, label) in &self.files {
            match read_ring(path, label, &self.buckets) {
                Ok(ring) => {
                    exposition.add_up(label, None);
                    rings.append(ring);
                    self.report(label, None);
                }
                Err(error) => {
                    exposition.add_up(label, Some(&error));
                    self.report(label, Some(error));
                }
            }
        }
        exposition.append(rings);
        exposition.render()
    }

    fn report(&self, label: &str, error: Option<String>) {
        let Ok(mut reported) = self.reported.lock() else {
            return;
        };
        let previous = reported.get(label).cloned();
        match (&previous, &error) {
            (None, None) => {}
            (Some(before), now) if before == now => {}
            (_, Some(now)) => eprintln!("ringcat serve: {label}: {now}"),
            (Some(Some(_)), None) => eprintln!("ringcat serve: {label}: readable again"),
            (Some(None), None) => {}
        }
        reported.insert(label.to_string(), error);
    }
}

/// One ring's metrics, or why it could not be read.
fn read_ring(path: &Path, label: &str, buckets: &Buckets) -> Result<Exposition, String> {
    let file = RingFile::open(path).map_err(|e| e.to_string())?;
    file.check_intact().map_err(|e| e.to_string())?;
    let mut ring = Exposition::default();
    ring.add_ring(&file, label, buckets);
    // What was read while the file shrank may be zeros: report that instead.
    file.check_intact().map_err(|e| e.to_string())?;
    Ok(ring)
}

pub(crate) fn run(args: &ServeArgs) -> Result<(), Failure> {
    let targets = Targets::new(args)?;
    let listen = match (&args.listen, &args.textfile) {
        (Some(address), _) => Some(address.clone()),
        (None, None) => Some(DEFAULT_LISTEN.to_string()),
        (None, Some(_)) => None,
    };
    if let Some(dir) = &args.textfile {
        // The first write is checked: a directory that cannot be written is an error now.
        write_textfile(dir, &targets.exposition()).map_err(|e| {
            Failure::File(format!(
                "cannot write {}: {e}",
                dir.join(TEXTFILE_NAME).display()
            ))
        })?;
        if args.once {
            return Ok(());
        }
    }
    let Some(address) = listen else {
        let dir = args.textfile.as_deref().unwrap_or(Path::new("."));
        textfile_loop(dir, args.interval, &targets);
    };
    let server = tiny_http::Server::http(&address)
        .map_err(|e| Failure::File(format!("cannot listen on {address}: {e}")))?;
    let bound = server
        .server_addr()
        .to_ip()
        .map_or(address.clone(), |a| a.to_string());
    eprintln!(
        "ringcat serve: http://{bound}/metrics ({} file{})",
        targets.files.len(),
        if targets.files.len() == 1 { "" } else { "s" }
    );
    std::thread::scope(|scope| {
        if let Some(dir) = &args.textfile {
            let targets = &targets;
            scope.spawn(move || textfile_loop(dir, args.interval, targets));
        }
        for request in server.incoming_requests() {
            answer(request, &targets);
        }
    });
    Ok(())
}

fn textfile_loop(dir: &Path, interval: Duration, targets: &Targets) -> ! {
    loop {
        std::thread::sleep(interval);
        if let Err(error) = write_textfile(dir, &targets.exposition()) {
            eprintln!(
                "ringcat serve: writing {}: {error}",
                dir.join(TEXTFILE_NAME).display()
            );
        }
    }
}

/// Writes `DIR/ringlat.prom` atomically: a temporary file (a name node_exporter skips) in
/// the same directory, renamed over it, so a collector never reads half a file.
fn write_textfile(dir: &Path, text: &str) -> std::io::Result<()> {
    let temporary = dir.join(format!(".{TEXTFILE_NAME}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| std::fs::rename(&temporary, dir.join(TEXTFILE_NAME)))
    {
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(())
}

fn answer(request: tiny_http::Request, targets: &Targets) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let method = request.method().clone();
    let head = method == tiny_http::Method::Head;
    let (status, content_type, body) = if method != tiny_http::Method::Get && !head {
        (
            405,
            "text/plain; charset=utf-8",
            "GET /metrics\n".to_string(),
        )
    } else if path == "/metrics" {
        (200, CONTENT_TYPE, targets.exposition())
    } else if path == "/" {
        (
            200,
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n".to_string(),
        )
    } else {
        (
            404,
            "text/plain; charset=utf-8",
            "not found: GET /metrics\n".to_string(),
        )
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(header) = tiny_http::Header::from_bytes("Content-Type", content_type) {
        response.add_header(header);
    }
    // A client that went away is no concern of the server's.
    let _ = request.respond(response);
}

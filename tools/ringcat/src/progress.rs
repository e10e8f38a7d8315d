//! A progress bar on stderr for reads that take more than a moment: shown only when stderr is
//! a terminal, and only after half a second.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub(crate) struct Progress {
    enabled: bool,
    label: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    shown: bool,
}

impl Progress {
    pub(crate) fn new(label: &'static str, total: u64) -> Self {
        Progress {
            enabled: std::io::stderr().is_terminal(),
            label,
            total,
            done: 0,
            started: Instant::now(),
            shown: false,
        }
    }

    /// Starts another pass over the same records.
    pub(crate) fn next_pass(&mut self, label: &'static str) {
        self.label = label;
        self.done = 0;
    }

    #[inline]
    pub(crate) fn tick(&mut self) {
        self.done += 1;
        if self.enabled && self.done.is_multiple_of(1 << 20) {
            self.draw();
        }
    }

    /// True when the bar is drawn (stderr is a terminal).
    pub(crate) fn is_shown(&self) -> bool {
        self.enabled
    }

    /// Records counted in this pass so far.
    #[cfg(test)]
    pub(crate) fn done(&self) -> u64 {
        self.done
    }

    /// Counts `records` more at once (a piece of a pass done, possibly by another thread).
    pub(crate) fn advance(&mut self, records: u64) {
        let before = self.done >> 20;
        self.done += records;
        if self.enabled && self.done >> 20 != before {
            self.draw();
        }
    }

    fn draw(&mut self) {
        if self.started.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.shown = true;
        let fraction = if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).min(1.0)
        };
        let width = 30;
        let filled = (fraction * width as f64) as usize;
        let _ = write!(
            std::io::stderr(),
            "\r{:<10} [{}{}] {:>5.1}% {} records",
            self.label,
            "#".repeat(filled),
            " ".repeat(width - filled),
            fraction * 100.0,
            self.done
        );
    }

    /// Erases the bar.
    pub(crate) fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r{}\r", " ".repeat(72));
            self.shown = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

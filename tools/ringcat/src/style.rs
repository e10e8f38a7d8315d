//! Colour: `--color auto` paints only on a terminal and never with NO_COLOR
//! (<https://no-color.org>); `always` and `never` override both.

use crate::cli::ColorChoice;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};

/// `--color`, set once by `main` (Relaxed: no other data hangs on it).
static CHOICE: AtomicU8 = AtomicU8::new(0);

/// Sets the `--color` choice for every later [`Style`].
pub(crate) fn set_color(choice: ColorChoice) {
    let code = match choice {
        ColorChoice::Auto => 0,
        ColorChoice::Always => 1,
        ColorChoice::Never => 2,
    };
    CHOICE.store(code, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    color: bool,
}

impl Style {
    /// For stdout.
    pub(crate) fn stdout() -> Self {
        Self::for_stream(std::io::stdout().is_terminal())
    }

    /// For stderr.
    pub(crate) fn stderr() -> Self {
        Self::for_stream(std::io::stderr().is_terminal())
    }

    fn for_stream(terminal: bool) -> Self {
        let color = match CHOICE.load(Ordering::Relaxed) {
            1 => true,
            2 => false,
            _ => {
                let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
                !no_color && terminal
            }
        };
        Style { color }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    pub(crate) fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

//! How much to say and whether to colour it: `--color`, `NO_COLOR`, `-v` and `-q`, set once
//! from the command line and read wherever output is written.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicI8, Ordering};

static COLOR: AtomicBool = AtomicBool::new(false);
static VERBOSITY: AtomicI8 = AtomicI8::new(0);

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// Sets colour and verbosity for the process (`verbosity`: -1 quiet, 0 normal, 1 verbose).
pub fn configure(color: ColorChoice, verbosity: i8) {
    let color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    COLOR.store(color, Ordering::Relaxed);
    VERBOSITY.store(verbosity, Ordering::Relaxed);
}

/// Whether output is coloured.
pub fn color() -> bool {
    COLOR.load(Ordering::Relaxed)
}

/// `-q`: only problems, failures and the final verdict.
pub fn quiet() -> bool {
    VERBOSITY.load(Ordering::Relaxed) < 0
}

/// `-v`: also each op's shell text and each ssh command line (secrets redacted).
pub fn verbose() -> bool {
    VERBOSITY.load(Ordering::Relaxed) > 0
}

/// A colour for a kind of text.
#[derive(Debug, Clone, Copy)]
pub enum Paint {
    /// Errors and failures.
    Red,
    /// Warnings and changes.
    Yellow,
    /// Success.
    Green,
}

/// `text` in `paint` (bold) when colour is on.
pub fn paint(text: &str, paint: Paint) -> String {
    if !color() {
        return text.to_string();
    }
    let code = match paint {
        Paint::Red => 31,
        Paint::Yellow => 33,
        Paint::Green => 32,
    };
    format!("\x1b[1;{code}m{text}\x1b[0m")
}

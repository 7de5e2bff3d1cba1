//! Terminal safety: everything the CLI prints goes through here (issue 14).
//!
//! Text the CLI shows often came from somewhere else: a job's parameters, a page's title, a mail's
//! subject, a TASKS.md line, a skill's description, the audit log. Written raw, an `ESC ] 0;… BEL`
//! in it retitles the terminal, `ESC [2J` clears it, a CR overwrites what was printed before it on
//! the line, and a bidi override (U+202E) shows text in another order than it is stored. So:
//!
//! - [`terminal_safe`] replaces every such character with a visible escape (`\x1b`, `\u{9b}`,
//!   `\u{202e}`); tab and newline pass, since our own output is made of lines.
//! - [`outln!`]/[`out!`] format, make the whole text terminal-safe and write it to the locked
//!   stdout, returning the `io::Result` so a command stops at the first failed write; `main`
//!   turns a broken pipe (`deskhand history | head -1`) into a quiet exit 0, as `ls | head` does.
//!   [`errln!`] does the same for stderr and ignores write errors (there is nowhere left to say).
//! - [`print_json`] writes serde_json's text with the characters serde_json leaves raw (C1
//!   controls, bidi controls) as `\uXXXX` escapes: still valid JSON with the same values.
//!
//! The cli module denies `clippy::print_stdout` and `clippy::print_stderr`, and `clippy.toml`
//! disallows `std::io::stdout`/`stderr`, so a new raw print fails `cargo clippy`.
//!
//! ```
//! use deskhand_agent::cli::safe_text::terminal_safe;
//! assert_eq!(terminal_safe("\u{1b}]0;owned\u{7}title"), "\\x1b]0;owned\\x07title");
//! assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
//! ```

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write};

/// Whether `c` must not reach a terminal raw: C0 controls except tab and newline, DEL, C1
/// controls (U+0080–U+009F: U+009B is a one-byte CSI on some terminals), and the bidi controls
/// that reorder displayed text (U+202A–U+202E, U+2066–U+2069, and the marks U+200E, U+200F,
/// U+061C), after CVE-2021-42574 ("Trojan Source").
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

/// Whether `c` is a control character a single-line value must not hold: any C0 control (tab and
/// newline included), DEL, C1, and the bidi controls of [`is_unsafe`].
pub fn is_control(c: char) -> bool {
    c.is_control() || is_unsafe(c)
}

/// `s` with every [`is_unsafe`] character replaced by a visible escape: `\x1b` below U+0080
/// (and DEL, `\x7f`), `\u{9b}` above. Borrows when there is nothing to replace.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// JSON text (as serde_json writes it) with every [`is_unsafe`] character as a `\uXXXX` escape.
/// serde_json escapes C0 controls itself but leaves C1 and bidi controls raw; all of them can
/// only occur inside strings, where the escape parses back to the same character.
pub fn json_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            // Every unsafe character is in the Basic Multilingual Plane: one \u escape.
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Format `args`, make it terminal-safe, write it to stdout (flushed). Use [`outln!`]/[`out!`].
pub fn write_out(args: fmt::Arguments<'_>) -> io::Result<()> {
    let text = fmt::format(args);
    write_raw_out(terminal_safe(&text).as_bytes())
}

/// Format `args`, make it terminal-safe, write it to stderr; errors are ignored (a closed stderr
/// leaves nowhere to report them). Use [`errln!`].
pub fn write_err(args: fmt::Arguments<'_>) {
    let text = fmt::format(args);
    #[allow(clippy::disallowed_methods)] // the one place that writes stderr
    let mut err = io::stderr().lock();
    let _ = err.write_all(terminal_safe(&text).as_bytes());
    let _ = err.flush();
}

/// Bytes already made safe (JSON from [`json_safe`], records a format escaped) to stdout.
fn write_raw_out(bytes: &[u8]) -> io::Result<()> {
    #[allow(clippy::disallowed_methods)] // the one place that writes stdout
    let mut out = io::stdout().lock();
    out.write_all(bytes)?;
    // Stdout is line-buffered: a whole line is already written; a prompt without one is not.
    if !bytes.ends_with(b"\n") {
        out.flush()?;
    }
    Ok(())
}

/// Print `v` as JSON (pretty or one line) and a newline, with [`json_safe`] applied.
pub fn print_json<T: serde::Serialize + ?Sized>(v: &T, pretty: bool) -> anyhow::Result<()> {
    let mut text = if pretty {
        serde_json::to_string_pretty(v)?
    } else {
        serde_json::to_string(v)?
    };
    text.push('\n');
    write_raw_out(json_safe(&text).as_bytes())?;
    Ok(())
}

/// Write JSON text that some other encoder produced (already valid JSON) with [`json_safe`].
pub fn write_json_text(text: &str) -> io::Result<()> {
    write_raw_out(json_safe(text).as_bytes())
}

/// Write data records to stdout: JSON text with [`json_safe`] (the same values when parsed
/// back), other text [`terminal_safe`] — a pipe often ends in a terminal too (`| grep`), so
/// exact bytes are for `--out FILE`.
pub fn write_data(text: &str, json: bool) -> io::Result<()> {
    if json {
        write_raw_out(json_safe(text).as_bytes())
    } else {
        write_raw_out(terminal_safe(text).as_bytes())
    }
}

/// Whether stderr is a terminal (progress bars and spinners only draw there).
pub fn stderr_is_terminal() -> bool {
    #[allow(clippy::disallowed_methods)] // asks, never writes
    io::stderr().is_terminal()
}

/// Whether stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    #[allow(clippy::disallowed_methods)] // asks, never writes
    io::stdout().is_terminal()
}

/// Whether `e` (or anything in its chain) is a broken pipe: the reader went away, which ends a
/// command quietly with status 0.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `println!` made terminal-safe; evaluates to `io::Result<()>` (use `?`).
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::safe_text::write_out(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::safe_text::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` made terminal-safe (flushed); evaluates to `io::Result<()>` (use `?`).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::safe_text::write_out(format_args!($($arg)*)) };
}

/// `eprintln!` made terminal-safe; write errors are ignored.
#[macro_export]
macro_rules! errln {
    () => { $crate::cli::safe_text::write_err(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::safe_text::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc_and_csi_sequences_are_neutralised() {
        let hostile = "job\u{1b}]0;pwned\u{7}\u{1b}[2J done";
        let safe = terminal_safe(hostile);
        assert_eq!(safe, "job\\x1b]0;pwned\\x07\\x1b[2J done");
        assert!(!safe.chars().any(is_unsafe));
    }

    #[test]
    fn c0_except_tab_and_newline_del_and_c1_are_escaped() {
        assert_eq!(terminal_safe("a\tb\nc"), "a\tb\nc");
        assert!(matches!(terminal_safe("a\tb\nc"), Cow::Borrowed(_)));
        assert_eq!(terminal_safe("a\rb"), "a\\x0db");
        assert_eq!(
            terminal_safe("\u{0}\u{8}\u{b}\u{c}"),
            "\\x00\\x08\\x0b\\x0c"
        );
        assert_eq!(terminal_safe("x\u{7f}"), "x\\x7f");
        assert_eq!(
            terminal_safe("\u{80}\u{9b}2J\u{9f}"),
            "\\u{80}\\u{9b}2J\\u{9f}"
        );
        for c in (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32) {
            let want = c == '\t' || c == '\n';
            assert_eq!(
                terminal_safe(&c.to_string()) == c.to_string(),
                want,
                "{c:?}"
            );
        }
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(
            terminal_safe("invoice\u{202e}fdp.exe"),
            "invoice\\u{202e}fdp.exe"
        );
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2066}', '\u{2069}', '\u{200f}',
            '\u{61c}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
        }
    }

    #[test]
    fn ordinary_text_is_borrowed_unchanged() {
        let s = "Grâce Höpper — 日本語 ✓ emoji 🎉 \"quoted\" back\\slash";
        assert!(matches!(terminal_safe(s), Cow::Borrowed(x) if x == s));
        assert!(matches!(json_safe(s), Cow::Borrowed(x) if x == s));
    }

    #[test]
    fn json_safe_keeps_the_values() {
        let v = serde_json::json!({"t": "a\u{1b}[2Jb\u{9b}c\u{202e}d\u{85}"});
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains('\u{9b}'), "serde_json leaves C1 raw: {text}");
        let safe = json_safe(&text);
        assert!(!safe.chars().any(is_unsafe), "{safe}");
        assert!(safe.contains("\\u009b") && safe.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn control_check_for_single_line_values() {
        assert!(is_control('\n') && is_control('\t') && is_control('\r'));
        assert!(is_control('\u{1b}') && is_control('\u{85}') && is_control('\u{202e}'));
        assert!(!is_control('a') && !is_control(' ') && !is_control('é'));
    }

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!(
            "Broken pipe in a message"
        )));
    }
}

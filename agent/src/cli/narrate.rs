//! A planned job's words and tool calls on the terminal as they stream in (its `say` and `tool`
//! events), printed above the progress bar or spinner so the two do not garble each other.

use indicatif::ProgressBar;

use crate::cli::safe_text::terminal_safe;
use crate::job::JobEvent;

/// Prints progress events above a bar, a whole line at a time.
pub(crate) struct Narrator {
    bar: ProgressBar,
    /// Text of the current line, not printed yet.
    line: String,
    /// Whether anything was said (so the final answer need not be printed again).
    pub said: bool,
}

impl Narrator {
    /// Print above `bar` (on a terminal; a hidden bar prints nothing).
    pub fn new(bar: ProgressBar) -> Narrator {
        Narrator {
            bar,
            line: String::new(),
            said: false,
        }
    }

    /// Show `ev` if it is progress; returns whether it was.
    pub fn event(&mut self, ev: &JobEvent) -> bool {
        match ev.kind.as_str() {
            "say" => {
                self.said = true;
                self.line.push_str(&ev.message);
                while let Some(i) = self.line.find('\n') {
                    let rest = self.line.split_off(i + 1);
                    let done = std::mem::replace(&mut self.line, rest);
                    self.print(done.trim_end_matches('\n'));
                }
                true
            }
            "tool" => {
                self.flush();
                self.print(&format!("  → {}", ev.message));
                true
            }
            _ => false,
        }
    }

    /// Print what is left of the current line.
    pub fn flush(&mut self) {
        if !self.line.is_empty() {
            let rest = std::mem::take(&mut self.line);
            self.print(&rest);
        }
    }

    fn print(&self, line: &str) {
        self.bar.println(terminal_safe(line));
    }
}

//! One line per item, and on a terminal a progress bar under the lines (`indicatif`, drawn on
//! stdout with the lines); with stdout not a terminal (a pipe, a log, the tests) the plain
//! lines alone.

use std::cell::Cell;
use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Lines,
}

impl Progress {
    /// A bar over `total` items, shown only when stdout is a terminal.
    pub fn new(total: usize, what: &str) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}} (eta {{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self {
            bar,
            lines: Lines::default(),
        }
    }

    /// Prints a line (above the bar, when there is one).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => self.lines.print(text),
        }
    }

    /// One item done.
    pub fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// More items than announced (a walk that found more).
    pub fn grow(&self, by: usize) {
        if let Some(bar) = &self.bar {
            bar.inc_length(by as u64);
        }
    }

    /// Removes the bar and prints the summary line.
    pub fn finish(self, summary: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.lines.print(summary);
    }
}

/// Lines on stdout that stop when stdout is closed (`upload … | head -1`), where `println!`
/// would panic half-way through an item. The command goes on without its lines: what it
/// does (files stored, moved, their audit events) is the point, and stopping at the next
/// item would leave a batch half done for a reader that went away. One note on stderr says
/// so; the exit status is the work's, as without the pipe (README: "Operations").
#[derive(Default)]
pub struct Lines {
    closed: Cell<bool>,
}

impl Lines {
    pub fn print(&self, text: &str) {
        if self.closed.get() {
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
            self.closed.set(true);
            // stderr may be gone as well; nothing is left to tell then.
            let _ = writeln!(
                std::io::stderr(),
                "stdout is closed ({e}): the command goes on without printing its lines"
            );
        }
    }
}

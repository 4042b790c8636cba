//! One line per item, and on a terminal a progress bar under the lines (`indicatif`, drawn on
//! stdout with the lines); with stdout not a terminal (a pipe, a log, the tests) the plain
//! lines alone.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
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
        Self { bar }
    }

    /// Prints a line (above the bar, when there is one).
    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => println!("{text}"),
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
        println!("{summary}");
    }
}

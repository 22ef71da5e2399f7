//! Progress bars on stderr for long loads and dumps of state files.
//!
//! A bar appears only when the work has run for a while (so that quick
//! loads stay silent) and only when stderr is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use distkv_server::progress::{Progress, ProgressTask};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The [`Progress`] receiver of the `distkv` binary.
pub struct Bars {
    /// Work shorter than this shows no bar (`server.progress_delay`).
    pub quiet_for: Duration,
}

impl Progress for Bars {
    fn begin(&self, what: &str, total: u64) -> Box<dyn ProgressTask> {
        let bar = ProgressBar::with_draw_target(
            (total > 0).then_some(total),
            ProgressDrawTarget::hidden(),
        );
        let style = ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({rate}, {eta})",
        )
        .map(|s| {
            s.with_key(
                "rate",
                |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            )
        })
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(what.to_owned());
        Box::new(Bar {
            bar,
            quiet_for: self.quiet_for,
            started: Instant::now(),
            shown: false,
            terminal: std::io::stderr().is_terminal(),
        })
    }
}

struct Bar {
    bar: ProgressBar,
    quiet_for: Duration,
    started: Instant,
    shown: bool,
    terminal: bool,
}

impl ProgressTask for Bar {
    fn advance(&mut self, n: u64) {
        self.bar.inc(n);
        // the total is an estimate: never show more done than expected
        let pos = self.bar.position();
        if self.bar.length().is_some_and(|len| pos > len) {
            self.bar.set_length(pos + pos / 10);
        }
        if !self.shown && self.terminal && self.started.elapsed() >= self.quiet_for {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.shown {
            self.bar.set_length(self.bar.position());
            self.bar.finish();
        }
    }
}

//! Progress bars on stderr for long loads and dumps of state files.
//!
//! A bar appears only when the work has run for a while (so that quick
//! loads stay silent) and only when stderr is a terminal.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use distkv_server::progress::{Progress, ProgressTask};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Work shorter than this shows no bar.
const QUIET_FOR: Duration = Duration::from_secs(2);

/// The [`Progress`] receiver of the `distkv` binary.
pub struct Bars;

impl Progress for Bars {
    fn begin(&self, what: &str, total: u64) -> Box<dyn ProgressTask> {
        let bar = ProgressBar::with_draw_target(
            (total > 0).then_some(total),
            ProgressDrawTarget::hidden(),
        );
        let style = ProgressStyle::with_template(
            "{msg} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({per_sec}, {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(what.to_owned());
        Box::new(Bar {
            bar,
            started: Instant::now(),
            shown: false,
            terminal: std::io::stderr().is_terminal(),
        })
    }
}

struct Bar {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    terminal: bool,
}

impl ProgressTask for Bar {
    fn advance(&mut self, n: u64) {
        self.bar.inc(n);
        if !self.shown && self.terminal && self.started.elapsed() >= QUIET_FOR {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if self.shown {
            self.bar.finish();
        }
    }
}

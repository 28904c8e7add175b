//! A progress bar on a terminal; nothing otherwise (indicatif draws only to a
//! TTY, so cron logs stay clean).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::migrate::report::Action;

/// Records done in the current phase, with failures in the message.
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub(crate) fn new(enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        // The template is a literal known to parse; fall back to the default.
        let style = ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        Progress { bar }
    }

    /// Starts a phase of `total` records (unknown: `None`).
    pub(crate) fn phase(&self, name: &str, total: Option<u64>) {
        self.bar.set_prefix(name.to_string());
        self.bar.set_position(0);
        match total {
            Some(n) => self.bar.set_length(n),
            None => self.bar.unset_length(),
        }
        log::info!(
            "phase {name}: {} records",
            total.map_or("?".into(), |n| n.to_string())
        );
    }

    pub(crate) fn record(&self, action: Action) {
        self.bar.inc(1);
        if action == Action::Failed {
            self.bar.set_message("(failures in the report)");
        }
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

//! Progress bars for a fit: one for epochs, one for the steps of the current epoch
//! with each task's running mean loss. They draw only on an interactive terminal and
//! never under CI (`CI` set), and when hidden they cost nothing, not even formatting.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Whether progress bars should draw at all: `wanted` by the configuration, stderr is
/// a terminal, and `CI` is not set.
pub(crate) fn should_draw(wanted: bool) -> bool {
    wanted && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// The bars of one fit (absent when not drawing).
#[derive(Debug)]
pub(crate) struct Progress {
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    tasks: Vec<String>,
}

impl Progress {
    /// Bars for epochs `first_epoch..epochs` of `steps_per_epoch` steps each.
    pub(crate) fn new(
        draw: bool,
        first_epoch: usize,
        epochs: usize,
        steps_per_epoch: u64,
        tasks: Vec<String>,
    ) -> Self {
        if !draw {
            return Progress { bars: None, tasks };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = |template: &str| {
            ProgressStyle::with_template(template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ")
        };
        let epochs_bar = multi.add(ProgressBar::new(epochs as u64));
        epochs_bar.set_style(style(
            "epoch {pos:>3}/{len:3} [{bar:30}] {elapsed_precise} eta {eta} {msg}",
        ));
        epochs_bar.set_position(first_epoch as u64);
        let steps_bar = multi.add(ProgressBar::new(steps_per_epoch));
        steps_bar.set_style(style("step  {pos:>3}/{len:3} [{bar:30}] {per_sec} {msg}"));
        Progress {
            bars: Some((multi, epochs_bar, steps_bar)),
            tasks,
        }
    }

    /// Whether anything is drawn.
    #[cfg(test)]
    pub(crate) fn is_drawing(&self) -> bool {
        self.bars.is_some()
    }

    /// One step done; `running` holds each task's mean loss so far this epoch.
    pub(crate) fn step(&self, running: impl FnOnce() -> Vec<f64>) {
        if let Some((_, _, steps)) = &self.bars {
            steps.inc(1);
            steps.set_message(self.losses(&running()));
        }
    }

    /// An epoch done, with its summary (validation score, early-stopping wait...).
    pub(crate) fn epoch(&self, summary: impl FnOnce() -> String) {
        if let Some((_, epochs, steps)) = &self.bars {
            epochs.inc(1);
            epochs.set_message(summary());
            steps.reset();
        }
    }

    fn losses(&self, values: &[f64]) -> String {
        self.tasks
            .iter()
            .zip(values)
            .map(|(t, v)| format!("{t} {v:.4}"))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// Removes the bars.
    pub(crate) fn finish(&self) {
        if let Some((multi, epochs, steps)) = &self.bars {
            steps.finish_and_clear();
            epochs.finish();
            let _ = multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_never_calls_the_message_builders() {
        let p = Progress::new(false, 0, 3, 10, vec!["a".into()]);
        assert!(!p.is_drawing());
        p.step(|| unreachable!("no formatting when hidden"));
        p.epoch(|| unreachable!("no formatting when hidden"));
        p.finish();
        // Under the test harness stderr is captured or CI is set: never a terminal bar.
        assert!(!should_draw(false));
    }

    #[test]
    fn the_step_message_names_each_task() {
        let p = Progress {
            bars: None,
            tasks: vec!["region".into(), "area".into()],
        };
        assert_eq!(p.losses(&[0.5, 1.25]), "region 0.5000 | area 1.2500");
    }
}

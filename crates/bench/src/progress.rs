//! Progress bars on stderr for runs that last longer than a second (indicatif draws nothing
//! when stderr is not a terminal).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs shorter than this never show a bar.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A bar counting blobs; hidden until the run has lasted [`SHOW_AFTER`].
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar of `len` blobs labelled `label`; `enabled = false` never draws.
    pub fn start(enabled: bool, len: u64, label: String) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:32} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} blobs",
            )
            .expect("valid template"),
        );
        bar.set_message(label);
        if enabled {
            let later = bar.clone();
            tokio::spawn(async move {
                tokio::time::sleep(SHOW_AFTER).await;
                if !later.is_finished() {
                    later.set_draw_target(ProgressDrawTarget::stderr());
                    later.enable_steady_tick(Duration::from_millis(200));
                }
            });
        }
        Progress { bar }
    }

    /// Counts `n` more blobs done.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

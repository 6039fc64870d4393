//! Progress of long CLI jobs (generating, rebuilding): a bar with rate and ETA on a terminal
//! (indicatif), and a plain line every few seconds when stderr is not one (logs, CI), so a
//! redirected run does not fill its log with carriage returns.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Plain lines are written at most this often.
const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    label: String,
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl Progress {
    pub fn new(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:<12} [{bar:30}] {pos}/{len} ({percent}%) {per_sec} ETA {eta}",
                )
                .expect("the template is valid")
                .progress_chars("#>-"),
            );
            bar.set_message(label.to_owned());
            bar
        });
        let now = Instant::now();
        Self { label: label.to_owned(), bar, started: now, last_line: Mutex::new(now) }
    }

    /// `done` of `total` so far.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total.max(done));
            bar.set_position(done);
            return;
        }
        let mut last = self.last_line.lock().expect("never poisoned");
        if last.elapsed() >= LINE_EVERY {
            *last = Instant::now();
            eprintln!("{}", self.line(done, total));
        }
    }

    fn line(&self, done: u64, total: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let pct = (done * 100).checked_div(total).unwrap_or(100).min(100);
        let eta = if rate > 0.0 { total.saturating_sub(done) as f64 / rate } else { 0.0 };
        format!("{}: {done}/{total} ({pct}%), {rate:.0}/s, ETA {eta:.0} s", self.label)
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }

    /// The closing line (always printed): what was done, how fast.
    pub fn finish_with(&self, done: u64, what: &str) {
        self.finish();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        eprintln!("{}: {done} {what} in {secs:.1} s ({:.0}/s)", self.label, done as f64 / secs);
    }
}

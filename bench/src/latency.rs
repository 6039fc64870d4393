//! Latency samples and their summary.

use std::time::Duration;

pub struct Measured {
    sorted: Vec<Duration>,
    elapsed: Duration,
}

impl Measured {
    pub fn new(mut samples: Vec<Duration>, elapsed: Duration) -> Self {
        samples.sort();
        Self { sorted: samples, elapsed }
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.sorted.is_empty() {
            return Duration::ZERO;
        }
        self.sorted[((self.sorted.len() as f64 - 1.0) * p).round() as usize]
    }

    pub fn per_second(&self) -> f64 {
        self.sorted.len() as f64 / self.elapsed.as_secs_f64().max(0.001)
    }

    pub fn row(&self, backend: crate::Backend, what: &str) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        format!(
            "| {backend:?} | {what} | {:.0} | {:.2} ms | {:.2} ms |",
            self.per_second(),
            ms(self.percentile(0.5)),
            ms(self.percentile(0.99))
        )
    }
}

//! Latency samples and their summary.

use std::time::{Duration, Instant};

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

/// `clients` tasks doing `step` back to back until the deadline; every call's latency.
pub async fn load<F, Fut>(clients: usize, seconds: u64, step: F) -> Result<Measured, crate::Error>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), crate::Error>> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let step = step.clone();
            tokio::spawn(async move {
                let mut samples = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let t = Instant::now();
                    step(c, i).await?;
                    samples.push(t.elapsed());
                }
                Ok::<_, crate::Error>(samples)
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    Ok(Measured::new(all, started.elapsed()))
}

//! Failed-login throttling: after `MAX_FAILURES` failed logins for one (email, client address)
//! within `WINDOW`, further attempts for that pair are refused until the window passes. Keyed by
//! the pair so an attacker elsewhere cannot lock the real user out; the email is kept only as a
//! hash. Per process: behind several servers each counts on its own.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<[u8; 32], (u32, Instant)>>,
}

fn key(email: &str, ip: Option<IpAddr>) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(email.trim().to_lowercase().as_bytes());
    h.update(b"\0");
    h.update(ip.map(|ip| ip.to_string()).unwrap_or_default().as_bytes());
    h.finalize().into()
}

impl LoginThrottle {
    /// Whether this pair may try now.
    pub fn allowed(&self, email: &str, ip: Option<IpAddr>) -> bool {
        let failures = self.failures.lock().expect("throttle lock");
        match failures.get(&key(email, ip)) {
            Some((count, since)) => *count < MAX_FAILURES || since.elapsed() >= WINDOW,
            None => true,
        }
    }

    pub fn failed(&self, email: &str, ip: Option<IpAddr>) {
        let mut failures = self.failures.lock().expect("throttle lock");
        // Forget expired windows so the map stays small.
        failures.retain(|_, (_, since)| since.elapsed() < WINDOW);
        let entry = failures.entry(key(email, ip)).or_insert((0, Instant::now()));
        entry.0 += 1;
    }

    pub fn succeeded(&self, email: &str, ip: Option<IpAddr>) {
        self.failures.lock().expect("throttle lock").remove(&key(email, ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_block_that_email_from_that_address_only() {
        let t = LoginThrottle::default();
        let ip = Some("192.0.2.1".parse().unwrap());
        for _ in 0..MAX_FAILURES {
            assert!(t.allowed("a@b.com", ip));
            t.failed("A@B.com ", ip);
        }
        assert!(!t.allowed("a@b.com", ip), "blocked, whatever the case of the email");
        assert!(t.allowed("a@b.com", Some("192.0.2.2".parse().unwrap())), "another address is not");
        assert!(t.allowed("c@d.com", ip), "another email is not");
        t.succeeded("a@b.com", ip);
        assert!(t.allowed("a@b.com", ip));
    }
}

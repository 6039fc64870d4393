//! End-to-end test crate: see `api/` for the tests.

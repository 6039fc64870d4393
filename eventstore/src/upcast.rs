//! Upcasters: pure functions that turn a stored payload of an old schema version into the next
//! version. Old events are never rewritten; every read path applies the chain, so readers only
//! ever see current schemas.

use serde_json::Value;
use std::collections::HashMap;

pub type UpcastFn = fn(Value) -> Value;

/// Upcasts `event_type` payloads from `from_version` to `from_version + 1`.
#[derive(Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from_version: u32,
    pub upcast: UpcastFn,
}

#[derive(Clone, Default)]
pub struct Upcasters {
    chain: HashMap<(&'static str, u32), UpcastFn>,
}

impl Upcasters {
    pub fn new(upcasters: impl IntoIterator<Item = Upcaster>) -> Self {
        Self { chain: upcasters.into_iter().map(|u| ((u.event_type, u.from_version), u.upcast)).collect() }
    }

    /// Applies every upcaster from `version` on; returns the resulting version and payload.
    pub fn apply(&self, event_type: &str, mut version: u32, mut payload: Value) -> (u32, Value) {
        while let Some(f) = self.chain.get(&(event_type, version)) {
            payload = f(payload);
            version += 1;
        }
        (version, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upcasters_chain_from_the_stored_version_to_the_newest() {
        let u = Upcasters::new([
            Upcaster {
                event_type: "E",
                from_version: 1,
                upcast: |mut v| {
                    v["b"] = json!(2);
                    v
                },
            },
            Upcaster {
                event_type: "E",
                from_version: 2,
                upcast: |mut v| {
                    v["c"] = json!(3);
                    v
                },
            },
        ]);
        assert_eq!(u.apply("E", 1, json!({"a": 1})), (3, json!({"a": 1, "b": 2, "c": 3})));
        assert_eq!(u.apply("E", 3, json!({})), (3, json!({})));
        assert_eq!(u.apply("Other", 1, json!({})), (1, json!({})));
    }
}

//! Documents kept parsed by their text: a dashboard sends the same few queries and mutations
//! over and over, and parsing one (async-graphql's PEG parser) was about 6 % of the server's
//! time on `acquireItem` (`perf`, 8 clients). A request whose text was seen before gets a copy
//! of that parse; validation and execution run as always.
//!
//! Bounded: only texts up to [`MAX_TEXT`] bytes are kept, at most [`CAPACITY`] of them, and a
//! full cache is emptied before the next one is kept (so many different documents, hostile or
//! not, cost at most the parse each would have cost anyway, and the memory stays small).

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::Request;
use std::collections::HashMap;
use std::sync::Mutex;

/// Longest text kept (bytes).
pub const MAX_TEXT: usize = 4 * 1024;
/// Most documents kept.
pub const CAPACITY: usize = 128;

#[derive(Default)]
pub struct ParsedDocuments {
    docs: Mutex<HashMap<String, ExecutableDocument>>,
}

impl ParsedDocuments {
    /// Gives `req` its parsed document: the kept one for its text, or a new parse (kept when
    /// it succeeded and is small enough). A text that does not parse is left for execution to
    /// report as always.
    pub fn prepare(&self, req: &mut Request) {
        if req.query.len() > MAX_TEXT {
            return;
        }
        let kept = self.lock().get(&req.query).cloned();
        match kept {
            Some(doc) => req.set_parsed_query(doc),
            None => {
                let Ok(doc) = req.parsed_query() else { return };
                let doc = doc.clone();
                let mut docs = self.lock();
                if docs.len() >= CAPACITY {
                    docs.clear();
                }
                docs.insert(req.query.clone(), doc);
            }
        }
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::types::{OperationType, Selection};

    fn root_fields(req: &mut Request) -> Vec<String> {
        let doc = req.parsed_query().expect("parsed");
        let (_, op) = doc.operations.iter().next().expect("one operation");
        op.node
            .selection_set
            .node
            .items
            .iter()
            .map(|s| match &s.node {
                Selection::Field(f) => f.node.name.node.to_string(),
                _ => String::new(),
            })
            .collect()
    }

    #[test]
    fn a_text_seen_before_gets_its_own_parse_and_no_other() {
        let docs = ParsedDocuments::default();
        let mut first = Request::new("{ customers { totalCount } }");
        docs.prepare(&mut first);
        assert_eq!(docs.len(), 1);
        // The same text again: the kept parse.
        let mut again = Request::new("{ customers { totalCount } }");
        docs.prepare(&mut again);
        assert_eq!((docs.len(), root_fields(&mut again)), (1, vec!["customers".to_owned()]));
        // Another text, however alike, is parsed for itself.
        let mut other = Request::new("{ sales { totalCount } }");
        docs.prepare(&mut other);
        assert_eq!((docs.len(), root_fields(&mut other)), (2, vec!["sales".to_owned()]));
        let mut mutation = Request::new("mutation { logout }");
        docs.prepare(&mut mutation);
        let doc = mutation.parsed_query().unwrap();
        assert_eq!(doc.operations.iter().next().unwrap().1.node.ty, OperationType::Mutation);
    }

    #[test]
    fn what_does_not_parse_or_is_large_is_not_kept_and_the_cache_stays_bounded() {
        let docs = ParsedDocuments::default();
        let mut broken = Request::new("{ customers { ");
        docs.prepare(&mut broken);
        assert!(docs.is_empty());
        assert!(broken.parsed_query().is_err(), "the error is left for execution to report");

        let large = format!("{{ customers {{ totalCount }} }} # {}", "x".repeat(MAX_TEXT));
        let mut req = Request::new(large);
        docs.prepare(&mut req);
        assert!(docs.is_empty());
        assert_eq!(root_fields(&mut req), vec!["customers".to_owned()], "parsed all the same when executed");

        for i in 0..CAPACITY * 3 {
            docs.prepare(&mut Request::new(format!("{{ a{i}: customers {{ totalCount }} }}")));
            assert!(docs.len() <= CAPACITY);
        }
        assert!(!docs.is_empty());
    }
}

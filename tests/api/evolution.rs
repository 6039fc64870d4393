//! Schema evolution: `api/schema.graphql` (generated, the golden file) is compared with
//! `api/schema.released.graphql` (the last schema released to clients) and every difference is
//! classified — breaking (a client that works today fails), dangerous (a client may behave
//! differently), safe. A breaking change fails this test, and so CI, unless the released file is
//! updated in the same commit: a deliberate act, visible in review.

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Safe,
    Dangerous,
    Breaking,
}

#[derive(Default)]
struct Shape {
    kind: BTreeMap<String, &'static str>,
    /// type → field → (type, args: name → (type, has default))
    fields: BTreeMap<String, Fields>,
    /// input type → field → (type, has default)
    inputs: BTreeMap<String, BTreeMap<String, (String, bool)>>,
    enums: BTreeMap<String, Vec<String>>,
}

type Fields = BTreeMap<String, (String, BTreeMap<String, (String, bool)>)>;

fn fields_of(fields: &[async_graphql::Positioned<async_graphql::parser::types::FieldDefinition>]) -> Fields {
    fields
        .iter()
        .map(|f| {
            let args = f
                .node
                .arguments
                .iter()
                .map(|a| (a.node.name.node.to_string(), (a.node.ty.node.to_string(), a.node.default_value.is_some())))
                .collect();
            (f.node.name.node.to_string(), (f.node.ty.node.to_string(), args))
        })
        .collect()
}

fn shape(sdl: &str) -> Shape {
    let doc = parse_schema(sdl).expect("the schema parses");
    let mut s = Shape::default();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else { continue };
        let name = t.node.name.node.to_string();
        let value =
            |v: &async_graphql::parser::types::InputValueDefinition| (v.ty.node.to_string(), v.default_value.is_some());
        match &t.node.kind {
            TypeKind::Scalar => {
                s.kind.insert(name, "scalar");
            }
            TypeKind::Object(o) => {
                s.kind.insert(name.clone(), "object");
                s.fields.insert(name, fields_of(&o.fields));
            }
            TypeKind::Interface(i) => {
                s.kind.insert(name.clone(), "interface");
                s.fields.insert(name, fields_of(&i.fields));
            }
            TypeKind::Union(_) => {
                s.kind.insert(name, "union");
            }
            TypeKind::Enum(e) => {
                s.kind.insert(name.clone(), "enum");
                s.enums.insert(name, e.values.iter().map(|v| v.node.value.node.to_string()).collect());
            }
            TypeKind::InputObject(i) => {
                s.kind.insert(name.clone(), "input");
                s.inputs
                    .insert(name, i.fields.iter().map(|f| (f.node.name.node.to_string(), value(&f.node))).collect());
            }
        }
    }
    s
}

/// `X!` → `X` is fine for an input, breaking for an output; the reverse the other way round.
fn type_change(old: &str, new: &str, input: bool) -> Level {
    let loosened = old.strip_suffix('!') == Some(new);
    let tightened = new.strip_suffix('!') == Some(old);
    if old == new || (input && loosened) || (!input && tightened) {
        Level::Safe
    } else {
        Level::Breaking
    }
}

/// Every difference from `old` to `new`, classified.
pub fn changes(old: &str, new: &str) -> Vec<(Level, String)> {
    let (o, n) = (shape(old), shape(new));
    let mut out = Vec::new();
    for (name, kind) in &o.kind {
        match n.kind.get(name) {
            None => out.push((Level::Breaking, format!("type {name} removed"))),
            Some(k) if k != kind => out.push((Level::Breaking, format!("type {name} changed from {kind} to {k}"))),
            _ => {}
        }
    }
    for name in n.kind.keys().filter(|k| !o.kind.contains_key(*k)) {
        out.push((Level::Safe, format!("type {name} added")));
    }
    for (ty, fields) in &o.fields {
        let Some(new_fields) = n.fields.get(ty) else { continue };
        for (f, (t, args)) in fields {
            let Some((nt, nargs)) = new_fields.get(f) else {
                out.push((Level::Breaking, format!("{ty}.{f} removed")));
                continue;
            };
            let l = type_change(t, nt, false);
            if l != Level::Safe || t != nt {
                out.push((l, format!("{ty}.{f}: {t} → {nt}")));
            }
            for (a, (at, _)) in args {
                match nargs.get(a) {
                    None => out.push((Level::Breaking, format!("{ty}.{f}({a}) removed"))),
                    Some((nat, _)) if nat != at => {
                        out.push((type_change(at, nat, true), format!("{ty}.{f}({a}): {at} → {nat}")))
                    }
                    _ => {}
                }
            }
            for (a, (nat, default)) in nargs.iter().filter(|(a, _)| !args.contains_key(*a)) {
                let required = nat.ends_with('!') && !default;
                out.push((if required { Level::Breaking } else { Level::Safe }, format!("{ty}.{f}({a}: {nat}) added")));
            }
        }
        for f in new_fields.keys().filter(|f| !fields.contains_key(*f)) {
            out.push((Level::Safe, format!("{ty}.{f} added")));
        }
    }
    for (ty, fields) in &o.inputs {
        let Some(new_fields) = n.inputs.get(ty) else { continue };
        for (f, (t, _)) in fields {
            match new_fields.get(f) {
                None => out.push((Level::Breaking, format!("input {ty}.{f} removed"))),
                Some((nt, _)) if nt != t => out.push((type_change(t, nt, true), format!("input {ty}.{f}: {t} → {nt}"))),
                _ => {}
            }
        }
        for (f, (nt, default)) in new_fields.iter().filter(|(f, _)| !fields.contains_key(*f)) {
            let required = nt.ends_with('!') && !default;
            out.push((if required { Level::Breaking } else { Level::Safe }, format!("input {ty}.{f}: {nt} added")));
        }
    }
    for (e, values) in &o.enums {
        let Some(nv) = n.enums.get(e) else { continue };
        for v in values.iter().filter(|v| !nv.contains(v)) {
            out.push((Level::Breaking, format!("enum {e}.{v} removed")));
        }
        for v in nv.iter().filter(|v| !values.contains(v)) {
            // A client that switches over every value may meet one it does not know.
            out.push((Level::Dangerous, format!("enum {e}.{v} added")));
        }
    }
    out
}

#[test]
fn no_breaking_change_since_the_last_released_schema() {
    let released = include_str!("../../api/schema.released.graphql");
    let current = include_str!("../../api/schema.graphql");
    let report = changes(released, current);
    for (level, what) in &report {
        println!("{level:?}: {what}");
    }
    let breaking: Vec<&String> = report.iter().filter(|(l, _)| *l == Level::Breaking).map(|(_, w)| w).collect();
    assert!(
        breaking.is_empty(),
        "breaking changes to the API since api/schema.released.graphql: {breaking:#?}\n\
         If this is deliberate, copy api/schema.graphql over api/schema.released.graphql in the same commit."
    );
}

#[test]
fn the_classifier_flags_what_breaks_clients() {
    let old = "type Query { a: Int! b(x: Int): String c: String }\ninput I { p: Int q: Int! }\nenum E { X Y }\ntype Gone { z: Int }";
    let new = "type Query { a: Int b(x: Int!, y: Int!): String c: String! d: Int }\ninput I { p: Int! r: Int! }\nenum E { X Z }";
    let report = changes(old, new);
    let level = |needle: &str| report.iter().find(|(_, w)| w.contains(needle)).map(|(l, _)| *l);
    assert_eq!(level("Query.a: Int! → Int"), Some(Level::Breaking), "{report:?}");
    assert_eq!(level("Query.b(x): Int → Int!"), Some(Level::Breaking));
    assert_eq!(level("Query.b(y: Int!) added"), Some(Level::Breaking));
    assert_eq!(level("Query.c: String → String!"), Some(Level::Safe));
    assert_eq!(level("Query.d added"), Some(Level::Safe));
    assert_eq!(level("input I.p: Int → Int!"), Some(Level::Breaking));
    assert_eq!(level("input I.q removed"), Some(Level::Breaking));
    assert_eq!(level("input I.r: Int! added"), Some(Level::Breaking));
    assert_eq!(level("enum E.Y removed"), Some(Level::Breaking));
    assert_eq!(level("enum E.Z added"), Some(Level::Dangerous));
    assert_eq!(level("type Gone removed"), Some(Level::Breaking));
}

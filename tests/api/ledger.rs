//! The verifiable log through the API, checked by a verifier written here from RFC 9162 and the
//! C2SP signed-note spec — it shares no code with the `ledger` crate that produced the proofs.

use super::{acquire_input, TestApp, ACQUIRE};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use domain::staff::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub(crate) mod independent {
    use super::*;

    pub type H = [u8; 32];

    pub fn unhex(s: &str) -> H {
        assert_eq!(s.len(), 64, "{s}");
        let v: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect();
        v.try_into().unwrap()
    }

    fn node(l: &H, r: &H) -> H {
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        h.finalize().into()
    }

    pub fn leaf(data: &[u8]) -> H {
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(data);
        h.finalize().into()
    }

    /// RFC 9162 §2.1.3.2, step by step.
    pub fn inclusion(leaf: H, index: u64, size: u64, path: &[H], root: H) -> bool {
        if index >= size {
            return false;
        }
        let mut fn_ = index;
        let mut sn = size - 1;
        let mut r = leaf;
        for p in path {
            if sn == 0 {
                return false;
            }
            if fn_ % 2 == 1 || fn_ == sn {
                r = node(p, &r);
                if fn_.is_multiple_of(2) {
                    loop {
                        fn_ >>= 1;
                        sn >>= 1;
                        if fn_ % 2 == 1 || fn_ == 0 {
                            break;
                        }
                    }
                }
            } else {
                r = node(&r, p);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        sn == 0 && r == root
    }

    /// RFC 9162 §2.1.4.2, step by step.
    pub fn consistency(first: u64, second: u64, first_hash: H, second_hash: H, proof: &[H]) -> bool {
        if first == second {
            return proof.is_empty() && first_hash == second_hash;
        }
        if first == 0 || first > second || proof.is_empty() && !first.is_power_of_two() {
            return false;
        }
        let mut path = proof.to_vec();
        if first.is_power_of_two() {
            path.insert(0, first_hash);
        }
        let mut fn_ = first - 1;
        let mut sn = second - 1;
        while fn_ % 2 == 1 {
            fn_ >>= 1;
            sn >>= 1;
        }
        let mut fr = path[0];
        let mut sr = path[0];
        for c in &path[1..] {
            if sn == 0 {
                return false;
            }
            if fn_ % 2 == 1 || fn_ == sn {
                fr = node(c, &fr);
                sr = node(c, &sr);
                if fn_.is_multiple_of(2) {
                    loop {
                        fn_ >>= 1;
                        sn >>= 1;
                        if fn_ % 2 == 1 || fn_ == 0 {
                            break;
                        }
                    }
                }
            } else {
                sr = node(&sr, c);
            }
            fn_ >>= 1;
            sn >>= 1;
        }
        sn == 0 && fr == first_hash && sr == second_hash
    }

    /// C2SP signed-note verification with an Ed25519 verifier key; returns (origin, size, root).
    pub fn checkpoint(note: &str, vkey: &str) -> (String, u64, H) {
        let mut parts = vkey.splitn(3, '+');
        let (name, hash_hex, key_b64) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let key = B64.decode(key_b64).unwrap();
        assert_eq!(key[0], 1, "Ed25519");
        let mut kh = Sha256::new();
        kh.update(name.as_bytes());
        kh.update(b"\n");
        kh.update(&key);
        let kh: [u8; 32] = kh.finalize().into();
        let hex4: String = kh[..4].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex4, hash_hex, "the key hash in the verifier key");
        let (body, sigs) = note.split_at(note.find("\n\n").unwrap() + 1);
        let line = sigs.trim_start_matches('\n').lines().next().unwrap();
        let rest = line.strip_prefix("\u{2014} ").expect("an em-dash signature line");
        let (sig_name, sig_b64) = rest.split_once(' ').unwrap();
        assert_eq!(sig_name, name);
        let sig = B64.decode(sig_b64).unwrap();
        assert_eq!(&sig[..4], &kh[..4]);
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key[1..].try_into().unwrap()).unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&sig[4..]).unwrap();
        vk.verify_strict(body.as_bytes(), &signature).expect("the checkpoint signature verifies");
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], name, "origin is the key name");
        let root: H = B64.decode(lines[2]).unwrap().try_into().unwrap();
        (lines[0].to_owned(), lines[1].parse().unwrap(), root)
    }
}

fn hashes(v: &Value) -> Vec<independent::H> {
    v.as_array().unwrap().iter().map(|h| independent::unhex(h.as_str().unwrap())).collect()
}

const SEAL: &str = "mutation { sealLedgerHead { head { treeSize rootHash timestamp checkpoint } errors { code } } }";

pub(crate) async fn an_auditor_saves_a_head_and_proves_inclusion_and_growth_independently(app: TestApp) {
    let owner = app.owner().await;
    let auditor = app.staff(Role::Auditor).await;
    let r = app.gql(Some(&owner), ACQUIRE, acquire_input("100.00")).await;
    let item = r["data"]["acquireItem"]["item"]["id"].as_str().unwrap().to_owned();

    let r = app.gql(Some(&auditor), SEAL, json!({})).await;
    let first = r["data"]["sealLedgerHead"]["head"].clone();
    let (m, root1) = (
        first["treeSize"].as_u64().unwrap_or_else(|| panic!("{r}")),
        independent::unhex(first["rootHash"].as_str().unwrap()),
    );
    let vkey = app.gql(Some(&auditor), "{ ledgerPublicKey }", json!({})).await["data"]["ledgerPublicKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let served = app
        .client
        .get(format!("{}/.well-known/inventory-connect/ledger-key", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(served.trim(), vkey);
    let (_, size, root) = independent::checkpoint(first["checkpoint"].as_str().unwrap(), &vkey);
    assert_eq!((size, root), (m, root1), "the checkpoint commits to the head it came with");

    // The acquisition is in the tree: its leaf is SHA-256(0x00 ‖ its stored chain hash).
    let stored = app.state.store.backend().read_stream(&format!("item-{item}"), 0, 10).await.unwrap();
    let event = &stored[0];
    const PROOF: &str = "query($e: ID!, $n: Int) { inclusionProof(eventId: $e, treeSize: $n) { leafIndex treeSize leafHash auditPath } }";
    let r = app.gql(Some(&auditor), PROOF, json!({"e": event.event_id.to_string(), "n": m})).await;
    let p = &r["data"]["inclusionProof"];
    let leaf = independent::leaf(&event.hash);
    assert_eq!(independent::unhex(p["leafHash"].as_str().unwrap_or_else(|| panic!("{r}"))), leaf);
    let index = p["leafIndex"].as_u64().unwrap();
    assert!(independent::inclusion(leaf, index, m, &hashes(&p["auditPath"]), root1), "{r}");
    assert!(!independent::inclusion(leaf, index, m, &hashes(&p["auditPath"]), independent::leaf(b"other root")));

    // The log grows; the new head provably extends the saved one.
    for price in ["200.00", "300.00", "400.00"] {
        app.gql(Some(&owner), ACQUIRE, acquire_input(price)).await;
    }
    let second = app.gql(Some(&auditor), SEAL, json!({})).await["data"]["sealLedgerHead"]["head"].clone();
    let (n, root2) = (second["treeSize"].as_u64().unwrap(), independent::unhex(second["rootHash"].as_str().unwrap()));
    assert!(n >= m + 3, "{m} → {n}");
    let r = app
        .gql(
            Some(&auditor),
            "query($a: Int!, $b: Int!) { consistencyProof(fromSize: $a, toSize: $b) { path } }",
            json!({"a": m, "b": n}),
        )
        .await;
    let path = hashes(&r["data"]["consistencyProof"]["path"]);
    assert!(independent::consistency(m, n, root1, root2, &path), "{r}");
    assert!(!independent::consistency(m, n, independent::leaf(b"forged"), root2, &path));
    // The old event is still provable against the new head.
    let r = app.gql(Some(&auditor), PROOF, json!({"e": event.event_id.to_string(), "n": n})).await;
    assert!(independent::inclusion(leaf, index, n, &hashes(&r["data"]["inclusionProof"]["auditPath"]), root2));

    // Heads are kept, newest first.
    let r = app.gql(Some(&auditor), "{ ledgerHeads(first: 10) { edges { node { treeSize } } } }", json!({})).await;
    let sizes: Vec<u64> = r["data"]["ledgerHeads"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["treeSize"].as_u64().unwrap())
        .collect();
    // (On PostgreSQL one seal may sign an intermediate head first: a seal stops below the
    // oldest running transaction, and `sealLedgerHead` seals until it has everything.)
    assert_eq!(sizes[0], n, "{r}");
    assert!(sizes.contains(&m), "{r}");
    assert!(sizes.windows(2).all(|w| w[0] > w[1]), "{r}");
    // Unknown events and sizes are not found; sales staff may not ask.
    let r = app.gql(Some(&auditor), PROOF, json!({"e": uuid::Uuid::now_v7().to_string(), "n": n})).await;
    assert_eq!(r["errors"][0]["extensions"]["code"], "NOT_FOUND", "{r}");
    let sales = app.staff(Role::Sales).await;
    assert_eq!(app.gql(Some(&sales), SEAL, json!({})).await["errors"][0]["extensions"]["code"], "FORBIDDEN");
    assert_eq!(
        app.gql(Some(&sales), "{ ledgerHead { treeSize } }", json!({})).await["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
}

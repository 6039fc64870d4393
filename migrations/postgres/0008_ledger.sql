-- The verifiable ledger (RFC 6962 / 9162). Leaf i is the i-th event in log order, hashed as
-- SHA-256(0x00 ‖ the event's stored chain hash); interior nodes SHA-256(0x01 ‖ left ‖ right).
-- Every complete, aligned subtree's hash is kept (about two rows per event), so sealing N new
-- events costs O(N + log n) and any proof O(log n) reads. Heads are signed C2SP checkpoints.
-- Rows are only ever added, by one sealer at a time.

-- Which event is which leaf, and where the sealer has got to in the log.
CREATE TABLE ledger_leaves (
    leaf_index BIGINT PRIMARY KEY,
    event_id   UUID NOT NULL UNIQUE,
    commit_pos BIGINT NOT NULL,
    seq_pos    BIGINT NOT NULL
);

-- Hashes of complete subtrees: (level, index) covers leaves index·2^level … (index+1)·2^level − 1.
-- Level 0 holds the leaf hashes.
CREATE TABLE ledger_nodes (
    level      INTEGER NOT NULL,
    node_index BIGINT NOT NULL,
    hash       BYTEA NOT NULL,
    PRIMARY KEY (level, node_index)
);

-- Signed tree heads, kept: an auditor can ask for any of them again.
CREATE TABLE ledger_heads (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  BYTEA NOT NULL,
    sealed_at  BIGINT NOT NULL,
    checkpoint TEXT NOT NULL
);

-- The Ed25519 signing key, wrapped by the master key (rotated with it), and its public half.
CREATE TABLE ledger_keys (
    name        TEXT PRIMARY KEY,
    origin      TEXT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

#!/usr/bin/env bash
# The test command: runs every suite. PostgreSQL suites need a server (IC_TEST_POSTGRES_URL,
# default postgres://postgres@127.0.0.1:5432/postgres); without one they are skipped and named
# here, unless CI=true or IC_REQUIRE_POSTGRES=1, which make them mandatory.
set -euo pipefail
cd "$(dirname "$0")/.."
url="${IC_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"; [ "$port" = "$host" ] && port=5432
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  echo "PostgreSQL reachable at $host:$port: running SQLite and PostgreSQL suites."
elif [ "${CI:-}" = "true" ] || [ "${IC_REQUIRE_POSTGRES:-}" = "1" ]; then
  echo "PostgreSQL is required (CI=true) but nothing answers at $host:$port." >&2
  exit 1
else
  echo "=================================================================="
  echo "PostgreSQL not reachable at $host:$port: SKIPPING every PostgreSQL"
  echo "suite (tests named postgres::* and postgres_*). SQLite suites run."
  echo "=================================================================="
fi
cargo test --workspace "$@"

# The dashboard's real clients (graphql-http, graphql-ws) against the real binary, from the
# lockfile. Node.js is required in CI; elsewhere the suite is skipped when it is missing.
if command -v node >/dev/null && command -v npm >/dev/null; then
  cargo build -p api --bin inventory-connect
  (cd tests/node && npm ci --no-audit --no-fund --loglevel=error && npm test)
elif [ "${CI:-}" = "true" ]; then
  echo "Node.js and npm are required (CI=true) for tests/node." >&2
  exit 1
else
  echo "Node.js not found: SKIPPING the client suite in tests/node."
fi

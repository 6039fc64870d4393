// Starts the real `inventory-connect` binary for a test: its own data directory, its own
// database (a fresh SQLite file, or a uniquely named PostgreSQL database that is dropped
// afterwards), the demo store seeded, on a free port.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const here = dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.IC_BIN ?? resolve(here, '../../target/debug/inventory-connect');
export const DEMO = { email: 'owner@demo.inventoryconnect.test', password: 'vintage-showroom-2026' };
const PG_ADMIN = process.env.IC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function psql(sql) {
  execFileSync('psql', [PG_ADMIN, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { stdio: 'pipe' });
}

/** Whether PostgreSQL answers (the suite then runs against both backends). */
export function postgresAvailable() {
  try {
    psql('select 1');
    return true;
  } catch {
    if (process.env.CI === 'true' || process.env.IC_REQUIRE_POSTGRES === '1') {
      throw new Error(`PostgreSQL is required but does not answer at ${PG_ADMIN}`);
    }
    return false;
  }
}

/**
 * @param {'sqlite'|'postgres'} backend
 * @param {string[]} extraArgs more `serve` flags
 * @returns {Promise<{url: string, wsUrl: string, stop: () => Promise<void>}>}
 */
export async function startServer(backend, extraArgs = []) {
  const dir = mkdtempSync(join(tmpdir(), 'ic-node-'));
  let database = `sqlite://${join(dir, 'ic.db')}`;
  let dropDb = null;
  if (backend === 'postgres') {
    const name = `ic_node_${randomBytes(6).toString('hex')}`;
    psql(`CREATE DATABASE ${name}`);
    database = PG_ADMIN.replace(/\/[^/]*$/, `/${name}`);
    dropDb = () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
  const child = spawn(
    BIN,
    ['serve', '--listen', '127.0.0.1:0', '--demo', '--data-dir', dir, '--database-url', database, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`server did not start:\n${stderr}`)), 60_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.on('exit', (code) => fail(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return {
    url: `${url}/graphql`,
    wsUrl: `${url.replace('http://', 'ws://')}/graphql/ws`,
    stop: async () => {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await exited;
      if (dropDb) dropDb();
      rmSync(dir, { recursive: true, force: true });
    },
    writeFile: (name, text) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
  };
}

// The dashboard's real clients against the real server, on both backends: graphql-http (its
// conformance audit of the GraphQL-over-HTTP specification, and its client for the README's
// flows) and graphql-ws (subscriptions: another session's change arrives; a dropped socket
// resumes with fromPosition and receives exactly what it missed; a revoked session is closed).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { auditServer, createClient as createHttpClient } from 'graphql-http';
import { createClient as createWsClient } from 'graphql-ws';
import WebSocket from 'ws';
import { startServer, postgresAvailable, DEMO } from './server.mjs';

const LOGIN = 'mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { token } }';
const ACQUIRE = `mutation($price: Decimal!) { acquireItem(input: {category: WATCH, brand: "Omega",
  model: "Speedmaster", cost: {amount: "3000.00", currency: "USD"},
  askingPrice: {amount: $price, currency: "USD"}, acquisition: {source: PURCHASE}}) {
  item { id } position errors { code } } }`;
const EVENTS = `subscription($from: String) {
  events(where: {streamPrefix: "item-"}, fromPosition: $from) { position eventType entityId } }`;

/** One result of a query or mutation through graphql-http's client. */
function execute(client, query, variables = {}) {
  return new Promise((resolve, reject) => {
    let result;
    client.subscribe({ query, variables }, {
      next: (r) => (result = r),
      error: reject,
      complete: () => resolve(result),
    });
  });
}

function httpClient(url, token) {
  return createHttpClient({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });
}

async function login(url) {
  const r = await execute(httpClient(url), LOGIN, { e: DEMO.email, p: DEMO.password });
  assert.ok(r.data?.login?.token, JSON.stringify(r));
  return r.data.login.token;
}

function wsClient(wsUrl, token, on = {}) {
  return createWsClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { token },
    retryAttempts: 0,
    on,
  });
}

/** Subscribes and collects results; `take(n)` waits for the next `n` of them. */
function collect(client, payload) {
  const items = [];
  let failure = null;
  const dispose = client.subscribe(payload, {
    next: (r) => items.push(r),
    error: (e) => (failure = e),
    complete: () => {},
  });
  return {
    dispose,
    async take(n) {
      const deadline = Date.now() + 20_000;
      while (items.length < n) {
        if (failure) throw new Error(`subscription failed: ${JSON.stringify(failure)}`);
        if (Date.now() > deadline) throw new Error(`received ${items.length} of ${n} results`);
        await new Promise((ok) => setTimeout(ok, 20));
      }
      return items.splice(0, n).map((r) => {
        assert.equal(r.errors, undefined, JSON.stringify(r.errors));
        return r.data;
      });
    },
    pending: () => items.length,
  };
}

const backends = ['sqlite', ...(postgresAvailable() ? ['postgres'] : [])];

for (const backend of backends) {
  describe(backend, () => {
    let server;
    before(async () => {
      server = await startServer(backend);
    });
    after(async () => {
      await server?.stop();
    });

    test('passes every graphql-http audit of the GraphQL-over-HTTP specification', async () => {
      const token = await login(server.url);
      // The audits run as a signed-in client: introspection is for staff only.
      const fetchFn = (input, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set('authorization', `Bearer ${token}`);
        return fetch(input, { ...init, headers });
      };
      const results = await auditServer({ url: server.url, fetchFn });
      const failed = results.filter((r) => r.status !== 'ok').map((r) => `${r.name}: ${r.reason}`);
      assert.deepEqual(failed, [], 'MUST, SHOULD and MAY audits all pass');
      assert.ok(results.length >= 50, `${results.length} audits ran`);
    });

    test("runs the README's example through graphql-http's client", async () => {
      const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
      const section = readme.split('## Example GraphQL exchange')[1].split('\n## ')[0];
      const bodies = section.split("-d '").slice(1).map((rest) => JSON.parse(rest.split("'")[0]));
      assert.equal(bodies.length, 3, 'login, acquire, query');
      const [loginBody, acquireBody, listBody] = bodies;
      const loggedIn = await execute(httpClient(server.url), loginBody.query, loginBody.variables);
      const token = loggedIn.data.login.token;
      const client = httpClient(server.url, token);
      const acquired = await execute(client, acquireBody.query, acquireBody.variables);
      assert.deepEqual(acquired.data.acquireItem.errors, []);
      const listed = await execute(client, listBody.query, listBody.variables);
      const models = listed.data.inventoryItems.edges.map((e) => e.node.model);
      assert.ok(models.includes('Daytona'), JSON.stringify(listed));
    });

    test("a subscriber sees another session's change live, and resumes exactly where it dropped", async () => {
      const watcher = await login(server.url);
      const writer = httpClient(server.url, await login(server.url));
      // Subscribed from the last position before the other session's change: however long
      // the subscription takes to reach the server, the change is not missed.
      const before = (await execute(writer, ACQUIRE, { price: '4000.00' })).data.acquireItem.position;
      const client = wsClient(server.wsUrl, watcher);
      const live = collect(client, { query: EVENTS, variables: { from: before } });
      const made = await execute(writer, ACQUIRE, { price: '4100.00' });
      const [seen] = await live.take(1);
      assert.equal(seen.events.eventType, 'ItemAcquired');
      assert.equal(seen.events.entityId, made.data.acquireItem.item.id);
      assert.equal(seen.events.position, made.data.acquireItem.position);
      await client.dispose();

      // While disconnected, three more items arrive; on reconnect exactly those replay, in
      // order, and then the feed is live again.
      const missed = [];
      for (const price of ['4200.00', '4300.00', '4400.00']) {
        missed.push((await execute(writer, ACQUIRE, { price })).data.acquireItem);
      }
      const again = wsClient(server.wsUrl, watcher);
      const resumed = collect(again, { query: EVENTS, variables: { from: seen.events.position } });
      const replayed = (await resumed.take(3)).map((r) => r.events);
      assert.deepEqual(
        replayed.map((e) => [e.entityId, e.position]),
        missed.map((m) => [m.item.id, m.position]),
      );
      const after = await execute(writer, ACQUIRE, { price: '4500.00' });
      const [liveAgain] = await resumed.take(1);
      assert.equal(liveAgain.events.entityId, after.data.acquireItem.item.id, 'then live on the same subscription');
      await new Promise((ok) => setTimeout(ok, 200));
      assert.equal(resumed.pending(), 0, 'nothing twice');
      await again.dispose();
    });

    test('logging out closes the session’s socket with 4401', async () => {
      const token = await login(server.url);
      let connectedNow;
      const connected = new Promise((ok) => (connectedNow = ok));
      const closed = new Promise((ok) => {
        const client = wsClient(server.wsUrl, token, { connected: connectedNow, closed: (event) => ok(event.code) });
        collect(client, { query: EVENTS });
      });
      await connected;
      const r = await execute(httpClient(server.url, token), 'mutation { logout { revoked } }');
      assert.equal(r.data.logout.revoked, 1);
      assert.equal(await closed, 4401);
    });
  });
}

test("the README's subscription command prints a change made elsewhere", async () => {
  const server = await startServer('sqlite');
  try {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.split('## Live updates (subscriptions)')[1].split('\n## ')[0];
    const line = section.split('\n').find((l) => l.startsWith('node tests/node/subscribe.mjs "$TOKEN" '));
    assert.ok(line, 'the README shows the command');
    const query = line.match(/"\$TOKEN" '([^']+)'/)[1];
    const token = await login(server.url);
    const child = spawn(process.execPath, [fileURLToPath(new URL('./subscribe.mjs', import.meta.url)), token, query], {
      env: { ...process.env, IC_WS_URL: server.wsUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // The command subscribes live: write until a change arrives (it joins when it connects).
    const made = new Map();
    const client = httpClient(server.url, token);
    const deadline = Date.now() + 20_000;
    while (!out.includes('\n') && Date.now() < deadline) {
      const r = (await execute(client, ACQUIRE, { price: '9900.00' })).data.acquireItem;
      made.set(r.item.id, r.position);
      await new Promise((ok) => setTimeout(ok, 250));
    }
    child.kill('SIGINT');
    const printed = JSON.parse(out.split('\n')[0]);
    assert.equal(printed.events.eventType, 'ItemAcquired');
    assert.equal(made.get(printed.events.entityId), printed.events.position, 'one of the changes, as made');
  } finally {
    await server.stop();
  }
});

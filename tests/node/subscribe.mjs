#!/usr/bin/env node
// A small subscription client (graphql-ws, the library the dashboard uses):
//   node tests/node/subscribe.mjs TOKEN 'subscription { … }' ['{"variables": "as JSON"}']
// Prints each result's data as one JSON line. IC_WS_URL picks the server
// (default ws://127.0.0.1:8080/graphql/ws). Run `npm ci` in tests/node once first.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [token, query, variables] = process.argv.slice(2);
if (!token || !query) {
  console.error("usage: node subscribe.mjs TOKEN 'subscription { … }' ['{\"variable\": …}']");
  process.exit(2);
}
const client = createClient({
  url: process.env.IC_WS_URL ?? 'ws://127.0.0.1:8080/graphql/ws',
  webSocketImpl: WebSocket,
  connectionParams: { token },
  retryAttempts: 0,
  on: {
    closed: (e) => {
      if (e.code !== 1000) console.error(`closed: ${e.code} ${e.reason}`);
    },
  },
});
client.subscribe(
  { query, variables: variables ? JSON.parse(variables) : {} },
  {
    next: (r) => console.log(JSON.stringify(r.errors ? r : r.data)),
    error: (e) => {
      console.error(Array.isArray(e) ? JSON.stringify(e) : `error: ${e.message ?? e.code ?? e}`);
      process.exit(1);
    },
    complete: () => process.exit(0),
  },
);
process.on('SIGINT', () => client.dispose().then(() => process.exit(0)));

// The applications of the legacy-server benchmark (bench/compat.ts, issue 17), written for node:net with nothing of
// megapipe in them: node:http, Express 5 and Fastify 5 answering "hello world", and a ws echo server. Each listens
// with its framework's own listen() call and prints "listening on HOST:PORT". The harness runs this same file twice:
// under `node --import megapipe/register` (listen() accepts through a megapipe channel) and with MEGAPIPE_REGISTER=0
// (node:net), so the two processes differ only in that variable.
//
//   node [--import megapipe/register] dist/bench/servers/compat-app.js --app http|express|fastify|ws [--host H] [--port P]
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import express from 'express';
import Fastify from 'fastify';
import { WebSocketServer } from 'ws';

/** The body every HTTP app answers GET / with (the load generators check it). */
export const HELLO = 'hello world';

const APPS = ['http', 'express', 'fastify', 'ws'] as const;
type App = (typeof APPS)[number];

const { values } = parseArgs({ options: { app: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' }, port: { type: 'string', default: '0' } } });
const app = values.app as App;
if (!APPS.includes(app)) {
  process.stderr.write(`usage: compat-app --app ${APPS.join('|')} [--host H] [--port P]\n`);
  process.exit(64);
}
const host = values.host!, port = Number(values.port);
const ready = (server: { address(): ReturnType<http.Server['address']> }): void => {
  const a = server.address();
  process.stdout.write(`listening on ${host}:${typeof a === 'object' && a ? a.port : port}\n`);
};

if (app === 'http') {
  const server = http.createServer((_req, res) => { res.end(HELLO); });
  server.listen(port, host, () => ready(server));
} else if (app === 'express') {
  const e = express();
  e.get('/', (_req, res) => { res.send(HELLO); });
  const server = e.listen(port, host, () => ready(server));
} else if (app === 'fastify') {
  const f = Fastify({ logger: false });
  f.get('/', async () => HELLO);
  await f.listen({ port, host });
  ready(f.server);
} else {
  // echo every message back as it came (binary or text); no compression (ws's default on the server)
  const wss: WebSocketServer = new WebSocketServer({ host, port }, () => ready(wss));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  });
}

// megapipe/register: `node --import megapipe/register app.js` serves every TCP listen() of a net.Server (and so of
// http, https, tls, Express, Fastify, ws) through a megapipe channel, unchanged. IPC paths, handles, fds, cluster
// workers and kernels without io_uring stay on node:net (one line on stderr says so). MEGAPIPE_REGISTER=0 turns it off.
import * as net from 'node:net';
import { listenAny } from './net/server.js';

if (process.env.MEGAPIPE_REGISTER !== '0') {
  net.Server.prototype.listen = function listen(this: net.Server, ...args: unknown[]): net.Server {
    return listenAny(this, args, false);
  } as typeof net.Server.prototype.listen;
}

// The worker module of megapipe-http: `serve({ module: <this file>, workerData })` loads it in each worker thread
// and calls the default export to get that worker's SessionFactory (one HTTP server — handlers, file cache, timer —
// per worker). `startServer` (cli.ts) also calls it in-process for the node:net transport.

import * as nodePath from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SessionFactory } from '../../src/index.js';
import { createHttpApp, type HttpApp, type HttpServerOptions } from './app.js';
import type { Handler } from './handlers.js';
import { serveStatic, type StaticOptions } from './static.js';

/** What the worker expects in `workerData` (structured-clonable: no functions). */
export interface HttpWorkerData {
  /** Serve static files from this directory (after the handler, if any, falls through). */
  root?: string;
  /**
   * A module (path, absolute or relative to the working directory, or a package name) whose default export is a
   * Handler, or which exports `setup(ctx) => Handler | Promise<Handler>`. (A module, not a function: it is loaded
   * in every worker thread. `handler` is createHttpApp's option, a function.)
   */
  handlerModule?: string;
  /** Server options (timeouts, limits, ...). */
  options?: Omit<HttpServerOptions, 'handler' | 'onError'>;
  /** Static file options. */
  static?: StaticOptions;
}

export interface SetupContext {
  worker: number;
  workers: number;
  workerData: unknown;
}

/** The SessionFactory `setup` returns also carries its server (for graceful shutdown and statistics). */
export type HttpSessionFactory = SessionFactory & { readonly app: HttpApp };

async function loadHandler(spec: string, ctx: SetupContext): Promise<Handler> {
  const isPath = spec.startsWith('.') || spec.startsWith('/') || nodePath.isAbsolute(spec);
  const url = isPath ? pathToFileURL(nodePath.resolve(spec)).href : spec;
  const mod = (await import(url)) as { default?: unknown; setup?: unknown; handler?: unknown };
  if (typeof mod.setup === 'function') {
    const h = await (mod.setup as (c: SetupContext) => Handler | Promise<Handler>)(ctx);
    if (typeof h !== 'function') throw new TypeError(`${spec}: setup() did not return a handler function`);
    return h;
  }
  const h = typeof mod.default === 'function' ? mod.default : mod.handler;
  if (typeof h !== 'function') throw new TypeError(`${spec}: no default-exported handler function`);
  return h as Handler;
}

export default async function setup(ctx: SetupContext): Promise<HttpSessionFactory> {
  const wd = (ctx.workerData ?? {}) as HttpWorkerData;
  const handlers: Handler[] = [];
  if (wd.handlerModule) handlers.push(await loadHandler(wd.handlerModule, ctx));
  if (wd.root) handlers.push(serveStatic(wd.root, wd.static));
  const app = createHttpApp({ ...wd.options, handler: handlers });
  const factory = ((conn) => app.factory(conn)) as SessionFactory;
  return Object.assign(factory, { app });
}

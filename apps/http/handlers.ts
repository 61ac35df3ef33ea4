// megapipe-http's handler chain: a request is offered to the server's handlers in order until one responds (else
// 404); a handler that throws or rejects answers with the HttpError's status, or 500 reported to `onError`; an
// error after the response started is reported and the connection destroyed (the response cannot be completed).

import type { AppState } from './app.js';
import type { Exchange } from './exchange.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';
import { HttpError } from './status.js';

/**
 * A request handler. Respond with `res.send/json/stream/file`; return (or resolve) without responding to pass the
 * request to the next handler (e.g. serveStatic); throw an HttpError to answer with its status.
 */
export type Handler = (req: HttpRequest, res: HttpResponse) => void | Promise<void>;

/** Try handlers in order: each one that returns without responding passes the request on. */
export function compose(...handlers: Handler[]): Handler {
  return async (req, res) => {
    for (const h of handlers) {
      await h(req, res);
      if (res.started) return;
    }
  };
}

/** Offers a parsed request to the server's handlers (called once per request, in the order requests arrive). */
export function dispatch(app: AppState, ex: Exchange): void {
  run(app, ex, 0);
}

function run(app: AppState, ex: Exchange, from: number): void {
  const { req, res } = ex;
  const hs = app.handlers;
  for (let i = from; i < hs.length; i++) {
    let r: void | Promise<void>;
    try {
      r = hs[i](req, res);
    } catch (e) {
      return failed(app, ex, e);
    }
    if (r !== undefined && r !== null && typeof (r as Promise<void>).then === 'function') {
      (r as Promise<void>).then(
        () => {
          if (!res.started) run(app, ex, i + 1);
        },
        (e: unknown) => failed(app, ex, e),
      );
      return;
    }
    if (res.started) return;
  }
  if (!res.started && !ex.aborted) res.sendError(404);
}

function failed(app: AppState, ex: Exchange, e: unknown): void {
  const res = ex.res;
  if (ex.aborted) return;
  if (!res.started) {
    const status = e instanceof HttpError ? e.status : 500;
    if (status >= 500 && !(e instanceof HttpError)) app.onError(e, ex.req);
    res.sendError(status, e instanceof HttpError ? e.body : undefined);
    return;
  }
  app.onError(e, ex.req);
  if (!res.finished) ex.abort();
}

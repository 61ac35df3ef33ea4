// megapipe-http's public API.

export { createHttpApp, type Handler, type HttpApp, type HttpServerOptions, type HttpTimeoutCounts } from './server.js';
export { HttpRequest } from './request.js';
export { HttpResponse, type FileOptions } from './response.js';
export { Fields } from './headers.js';
export { HttpError, STATUS_TEXT } from './status.js';
export { serveStatic, sendFile, decodePath, parseRange, type StaticOptions, type StaticHandler, type StaticCacheStats } from './static.js';
export { mimeType, MIME_TYPES } from './mime.js';
export { httpDate } from './date.js';
export { RequestParser, DEFAULT_LIMITS, type ParserLimits, type RequestHead, type ParserEvents } from './parser.js';
export { startServer, type StartOptions, type RunningServer } from './cli.js';
export { default as setup, type HttpWorkerData, type SetupContext, type HttpSessionFactory } from './worker.js';

/** Try handlers in order: each one that returns without responding passes the request on. */
import type { Handler } from './server.js';
export function compose(...handlers: Handler[]): Handler {
  return async (req, res) => {
    for (const h of handlers) {
      await h(req, res);
      if (res.started) return;
    }
  };
}

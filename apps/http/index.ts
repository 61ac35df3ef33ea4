// megapipe-http's public API.

export { createHttpApp, type HttpApp, type HttpServerOptions, type HttpTimeoutCounts } from './app.js';
export { compose, type Handler } from './handlers.js';
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

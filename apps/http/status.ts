// Status codes, reason phrases and the error type handlers throw to answer with a status.

export const STATUS_TEXT: Readonly<Record<number, string>> = {
  100: 'Continue', 101: 'Switching Protocols',
  200: 'OK', 201: 'Created', 202: 'Accepted', 203: 'Non-Authoritative Information', 204: 'No Content',
  205: 'Reset Content', 206: 'Partial Content',
  300: 'Multiple Choices', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other', 304: 'Not Modified',
  307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  406: 'Not Acceptable', 408: 'Request Timeout', 409: 'Conflict', 410: 'Gone', 411: 'Length Required',
  412: 'Precondition Failed', 413: 'Content Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable', 417: 'Expectation Failed', 422: 'Unprocessable Content', 426: 'Upgrade Required',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large',
  500: 'Internal Server Error', 501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable',
  504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

export function reasonPhrase(status: number): string {
  return STATUS_TEXT[status] ?? 'Unknown';
}

/** An error status a response may carry: an integer 400..599 (a client or server error, never 1xx/2xx/3xx). */
export function isErrorStatus(status: unknown): status is number {
  return Number.isInteger(status) && (status as number) >= 400 && (status as number) <= 599;
}

/**
 * Throw (or reject with) an HttpError from a handler to answer with `status` when no response has started yet: the
 * body is `message` (`HttpError(422, 'n must be a number')` sends `n must be a number`), or without one the status
 * and its reason phrase (`404 Not Found`). The request body helpers reject with one too (413 over the limit, 400 on
 * a malformed chunked body or invalid JSON). A message is sent to the client as given: keep secrets out of it.
 * `status` must be an integer 400..599, else the constructor throws a RangeError (a 1xx "final" response would be
 * read by clients as an interim one, its body as a second, forged response).
 */
export class HttpError extends Error {
  /** The response body: the message given, or undefined for the default (`404 Not Found`). */
  readonly body: string | undefined;
  constructor(readonly status: number, message?: string) {
    if (!isErrorStatus(status)) throw new RangeError(`HttpError: status must be an integer 400..599, got ${String(status)}`);
    super(message ?? reasonPhrase(status));
    this.name = 'HttpError';
    this.body = message;
  }
}

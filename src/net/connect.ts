// megapipe/net's net.connect() / net.createConnection(): a Socket (socket.ts) that connects through this thread's
// channel.
import { Socket, type SocketOptions } from './socket.js';

/**
 * A connected Socket (net.connect): `connect(port[, host][, cb])` or `connect(options[, cb])`. As node's, a truthy
 * `options.timeout` is set with setTimeout before connecting (its errors thrown from here).
 */
export function connect(...args: unknown[]): Socket {
  const first = args[0];
  const options = first !== null && typeof first === 'object' ? first as SocketOptions & { timeout?: number } : undefined;
  const s = new Socket(options ?? {});
  if (options?.timeout) s.setTimeout(options.timeout);
  return s.connect(...args);
}

export { connect as createConnection };

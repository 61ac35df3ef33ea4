// megapipe: MegaPipe's channel, lwsockets, partitioned listeners and batching for Node.js.
export { type BackendName, type Channel, type ChannelOptions, type ChannelStats, type Features, type AcceptOptions, type ConnectOptions, type RegisterOptions, type SocketAddress, type SocketOption } from './channel.js';
export { createChannel, uringAvailability, selectBackend } from './backend.js';
export { listen, listenPortable, Listener, type ListenOptions } from './listener.js';
export { type MpEvent, type ReadEvent, type AcceptEvent, type WriteEvent, type ConnectEvent, type DisconnectEvent, type ErrorEvent, type ListenerErrorEvent, type EventType, type EventHandler } from './event.js';
export { bounds, defaultLimits, resolveLimits, type Limits } from './limits.js';
export { MegapipeError, MpCode, errnoCode, type MpCodeValue } from './errors.js';
export { currentCpu } from './sockets.js';
export { version } from './version.js';
export { type Conn, type Session, type SessionFactory } from './server/session.js';
export { serveNet, type ServeNetOptions, type NetServerHandle } from './server/serve-net.js';
export { serveChannel, type ServeChannelOptions, type ChannelServer } from './server/serve-channel.js';
export { serve, Server, type ServerEvents, type ServeOptions, type WorkerContext, type WorkerSetup, type WorkerStats, type WorkerExit } from './server/serve.js';
export { startBalancer, type BalanceOptions, type Balancer } from './server/balance.js';
/** @internal The clock of one synchronous run (clock.ts), shared with the applications (apps/). */
export { timeNow } from './clock.js';
/** @internal Options checks shared with the applications (apps/): known keys only. */
export { checkOptions, optionKeys } from './options.js';

// megapipe: MegaPipe's channel, lwsockets, partitioned listeners and batching for Node.js.
export { createChannel, type Channel, type ChannelOptions, type AcceptOptions, type ConnectOptions, type RegisterOptions } from './channel.js';
export { listen, listenPortable, Listener, type ListenOptions } from './listener.js';
export { MpEvent, type EventType, type EventHandler } from './event.js';
export { type ChannelStats } from './channel-core.js';
export { defaultLimits, resolveLimits, type Limits } from './limits.js';
export { MegapipeError, MpCode, errnoCode } from './errors.js';
export { uringAvailability, selectBackend, type BackendName } from './backend.js';
export { type Conn, type Session, type SessionFactory } from './session.js';
export { serveNet, type ServeNetOptions, type NetServerHandle } from './serve-net.js';
export { serveChannel, type ServeChannelOptions, type ChannelServer } from './serve-channel.js';
export { serve, Server, type ServeOptions, type WorkerContext, type WorkerSetup, type WorkerStats, type WorkerExit } from './serve.js';
export { startBalancer, type BalanceOptions, type Balancer } from './balance.js';

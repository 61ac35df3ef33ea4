// megapipe/net: node:net's server and socket API over megapipe channels (lwsockets, batching), for servers written
// for node:net — http, https, tls, Express, Fastify, ws — without a rewrite. See README "megapipe/net".
export { Server, createServer, attach, serveServer, type AttachOptions, type TcpListen } from './server.js';
export { Socket, type SocketOptions, type TcpConnectOptions } from './socket.js';
export { connect, createConnection } from './connect.js';
export { isIP, isIPv4, isIPv6, type AddressInfo, type ServerOpts } from 'node:net';

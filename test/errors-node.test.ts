// Errors like node's: a failed system call a user can meet is a MegapipeError with node's code (`EADDRINUSE`), the
// negative errno, the syscall, the address and port, and node's message; a bad argument is a TypeError/RangeError
// naming it; an unknown option key is a TypeError naming the key. Both backends' listeners, serveNet and serve().
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { constants } from 'node:os';
import { createChannel, listen, listenPortable, MegapipeError, MpCode, serve, serveNet, serveChannel, type Listener } from '../src/index.js';
import { BACKENDS, skipFor, uringSkip, type BackendKind } from './helpers.js';

const EADDRINUSE = constants.errno.EADDRINUSE;
const EADDRNOTAVAIL = constants.errno.EADDRNOTAVAIL;

async function open(backend: BackendKind, options: Parameters<typeof listen>[0]): Promise<Listener> {
  return backend === 'uring' ? listen(options) : listenPortable(options);
}

/** A node:net server holding a loopback port. */
async function holdPort(): Promise<{ port: number; close(): void }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return { port: (s.address() as net.AddressInfo).port, close: () => s.close() };
}

function assertSystemError(e: unknown, code: string, errno: number, address: string, port: number | undefined): true {
  assert.ok(e instanceof MegapipeError, `a MegapipeError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
  assert.equal(e.code, code);
  assert.equal(e.errno, -errno);
  assert.equal(typeof e.syscall, 'string');
  assert.equal(e.address, address);
  if (port !== undefined) assert.equal(e.port, port);
  assert.match(e.message, new RegExp(`^${e.syscall} ${code}: .+ ${address.replace(/\./g, '\\.')}${port ? `:${port}` : ''}$`));
  return true;
}

describe('errors like node\'s', () => {
  for (const backend of BACKENDS) {
    describe(backend, { skip: skipFor(backend) }, () => {
      it('a port in use: code EADDRINUSE, errno, syscall, address, port, and node\'s message', async () => {
        const held = await holdPort();
        try {
          await assert.rejects(open(backend, { host: '127.0.0.1', port: held.port }), (e) => assertSystemError(e, 'EADDRINUSE', EADDRINUSE, '127.0.0.1', held.port));
        } finally { held.close(); }
      });

      it('an address this host does not have: EADDRNOTAVAIL', async () => {
        await assert.rejects(open(backend, { host: '192.0.2.1', port: 0 }), (e) => assertSystemError(e, 'EADDRNOTAVAIL', EADDRNOTAVAIL, '192.0.2.1', undefined));
      });

      it('a privileged port without the privilege: EACCES', { skip: process.getuid?.() === 0 ? 'running as root: binding port 80 is allowed' : false }, async () => {
        await assert.rejects(open(backend, { host: '127.0.0.1', port: 80 }), (e) => assertSystemError(e, 'EACCES', constants.errno.EACCES, '127.0.0.1', 80));
      });

      it('an unknown option key is a TypeError naming it: listen, register, accept, connect', async () => {
        const named = (key: string) => (e: Error) => e instanceof TypeError && e.message.includes(`'${key}'`) && (e as { code?: string }).code === MpCode.INVALID_ARG;
        await assert.rejects(open(backend, { prot: 80 } as never), named('prot'));
        const ch = createChannel({ backend });
        const l = await open(backend, { port: 0 });
        try {
          assert.throws(() => ch.register(l, 'L', { cpumask: [0] } as never), named('cpumask'));
          const lh = ch.register(l, 'L');
          assert.throws(() => ch.accept(lh, { cout: 1 } as never), named('cout'));
          assert.throws(() => ch.connect('127.0.0.1', l.port, null, { localAdress: '127.0.0.1' } as never), named('localAdress'));
        } finally { ch.close(); l.close(); }
      });
    });
  }

  it('serveNet: a port in use rejects with EADDRINUSE', async () => {
    const held = await holdPort();
    try {
      await assert.rejects(serveNet(() => ({ data() {} }), { port: held.port }), (e) => assertSystemError(e, 'EADDRINUSE', EADDRINUSE, '127.0.0.1', held.port));
    } finally { held.close(); }
  });

  it('serve(): a port in use rejects with EADDRINUSE', { skip: uringSkip }, async () => {
    const held = await holdPort();
    try {
      await assert.rejects(serve({ module: new URL('./fixtures/echo-worker.js', import.meta.url), workers: 1, port: held.port }), (e) => assertSystemError(e, 'EADDRINUSE', EADDRINUSE, '127.0.0.1', held.port));
    } finally { held.close(); }
  });

  it('createChannel({cpu: 999}) is a RangeError naming cpu', () => {
    assert.throws(() => createChannel({ cpu: 999 }), (e: Error) => e instanceof RangeError && /\bcpu\b/.test(e.message) && (e as { code?: string }).code === MpCode.OUT_OF_RANGE);
  });

  it('unknown option keys are TypeErrors naming the key: createChannel, serve, serveNet, serveChannel', async () => {
    const named = (key: string) => (e: Error) => e instanceof TypeError && e.message.includes(`'${key}'`) && (e as { code?: string }).code === MpCode.INVALID_ARG;
    assert.throws(() => createChannel({ bogus: 1 } as never), named('bogus'));
    assert.throws(() => createChannel({ backend: 'portable', batchSize: 4 } as never), named('batchSize'));
    await assert.rejects(serve({ module: 'x.js', worker: 2 } as never), named('worker'));
    await assert.rejects(serveNet(() => ({ data() {} }), { prot: 1 } as never), named('prot'));
    const ch = createChannel({ backend: 'portable' });
    const l = await listenPortable({ port: 0 });
    try {
      assert.throws(() => serveChannel(ch, l, () => ({ data() {} }), { endTimeout: 5 } as never), named('endTimeout'));
    } finally { ch.close(); l.close(); }
  });

  it('wrong types name the option', async () => {
    assert.throws(() => createChannel({ pauseReadsAboveHighWater: 'no' } as never), (e: Error) => e instanceof TypeError && /pauseReadsAboveHighWater/.test(e.message));
    await assert.rejects(serve({ module: 'x.js', restart: 'yes' } as never), (e: Error) => e instanceof TypeError && /restart/.test(e.message));
    await assert.rejects(serve({ module: 'x.js', endTimeoutMs: -5 }), (e: Error) => e instanceof RangeError && /endTimeoutMs/.test(e.message));
    await assert.rejects(serveNet(() => ({ data() {} }), { highWaterMark: '64k' } as never), (e: Error) => e instanceof RangeError && /highWaterMark/.test(e.message));
  });
});

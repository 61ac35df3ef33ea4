// The client side of the idle-WebSocket point of bench/compat.ts: a separate process (its own memory and fd table),
// forked with an IPC channel, that opens WebSocket connections over raw node:net sockets (the RFC 6455 handshake, the
// answer checked: 101 and the Sec-WebSocket-Accept of the key sent), holds them idle, then sends one message on every
// connection and checks every byte of the echoed frame. Commands and replies are the messages below.
//
//   forked by bench/compat.ts as: node dist/bench/compat/ws-client.js
import { connect, type Socket } from 'node:net';

/** RFC 6455 §1.3's example key and its accept value: every connection sends the key, the server must answer this. */
export const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const WS_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export type ClientCmd =
  | { cmd: 'open'; host: string; port: number; total: number; srcFirst: number; srcIps: number; concurrency: number; timeoutMs: number }
  | { cmd: 'echo'; concurrency: number; timeoutMs: number }
  | { cmd: 'close'; timeoutMs: number };

export interface ClientReply { ok: boolean; open: number; done: number; errors: number; mismatches: number; ms: number; message?: string }

/** The handshake request every connection sends. */
export function handshakeRequest(host: string, port: number): string {
  return `GET / HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
}

/** Why a handshake response head (up to the blank line, excluded) is wrong, or undefined when it is right. */
export function handshakeProblem(head: string): string | undefined {
  const lines = head.split('\r\n');
  if (!/^HTTP\/1\.1 101 /.test(lines[0] ?? '')) return `status line ${JSON.stringify(lines[0])}`;
  const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l));
  if (accept === undefined) return 'no Sec-WebSocket-Accept';
  if (accept.slice(accept.indexOf(':') + 1).trim() !== WS_ACCEPT) return `wrong ${accept}`;
  return undefined;
}

/** A client's frame: FIN + binary, masked with `key` (4 bytes), payload ≤ 125 bytes. */
export function maskedFrame(payload: Buffer, key: Buffer): Buffer {
  const f = Buffer.allocUnsafe(6 + payload.length);
  f[0] = 0x82; f[1] = 0x80 | payload.length;
  key.copy(f, 2, 0, 4);
  for (let i = 0; i < payload.length; i++) f[6 + i] = payload[i]! ^ key[i & 3]!;
  return f;
}

/** The server's echo of `payload`: FIN + binary, unmasked. */
export function echoFrame(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x82, payload.length]), payload]);
}

/** The 16-byte message of connection i (its number and a hash of it: a swapped or shifted echo shows). */
export function messageOf(i: number): Buffer {
  const m = Buffer.alloc(16);
  m.writeUInt32BE(i, 0);
  m.write(`ws-${(Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0')}`, 4, 'latin1');
  return m;
}

function clientMain(): void {
  const socks: Socket[] = [];
  let dead = 0;   // connections that closed after their handshake: an idle connection must stay up
  const reply = (r: ClientReply): void => { process.send!(r); };

  async function open(c: Extract<ClientCmd, { cmd: 'open' }>): Promise<ClientReply> {
    const t0 = Date.now();
    const request = handshakeRequest(c.host, c.port);
    let errors = 0, mismatches = 0, inflight = 0, started = 0, lastError = '';
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, c.timeoutMs);
      const pump = (): void => {
        if ((started >= c.total && inflight === 0) || errors + mismatches > 100) { clearTimeout(timer); resolve(); return; }
        while (inflight < c.concurrency && started < c.total) {
          const i = started++;
          inflight++;
          const localAddress = c.srcIps > 0 ? `127.0.0.${c.srcFirst + (i % c.srcIps)}` : undefined;
          const s = connect({ host: c.host, port: c.port, localAddress, noDelay: true });
          let head = '', upgraded = false, settled = false;
          const settle = (ok: boolean, why?: string): void => {
            if (settled) return;
            settled = true;
            inflight--;
            if (ok) { upgraded = true; socks.push(s); }
            else { lastError = why ?? ''; s.destroy(); }
            setImmediate(pump);
          };
          s.once('connect', () => s.write(request));
          const onData = (d: Buffer): void => {
            head += d.toString('latin1');
            const end = head.indexOf('\r\n\r\n');
            if (end < 0) { if (head.length > 4096) { mismatches++; settle(false, 'oversized handshake response'); } return; }
            s.off('data', onData);
            const problem = handshakeProblem(head.slice(0, end));
            if (problem !== undefined || head.length > end + 4) { mismatches++; settle(false, problem ?? 'bytes after the handshake'); return; }
            settle(true);
          };
          s.on('data', onData);
          s.on('error', (e) => { if (!settled) { errors++; settle(false, e.message); } });
          s.once('close', () => { if (upgraded) dead++; else if (!settled) { errors++; settle(false, 'closed during the handshake'); } });
        }
      };
      pump();
    });
    const ok = socks.length === c.total && dead === 0 && errors === 0 && mismatches === 0;
    return { ok, open: socks.length - dead, done: socks.length, errors, mismatches, ms: Date.now() - t0,
      message: ok ? undefined : `opened ${socks.length} of ${c.total}, ${dead} closed, ${errors} errors, ${mismatches} bad handshakes (${lastError})` };
  }

  /** One message on every connection, its echo checked byte for byte (exactly one frame, nothing more). */
  async function echo(c: Extract<ClientCmd, { cmd: 'echo' }>): Promise<ClientReply> {
    const t0 = Date.now();
    let next = 0, done = 0, mismatches = 0, inflight = 0, lastProblem = '';
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, c.timeoutMs);
      const pump = (): void => {
        if (done === socks.length) { clearTimeout(timer); resolve(); return; }
        while (inflight < c.concurrency && next < socks.length) {
          const i = next++, s = socks[i]!;
          inflight++;
          const msg = messageOf(i);
          const want = echoFrame(msg);
          const got: Buffer[] = [];
          let n = 0;
          const onData = (d: Buffer): void => {
            got.push(d); n += d.length;
            if (n < want.length) return;
            s.off('data', onData);
            const all = Buffer.concat(got, n);
            if (!all.equals(want)) { mismatches++; lastProblem = `connection ${i}: got ${all.toString('hex')}, expected ${want.toString('hex')}`; }
            done++; inflight--; pump();
          };
          s.on('data', onData);
          s.write(maskedFrame(msg, Buffer.from([0x12, 0x34, 0x56, (i & 0x7f) | 0x80])));
        }
      };
      pump();
    });
    const ok = done === socks.length && mismatches === 0 && dead === 0;
    return { ok, open: socks.length - dead, done, errors: 0, mismatches, ms: Date.now() - t0,
      message: ok ? undefined : `${done} of ${socks.length} echoed, ${mismatches} mismatches, ${dead} closed${lastProblem ? ` (${lastProblem})` : ''}` };
  }

  async function close(c: Extract<ClientCmd, { cmd: 'close' }>): Promise<ClientReply> {
    const t0 = Date.now();
    const n = socks.length;
    await Promise.race([
      Promise.all(socks.map((s) => new Promise<void>((r) => { if (s.destroyed) r(); else { s.once('close', () => r()); s.end(); } }))),
      new Promise((r) => setTimeout(r, c.timeoutMs)),
    ]);
    for (const s of socks) s.destroy();
    socks.length = 0;
    dead = 0;
    return { ok: true, open: 0, done: n, errors: 0, mismatches: 0, ms: Date.now() - t0 };
  }

  process.on('message', (m: ClientCmd) => {
    const p = m.cmd === 'open' ? open(m) : m.cmd === 'echo' ? echo(m) : close(m);
    p.then(reply, (e: Error) => reply({ ok: false, open: socks.length, done: 0, errors: 1, mismatches: 0, ms: 0, message: e.message }));
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.send !== undefined && process.argv[2] === '--client') clientMain();

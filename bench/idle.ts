// Connection scale (issue 4 §6): memory per idle connection with 15,000 open connections.
// For each server: start it pinned to one core, open and close a warm-up batch of connections (so lazily
// initialised, bounded state — JIT code, receive-buffer pages, free lists — is not billed to connections), then
// open the connections in steps from a separate client process (Node, raw node:net sockets, spread over
// 127.0.0.2.. source addresses, pinned to the other core) and, at each step, read the server process's VmRSS and
// RssAnon from /proc/PID/status and its JavaScript heap (the server prints it on SIGUSR2 after a full GC; it runs
// with --expose-gc). Then one echo round trip on every connection, bytes verified, and the memory again; then all
// connections close. Reports bytes per idle connection: (at N − before) / N, and the marginal cost between the
// first and the last step (fixed costs cancel out). RSS leaves out kernel memory (socket buffers, struct file,
// io_uring requests): that is the same kind of socket for every server, and RSS is what the process is billed.
//
//   node dist/bench/idle.js --help
import { checkRecordName, gitInfo, machineInfo, makeResultsDir, provenanceMarkdown, recordSummary, reproduceCommand, summaryDir } from './lib/results.js';
import { MIN_CLEAN_RUNS } from './lib/verdict.js';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { refuseIfBusy } from './lib/guard.js';
import { ensureCPrograms, freePort, pinSelf, ROOT } from './lib/paths.js';
import { fmt, fmtSummary, summarize, type Summary } from './lib/stats.js';
import { lineChart } from './lib/svg.js';
import { formatTable, markdownTable, type Table } from './lib/table.js';

// ---- the client role (a separate process: its own memory and fd table) ------------------------------------

/** Messages from the harness to the client process, and its replies. */
type ClientCmd =
  | { cmd: 'open'; host: string; port: number; total: number; srcIps: number; concurrency: number; timeoutMs: number }
  | { cmd: 'echo'; concurrency: number; timeoutMs: number }
  | { cmd: 'close'; timeoutMs: number };
interface ClientReply { ok: boolean; open: number; done: number; errors: number; mismatches: number; ms: number; message?: string }

function clientMain(): void {
  const socks: Socket[] = [];
  let dead = 0; // connections that closed or failed after opening: an idle connection must stay up
  const reply = (r: ClientReply) => process.send!(r);

  /** Opens connections until `total` are open (bounded by `timeoutMs`), `concurrency` connects in flight. */
  async function open(c: Extract<ClientCmd, { cmd: 'open' }>): Promise<ClientReply> {
    const t0 = Date.now();
    let errors = 0, inflight = 0, started = socks.length;
    let lastError = '';
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, c.timeoutMs);
      const pump = () => {
        if (socks.length >= c.total && inflight === 0) { clearTimeout(timer); resolve(); return; }
        while (inflight < c.concurrency && started < c.total) {
          const i = started++;
          inflight++;
          const localAddress = c.srcIps > 0 ? `127.0.0.${2 + (i % c.srcIps)}` : undefined;
          const s = connect({ host: c.host, port: c.port, localAddress, noDelay: true });
          let connected = false;
          s.once('connect', () => { connected = true; socks.push(s); inflight--; pump(); });
          s.on('error', (e) => { lastError = e.message; if (!connected) { errors++; started--; inflight--; s.destroy(); setTimeout(pump, 10); } });
          s.once('close', () => { if (connected) dead++; });
          if (errors > 1000) { clearTimeout(timer); resolve(); return; }
        }
      };
      pump();
    });
    const ok = socks.length >= c.total && dead === 0;
    return { ok, open: socks.length - dead, done: socks.length, errors, mismatches: 0, ms: Date.now() - t0, message: ok ? undefined : `opened ${socks.length} of ${c.total}, ${dead} closed, ${errors} connect errors (${lastError})` };
  }

  /** One 16-byte round trip on every connection; every echoed byte compared. */
  async function echo(c: Extract<ClientCmd, { cmd: 'echo' }>): Promise<ClientReply> {
    const t0 = Date.now();
    let next = 0, done = 0, mismatches = 0, inflight = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, c.timeoutMs);
      const pump = () => {
        if (done === socks.length) { clearTimeout(timer); resolve(); return; }
        while (inflight < c.concurrency && next < socks.length) {
          const i = next++, s = socks[i]!;
          inflight++;
          const msg = Buffer.alloc(16);
          msg.writeUInt32BE(i, 0); msg.write(`idle-${(i * 2654435761 >>> 0).toString(16).padStart(8, '0')}`, 4, 'latin1');
          const got: Buffer[] = [];
          let n = 0;
          const onData = (d: Buffer) => {
            got.push(d); n += d.length;
            if (n < msg.length) return;
            s.off('data', onData);
            if (n !== msg.length || !Buffer.concat(got).equals(msg)) mismatches++;
            done++; inflight--; pump();
          };
          s.on('data', onData);
          s.write(msg);
        }
      };
      pump();
    });
    const ok = done === socks.length && mismatches === 0 && dead === 0;
    return { ok, open: socks.length - dead, done, errors: 0, mismatches, ms: Date.now() - t0, message: ok ? undefined : `${done} of ${socks.length} echoed, ${mismatches} mismatches, ${dead} closed` };
  }

  async function close(c: Extract<ClientCmd, { cmd: 'close' }>): Promise<ClientReply> {
    const t0 = Date.now();
    const n = socks.length;
    await Promise.race([
      Promise.all(socks.map((s) => new Promise<void>((r) => { if (s.destroyed) r(); else { s.once('close', () => r()); s.end(); } }))),
      sleep(c.timeoutMs),
    ]);
    for (const s of socks) s.destroy();
    socks.length = 0;
    return { ok: true, open: 0, done: n, errors: 0, mismatches: 0, ms: Date.now() - t0 };
  }

  process.on('message', (m: ClientCmd) => {
    const p = m.cmd === 'open' ? open(m) : m.cmd === 'echo' ? echo(m) : close(m);
    p.then(reply, (e: Error) => reply({ ok: false, open: socks.length, done: 0, errors: 1, mismatches: 0, ms: 0, message: e.message }));
  });
  process.on('disconnect', () => process.exit(0));
}

if (process.argv[2] === '--client-role') {
  clientMain();
} else {
  await harnessMain();
}

// ---- the harness -----------------------------------------------------------------------------------------

interface IdleServer {
  name: string;
  cmd: string[];
  /** Prints {"mem":…,"connections":N} on SIGUSR2 (a C server would die of it: RSS only for those). */
  reportsMemory: boolean;
  requires: string;
  description: string;
}

interface MemSample {
  /** Open connections the client holds (what the point is about). */
  conns: number;
  /** Connections the server reported open (null: it does not report). */
  serverConns: number | null;
  vmRss: number;
  rssAnon: number;
  /** File descriptors open in the server process. */
  fds: number;
  heapUsed?: number;
  heapTotal?: number;
  external?: number;
  arrayBuffers?: number;
}

interface IdleRun {
  server: string;
  rep: number;
  argv: string[];
  ok: boolean;
  problems: string[];
  before?: MemSample;
  steps: MemSample[];
  afterEcho?: MemSample;
  afterClose?: MemSample;
  openMs: number[];
  echo?: ClientReply;
}

async function harnessMain(): Promise<void> {
  const node = process.execPath;
  const SERVERS: IdleServer[] = [
    { name: 'megapipe', cmd: [node, '--expose-gc', 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '127.0.0.1', '--backend', 'uring'], reportsMemory: true, requires: 'dist/bin/echo-server.js', description: 'megapipe echo server, io_uring, lwsockets (default limits: files 16384)' },
    { name: 'megapipe-fd', cmd: [node, '--expose-gc', 'dist/bin/echo-server.js', '--port', '{PORT}', '--host', '127.0.0.1', '--backend', 'uring', '--no-lwsocket'], reportsMemory: true, requires: 'dist/bin/echo-server.js', description: 'megapipe echo server, io_uring, regular fds' },
    { name: 'node:net', cmd: [node, '--expose-gc', 'dist/bench/servers/net-echo.js', '--port', '{PORT}', '--host', '127.0.0.1'], reportsMemory: true, requires: 'dist/bench/servers/net-echo.js', description: 'net.createServer echo' },
    { name: 'epoll-echo', cmd: ['bench/c/bin/epoll-echo', '--port', '{PORT}', '--host', '127.0.0.1'], reportsMemory: false, requires: 'bench/c/bin/epoll-echo', description: 'C epoll reference (RSS only)' },
    { name: 'uring-echo', cmd: ['bench/c/bin/uring-echo', '--port', '{PORT}', '--host', '127.0.0.1'], reportsMemory: false, requires: 'bench/c/bin/uring-echo', description: 'C io_uring reference (RSS only)' },
  ];
  const usage = `usage: node dist/bench/idle.js [options]
Memory per idle connection: opens --conns connections to each server in --steps steps and reads the server's
RSS (/proc/PID/status) and JavaScript heap (printed on SIGUSR2 after a full GC) at each step; then one verified
echo round trip on every connection. Server on --server-cpu, client (a separate Node process) on --client-cpu.

  --servers LIST    comma-separated (default megapipe,megapipe-fd,node:net,epoll-echo); known: ${SERVERS.map((s) => s.name).join(', ')}
  --conns N         connections to hold open (default 15000; the hard RLIMIT_NOFILE here is 20000)
  --steps K         measure at N/K, 2N/K, ..., N connections (default 3)
  --warmup N        connections opened, echoed once and closed before the "before" sample (default 1000)
  --reps N          repetitions, interleaved across servers (default 3: the "≤ 1 KB" verdict needs ${MIN_CLEAN_RUNS} ok runs)
  --src-ips K       client source addresses 127.0.0.2..K+1 (default 8)
  --concurrency N   connects (and echoes) in flight at once (default 256)
  --settle MS       wait before each sample (default 500)
  --server-cpu L    taskset CPU list of the server (default 0)
  --client-cpu L    taskset CPU list of the client and this harness (default 1)
  --out DIR         results directory (default bench/results/idle-<time>)
  --record NAME     also copy summary.md and the chart to bench/summaries/<date>-NAME/ (to commit)
  --force           run even if the machine is busy (memory is not CPU-sensitive, but timeouts are)
  -h, --help        this text

Outputs results.json (every sample), summary.md, idle-rss.svg (RSS against open connections) and a terminal
table. Exit code 1 if a connection failed or an echo did not verify.`;

  function die(msg: string, code = 64): never { process.stderr.write(`idle: ${msg}\n`); process.exit(code); }
  let values;
  try {
    values = parseArgs({ options: {
      servers: { type: 'string', default: 'megapipe,megapipe-fd,node:net,epoll-echo' }, conns: { type: 'string', default: '15000' },
      steps: { type: 'string', default: '3' }, warmup: { type: 'string', default: '1000' }, reps: { type: 'string', default: '3' },
      'src-ips': { type: 'string', default: '8' }, concurrency: { type: 'string', default: '256' }, settle: { type: 'string', default: '500' },
      'server-cpu': { type: 'string', default: '0' }, 'client-cpu': { type: 'string', default: '1' }, out: { type: 'string' }, record: { type: 'string' },
      force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false },
    } }).values;
  } catch (e) { die(`${(e as Error).message}\n${usage}`); }
  if (values.help) { process.stdout.write(usage + '\n'); process.exit(0); }
  const num = (name: string, v: string, lo: number, hi: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < lo || n > hi) die(`--${name} must be an integer in ${lo}..${hi} (got ${v})`);
    return n;
  };
  const conns = num('conns', values.conns!, 1, 19000);
  const steps = num('steps', values.steps!, 1, 20);
  const warmup = num('warmup', values.warmup!, 0, 10000);
  const reps = num('reps', values.reps!, 1, 20);
  const srcIps = num('src-ips', values['src-ips']!, 0, 250);
  const concurrency = num('concurrency', values.concurrency!, 1, 4096);
  const settleMs = num('settle', values.settle!, 0, 10000);
  const serverCpu = values['server-cpu']!, clientCpu = values['client-cpu']!;
  const servers = values.servers!.split(',').map((n) => SERVERS.find((s) => s.name === n.trim()) ?? die(`unknown server ${n} (known: ${SERVERS.map((s) => s.name).join(', ')})`));

  const recordDir = values.record === undefined ? undefined : summaryDir(values.record);
  if (values.record !== undefined) {
    const bad = checkRecordName(values.record);
    if (bad) die(bad);
    if (existsSync(recordDir!)) die(`--record: ${relative(process.cwd(), recordDir!)} exists already; choose another name`);
  }
  const command = reproduceCommand();
  const outDir = makeResultsDir('idle', values.out);
  try { ensureCPrograms(['epoll-echo', 'uring-echo']); } catch (e) { die((e as Error).message, 1); }
  const idleCheck = await refuseIfBusy(values.force!);
  if (!pinSelf(clientCpu)) process.stderr.write(`idle: could not pin the harness to CPU ${clientCpu}\n`);

  const status = (pid: number) => {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
    let fds = NaN;
    try { fds = readdirSync(`/proc/${pid}/fd`).length; } catch { /* gone */ }
    return { vmRss: kb('VmRSS'), rssAnon: kb('RssAnon'), fds };
  };

  /** One server run with its client; never throws. */
  async function runServer(spec: IdleServer, rep: number): Promise<IdleRun> {
    const port = await freePort('127.0.0.1');
    const argv = spec.cmd.map((a) => a.replace('{PORT}', String(port)));
    const run: IdleRun = { server: spec.name, rep, argv, ok: false, problems: [], steps: [], openMs: [] };
    const server = spawn('taskset', ['-c', serverCpu, ...argv], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    server.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-2000); });
    let listening = false;
    let memWaiter: ((m: { mem: Record<string, number>; connections: number | null }) => void) | undefined;
    const exited = new Promise<void>((r) => server.once('exit', () => r()));
    const listen = new Promise<boolean>((resolve) => {
      createInterface({ input: server.stdout! }).on('line', (line) => {
        if (!listening && /listening on /.test(line)) { listening = true; resolve(true); return; }
        if (line.startsWith('{"mem"')) { try { memWaiter?.(JSON.parse(line)); } catch { /* partial line */ } }
      });
      server.once('exit', () => resolve(false));
      setTimeout(() => resolve(false), 10000);
    });
    const client = spawn('taskset', ['-c', clientCpu, node, fileURLToPath(import.meta.url), '--client-role'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ask = (c: ClientCmd, timeoutMs: number) => new Promise<ClientReply>((resolve) => {
      const t = setTimeout(() => { client.off('message', on); resolve({ ok: false, open: 0, done: 0, errors: 0, mismatches: 0, ms: timeoutMs, message: 'client did not answer' }); }, timeoutMs + 5000);
      const on = (r: ClientReply) => { clearTimeout(t); resolve(r); };
      client.once('message', on);
      client.send(c);
    });
    const memory = async (clientConns: number): Promise<MemSample> => {
      let rep: { mem: Record<string, number>; connections: number | null } | undefined;
      if (spec.reportsMemory) {
        rep = await new Promise((resolve) => {
          const t = setTimeout(() => { memWaiter = undefined; resolve(undefined); }, 5000);
          memWaiter = (m) => { clearTimeout(t); memWaiter = undefined; resolve(m); };
          server.kill('SIGUSR2');
        });
        if (!rep) run.problems.push('server did not print its memory line within 5 s of SIGUSR2');
      }
      const st = status(server.pid!);
      return { conns: clientConns, serverConns: rep?.connections ?? null, ...st, heapUsed: rep?.mem.heapUsed, heapTotal: rep?.mem.heapTotal, external: rep?.mem.external, arrayBuffers: rep?.mem.arrayBuffers };
    };
    /** Waits (bounded) until the server reports `n` open connections, then `settleMs`; samples. */
    const settled = async (n: number): Promise<MemSample> => {
      const until = Date.now() + 15000;
      let m = await memory(n);
      while (spec.reportsMemory && m.serverConns !== n && Date.now() < until) { await sleep(250); m = await memory(n); }
      if (spec.reportsMemory && m.serverConns !== n) run.problems.push(`server reports ${m.serverConns} open connections, the client ${n}`);
      await sleep(settleMs);
      return memory(n);
    };
    try {
      if (!(await listen)) { run.problems.push(`server did not start: ${stderr.trim()}`); return run; }
      const target = { host: '127.0.0.1', port, srcIps, concurrency };
      if (warmup > 0) {
        // A separate client for the warm-up, so its sockets are gone before "before".
        const w = spawn('taskset', ['-c', clientCpu, node, fileURLToPath(import.meta.url), '--client-role'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const askW = (c: ClientCmd) => new Promise<ClientReply>((resolve) => { w.once('message', resolve); w.send(c); });
        const o = await askW({ cmd: 'open', ...target, total: warmup, timeoutMs: 30000 });
        const e = o.ok ? await askW({ cmd: 'echo', concurrency, timeoutMs: 30000 }) : o;
        await askW({ cmd: 'close', timeoutMs: 10000 });
        w.disconnect();
        if (!e.ok) { run.problems.push(`warm-up failed: ${e.message}`); return run; }
      }
      run.before = await settled(0);
      for (let k = 1; k <= steps; k++) {
        const total = Math.round((conns * k) / steps);
        const o = await ask({ cmd: 'open', ...target, total, timeoutMs: 60000 }, 60000);
        run.openMs.push(o.ms);
        if (!o.ok) { run.problems.push(`open: ${o.message}`); return run; }
        run.steps.push(await settled(total));
      }
      run.echo = await ask({ cmd: 'echo', concurrency, timeoutMs: 60000 }, 60000);
      if (!run.echo.ok) { run.problems.push(`echo: ${run.echo.message}`); return run; }
      await sleep(settleMs);
      run.afterEcho = await memory(conns);
      await ask({ cmd: 'close', timeoutMs: 20000 }, 20000);
      run.afterClose = await settled(0);
      run.ok = run.problems.length === 0;
      return run;
    } finally {
      if (client.connected) client.disconnect();
      client.kill('SIGKILL');
      server.kill('SIGTERM');
      const t = setTimeout(() => server.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
  }

  const runs: IdleRun[] = [];
  const meta = {
    command, started: new Date().toISOString(), idleCheck: idleCheck.message, git: gitInfo(),
    machine: machineInfo(),
    options: { conns, steps, warmup, reps, srcIps, concurrency, settleMs, serverCpu, clientCpu },
    servers: servers.map((s) => ({ name: s.name, argv: s.cmd, description: s.description })),
  };
  const save = () => writeFileSync(join(outDir, 'results.json'), JSON.stringify({ ...meta, runs }, null, 1) + '\n');
  process.stderr.write(`idle: ${servers.length} servers × ${reps} reps, ${conns} connections in ${steps} steps; server on CPU ${serverCpu}, client on CPU ${clientCpu}\n`);
  for (let rep = 1; rep <= reps; rep++) {
    for (const spec of servers) {
      const t0 = Date.now();
      const r = await runServer(spec, rep);
      runs.push(r);
      save();
      const last = r.steps[r.steps.length - 1];
      process.stderr.write(`idle: rep ${rep} ${spec.name}: ${r.ok ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s` +
        (r.before && last ? `, RSS ${(r.before.vmRss / 2 ** 20).toFixed(1)} → ${(last.vmRss / 2 ** 20).toFixed(1)} MiB at ${last.conns}` : '') +
        (r.problems.length ? ` (${r.problems.join('; ')})` : '') + '\n');
    }
  }

  // ---- report -------------------------------------------------------------------------------------------
  const perConn = (r: IdleRun, f: (m: MemSample) => number | undefined, at: MemSample | undefined = r.steps[r.steps.length - 1]) =>
    r.ok && r.before && at ? ((f(at) ?? NaN) - (f(r.before) ?? NaN)) / at.conns : NaN;
  const marginal = (r: IdleRun, f: (m: MemSample) => number | undefined) => {
    const a = r.steps[0], b = r.steps[r.steps.length - 1];
    return r.ok && a && b && b.conns > a.conns ? ((f(b) ?? NaN) - (f(a) ?? NaN)) / (b.conns - a.conns) : NaN;
  };
  const sm = (name: string, f: (r: IdleRun) => number) => summarize(runs.filter((r) => r.server === name).map(f));
  const B = (s: Summary) => fmtSummary(s, 3);
  const table: Table = {
    headers: ['server', 'runs ok', 'RSS before MiB', `RSS at ${conns} MiB`, 'RSS B/conn', 'RSS B/conn marginal', 'RssAnon B/conn', 'heap B/conn', 'RSS B/conn after echo', 'server fds', `≤ 1 KB`],
    rows: [],
  };
  for (const s of servers) {
    const ok = runs.filter((r) => r.server === s.name && r.ok).length, all = runs.filter((r) => r.server === s.name).length;
    const rss = sm(s.name, (r) => perConn(r, (m) => m.vmRss));
    table.rows.push([
      s.name, `${ok}/${all}`,
      B(sm(s.name, (r) => (r.ok && r.before ? r.before.vmRss / 2 ** 20 : NaN))),
      B(sm(s.name, (r) => (r.ok ? (r.steps[r.steps.length - 1]?.vmRss ?? NaN) / 2 ** 20 : NaN))),
      B(rss), B(sm(s.name, (r) => marginal(r, (m) => m.vmRss))), B(sm(s.name, (r) => perConn(r, (m) => m.rssAnon))),
      s.reportsMemory ? B(sm(s.name, (r) => perConn(r, (m) => m.heapUsed))) : '–',
      B(sm(s.name, (r) => perConn(r, (m) => m.vmRss, r.afterEcho))),
      fmt(sm(s.name, (r) => (r.ok ? (r.steps[r.steps.length - 1]?.fds ?? NaN) : NaN)).median),
      rss.n < MIN_CLEAN_RUNS ? `not measured (${rss.n} ok run${rss.n === 1 ? '' : 's'})` : rss.median <= 1024 ? 'yes' : 'no',
    ]);
  }
  const chart = lineChart({
    title: `Server RSS with idle connections (${reps} rep${reps > 1 ? 's' : ''}, median, min–max)`,
    xLabel: 'open idle connections', yLabel: 'server RSS, MiB', xScale: 'linear',
    series: servers.map((s) => {
      const rs = runs.filter((r) => r.server === s.name && r.ok);
      const pts = [0, ...rs[0]?.steps.map((m) => m.conns) ?? []];
      return {
        name: s.name,
        points: pts.map((n, i) => {
          const v = summarize(rs.map((r) => ((i === 0 ? r.before : r.steps[i - 1])?.vmRss ?? NaN) / 2 ** 20));
          return { x: n, y: v.median, yMin: v.min, yMax: v.max };
        }),
      };
    }),
  });
  writeFileSync(join(outDir, 'idle-rss.svg'), chart);
  const text = formatTable(table);
  const md = [
    `# Memory per idle connection, ${meta.started}`, '',
    provenanceMarkdown({ command, started: meta.started, finished: new Date().toISOString(), git: meta.git, machine: meta.machine,
      repetitions: `${reps} requested per server, interleaved`, idleCheck: idleCheck.message,
      runs: `${runs.length} runs: ${runs.filter((r) => r.ok).length} ok, ${runs.filter((r) => !r.ok).length} failed (a connection failed or an echo did not verify: left out)` }),
    `Server on CPU ${serverCpu}, client on CPU ${clientCpu}. ` +
      `${conns} connections opened in ${steps} steps after a warm-up of ${warmup} connections (opened, echoed once, closed).`,
    '',
    '*RSS B/conn*: (VmRSS with all connections open − VmRSS before) / connections; *marginal*: between the first and the last step ' +
      '(costs that do not grow with connections cancel out); *RssAnon*: anonymous memory only; *heap*: V8 heapUsed after a full GC, printed by the ' +
      'server on SIGUSR2 (main thread); *after echo*: once every connection has echoed 16 bytes (verified); *server fds*: /proc/PID/fd entries with ' +
      `all connections open. Cells are median (min–max) of ok runs; *≤ 1 KB* is stated only with ≥ ${MIN_CLEAN_RUNS} ok runs.`,
    '', markdownTable(table), '![idle-rss.svg](idle-rss.svg)', '',
  ].join('\n');
  writeFileSync(join(outDir, 'summary.md'), md);
  process.stdout.write('\n' + text + `\nResults: ${relative(process.cwd(), outDir) || outDir}/ (results.json, summary.md, idle-rss.svg)\n`);
  if (recordDir) process.stdout.write(`Summary recorded in ${recordSummary(recordDir, outDir, ['idle-rss.svg'])}/ (commit it)\n`);
  process.stdout.write(`Reproduce: ${command}\n`);
  process.exit(runs.every((r) => r.ok) ? 0 : 1);
}


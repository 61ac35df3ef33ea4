// memcached's `stats` command: the general statistics (summed over the workers' rows of the shared store), the
// groups (settings, reset, slabs, items, sizes, sizes_enable, sizes_disable, detail, cachedump, conns) with memcached's replies, and
// `stats settings`. Each statistic goes to an `Emit` sink: a `STAT name value` line for the text protocol, a packet
// for the binary one (binary.ts); a group this server does not keep answers as memcached's does when it has nothing
// to report.

import { VERSION } from './version.js';
import type { McSession } from './session.js';
import { S } from './store.js';

/** Where statistics go, one name and value at a time. */
export type Emit = (name: string, value: string | number) => void;

/** Runs the `stats …` line in `s.tokens`. */
export function stats(s: McSession): void {
  const t = s.tokens, nt = t.count, out = s.out;
  const emit: Emit = (name, v) => { out.str('STAT ' + name + ' ' + v + '\r\n'); };
  if (nt === 2) { generalStats(s, emit); out.str('END\r\n'); return; }
  if (t.is(1, 'reset')) { s.store.resetStats(); s.outString('RESET'); return; }
  if (t.is(1, 'detail')) {
    if (nt < 4) { s.outString('CLIENT_ERROR usage: stats detail on|off|dump'); return; }
    if (t.is(2, 'on') || t.is(2, 'off')) s.outString('OK');
    else if (t.is(2, 'dump')) s.outString('END');
    else s.outString('CLIENT_ERROR usage: stats detail on|off|dump');
    return;
  }
  if (t.is(1, 'settings')) { settingsStats(s, emit); out.str('END\r\n'); return; }
  if (t.is(1, 'cachedump')) {
    if (nt < 5) { s.outString('CLIENT_ERROR bad command line'); return; }
    const id = t.uint32(2), limit = t.uint32(3);
    if (id === null || limit === null) { s.outString('CLIENT_ERROR bad command line format'); return; }
    if (id >= 64) { s.outString('CLIENT_ERROR Illegal slab id'); return; }
    out.str('END\r\n');
    return;
  }
  if (t.is(1, 'slabs')) { slabsStats(s, emit); out.str('END\r\n'); return; }
  if (t.is(1, 'items')) { itemsStats(s, emit); out.str('END\r\n'); return; }
  if (t.is(1, 'sizes')) { sizesStats(s, emit); out.str('END\r\n'); return; }
  // memcached answers these two with one line and no END (item_stats_sizes_enable/disable append no terminator)
  if (t.is(1, 'sizes_enable')) { s.store.sizesEnable(); emit('sizes_status', 'enabled'); return; }
  if (t.is(1, 'sizes_disable')) { s.store.sizesDisable(); emit('sizes_status', 'disabled'); return; }
  if (t.is(1, 'conns')) { out.str('END\r\n'); return; }
  s.outString('ERROR');
}

/** `stats slabs`: the slab classes in use. */
export function slabsStats(s: McSession, stat: Emit): void {
  const st = s.store;
  let active = 0;
  for (let id = 1; id <= st.nclasses; id++) {
    const c = st.classInfo(id);
    if (c.pages === 0) continue;
    active++;
    stat(`${id}:chunk_size`, c.size); stat(`${id}:chunks_per_page`, c.perPage);
    stat(`${id}:total_pages`, c.pages); stat(`${id}:total_chunks`, c.pages * c.perPage);
    stat(`${id}:used_chunks`, c.items); stat(`${id}:free_chunks`, c.free);
  }
  stat('active_slabs', active);
  stat('total_malloced', st.pagesUsed() * st.pageSize);
}

/** `stats items`: items per slab class. */
export function itemsStats(s: McSession, stat: Emit): void {
  const st = s.store;
  for (let id = 1; id <= st.nclasses; id++) {
    const c = st.classInfo(id);
    if (c.items === 0) continue;
    stat(`items:${id}:number`, c.items);
  }
}

/**
 * `stats sizes`: while the histogram is on (-o track_sizes, stats sizes_enable), the items stored since it was turned
 * on per 32-byte size bucket (ascending); else memcached's "disabled".
 */
export function sizesStats(s: McSession, stat: Emit): void {
  if (!s.store.sizesEnabled()) { stat('sizes_status', 'disabled'); return; }
  const hist = s.store.sizeHistogram();
  for (const bucket of [...hist.keys()].sort((a, b) => a - b)) stat(String(bucket * 32), hist.get(bucket)!);
}

/** `stats`: the general statistics, in memcached's order. */
export function generalStats(s: McSession, stat: Emit): void {
  const st = s.store;
  const settings = s.app.settings;
  const cpu = process.cpuUsage();
  const t = (i: number) => st.statTotal(i);
  stat('pid', process.pid);
  stat('uptime', Math.max(0, st.now - 62));
  stat('time', st.unixNow());
  stat('version', VERSION);
  stat('libevent', 'megapipe');
  stat('pointer_size', 64);
  stat('rusage_user', (cpu.user / 1e6).toFixed(6));
  stat('rusage_system', (cpu.system / 1e6).toFixed(6));
  stat('max_connections', settings.maxConns);
  stat('curr_connections', t(S.curr_connections));
  stat('total_connections', t(S.total_connections));
  stat('rejected_connections', t(S.rejected_connections));
  stat('connection_structures', t(S.curr_connections));
  // what connection buffers hold (line, output, input kept while paused, a paused multi-get's keys); none cached
  stat('read_buf_count', t(S.read_buf_count));
  stat('read_buf_bytes', t(S.read_buf_bytes));
  stat('read_buf_bytes_free', 0);
  stat('read_buf_oom', t(S.read_buf_oom));
  for (const name of ['cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses',
    'get_expired', 'get_flushed', 'delete_misses', 'delete_hits', 'incr_misses', 'incr_hits', 'decr_misses',
    'decr_hits', 'cas_misses', 'cas_hits', 'cas_badval', 'touch_hits', 'touch_misses', 'store_too_large',
    'store_no_memory', 'auth_cmds', 'auth_errors', 'idle_kicks', 'bytes_read', 'bytes_written'] as const) {
    stat(name, t(S[name]));
  }
  stat('limit_maxbytes', st.maxBytes);
  stat('accepting_conns', 1);
  stat('listen_disabled_num', 0);
  stat('threads', s.app.workers);
  stat('conn_yields', t(S.conn_yields));
  const buckets = st.hashBuckets();
  stat('hash_power_level', Math.floor(Math.log2(buckets)));
  stat('hash_bytes', buckets * 4);
  stat('hash_is_expanding', 0);
  stat('slabs_moved', t(S.slabs_moved));
  stat('bytes', t(S.bytes));
  stat('curr_items', t(S.curr_items));
  stat('total_items', t(S.total_items));
  for (const name of ['expired_unfetched', 'evicted_unfetched', 'evicted_active', 'evictions', 'reclaimed'] as const) {
    stat(name, t(S[name]));
  }
}

/** `stats settings`: the settings memcached reports, as this server has them. */
export function settingsStats(s: McSession, stat: Emit): void {
  const st = s.store, settings = s.app.settings, sh = st.shared;
  stat('maxbytes', st.maxBytes);
  stat('maxconns', settings.maxConns);
  stat('tcpport', settings.port);
  stat('udpport', 0);
  stat('inter', settings.host);
  stat('verbosity', st.verbosity);
  stat('oldest', 0);
  stat('evictions', 'on');
  stat('domain_socket', 'NULL');
  stat('growth_factor', sh.factor.toFixed(2));
  stat('chunk_size', sh.chunkSize);
  stat('num_threads', settings.threads);
  stat('cas_enabled', 'yes');
  const p = settings.protocol ?? 'auto';
  stat('binding_protocol', p === 'auto' ? 'auto-negotiate' : p);
  stat('item_size_max', st.itemSizeMax);
  stat('slab_page_size', st.pageSize);
  stat('hashpower_init', 12); // 4096 buckets (one per lock stripe), then each stripe grows
  stat('slab_reassign', 'yes');
  stat('flush_enabled', settings.flushEnabled === false ? 'no' : 'yes');
  stat('hash_algorithm', 'murmur3');
  stat('lru_segmented', 'no');
  stat('idle_timeout', settings.idleTimeout ?? 0);
  stat('track_sizes', st.sizesEnabled() ? 'yes' : 'no');
  stat('backend', 'megapipe');
}

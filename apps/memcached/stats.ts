// memcached's `stats` command: the general statistics (summed over the workers' rows of the shared store), the
// groups (settings, reset, slabs, items, sizes, detail, cachedump, conns) with memcached's replies, and
// `stats settings`. Written into the session's output; a group this server does not keep answers as memcached's
// does when it has nothing to report.

import { VERSION } from './version.js';
import type { McSession } from './session.js';
import { S } from './store.js';

/** Runs the `stats …` line in `s.tokens`. */
export function stats(s: McSession): void {
  const t = s.tokens, nt = t.count, out = s.out, st = s.store;
  if (nt === 2) { generalStats(s); out.str('END\r\n'); return; }
  if (t.is(1, 'reset')) { st.resetStats(); s.outString('RESET'); return; }
  if (t.is(1, 'detail')) {
    if (nt < 4) { s.outString('CLIENT_ERROR usage: stats detail on|off|dump'); return; }
    if (t.is(2, 'on') || t.is(2, 'off')) s.outString('OK');
    else if (t.is(2, 'dump')) s.outString('END');
    else s.outString('CLIENT_ERROR usage: stats detail on|off|dump');
    return;
  }
  if (t.is(1, 'settings')) { settingsStats(s); out.str('END\r\n'); return; }
  if (t.is(1, 'cachedump')) {
    if (nt < 5) { s.outString('CLIENT_ERROR bad command line'); return; }
    const id = t.uint32(2), limit = t.uint32(3);
    if (id === null || limit === null) { s.outString('CLIENT_ERROR bad command line format'); return; }
    if (id >= 64) { s.outString('CLIENT_ERROR Illegal slab id'); return; }
    out.str('END\r\n');
    return;
  }
  if (t.is(1, 'slabs')) {
    let active = 0;
    for (let id = 1; id <= st.nclasses; id++) {
      const c = st.classInfo(id);
      if (c.pages === 0) continue;
      active++;
      stat(s, `${id}:chunk_size`, c.size); stat(s, `${id}:chunks_per_page`, c.perPage);
      stat(s, `${id}:total_pages`, c.pages); stat(s, `${id}:total_chunks`, c.pages * c.perPage);
      stat(s, `${id}:used_chunks`, c.items); stat(s, `${id}:free_chunks`, c.free);
    }
    stat(s, 'active_slabs', active);
    stat(s, 'total_malloced', st.pagesUsed() * st.pageSize);
    out.str('END\r\n');
    return;
  }
  if (t.is(1, 'items')) {
    for (let id = 1; id <= st.nclasses; id++) {
      const c = st.classInfo(id);
      if (c.items === 0) continue;
      stat(s, `items:${id}:number`, c.items);
    }
    out.str('END\r\n');
    return;
  }
  if (t.is(1, 'sizes')) { stat(s, 'sizes_status', 'disabled'); out.str('END\r\n'); return; }
  if (t.is(1, 'conns')) { out.str('END\r\n'); return; }
  s.outString('ERROR');
}

function stat(s: McSession, name: string, v: string | number): void { s.out.str('STAT ' + name + ' ' + v + '\r\n'); }

/** `stats`: the general statistics, in memcached's order. */
function generalStats(s: McSession): void {
  const st = s.store;
  const settings = s.app.settings;
  const cpu = process.cpuUsage();
  const t = (i: number) => st.statTotal(i);
  stat(s, 'pid', process.pid);
  stat(s, 'uptime', Math.max(0, st.now - 62));
  stat(s, 'time', st.unixNow());
  stat(s, 'version', VERSION);
  stat(s, 'libevent', 'megapipe');
  stat(s, 'pointer_size', 64);
  stat(s, 'rusage_user', (cpu.user / 1e6).toFixed(6));
  stat(s, 'rusage_system', (cpu.system / 1e6).toFixed(6));
  stat(s, 'max_connections', settings.maxConns);
  stat(s, 'curr_connections', t(S.curr_connections));
  stat(s, 'total_connections', t(S.total_connections));
  stat(s, 'rejected_connections', t(S.rejected_connections));
  stat(s, 'connection_structures', t(S.curr_connections));
  // what connection buffers hold (line, output, input kept while paused, a paused multi-get's keys); none cached
  stat(s, 'read_buf_count', t(S.read_buf_count));
  stat(s, 'read_buf_bytes', t(S.read_buf_bytes));
  stat(s, 'read_buf_bytes_free', 0);
  stat(s, 'read_buf_oom', t(S.read_buf_oom));
  for (const name of ['cmd_get', 'cmd_set', 'cmd_flush', 'cmd_touch', 'cmd_meta', 'get_hits', 'get_misses',
    'get_expired', 'get_flushed', 'delete_misses', 'delete_hits', 'incr_misses', 'incr_hits', 'decr_misses',
    'decr_hits', 'cas_misses', 'cas_hits', 'cas_badval', 'touch_hits', 'touch_misses', 'store_too_large',
    'store_no_memory', 'auth_cmds', 'auth_errors', 'idle_kicks', 'bytes_read', 'bytes_written'] as const) {
    stat(s, name, t(S[name]));
  }
  stat(s, 'limit_maxbytes', st.maxBytes);
  stat(s, 'accepting_conns', 1);
  stat(s, 'listen_disabled_num', 0);
  stat(s, 'threads', s.app.workers);
  stat(s, 'conn_yields', t(S.conn_yields));
  const buckets = st.hashBuckets();
  stat(s, 'hash_power_level', Math.floor(Math.log2(buckets)));
  stat(s, 'hash_bytes', buckets * 4);
  stat(s, 'hash_is_expanding', 0);
  stat(s, 'slabs_moved', t(S.slabs_moved));
  stat(s, 'bytes', t(S.bytes));
  stat(s, 'curr_items', t(S.curr_items));
  stat(s, 'total_items', t(S.total_items));
  for (const name of ['expired_unfetched', 'evicted_unfetched', 'evicted_active', 'evictions', 'reclaimed'] as const) {
    stat(s, name, t(S[name]));
  }
}

/** `stats settings`: the settings memcached reports, as this server has them. */
function settingsStats(s: McSession): void {
  const st = s.store, settings = s.app.settings, sh = st.shared;
  stat(s, 'maxbytes', st.maxBytes);
  stat(s, 'maxconns', settings.maxConns);
  stat(s, 'tcpport', settings.port);
  stat(s, 'udpport', 0);
  stat(s, 'inter', settings.host);
  stat(s, 'verbosity', st.verbosity);
  stat(s, 'oldest', 0);
  stat(s, 'evictions', 'on');
  stat(s, 'domain_socket', 'NULL');
  stat(s, 'growth_factor', sh.factor.toFixed(2));
  stat(s, 'chunk_size', sh.chunkSize);
  stat(s, 'num_threads', settings.threads);
  stat(s, 'cas_enabled', 'yes');
  stat(s, 'binding_protocol', 'ascii');
  stat(s, 'item_size_max', st.itemSizeMax);
  stat(s, 'slab_page_size', st.pageSize);
  stat(s, 'hashpower_init', 12); // 4096 buckets (one per lock stripe), then each stripe grows
  stat(s, 'slab_reassign', 'yes');
  stat(s, 'flush_enabled', 'yes');
  stat(s, 'hash_algorithm', 'murmur3');
  stat(s, 'lru_segmented', 'no');
  stat(s, 'idle_timeout', settings.idleTimeout ?? 0);
  stat(s, 'backend', 'megapipe');
}

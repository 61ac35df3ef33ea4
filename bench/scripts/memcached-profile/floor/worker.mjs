// The floor of a JavaScript server on megapipe's serve() at memcached's binary GET/SET: a Map from key to value and
// nothing else — no expiry, LRU, CAS, flags, stats, limits, quiet commands or error replies (mc-load's GET/SET mix
// only; an experiment's server, not a product). What it costs per operation, beside megapipe-memcached and memcached,
// bounds what the application's own JavaScript can be blamed for (../floor.sh).
const store = new Map();
const out = new Uint8Array(1 << 16);
const copy = (b, s, e) => Uint8Array.prototype.slice.call(b, s, e);   // a copy even when b is a Buffer

export default function setup() {
  return (conn) => {
    let pend = null;   // a partial packet, copied
    return {
      data(buf, off, len) {
        let b = buf, p = off, end = off + len;
        if (pend) { const n = new Uint8Array(pend.length + len); n.set(pend); n.set(buf.subarray(off, end), pend.length); b = n; p = 0; end = n.length; pend = null; }
        let o = 0;
        while (end - p >= 24) {
          const op = b[p + 1], klen = (b[p + 2] << 8) | b[p + 3], elen = b[p + 4];
          const blen = ((b[p + 8] << 24) >>> 0) + ((b[p + 9] << 16) | (b[p + 10] << 8) | b[p + 11]);
          if (end - p < 24 + blen || o + 28 + blen + 1024 > out.length) break;
          const k = p + 24 + elen;
          let key = '';
          for (let i = 0; i < klen; i++) key += String.fromCharCode(b[k + i]);
          if (op === 0x01) {   // SET (extras: flags, exptime): "stored"
            store.set(key, copy(b, k + klen, p + 24 + blen));
            out.fill(0, o, o + 24); out[o] = 0x81; out[o + 1] = 0x01; out[o + 23] = 1;
            o += 24;
          } else {             // GET: flags 0 and the value (every key of mc-load's was set first)
            const v = store.get(key) ?? new Uint8Array(0), bl = 4 + v.length;
            out.fill(0, o, o + 28); out[o] = 0x81; out[o + 4] = 4; out[o + 23] = 1;
            out[o + 8] = bl >>> 24; out[o + 9] = (bl >>> 16) & 255; out[o + 10] = (bl >>> 8) & 255; out[o + 11] = bl & 255;
            o += 28; out.set(v, o); o += v.length;
          }
          p += 24 + blen;
        }
        if (p < end) pend = copy(b, p, end);
        if (o > 0) conn.write(out, 0, o);
      },
      end() { conn.end(); },
      drain() {},
      close() {},
    };
  };
}

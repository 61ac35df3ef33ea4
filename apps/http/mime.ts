// Built-in MIME table for the common static types (extension → Content-Type value).

const TEXT = '; charset=utf-8';

export const MIME_TYPES: Readonly<Record<string, string>> = {
  html: 'text/html' + TEXT, htm: 'text/html' + TEXT, shtml: 'text/html' + TEXT,
  css: 'text/css' + TEXT,
  js: 'text/javascript' + TEXT, mjs: 'text/javascript' + TEXT, cjs: 'text/javascript' + TEXT,
  json: 'application/json' + TEXT, map: 'application/json' + TEXT, webmanifest: 'application/manifest+json' + TEXT,
  txt: 'text/plain' + TEXT, text: 'text/plain' + TEXT, md: 'text/markdown' + TEXT, csv: 'text/csv' + TEXT,
  xml: 'application/xml' + TEXT, xhtml: 'application/xhtml+xml' + TEXT, rss: 'application/rss+xml' + TEXT,
  atom: 'application/atom+xml' + TEXT, ics: 'text/calendar' + TEXT, vtt: 'text/vtt' + TEXT,
  svg: 'image/svg+xml', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif',
  webp: 'image/webp', avif: 'image/avif', ico: 'image/x-icon', bmp: 'image/bmp', tif: 'image/tiff', tiff: 'image/tiff',
  woff: 'font/woff', woff2: 'font/woff2', ttf: 'font/ttf', otf: 'font/otf', eot: 'application/vnd.ms-fontobject',
  wasm: 'application/wasm', pdf: 'application/pdf', zip: 'application/zip', gz: 'application/gzip',
  tar: 'application/x-tar', bz2: 'application/x-bzip2', xz: 'application/x-xz', '7z': 'application/x-7z-compressed',
  mp4: 'video/mp4', m4v: 'video/mp4', webm: 'video/webm', ogv: 'video/ogg', mov: 'video/quicktime',
  mp3: 'audio/mpeg', m4a: 'audio/mp4', ogg: 'audio/ogg', oga: 'audio/ogg', wav: 'audio/wav', flac: 'audio/flac',
  opus: 'audio/opus', bin: 'application/octet-stream', exe: 'application/octet-stream',
};

export const DEFAULT_MIME = 'application/octet-stream';

/** Content-Type for a file name by its extension (case-insensitive); `fallback` when unknown. */
export function mimeType(fileName: string, extra?: Readonly<Record<string, string>>, fallback = DEFAULT_MIME): string {
  const slash = fileName.lastIndexOf('/');
  const dot = fileName.lastIndexOf('.');
  if (dot <= slash + 1) return fallback; // no extension, or a dot-file such as ".env"
  const ext = fileName.slice(dot + 1).toLowerCase();
  return extra?.[ext] ?? MIME_TYPES[ext] ?? fallback;
}

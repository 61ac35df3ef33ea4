// Starts floor/worker.mjs under serve() with one worker on 127.0.0.1:PORT (the repository's build in dist/).
const port = Number(process.argv[2]);
const { serve } = await import(new URL('../../../../dist/src/index.js', import.meta.url).href);
const h = await serve({ module: new URL('./worker.mjs', import.meta.url), workers: 1, host: '127.0.0.1', port });
process.on('SIGTERM', () => { h.close(1000).then(() => process.exit(0)); });

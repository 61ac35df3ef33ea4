// prints this thread's megapipe/net channel stats on SIGUSR2; exits on SIGINT (so that --cpu-prof writes its profile)
const show = async (tag) => {
  try {
    const { threadChannel } = await import(process.cwd() + '/dist/src/net/link.js');
    if (process.env.MEGAPIPE_REGISTER !== '0') console.error(tag + ' ' + JSON.stringify(threadChannel().stats()));
  } catch (e) { console.error('stats failed', e.message); }
};
process.on('SIGUSR2', () => show('STATS'));
process.on('SIGINT', () => process.exit(0));

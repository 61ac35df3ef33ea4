// The memcached version this server answers as (`version`, `stats`): its replies are compared with 1.6.18's.
export const VERSION = '1.6.18';

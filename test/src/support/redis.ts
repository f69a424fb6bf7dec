// A real redis-server for the scale-out tests: the server package's test helper (one copy; the
// server's own cluster tests use it too).
export { startRedis, type TestRedis } from '../../../server/test/cluster-redis.ts';

// Worker entry of the SQLite store's thread (./sqlite-proxy.ts starts it): gives this thread a
// TypeScript loader (the relay runs under tsx, the tests under vitest, whose loaders a worker
// thread does not get), then runs the store's thread code.
import { register } from 'tsx/esm/api';

register();
await import('./sqlite-thread.ts');

// Worker entry for bench/client.ts: registers tsx in this thread, then loads the TypeScript client.
import { register } from 'tsx/esm/api';

register();
await import('./client-thread.ts');

/** Names the build (vite.config.ts `define`). */
declare const __COVEY_VERSION__: string;

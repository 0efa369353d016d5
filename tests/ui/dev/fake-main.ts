/**
 * Development entry: the real UI on the fake engine (fake-engine.ts) over a real MessageChannel
 * and the real bridge. `npx vite` then open /tests/ui/dev/?scene=busy (first-run, locked,
 * elsewhere, empty, busy).
 */
import { mountApp } from '../../../src/ui/app/mount.js';
import { WorkerClient, serveBridge } from '../../../src/shared/worker-bridge.js';
import { createFakeEngine, type Scene } from './fake-engine.js';

const SCENES: readonly Scene[] = ['first-run', 'locked', 'elsewhere', 'empty', 'busy'];
const asked = new URLSearchParams(location.search).get('scene');
const scene = SCENES.find((candidate) => candidate === asked) ?? 'busy';

const channel = new MessageChannel();
serveBridge(channel.port2, createFakeEngine(scene));
const root = document.getElementById('app');
if (root === null) throw new Error('no #app');
mountApp(root, new WorkerClient(channel.port1));

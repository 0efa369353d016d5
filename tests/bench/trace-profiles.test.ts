/** bench/trace-profiles.ts: a trace's Profile / ProfileChunk events as one DevTools CPU profile per thread. */
import { describe, expect, it } from 'vitest';
import { cpuProfilesFromTrace } from '../../bench/trace-profiles.js';

describe('CPU profiles from a trace', () => {
  it('joins each thread chunks in order, lists children, fills native frames, and skips threads without samples', () => {
    const events = [
      { name: 'thread_name', pid: 1, tid: 7, args: { name: 'DedicatedWorker thread' } },
      { name: 'thread_name', pid: 1, tid: 8, args: { name: 'CrRendererMain' } },
      { name: 'Profile', pid: 1, tid: 7, id: '0x1', args: { data: { startTime: 1000 } } },
      { name: 'Profile', pid: 1, tid: 8, id: '0x2', args: { data: { startTime: 1000 } } },
      // The worker's chunks (written by the profiler's own thread, so another tid).
      { name: 'ProfileChunk', pid: 1, tid: 9, id: '0x1', args: { data: { cpuProfile: { nodes: [{ id: 1, callFrame: { functionName: '(root)' } }, { id: 2, parent: 1, callFrame: { functionName: 'run', url: 'https://x/w.js', lineNumber: 0, columnNumber: 5, scriptId: '3' } }], samples: [2, 1] }, timeDeltas: [10, 20] } } },
      { name: 'ProfileChunk', pid: 1, tid: 9, id: '0x1', args: { data: { cpuProfile: { nodes: [{ id: 3, parent: 2, callFrame: { functionName: 'step', url: 'https://x/w.js', lineNumber: 0, columnNumber: 9, scriptId: '3' } }], samples: [3] }, timeDeltas: [5] } } },
      // Another process's profile with the same id is another profile.
      { name: 'ProfileChunk', pid: 2, tid: 9, id: '0x1', args: { data: { cpuProfile: { nodes: [], samples: [1] }, timeDeltas: [1] } } },
      // A second dedicated worker of the same process (the engine's verifier thread): its own file.
      { name: 'thread_name', pid: 1, tid: 10, args: { name: 'DedicatedWorker thread' } },
      { name: 'Profile', pid: 1, tid: 10, id: '0x3', args: { data: { startTime: 2000 } } },
      { name: 'ProfileChunk', pid: 1, tid: 9, id: '0x3', args: { data: { cpuProfile: { nodes: [{ id: 1, callFrame: { functionName: '(root)' } }], samples: [1] }, timeDeltas: [4] } } },
    ];
    const profiles = cpuProfilesFromTrace(events);
    expect([...profiles.keys()]).toEqual(['DedicatedWorker_thread.1.7', 'DedicatedWorker_thread.1.10']);
    expect(profiles.get('DedicatedWorker_thread.1.10')!.samples).toEqual([1]);
    const p = profiles.get('DedicatedWorker_thread.1.7')!;
    expect(p.samples).toEqual([2, 1, 3]);
    expect(p.timeDeltas).toEqual([10, 20, 5]);
    expect(p.startTime).toBe(1000);
    expect(p.endTime).toBe(1035);
    expect(p.nodes.map((n) => [n.id, n.children])).toEqual([
      [1, [2]],
      [2, [3]],
      [3, []],
    ]);
    expect(p.nodes[0]!.callFrame).toEqual({ functionName: '(root)', scriptId: '0', url: '', lineNumber: -1, columnNumber: -1 });
    expect(p.nodes[2]!.callFrame['columnNumber']).toBe(9);
  });
});

/**
 * Per engine: the platform features Covey relies on exist in a page of the built app, the service
 * worker installs and controls the page after a reload, and loading the app logs no console
 * errors or CSP violations and has no serious accessibility violations.
 *
 * The crypto here is a test probe run through `evaluate`, not app code: the UI thread holds no
 * keys and runs no crypto (DESIGN.md §1); the engine does, in its worker.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { settledAppScreen, startTestRelay, type TestRelay } from './harness/app.js';
import { browserRun, openEngine } from './harness/engines.js';
import type { Engine, Profile, Tab } from './harness/types.js';

describe.each(browserRun().engines)('%s', (name) => {
  let engine: Engine;
  let relay: TestRelay;
  let profile: Profile;
  let tab: Tab;

  beforeAll(async () => {
    relay = await startTestRelay({ staticDir: browserRun().appDir });
    engine = await openEngine(name);
    profile = await engine.newProfile();
    tab = await profile.open(relay.url);
  });
  afterAll(async () => {
    await engine?.close();
    await relay?.dispose();
  });

  test('the app renders', async () => {
    // The first-run screen once the engine is up; the shell's concern is that the app renders.
    console.info(`${name}: the app shows "${await settledAppScreen(tab)}"`);
  });

  test('WebCrypto Ed25519 and X25519, IndexedDB and Web Locks work in a page of the app', async () => {
    const result = await tab.evaluate(async () => {
      const subtle = crypto.subtle;
      const message = new TextEncoder().encode('covey');
      const signer = (await subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair;
      const signature = await subtle.sign({ name: 'Ed25519' }, signer.privateKey, message);
      const verified = await subtle.verify({ name: 'Ed25519' }, signer.publicKey, signature, message);
      const forged = await subtle.verify({ name: 'Ed25519' }, signer.publicKey, signature, new TextEncoder().encode('covey!'));
      const alice = (await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as CryptoKeyPair;
      const bob = (await subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as CryptoKeyPair;
      const ab = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: bob.publicKey }, alice.privateKey, 256));
      const ba = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: alice.publicKey }, bob.privateKey, 256));
      const agreed = ab.length === 32 && ab.every((byte, i) => byte === ba[i]) && ab.some((byte) => byte !== 0);

      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const request = indexedDB.open('covey-capability-probe', 1);
        request.onupgradeneeded = () => request.result.createObjectStore('kv');
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction('kv', 'readwrite');
        tx.objectStore('kv').put(new Uint8Array([1, 2, 3]), 'k');
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
      const stored = await new Promise<unknown>((resolve, reject) => {
        const request = db.transaction('kv').objectStore('kv').get('k');
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      db.close();
      const idb = stored instanceof Uint8Array && stored.join() === '1,2,3';

      // Web Locks: a second request for a held lock must wait (one engine per profile).
      let secondRanWhileHeld = false;
      let release: () => void = () => undefined;
      const held = navigator.locks.request('covey-probe', () => new Promise<void>((resolve) => (release = resolve)));
      const second = navigator.locks.request('covey-probe', { ifAvailable: true }, (lock) => {
        secondRanWhileHeld = lock !== null;
      });
      await second;
      release();
      await held;
      return { verified, forged, agreed, idb, locksExclusive: !secondRanWhileHeld };
    });
    expect(result).toEqual({ verified: true, forged: false, agreed: true, idb: true, locksExclusive: true });
  });

  test('the service worker registers and controls the page after a reload', async () => {
    await tab.waitUntil(async () => (await navigator.serviceWorker.getRegistration())?.active?.state === 'activated', undefined, { what: 'an activated service worker' });
    await tab.reload();
    await tab.waitUntil(() => navigator.serviceWorker.controller !== null, undefined, { what: 'a controlling service worker' });
    const scriptUrl = await tab.evaluate(() => navigator.serviceWorker.controller?.scriptURL);
    expect(scriptUrl).toBe(`${relay.url}/sw.js`);
  });

  test('moving to another Covey page in the same tab reaches the same screen (the page left does not keep the engine)', async () => {
    const before = await settledAppScreen(tab);
    await tab.goto(`${relay.url}/settings`);
    expect(await settledAppScreen(tab)).toBe(before);
  });

  test('no console errors or CSP violations while loading, and no serious accessibility violations', async () => {
    await tab.reload();
    await settledAppScreen(tab);
    expect(await tab.axe()).toEqual([]);
    expect(await profile.problems()).toEqual([]);
  });
});

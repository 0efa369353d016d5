/**
 * Our fingerprint is stored with the profile (ProfileRecord.fingerprint), so that a start does not
 * hash 5,200 times before the stored chat list and a catch-up (bench:catchup profile: ~27 ms of
 * the engine thread). A profile stored by an older build, without it, still reads: the fingerprint
 * is computed once and stored; a stored one is used as it is; a backup's is not trusted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../src/relay/server.js';
import { ClientStore } from '../../src/store/client-store.js';
import { unlockKeys } from '../../src/store/vault.js';
import { PROFILE_KEY, type ProfileRecord } from '../../src/worker/records.js';
import { fingerprint } from '../../src/worker/safety-number.js';
import { identity, Profile, startTestRelay, TestClient, testCrypto } from './helpers/client-harness.js';

let relay: RunningRelay;
beforeAll(async () => {
  relay = await startTestRelay();
});
afterAll(async () => {
  await relay.close();
});

const stored = (client: TestClient) => client.host.engine!.store.get<ProfileRecord>('profile', PROFILE_KEY);

/** The stored profile record rewritten while no engine runs on `profile` (as another build left it). */
async function rewrite(profile: Profile, change: (record: ProfileRecord) => ProfileRecord): Promise<void> {
  const store = await ClientStore.open(profile.indexedDB);
  try {
    store.setDataKey(await unlockKeys((await store.keys())!));
    const record = (await store.get<ProfileRecord>('profile', PROFILE_KEY))!;
    await store.commit(store.batch().put('profile', PROFILE_KEY, change(record)));
  } finally {
    store.close();
  }
}

async function started(profile: Profile): Promise<TestClient> {
  const client = await TestClient.start('Alice', { relay, profile });
  await client.until('ready', () => client.app?.phase === 'ready' && client.app.me !== null);
  return client;
}

describe("the profile's fingerprint", () => {
  it('is stored when the identity is made, read back from the record, and stored once for a record of an older build', async () => {
    const profile = new Profile('Alice');
    const alice = await TestClient.start('Alice', { relay, profile });
    await identity(alice);
    await alice.until('me', () => alice.app?.me ?? undefined);
    const record = (await stored(alice))!;
    const expected = await fingerprint(await testCrypto(), record.identityKey);
    expect(record.fingerprint).toBe(expected);
    expect(alice.app!.me!.fingerprint).toBe(expected);

    // What an older build stored: no fingerprint.
    alice.close();
    await rewrite(profile, ({ fingerprint: _, ...older }) => older);
    const again = await started(profile);
    expect(again.app!.me!.fingerprint).toBe(expected);
    await again.until('stored again', async () => (await stored(again))?.fingerprint === expected);

    // A stored fingerprint is the one shown: the start computes none (the digits below are no
    // key's fingerprint; nothing but the record could have given them).
    const planted = '12345 67890 12345 67890 12345 67890';
    again.close();
    await rewrite(profile, (r) => ({ ...r, fingerprint: planted }));
    const third = await started(profile);
    expect(third.app!.me!.fingerprint).toBe(planted);
    // One that is not a fingerprint's form is computed again.
    third.close();
    await rewrite(profile, (r) => ({ ...r, fingerprint: 'not digits' }));
    const fourth = await started(profile);
    expect(fourth.app!.me!.fingerprint).toBe(expected);
    await fourth.until('stored again', async () => (await stored(fourth))?.fingerprint === expected);
    fourth.close();
  });

  it('of a backup is computed again on the device that imports it', async () => {
    const alice = await TestClient.start('Alice', { relay, profile: new Profile('Alice') });
    await identity(alice);
    await alice.until('me', () => alice.app?.me ?? undefined);
    const expected = alice.app!.me!.fingerprint;
    const planted = '12345 67890 12345 67890 12345 00000';
    alice.close();
    await rewrite(alice.profile, (r) => ({ ...r, fingerprint: planted }));
    const before = await started(alice.profile);
    expect(before.app!.me!.fingerprint).toBe(planted);
    const { text } = await before.call('exportBackup', { passphrase: 'backup passphrase' });
    before.close();

    const fresh = await TestClient.start('Alice', { relay, profile: new Profile('Alice elsewhere') });
    await fresh.until('first run', () => fresh.app?.phase === 'no-identity');
    await fresh.call('importBackup', { text, passphrase: 'backup passphrase' });
    await fresh.until('ready', () => fresh.app?.phase === 'ready' && fresh.app.me !== null);
    expect(fresh.app!.me!.fingerprint).toBe(expected);
    await fresh.until('stored', async () => (await stored(fresh))?.fingerprint === expected);
    fresh.close();
  });
});

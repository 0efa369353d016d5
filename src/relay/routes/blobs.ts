/**
 * Blobs (issue 5 §5): content-addressed (SHA-256) encrypted attachments. A member opens an upload
 * announcing hash and size; chunks are PUT at the current offset (GET status to resume after a
 * failure); finalize checks the hash and returns a read capability. Reading needs both the hash
 * and that capability.
 */
import type { FinalizeUploadResponse, UploadStatusResponse, CapabilityToken } from '../../shared/relay-api.js';
import type { Reply, RequestContext } from '../http/context.js';
import { RelayError } from '../http/errors.js';
import { parseJsonObject } from '../http/io.js';
import { constantTimeEqual, hashToken, newToken, parseBlobHash, parseToken, sha256Hex } from '../ids.js';
import type { UploadRecord } from '../store/types.js';
import { capabilityHeader, channelParam, intField, intQuery, member, noBody } from './common.js';

function status(token: CapabilityToken, upload: UploadRecord): UploadStatusResponse {
  return { upload: token, sha256: upload.sha256, size: upload.size, offset: upload.received, expiresAtMs: upload.expiresAtMs };
}

async function openUpload(ctx: RequestContext, tokenText: string): Promise<{ token: CapabilityToken; upload: UploadRecord }> {
  const token = parseToken(tokenText);
  const upload = await ctx.deps.store.getUpload(hashToken(token), ctx.nowMs);
  if (token === undefined || upload === undefined) throw new RelayError('not-found', 'no such upload (expired or finalized?)');
  return { token, upload };
}

export async function createUpload(ctx: RequestContext, id: string): Promise<Reply> {
  const channelId = channelParam(id);
  await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const sha256 = parseBlobHash(body['sha256']);
  if (sha256 === undefined) throw new RelayError('bad-request', 'sha256 must be 64 lowercase hex characters');
  const size = intField(body, 'size', 0, ctx.deps.limits.maxBlobBytes);
  const token = newToken();
  const upload: UploadRecord = {
    id: hashToken(token),
    channelId,
    sha256,
    size,
    received: 0,
    expiresAtMs: ctx.nowMs + ctx.deps.limits.uploadTtlMs,
  };
  await ctx.deps.store.createUpload(upload);
  return { status: 201, json: status(token, upload) };
}

export async function uploadStatus(ctx: RequestContext, tokenText: string): Promise<Reply> {
  noBody(ctx);
  const { token, upload } = await openUpload(ctx, tokenText);
  return { status: 200, json: status(token, upload) };
}

export async function putChunk(ctx: RequestContext, tokenText: string): Promise<Reply> {
  const offset = intQuery(ctx, 'offset', -1, 0, Number.MAX_SAFE_INTEGER);
  if (offset < 0) throw new RelayError('bad-request', 'offset query parameter is required');
  const { token, upload } = await openUpload(ctx, tokenText);
  const result = await ctx.deps.store.appendUploadChunk(upload.id, offset, ctx.body, ctx.nowMs);
  if (!result.ok) {
    if (result.code === 'offset-mismatch') throw new RelayError('offset-mismatch', `expected offset ${upload.received}`);
    if (result.code === 'too-large') throw new RelayError('body-too-large', 'chunk goes beyond the announced size');
    throw new RelayError('not-found', 'no such upload (expired or finalized?)');
  }
  return { status: 200, json: status(token, { ...upload, received: result.value }) };
}

export async function finalizeUpload(ctx: RequestContext, tokenText: string): Promise<Reply> {
  noBody(ctx);
  const { upload } = await openUpload(ctx, tokenText);
  const { store, limits } = ctx.deps;
  if (upload.received !== upload.size) {
    throw new RelayError('bad-request', `upload incomplete: ${upload.received} of ${upload.size} bytes`);
  }
  const bytes = (await store.readUploadBytes(upload.id)) ?? new Uint8Array(0);
  if (sha256Hex(bytes) !== upload.sha256) {
    await store.deleteUpload(upload.id);
    throw new RelayError('hash-mismatch', 'uploaded bytes do not hash to the announced sha256; upload discarded');
  }
  const readCapability = newToken();
  const expiresAtMs = ctx.nowMs + limits.blobTtlMs;
  await store.putBlob(upload.sha256, bytes, hashToken(readCapability), expiresAtMs);
  await store.deleteUpload(upload.id);
  const response: FinalizeUploadResponse = { sha256: upload.sha256, size: upload.size, readCapability, expiresAtMs };
  return { status: 201, json: response };
}

export async function readBlob(ctx: RequestContext, hashText: string): Promise<Reply> {
  noBody(ctx);
  const wanted = parseBlobHash(hashText);
  if (wanted === undefined) throw new RelayError('bad-request', 'blob hash must be 64 lowercase hex characters');
  const blob = await ctx.deps.store.readBlob(hashToken(parseToken(capabilityHeader(ctx))), ctx.nowMs);
  // One answer for unknown capability, other blob and expired blob, after the same comparison.
  if (!constantTimeEqual(blob?.sha256 ?? '0'.repeat(64), wanted) || blob === undefined) {
    throw new RelayError('invalid-capability', 'no blob with this hash for this capability');
  }
  return { status: 200, bytes: blob.bytes, headers: { 'cache-control': 'private, max-age=31536000, immutable' } };
}

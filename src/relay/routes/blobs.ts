/**
 * Blobs (issue 5 §5): content-addressed (SHA-256) encrypted attachments. A member opens an upload
 * announcing hash and size; chunks are PUT at the current offset (GET status to resume after a
 * failure); finalize checks the hash and returns a read capability. Reading needs both the hash
 * and that capability. Neither finalize nor a read holds a whole blob in memory (issue 13
 * "Broken" 3): finalize hashes it piece by piece, a read streams it with backpressure.
 */

/** Bytes hashed or sent per piece: memory held per finalize or per reading client. */
const BLOB_PIECE_BYTES = 256 * 1024;
import type { BlobHash, FinalizeUploadResponse, UploadStatusResponse, CapabilityToken } from '../../shared/relay-api.js';
import type { Reply, RequestContext } from '../http/context.js';
import { RelayError } from '../http/errors.js';
import { parseJsonObject } from '../http/io.js';
import { createHash } from 'node:crypto';
import { constantTimeEqual, hashToken, newToken, parseBlobHash, parseToken } from '../ids.js';
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
  const { key } = await member(ctx, channelId);
  const body = parseJsonObject(ctx.body);
  const sha256 = parseBlobHash(body['sha256']);
  if (sha256 === undefined) throw new RelayError('bad-request', 'sha256 must be 64 lowercase hex characters');
  const size = intField(body, 'size', 0, ctx.deps.limits.maxBlobBytes);
  ctx.deps.storage.requireRoom();
  ctx.deps.quotas.upload(ctx.client, key, size, ctx.nowMs);
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
  ctx.deps.storage.requireRoom();
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
  const hash = createHash('sha256');
  // Bounded: each piece moves `offset` forward by at least one byte, up to the upload's size.
  for (let offset = 0; offset < upload.size; ) {
    const piece = await store.readUploadRange(upload.id, offset, BLOB_PIECE_BYTES);
    if (piece === undefined) throw new RelayError('not-found', 'no such upload (expired or finalized?)');
    if (piece.length === 0) throw new Error(`upload store lost bytes at ${offset} of ${upload.size}`);
    hash.update(piece);
    offset += piece.length;
  }
  if ((hash.digest('hex') as BlobHash) !== upload.sha256) {
    await store.deleteUpload(upload.id);
    throw new RelayError('hash-mismatch', 'uploaded bytes do not hash to the announced sha256; upload discarded');
  }
  const readCapability = newToken();
  const expiresAtMs = ctx.nowMs + limits.blobTtlMs;
  if (!(await store.finalizeUpload(upload.id, upload.sha256, hashToken(readCapability), expiresAtMs))) {
    throw new RelayError('not-found', 'no such upload (expired or finalized?)');
  }
  const response: FinalizeUploadResponse = { sha256: upload.sha256, size: upload.size, readCapability, expiresAtMs };
  return { status: 201, json: response };
}

export async function readBlob(ctx: RequestContext, hashText: string): Promise<Reply> {
  noBody(ctx);
  const wanted = parseBlobHash(hashText);
  if (wanted === undefined) throw new RelayError('bad-request', 'blob hash must be 64 lowercase hex characters');
  const { store } = ctx.deps;
  const blob = await store.openBlob(wanted, hashToken(parseToken(capabilityHeader(ctx))), ctx.nowMs);
  // One answer for unknown capability, other blob and expired blob, after the same comparison.
  if (!constantTimeEqual(blob?.sha256 ?? '0'.repeat(64), wanted) || blob === undefined) {
    throw new RelayError('invalid-capability', 'no blob with this hash for this capability');
  }
  return {
    status: 200,
    length: blob.size,
    next: (offset) => store.readBlobRange(blob.sha256, offset, BLOB_PIECE_BYTES),
    headers: { 'cache-control': 'private, max-age=31536000, immutable' },
  };
}

/**
 * Lua scripts of the Redis store (./redis.ts). Each store method that changes state is ONE script,
 * so it is atomic across relay nodes: Redis runs a script alone, start to end. Every script
 * touches keys of ONE hash tag (./redis-keys.ts), so it also runs on Redis Cluster, where a
 * script must stay within one slot.
 *
 * Why seq is dense and monotonic with many nodes (DESIGN.md §3: the relay's order is the single
 * consistent order mpENC needs): the next seq is `HINCRBY ch head 1`, the stream entry id is
 * `<seq>-0`, and the PUBLISH that tells every node about the event happen in the same script.
 * No two appends of a channel interleave (its keys live on one node, which runs one script at a
 * time), so seqs have no gaps or repeats, and pub/sub messages of one channel leave Redis in seq
 * order. With `appendfsync always`, Redis writes and fsyncs the AOF before it sends any reply or
 * pub/sub message of that event loop turn: an event is durable before the writer gets its ack and
 * before any node pushes it. Redis serves every command that arrived in one turn before that one
 * fsync, so pipelined appends share it (group commit inside Redis).
 *
 * Key layout v2 (P = prefix, default "covey:"; {cS} = the channel's shard tag, {bS} a blob
 * shard's; `id` = channel id, `h` = a token hash):
 *   P{cS}ch:<id>        hash   kind owner created head first bytes left (seq of the newest member-left)
 *   P{cS}ev:<id>        stream entries "<seq>-0" → d (event JSON without seq), t (timeMs), sz, pf?
 *   P{cS}mem:<id>       hash   member key → joinedSeq
 *   P{cS}cur:<id>       hash   member key → cursor
 *   P{cS}post:<id>      hash   "<author>\n<postId>" → seq (idempotent posts; removed with the event)
 *   P{cS}ft:<id>        hash   fetch token hash → "<member>\n<joinedSeq>\n<expiresAtMs>"
 *   P{cS}ftm:<id>:<key> zset   one member's fetch token hashes, scored by expiresAtMs (cap, revoke all)
 *   P{cS}push:<id>      hash   member key → push subscription JSON {"e": endpoint, "p": p256dh, "a": auth}
 *   P{cS}online:<id>    hash   "<member>\n<nodeId>" → live WebSocket subscriptions on that node
 *   P{cS}cap:<h>        hash   channel kind exp uses creator cjoined (the maker and its joinedSeq)
 *   P{cS}channels       set    the shard's channel ids (sweep, stats)
 *   P{cS}stats          hash   events bytes (stored, over the shard's channels)
 *   P{cS}nonces         zset   "<key>\n<nonce>" scored by expiresAtMs: posts to the shard's
 *                              channels, and other signed requests of keys hashing to the shard
 *   P{cS}exp:cap        zset   capability expiry index for sweep
 *   P{bS}up:<h>         hash   channel sha size received exp;  P{bS}upd:<h> string: the bytes so far
 *   P{bS'}upi:<h>       string the upload's blob sha (in the shard of the upload token hash h)
 *   P{bS}blob:<sha>     hash   exp size;  P{bS}blobd:<sha> string: the bytes (GETRANGE streams them)
 *   P{bS}blobcap:<h>    hash   sha exp
 *   P{bS}exp:<kind>     zset   expiry indexes for sweep (up, upi, blob, blobcap)
 *   P{nodes}nodes       hash   relay node id → heartbeat expiry (ms): presence of dead nodes is ignored
 *   P vapid             string the VAPID key pair JSON (SET NX: the first node to start decides)
 *   P layout            string the key layout version (2)
 *   P events            pub/sub channel: each append's WebSocket frame text
 *                       {"type":"event","channel":<id>,"event":{"seq":N,...}}
 *
 * Expiry is checked against the caller's nowMs (never Redis TTLs), so both stores agree on a
 * fake clock in tests; `sweep` deletes what has expired.
 */

/**
 * Appends one event; the shared core of every script that appends. Publishes the event's
 * WebSocket frame, built here so no node has to re-serialize it.
 */
const APPEND_EVENT = `
local function append_event(ch, ev, stats, posts, pubchan, channelJson, data, timeMs, size, postField)
  local seq = redis.call('HINCRBY', ch, 'head', 1)
  local id = string.format('%d-0', seq)
  if postField ~= '' then
    redis.call('XADD', ev, id, 'd', data, 't', timeMs, 'sz', size, 'pf', postField)
    redis.call('HSET', posts, postField, seq)
  else
    redis.call('XADD', ev, id, 'd', data, 't', timeMs, 'sz', size)
  end
  redis.call('HINCRBY', ch, 'bytes', size)
  redis.call('HINCRBY', stats, 'events', 1)
  redis.call('HINCRBY', stats, 'bytes', size)
  redis.call('PUBLISH', pubchan, '{"type":"event","channel":' .. channelJson .. ',"event":{"seq":' .. string.format('%d', seq) .. ',' .. string.sub(data, 2) .. '}')
  return seq
end
`;

/**
 * Retention for one channel: a prefix of the log, in three phases (store/types.ts `trim`): read by
 * every current member, then older than the cutoff, then oldest while over the byte cap. At most
 * maxEvents events per call (bounded work inside Redis; callers loop or leave the rest to the sweep).
 * Cheap when there is nothing to do: one HMGET, one HVALS, one XRANGE of one entry.
 */
const TRIM_CHANNEL = `
local function trim_channel(ch, ev, cur, posts, stats, cutoff, maxBytes, batch, maxEvents)
  local info = redis.call('HMGET', ch, 'head', 'first', 'bytes')
  if not info[1] then return 0 end
  local head, first, bytes = tonumber(info[1]), tonumber(info[2]), tonumber(info[3])
  if first > head then return 0 end
  local readByAll = 0
  local cursors = redis.call('HVALS', cur)
  if #cursors > 0 then
    readByAll = math.huge
    for _, c in ipairs(cursors) do readByAll = math.min(readByAll, tonumber(c)) end
  end
  if readByAll < first and bytes <= maxBytes then
    local oldest = redis.call('XRANGE', ev, string.format('%d-0', first), '+', 'COUNT', 1)[1]
    if not oldest then return 0 end
    local t = 0
    local fields = oldest[2]
    for i = 1, #fields, 2 do if fields[i] == 't' then t = tonumber(fields[i + 1]) end end
    if t >= cutoff then return 0 end
  end
  local phase = 1
  local removed = 0
  local removedBytes = 0
  local nextFirst = first
  while phase <= 3 and removed < maxEvents do
    local entries = redis.call('XRANGE', ev, string.format('%d-0', nextFirst), '+', 'COUNT', batch)
    if #entries == 0 then break end
    local stop = false
    for _, entry in ipairs(entries) do
      local seq = tonumber(string.match(entry[1], '^(%d+)'))
      local fields = entry[2]
      local t, sz, pf = 0, 0, nil
      for i = 1, #fields, 2 do
        local name = fields[i]
        if name == 't' then t = tonumber(fields[i + 1])
        elseif name == 'sz' then sz = tonumber(fields[i + 1])
        elseif name == 'pf' then pf = fields[i + 1] end
      end
      local remove = false
      while phase <= 3 do
        if phase == 1 and seq <= readByAll then remove = true break
        elseif phase == 2 and t < cutoff then remove = true break
        elseif phase == 3 and bytes - removedBytes > maxBytes then remove = true break
        else phase = phase + 1 end
      end
      if not remove then stop = true break end
      removed = removed + 1
      removedBytes = removedBytes + sz
      if pf then redis.call('HDEL', posts, pf) end
      nextFirst = seq + 1
      if removed >= maxEvents then stop = true break end
    end
    if stop then break end
  end
  if removed > 0 then
    redis.call('XTRIM', ev, 'MINID', string.format('%d-0', nextFirst))
    redis.call('HSET', ch, 'first', string.format('%d', nextFirst))
    redis.call('HINCRBY', ch, 'bytes', -removedBytes)
    redis.call('HINCRBY', stats, 'events', -removed)
    redis.call('HINCRBY', stats, 'bytes', -removedBytes)
  end
  return removed
end
`;

/**
 * KEYS: ch ev mem cur channels stats posts
 * ARGV: channelJson channelId kind owner nowMs data size pubchan
 * → seq of the creator's member-joined event, or error "channel exists".
 */
export const CREATE_CHANNEL = `${APPEND_EVENT}
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('channel exists') end
redis.call('HSET', KEYS[1], 'kind', ARGV[3], 'owner', ARGV[4], 'created', ARGV[5], 'head', 0, 'first', 1, 'bytes', 0)
local seq = append_event(KEYS[1], KEYS[2], KEYS[6], KEYS[7], ARGV[8], ARGV[1], ARGV[6], ARGV[5], ARGV[7], '')
redis.call('HSET', KEYS[3], ARGV[4], seq)
redis.call('HSET', KEYS[4], ARGV[4], seq - 1)
redis.call('SADD', KEYS[5], ARGV[2])
return seq
`;

/**
 * Lua: true when capability hash `cap` (its HMGET of channel kind exp uses creator cjoined) may be
 * used now for `channel`/`kind`: unexpired, uses left, and its maker still the member it was
 * (no creator: made before makers were recorded). `mem` is the channel's members hash.
 */
const CAPABILITY_USABLE = `
local function capability_usable(cap, channel, kind, nowMs, mem)
  if not cap[1] or cap[1] ~= channel or cap[2] ~= kind or tonumber(cap[3]) <= tonumber(nowMs) or tonumber(cap[4]) <= 0 then
    return false
  end
  if cap[5] and redis.call('HGET', mem, cap[5]) ~= cap[6] then return false end
  return true
end
`;

/**
 * A post or deposit in ONE round trip: nonce, checks, append, retention, and whether anyone has a
 * push subscription.
 * KEYS: ch ev mem posts stats cur push nonces [cap]   (cap only for a capability append: inbox deposits)
 * ARGV: 1 channelJson 2 data 3 timeMs 4 size 5 asMember ('' = none) 6 postField ('' = none)
 *       7 pubchan 8 ifNoLeaveAfter ('' = unconditional; async-groups.md rule 7)
 *       9 capKind ('' = no capability) 10 nonce member "<key>\n<nonce>" ('' = none) 11 nonce expiry
 *       12 trim cutoff ('' = no retention) 13 trim maxBytes 14 trim batch 15 trim maxEvents
 * → {'ok', seq, hasPush (0|1)} | {'dup', seq, data} | {'err', code}
 */
export const APPEND = `${APPEND_EVENT}${TRIM_CHANNEL}${CAPABILITY_USABLE}
if ARGV[10] ~= '' and redis.call('ZADD', KEYS[8], 'NX', ARGV[11], ARGV[10]) == 0 then return {'err', 'replayed-nonce'} end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'err', 'not-member'} end
if ARGV[9] ~= '' then
  local cap = redis.call('HMGET', KEYS[9], 'channel', 'kind', 'exp', 'uses', 'creator', 'cjoined')
  if not capability_usable(cap, cjson.decode(ARGV[1]), ARGV[9], ARGV[3], KEYS[3]) then return {'err', 'invalid-capability'} end
end
if ARGV[5] ~= '' and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 0 then return {'err', 'not-member'} end
if ARGV[6] ~= '' then
  local old = redis.call('HGET', KEYS[4], ARGV[6])
  if old then
    local entries = redis.call('XRANGE', KEYS[2], old .. '-0', old .. '-0')
    local entry = entries[1]
    if entry then
      local fields = entry[2]
      for i = 1, #fields, 2 do
        if fields[i] == 'd' then return {'dup', tonumber(old), fields[i + 1]} end
      end
    end
  end
end
if ARGV[8] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'left') or '0') > tonumber(ARGV[8]) then
  return {'err', 'membership-changed'}
end
if ARGV[9] ~= '' then redis.call('HINCRBY', KEYS[9], 'uses', -1) end
local seq = append_event(KEYS[1], KEYS[2], KEYS[5], KEYS[4], ARGV[7], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6])
if ARGV[12] ~= '' then
  trim_channel(KEYS[1], KEYS[2], KEYS[6], KEYS[4], KEYS[5], tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]))
end
return {'ok', seq, redis.call('EXISTS', KEYS[7])}
`;

/**
 * KEYS: ch ev mem cur cap stats posts
 * ARGV: channelJson channelId key nowMs data size pubchan
 * → {'member', joinedSeq, cursor} | {'joined', seq} | {'err', 'invalid-capability'}
 */
export const JOIN = `${APPEND_EVENT}${CAPABILITY_USABLE}
local joined = redis.call('HGET', KEYS[3], ARGV[3])
if joined then return {'member', tonumber(joined), tonumber(redis.call('HGET', KEYS[4], ARGV[3]) or '0')} end
local cap = redis.call('HMGET', KEYS[5], 'channel', 'kind', 'exp', 'uses', 'creator', 'cjoined')
if not capability_usable(cap, ARGV[2], 'invite', ARGV[4], KEYS[3]) or redis.call('EXISTS', KEYS[1]) == 0 then
  return {'err', 'invalid-capability'}
end
redis.call('HINCRBY', KEYS[5], 'uses', -1)
local seq = append_event(KEYS[1], KEYS[2], KEYS[6], KEYS[7], ARGV[7], ARGV[1], ARGV[5], ARGV[4], ARGV[6], '')
redis.call('HSET', KEYS[3], ARGV[3], seq)
redis.call('HSET', KEYS[4], ARGV[3], seq - 1)
return {'joined', seq}
`;

/**
 * Lua: deletes channel `id` and everything kept for it when it has no members left.
 * Keys: ch ev mem cur posts ft push online channels stats. Returns 1 if deleted.
 */
const DELETE_IF_EMPTY = `
local function delete_if_empty(ch, ev, mem, cur, posts, ft, push, online, channels, stats, id)
  if redis.call('HLEN', mem) > 0 or redis.call('EXISTS', ch) == 0 then return 0 end
  local events = redis.call('XLEN', ev)
  local bytes = tonumber(redis.call('HGET', ch, 'bytes') or '0')
  redis.call('DEL', ch, ev, mem, cur, posts, ft, push, online)
  redis.call('SREM', channels, id)
  redis.call('HINCRBY', stats, 'events', -events)
  redis.call('HINCRBY', stats, 'bytes', -bytes)
  return 1
end
`;

/**
 * KEYS: ch ev mem cur stats posts ft ftm(target) push online channels
 * ARGV: channelJson actor target data timeMs size pubchan
 * → {'ok', seq} | {'err', code}. The last member's leave deletes the channel (store/types.ts).
 */
export const REMOVE_MEMBER = `${APPEND_EVENT}${DELETE_IF_EMPTY}
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then return {'err', 'not-member'} end
if redis.call('HEXISTS', KEYS[3], ARGV[3]) == 0 then return {'err', 'no-target'} end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
for _, h in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do redis.call('HDEL', KEYS[7], h) end
redis.call('DEL', KEYS[8])
redis.call('HDEL', KEYS[9], ARGV[3])
local seq = append_event(KEYS[1], KEYS[2], KEYS[5], KEYS[6], ARGV[7], ARGV[1], ARGV[4], ARGV[5], ARGV[6], '')
redis.call('HSET', KEYS[1], 'left', seq)
delete_if_empty(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[6], KEYS[7], KEYS[9], KEYS[10], KEYS[11], KEYS[5], cjson.decode(ARGV[1]))
return {'ok', seq}
`;

/**
 * KEYS: ch ev mem cur posts ft push online channels stats
 * ARGV: channelId
 * → 1 when the channel had no members and was deleted, else 0.
 */
export const DELETE_CHANNEL_IF_EMPTY = `${DELETE_IF_EMPTY}
return delete_if_empty(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], ARGV[1])
`;

/**
 * KEYS: mem ft ftm(member)
 * ARGV: member hash expiresAtMs nowMs maxPerMember
 * → 1, or 0 when not a member. Drops the member's expired tokens, then the soonest-expiring beyond the cap.
 */
export const PUT_FETCH_TOKEN = `
local joined = redis.call('HGET', KEYS[1], ARGV[1])
if not joined then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '\\n' .. joined .. '\\n' .. ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[4])) do
  redis.call('HDEL', KEYS[2], h)
  redis.call('ZREM', KEYS[3], h)
end
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[5])
if extra > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[3], extra)
  for i = 1, #popped, 2 do redis.call('HDEL', KEYS[2], popped[i]) end
end
return 1
`;

/**
 * KEYS: ft mem cur
 * ARGV: hash nowMs
 * → {member, joinedSeq, cursor}, or nil (unknown, expired, or its member left since).
 */
export const USE_FETCH_TOKEN = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return false end
local member, joined, exp = string.match(v, '^([^\\n]+)\\n(%d+)\\n(%d+)$')
if not member or tonumber(exp) <= tonumber(ARGV[2]) then return false end
if redis.call('HGET', KEYS[2], member) ~= joined then return false end
return {member, tonumber(joined), tonumber(redis.call('HGET', KEYS[3], member) or '0')}
`;

/**
 * KEYS: ft ftm(member)
 * ARGV: hash ('' = all of the member's tokens)
 * → how many were deleted.
 */
export const REVOKE_FETCH_TOKENS = `
if ARGV[1] == '' then
  local tokens = redis.call('ZRANGE', KEYS[2], 0, -1)
  for _, h in ipairs(tokens) do redis.call('HDEL', KEYS[1], h) end
  redis.call('DEL', KEYS[2])
  return #tokens
end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

/**
 * KEYS: mem push
 * ARGV: member subscriptionJson
 * → 1, or 0 when not a member.
 */
export const PUT_PUSH = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
`;

/**
 * KEYS: push
 * ARGV: member endpoint ('' = whatever it is)
 */
export const DELETE_PUSH = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
if ARGV[2] ~= '' and cjson.decode(v).e ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
`;

/**
 * KEYS: online
 * ARGV: field ("<member>\n<nodeId>") delta
 */
export const SET_ONLINE = `
local n = redis.call('HINCRBY', KEYS[1], ARGV[1], tonumber(ARGV[2]))
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return n
`;

/**
 * KEYS: ch mem cur
 * ARGV: key seq
 * → the stored cursor, or nil when not a member.
 */
export const ACK_CURSOR = `
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 0 then return false end
local head = tonumber(redis.call('HGET', KEYS[1], 'head') or '0')
local cursor = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
local wanted = math.min(tonumber(ARGV[2]), head)
if wanted > cursor then
  redis.call('HSET', KEYS[3], ARGV[1], string.format('%d', wanted))
  cursor = wanted
end
return cursor
`;

/**
 * KEYS: ch ev cur posts stats
 * ARGV: cutoffTimeMs maxChannelBytes batch maxEvents
 * → number of events removed.
 */
export const TRIM = `${TRIM_CHANNEL}
return trim_channel(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
`;

/**
 * KEYS: cap expcap mem
 * ARGV: hash channel kind exp uses creator
 * → 1, 0 when the creator is not a member, or error "capability exists".
 */
export const PUT_CAPABILITY = `
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('capability exists') end
local joined = redis.call('HGET', KEYS[3], ARGV[6])
if not joined then return 0 end
redis.call('HSET', KEYS[1], 'channel', ARGV[2], 'kind', ARGV[3], 'exp', ARGV[4], 'uses', ARGV[5], 'creator', ARGV[6], 'cjoined', joined)
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
`;

/**
 * Read-only. KEYS: cap mem
 * ARGV: channel kind nowMs
 * → 1 when usable now, else 0.
 */
export const CHECK_CAPABILITY = `${CAPABILITY_USABLE}
local cap = redis.call('HMGET', KEYS[1], 'channel', 'kind', 'exp', 'uses', 'creator', 'cjoined')
if capability_usable(cap, ARGV[1], ARGV[2], ARGV[3], KEYS[2]) then return 1 end
return 0
`;

/**
 * KEYS: cap expcap
 * ARGV: channel hash
 * → 1 when deleted, 0 when unknown or another channel's.
 */
export const REVOKE_CAPABILITY = `
if redis.call('HGET', KEYS[1], 'channel') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
`;

/**
 * KEYS: up upd expup
 * ARGV: hash channel sha size exp
 */
export const CREATE_UPLOAD = `
redis.call('HSET', KEYS[1], 'channel', ARGV[2], 'sha', ARGV[3], 'size', ARGV[4], 'received', 0, 'exp', ARGV[5])
redis.call('SET', KEYS[2], '')
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 1
`;

/**
 * KEYS: up upd
 * ARGV: offset bytes nowMs
 * → {'ok', received} | {'err', code}
 */
export const APPEND_UPLOAD_CHUNK = `
local up = redis.call('HMGET', KEYS[1], 'size', 'received', 'exp')
if not up[1] or tonumber(up[3]) <= tonumber(ARGV[3]) then return {'err', 'not-found'} end
local received = tonumber(up[2])
if tonumber(ARGV[1]) ~= received then return {'err', 'offset-mismatch'} end
if received + #ARGV[2] > tonumber(up[1]) then return {'err', 'too-large'} end
redis.call('APPEND', KEYS[2], ARGV[2])
return {'ok', redis.call('HINCRBY', KEYS[1], 'received', #ARGV[2])}
`;

/**
 * Turns a complete upload into a blob without copying its bytes through the relay (RENAME: the
 * upload lives in its blob's shard, so both keys share a slot).
 * KEYS: up upd blob blobd blobcap expblob expblobcap expup
 * ARGV: sha capHash exp uploadHash
 * → 1, or 0 when the upload is gone.
 */
export const FINALIZE_UPLOAD = `
local size = redis.call('HGET', KEYS[1], 'received')
if not size then return 0 end
local exp = tonumber(ARGV[3])
local old = redis.call('HGET', KEYS[3], 'exp')
if old then
  exp = math.max(exp, tonumber(old))
  redis.call('DEL', KEYS[2])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[4])
else
  redis.call('SET', KEYS[4], '')
end
redis.call('HSET', KEYS[3], 'exp', string.format('%d', exp), 'size', size)
redis.call('ZADD', KEYS[6], exp, ARGV[1])
redis.call('HSET', KEYS[5], 'sha', ARGV[1], 'exp', ARGV[3])
redis.call('ZADD', KEYS[7], ARGV[3], ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[8], ARGV[4])
return 1
`;

/**
 * Deletes the members of an expiry index that are (still) expired, with the keys they name; the
 * caller read the candidates first and names their keys here, so the script touches only
 * declared keys of one slot. A member whose score moved past nowMs meanwhile (a blob uploaded
 * again) is kept.
 * KEYS: index, then keysPerMember keys for each member, in order
 * ARGV: nowMs keysPerMember member...
 * → how many were deleted.
 */
export const SWEEP_EXPIRED = `
local now = tonumber(ARGV[1])
local per = tonumber(ARGV[2])
local deleted = 0
for i = 3, #ARGV do
  local member = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], member)
  if score and tonumber(score) <= now then
    for k = 1, per do redis.call('DEL', KEYS[1 + (i - 3) * per + k]) end
    redis.call('ZREM', KEYS[1], member)
    deleted = deleted + 1
  end
end
return deleted
`;

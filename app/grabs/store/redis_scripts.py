"""The Redis claim store's Lua scripts (each runs atomically inside Redis) and how its keys
are matched."""


def redis_glob(text: str) -> str:
    """``text`` as a literal inside a Redis MATCH pattern."""
    return "".join(f"\\{ch}" if ch in "*?[]\\" else ch for ch in text)


# KEYS: stock, winners, idempotency answers, claim stream, then one rate-limit counter per limit.
# ARGV: phone hash, per-phone limit, idempotency field ('' for none), code, expires (epoch),
#       grab id, visitor id, lead id, idempotency key, claimed at (epoch), answer ttl,
#       number of limits, the win's funnel context (link|platform|tool|version), then
#       (limit, window seconds) per limit.
# The rate limits are counted here (every tap counts, as in RateLimiter.hit_all) so a claim is
# one round trip to Redis; a replay of an answered key is not counted.
CLAIM_LUA = """
if ARGV[3] ~= '' then
  local prev = redis.call('HGET', KEYS[3], ARGV[3])
  if prev then return {'replay', prev} end
end
local stock = redis.call('GET', KEYS[1])
if not stock then return {'uninit', ''} end
local over = 0
for i = 1, tonumber(ARGV[12]) do
  local count = redis.call('INCR', KEYS[4 + i])
  if count == 1 then redis.call('EXPIRE', KEYS[4 + i], tonumber(ARGV[13 + 2 * i]) + 1) end
  if over == 0 and count > tonumber(ARGV[12 + 2 * i]) then over = i end
end
if over > 0 then return {'limited', tostring(over)} end
local have = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local answer
if have >= tonumber(ARGV[2]) then
  answer = 'already_claimed'
elseif tonumber(stock) <= 0 then
  answer = 'sold_out'
else
  redis.call('DECR', KEYS[1])
  local n = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
  answer = 'won|' .. n .. '|' .. ARGV[4] .. '|' .. ARGV[5]
  redis.call('XADD', KEYS[4], '*', 'grab', ARGV[6], 'phone', ARGV[1], 'n', n,
    'code', ARGV[4], 'expires', ARGV[5], 'visitor', ARGV[7], 'lead', ARGV[8],
    'key', ARGV[9], 'at', ARGV[10], 'ctx', ARGV[13])
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[3], ARGV[3], answer)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[11]))
end
return {'new', answer}
"""

# KEYS: stock, winners. ARGV: stock left, then phone hash / count pairs. Atomic, once.
INIT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: winners. ARGV: phone hash, the deleted-units field. A deleted person's units move to
# the deleted tally (still counted as won); run twice, the second run finds nothing to move.
FORGET_LUA = """
local won = redis.call('HGET', KEYS[1], ARGV[1])
if not won then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[1], ARGV[2], tonumber(won))
return tonumber(won)
"""

# KEYS: stock, winners. ARGV: new total. Returns units won, or -1 when more were won already.
RESTOCK_LUA = """
local won = 0
for _, v in ipairs(redis.call('HVALS', KEYS[2])) do won = won + tonumber(v) end
if tonumber(ARGV[1]) < won then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[1], tonumber(ARGV[1]) - won) end
return won
"""

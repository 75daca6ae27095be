"""The Redis entry path's Lua scripts (each runs atomically inside Redis). Every key of a draw
carries its hash tag, ``{draw:ID}`` (the rate-limit counters of its entries too), so a Redis
Cluster keeps them in one slot and a script may touch them all."""

# KEYS: 1 ready (the draw was loaded from SQL), 2 codes (phone hash -> share code), 3 chances
#       (phone hash -> chances), 4 referrers (share code -> phone hash|entered at, epoch),
#       5 sealed (present once the host closes: nothing enters after it), 6 the entry stream,
#       then one rate-limit counter per limit.
# ARGV: 1 phone hash, 2 a new share code, 3 entered at (epoch), 4 open ('1' when the window
#       is open at ARGV[3]), 5 why not eligible ('' when eligible), 6 the share code entered
#       through ('' for none), 7 referral chances on ('1'), 8 their cap, 9 when the phone's
#       lead was made (epoch, '' unknown), 10 visitor id, 11 lead id, 12 the funnel context
#       (link|platform|tool|version), 13 the masked phone, 14 draw id, 15 number of limits,
#       then (limit, window seconds) per limit.
# Returns {result, share code, chances, entrants, referral, referrer's phone hash}:
# 'uninit' (load the draw first), 'limited' (with the limit's number), 'already_entered',
# 'not_open', 'not_eligible' (with the reason in place of the code), 'entered'.
# As on the SQL path: every tap counts against the limits; an entry made before is answered
# first, then a closed window, then eligibility.
ENTER_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'uninit', '', 0, 0, '', ''} end
local over = 0
for i = 1, tonumber(ARGV[15]) do
  local count = redis.call('INCR', KEYS[6 + i])
  if count == 1 then redis.call('EXPIRE', KEYS[6 + i], tonumber(ARGV[17 + 2 * (i - 1)]) + 1) end
  if over == 0 and count > tonumber(ARGV[16 + 2 * (i - 1)]) then over = i end
end
if over > 0 then return {'limited', tostring(over), 0, 0, '', ''} end
local entrants = redis.call('HLEN', KEYS[2])
local code = redis.call('HGET', KEYS[2], ARGV[1])
if code then
  return {'already_entered', code, tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '1'),
    entrants, '', ''}
end
if ARGV[4] ~= '1' or redis.call('EXISTS', KEYS[5]) == 1 then
  return {'not_open', '', 0, entrants, '', ''}
end
if ARGV[5] ~= '' then return {'not_eligible', ARGV[5], 0, entrants, '', ''} end
local referral, referrer = '', ''
if ARGV[6] ~= '' then
  if ARGV[7] ~= '1' then
    referral = 'off'
  else
    local found = redis.call('HGET', KEYS[4], ARGV[6])
    if not found then
      referral = 'unknown_code'
    else
      local sep = string.find(found, '|', 1, true)
      local phone, since = string.sub(found, 1, sep - 1), tonumber(string.sub(found, sep + 1))
      if phone == ARGV[1] then
        referral = 'own_code'
      else
        referrer = phone
        if ARGV[9] ~= '' and tonumber(ARGV[9]) < since then
          referral = 'not_new'
        elseif tonumber(redis.call('HGET', KEYS[3], phone) or '1') < 1 + tonumber(ARGV[8]) then
          redis.call('HINCRBY', KEYS[3], phone, 1)
          referral = 'counted'
        else
          referral = 'cap_reached'
        end
      end
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], 1)
redis.call('HSET', KEYS[4], ARGV[2], ARGV[1] .. '|' .. ARGV[3])
redis.call('XADD', KEYS[6], '*', 'draw', ARGV[14], 'phone', ARGV[1], 'masked', ARGV[13],
  'code', ARGV[2], 'at', ARGV[3], 'visitor', ARGV[10], 'lead', ARGV[11], 'ctx', ARGV[12],
  'referrer', referrer, 'referral', referral)
return {'entered', ARGV[2], 1, entrants + 1, referral, referrer}
"""

# KEYS: ready, codes, chances, referrers, sealed. ARGV: sealed ('1' for a frozen draw), then
# (phone hash, share code, chances, entered at) per entry in SQL. Atomic, once.
INIT_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 4 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[4], ARGV[i + 1], ARGV[i] .. '|' .. ARGV[i + 3])
end
if ARGV[1] == '1' then redis.call('SET', KEYS[5], '1') end
redis.call('SET', KEYS[1], '1')
return 1
"""

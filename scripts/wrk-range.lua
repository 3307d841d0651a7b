-- wrk script: GET a random RANGE_SIZE-byte range (default 64 KiB) of one object of
-- OBJECT_SIZE bytes (default 64 MiB) per request, unsigned (the target must allow it).
--   OBJECT_SIZE=67108864 RANGE_SIZE=65536 wrk -s scripts/wrk-range.lua http://HOST/bucket/key
local size = tonumber(os.getenv("OBJECT_SIZE") or "67108864")
local len = tonumber(os.getenv("RANGE_SIZE") or "65536")

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  local first = math.random(0, size - len)
  return wrk.format("GET", wrk.path, { ["Range"] = "bytes=" .. first .. "-" .. (first + len - 1) })
end

function done(summary, latency, requests)
  io.write(string.format("RESULT rps=%.1f p50_us=%d p99_us=%d errors=%d non2xx=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end

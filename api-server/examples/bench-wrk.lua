-- The requests of `just bench-api`: api-server/examples/bench.rs runs wrk with this script.
--
-- BENCH_METHOD (GET), BENCH_TOKEN (a bearer token, optional), BENCH_BODY (a JSON body, optional).
-- BENCH_VARY_AT > 0: the 1-based offset in BENCH_BODY of four base64 characters that encode three
-- bytes of the transaction's recent blockhash; every request rewrites them from a per-thread
-- counter (and BENCH_RUN), so every request carries a different transaction (a cache miss). Without it the
-- request is built once and sent as is (wrk's static request).
-- done() prints one JSON line: requests, duration, errors and latency percentiles (µs).

wrk.method = os.getenv("BENCH_METHOD") or "GET"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. token
end
local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
end

local threads = {}
function setup(thread)
   thread:set("thread_id", #threads)
   table.insert(threads, thread)
end

local vary_at = tonumber(os.getenv("BENCH_VARY_AT") or "0")
-- Distinct transactions across the runs of one benchmark too (BENCH_RUN: 0, 1, ...).
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local wrk_threads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
if vary_at > 0 then
   local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
   local prefix = body:sub(1, vary_at - 1)
   local suffix = body:sub(vary_at + 4)
   local counter = 0
   function request()
      counter = counter + 1
      -- 24 bits: 2^20 requests per thread and run, 16 (run, thread) slots.
      local n = ((run * wrk_threads + (thread_id or 0)) % 16) * 1048576 + counter % 1048576
      local c = {}
      for i = 1, 4 do
         local d = n % 64
         c[i] = alphabet:sub(d + 1, d + 1)
         n = (n - d) / 64
      end
      return wrk.format(nil, nil, nil, prefix .. table.concat(c) .. suffix)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
      '"status_errors":%d,"timeouts":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end

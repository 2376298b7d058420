-- POST one JSON body over and over; with mode "unique-key" each request carries an
-- Idempotency-Key of its own (run id, thread number, counter).
--
--   wrk ... -s bench/wrk/post.lua URL -- BODY_FILE MODE RUN_ID [AUTHORIZATION]
--
-- done() prints one line, "BENCH_JSON {...}", that bench/service.py reads.

local threads = {}
local unique, run_id, counter, prepared = false, "run", 0, nil

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  unique = args[2] == "unique-key"
  run_id = args[3] or "run"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[4] and args[4] ~= "" then
    wrk.headers["Authorization"] = args[4]
  end
  prepared = wrk.format()
end

function request()
  if not unique then
    return prepared
  end
  counter = counter + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  headers["Idempotency-Key"] = run_id .. "-" .. tid .. "-" .. counter
  return wrk.format(nil, nil, headers, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

-- wrk script: cycle through a file of request paths (one per line), each thread starting at its own place,
-- and print the figures as one JSON line (WRKJSON ...) for benchmarks/drive.py to read.
-- Usage: wrk -s benchmarks/wrk_paths.lua URL -- paths.txt

local threads = {}
local counter = 1

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no request paths in " .. args[1])
  end
  -- spread the threads over the list so they do not ask for the same young people in step
  counter = (thread_number * 7919) % #paths + 1
  wrk.headers["Accept"] = "application/fhir+json"
end

function request()
  local path = paths[counter]
  counter = counter % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"status_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end

-- wrk script for bench/webhook.py: POSTs pre-signed generic-webhook bodies, each once.
-- The file (args[1]) has one request a line: "<timestamp>\t<signature>\t<json body>".
-- Threads take every n-th line (n = args[2]), so no two threads send the same post.
-- The requests are formatted once, in init(): wrk shares the 2 cores with intake and Kafka, so
-- the load generator should spend as little as it can per request.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  requests, n = {}, 0
  local step = tonumber(args[2])
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % step == tid then
      local ts, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
      n = n + 1
      requests[n] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Fengqiao-Timestamp"] = ts,
        ["X-Fengqiao-Signature"] = sig,
      }, body)
    end
    line_no = line_no + 1
  end
  i = 0
end

function request()
  i = i % n + 1
  return requests[i]
end

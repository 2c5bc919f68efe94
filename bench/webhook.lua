-- wrk script for bench/webhook.py: POSTs pre-signed generic-webhook bodies, each once.
-- The file (args[1]) has one request a line: "<timestamp>\t<signature>\t<json body>".
-- Threads take every n-th line, so no two threads send the same post.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  stamps, sigs, bodies, n = {}, {}, {}, 0
  local step = tonumber(args[2])
  local line_no = 0
  for line in io.lines(args[1]) do
    if line_no % step == tid then
      local ts, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
      n = n + 1
      stamps[n], sigs[n], bodies[n] = ts, sig, body
    end
    line_no = line_no + 1
  end
  i = 0
end

function request()
  i = i % n + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Fengqiao-Timestamp"] = stamps[i],
    ["X-Fengqiao-Signature"] = sigs[i],
  }, bodies[i])
end

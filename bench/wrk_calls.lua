-- wrk script for http_front_bench.py --wrk: `tools/call` of the echo tool on every connection,
-- each request with a JSON-RPC id no other request in flight has, and every reply checked.
-- A reply counts as failed unless it is HTTP 200 carrying a JSON-RPC result that echoes the
-- text back and is not a tool error, so a proxy that answers errors quickly cannot look fast.
-- The session's headers (token, Mcp-Session-Id, protocol version) come from wrk's -H options.
-- done() prints one JSON line for the bench to read.

local threads = {}
local text = string.rep("x", 64)

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  sent = 0
  checked = 0
  failed = 0
  first_bad = nil
end

function request()
  sent = sent + 1
  local id = tid * 1000000000 + sent
  local body = '{"jsonrpc":"2.0","id":' .. id .. ',"method":"tools/call","params":{"name":"echo","arguments":{"text":"'
    .. text .. '"}}}'
  return wrk.format("POST", nil, nil, body)
end

function response(status, headers, body)
  checked = checked + 1
  local good = status == 200
    and string.find(body, '"result"', 1, true)
    and string.find(body, text, 1, true)
    and not string.find(body, '"isError":true', 1, true)
  if not good then
    failed = failed + 1
    if first_bad == nil then
      first_bad = status .. " " .. string.sub(body, 1, 200)
    end
  end
end

function done(summary, latency, requests)
  local total_checked, total_failed, bad = 0, 0, ""
  for _, thread in ipairs(threads) do
    total_checked = total_checked + thread:get("checked")
    total_failed = total_failed + thread:get("failed")
    local first = thread:get("first_bad")
    if first ~= nil and bad == "" then
      bad = first
    end
  end
  bad = string.gsub(bad, '[%c"\\]', "?") -- JSON-safe without an escaper
  io.write(string.format(
    '{"requests": %d, "checked": %d, "failed": %d, "errors": %d, "seconds": %.6f, "p50_us": %d, "p99_us": %d, "first_bad": "%s"}\n',
    summary.requests, total_checked, total_failed,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99), bad
  ))
end

-- wrk script: POSTs one KServe v2 inference request of one row, the same body every time, to the URL given
-- (e.g. http://127.0.0.1:8000/v2/models/mlp/infer). Used by scripts/bench_rest.sh.
--   wrk -t1 -c1 -d10s --latency -s scripts/wrk_infer.lua URL -- WIDTH
-- WIDTH: the model's feature width (the first argument after --, else $WIDTH, else 32). The features are fixed
-- pseudo-random values in [-1, 1), printed with 9 significant digits, as a client sending float32 would.

local function make_body(width)
  local values = {}
  local state = 12345
  for i = 1, width do
    state = (state * 1103515245 + 12345) % 2147483648  -- an LCG: the same body on every run and thread
    values[i] = string.format("%.9g", state / 1073741824 - 1)
  end
  return '{"id":"wrk","inputs":[{"name":"features","shape":[1,' .. width ..
         '],"datatype":"FP32","data":[' .. table.concat(values, ",") .. ']}]}'
end

function init(args)
  local width = tonumber(args[1] or os.getenv("WIDTH") or "32")
  if width == nil or width < 1 then
    error("wrk_infer.lua: WIDTH must be a positive integer")
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = make_body(math.floor(width))
end

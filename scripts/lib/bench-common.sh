# Shared by the benchmark and profiling scripts: source it after `cd` to the repository root.

# free_port: a free TCP port on 127.0.0.1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_http URL [CURL_ARGS...]: until URL answers 2xx, for up to WAIT_HTTP_SECONDS (default 10)
wait_http() {
  local url=$1; shift
  for _ in $(seq 1 $(( ${WAIT_HTTP_SECONDS:-10} * 20 ))); do
    curl -fs "$@" "$url" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "no answer from $url" >&2
  return 1
}

# write_predict_bodies DIR: wrk scripts POSTing /predict bodies from the bundled held-out rows,
# DIR/single.lua (one row) and DIR/batch.lua (100 rows)
write_predict_bodies() {
  python3 - "$1" <<'PY'
import csv, json, sys
out = sys.argv[1]
rows = [[float(v) for v in r[:-1]] for r in csv.reader(list(open("models/breast-cancer/samples.csv"))[1:])]
single = json.dumps({"features": rows[0]})
batch = json.dumps({"instances": (rows * 2)[:100]})
for name, body in [("single", single), ("batch", batch)]:
    with open(f"{out}/{name}.lua", "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
        f.write("wrk.body = " + json.dumps(body) + "\n")
PY
}

# write_v2_bodies DIR: wrk scripts for the V2 inference route (POST /v2/models/NAME/infer) with the
# same rows as write_predict_bodies: DIR/v2-single.lua (one row, JSON tensor data; the body alone
# in DIR/v2-single.json) and
# DIR/v2-batch-binary.lua (100 rows as the binary tensor extension: a JSON header of
# Inference-Header-Content-Length bytes, then 100 x 30 little-endian f32). wrk sends a Lua string
# byte for byte (its length is the Content-Length), so the binary part is written with Lua's
# decimal escapes.
write_v2_bodies() {
  python3 - "$1" <<'PY'
import csv, json, struct, sys
out = sys.argv[1]
rows = [[float(v) for v in r[:-1]] for r in csv.reader(list(open("models/breast-cancer/samples.csv"))[1:])]
batch = (rows * 2)[:100]
width = len(batch[0])
single = json.dumps({"inputs": [{"name": "input", "shape": [1, width], "datatype": "FP32", "data": rows[0]}]})
data = struct.pack(f"<{len(batch) * width}f", *(v for r in batch for v in r))
header = json.dumps({"inputs": [{"name": "input", "shape": [len(batch), width], "datatype": "FP32",
                                 "parameters": {"binary_data_size": len(data)}}],
                     "outputs": [{"name": "label", "parameters": {"binary_data": True}},
                                 {"name": "probabilities", "parameters": {"binary_data": True}}]},
                    separators=(",", ":")).encode()
def lua_string(b):
    return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else f"\\{c:03d}" for c in b) + '"'
with open(f"{out}/v2-single.json", "w") as f:
    f.write(single)
with open(f"{out}/v2-single.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n')
    f.write("wrk.body = " + json.dumps(single) + "\n")
with open(f"{out}/v2-batch-binary.lua", "w") as f:
    f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/octet-stream"\n')
    f.write(f'wrk.headers["Inference-Header-Content-Length"] = "{len(header)}"\n')
    f.write("wrk.body = " + lua_string(header + data) + "\n")
PY
}

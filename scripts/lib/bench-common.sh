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

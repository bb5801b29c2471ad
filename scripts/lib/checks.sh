# Shared by the offline check scripts (scripts/check-monitoring.sh, scripts/check-kubernetes.sh):
# run every step, print each result, and end with the one line CI reads.
#
#   source scripts/lib/checks.sh
#   need <tool> <how to install>      exit 1 at once when a tool is missing
#   step <name> <command...>          run a check, count it as passed or failed
#   checks_summary <what>             "<what>: N passed, N failed"; returns 1 if any failed

failures=()
passed=0

step() {
  local name="$1"; shift
  echo "==> $name"
  if "$@"; then
    echo "    ok: $name"
    passed=$((passed + 1))
  else
    echo "    FAILED: $name" >&2
    failures+=("$name")
  fi
}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1 ($2)" >&2; exit 1; }
}

checks_summary() {
  echo
  if [ "${#failures[@]}" -gt 0 ]; then
    echo "failed: ${failures[*]}" >&2
  fi
  echo "$1: $passed passed, ${#failures[@]} failed"
  [ "${#failures[@]}" -eq 0 ]
}

# Source it: run_child CMD [ARGS...] runs CMD in the background and waits for it, passing a
# SIGTERM/SIGINT sent to the calling script on to CMD (which then tears down what it started),
# and waits again for that teardown. Sets `status` to CMD's exit code.
run_child() {
  status=0
  "$@" &
  local child=$!
  trap 'kill -TERM "'"$child"'" 2>/dev/null' TERM INT
  wait "$child" || status=$?
  # A trapped signal interrupts `wait`; wait again for the child's teardown.
  if kill -0 "$child" 2>/dev/null; then wait "$child" || status=$?; fi
  trap - TERM INT
}

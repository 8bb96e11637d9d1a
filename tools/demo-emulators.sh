#!/usr/bin/env bash
# The demo's local emulators of Microsoft Graph and Google Classroom (not a real tenant).
#   tools/demo-emulators.sh start   both in the background; fails fast (stopping what it started) when
#                                   either cannot start, e.g. its port is busy
#   tools/demo-emulators.sh stop    both stopped with SIGTERM (each saves its state file), then waited for
# Settings come from the Makefile's environment: BIN, AIRFLOW_HOME, EMULATOR_PORT, CLASSROOM_PORT,
# DEMO_DOMAIN, DEMO_ADMIN.
set -euo pipefail
home=${AIRFLOW_HOME:?}
pids=$home/emulators.pid

stop() {
  [ -f "$pids" ] || return 0
  local alive=()
  while read -r pid; do
    [ -n "$pid" ] && kill "$pid" 2> /dev/null && alive+=("$pid")
  done < "$pids"
  for pid in "${alive[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
  done
  rm -f "$pids"
}

start() {
  stop
  : > "$pids"
  "$BIN/python" -m mis_sync.fakes.serve graph --port "$EMULATOR_PORT" --auto-users-domain "$DEMO_DOMAIN" \
    --state-file "$home/graph-emulator-state.json" > "$home/graph-emulator.log" 2>&1 &
  echo $! >> "$pids"
  "$BIN/python" -m mis_sync.fakes.serve classroom --port "$CLASSROOM_PORT" --auto-users-domain "$DEMO_DOMAIN" \
    --admin "$DEMO_ADMIN" --state-file "$home/classroom-emulator-state.json" > "$home/classroom-emulator.log" 2>&1 &
  echo $! >> "$pids"
  for name in graph classroom; do
    local log=$home/$name-emulator.log pid
    pid=$(sed -n "$([ $name = graph ] && echo 1 || echo 2)p" "$pids")
    for _ in $(seq 150); do
      grep -q '^LOCAL EMULATOR' "$log" && break
      if ! kill -0 "$pid" 2> /dev/null; then
        echo "The $name emulator did not start:" >&2
        cat "$log" >&2
        stop
        exit 1
      fi
      sleep 0.2
    done
    if ! grep -q '^LOCAL EMULATOR' "$log"; then
      echo "The $name emulator did not start within 30 s (log: $log)" >&2
      stop
      exit 1
    fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

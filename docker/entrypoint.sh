#!/usr/bin/env bash
# The container entrypoint of the servicerouter image (PID 1 is tini, which reaps and forwards
# signals to this script; see Dockerfile).
#
#   servicerouter-entrypoint run [flags...]   HAProxy (master-worker) + `servicerouter run`, supervised
#   servicerouter-entrypoint ARGS...          exec servicerouter ARGS... (sim, once, plan, templates, --help)
#
# For `run`:
#  1. HAProxy's paths come from the flags when they are given (`--haproxy-config`,
#     `--haproxy-socket`, `--master-socket`, `--haproxy-bin`; `--flag VALUE` or `--flag=VALUE`, the
#     last one wins as in servicerouter), otherwise from the environment (defaults below); flags
#     that are missing are appended, so HAProxy and servicerouter always use the same paths.
#  2. The minimal config (haproxy/haproxy-minimal.cfg, `@ADMIN_SOCKET@` replaced) is written to the
#     config path: HAProxy starts with the admin socket and no frontends. servicerouter's first pass
#     writes the real config and reloads HAProxy once through the master socket.
#  3. `haproxy -W -S MASTER -f CONFIG` starts (master-worker mode, the master stays in the
#     foreground). Once both sockets exist, `servicerouter run FLAGS...` starts.
#  4. SIGTERM and SIGINT go to both; SIGHUP goes to servicerouter (full resync). When either one
#     exits, the other gets SIGTERM (SIGKILL after SERVICEROUTER_STOP_GRACE seconds) and the
#     script exits: after a signal with servicerouter's status, otherwise with the status of the
#     one that exited first (1 if that was 0), so the container stops and its restart policy acts.
#
# Environment (all optional):
#   SERVICEROUTER_HAPROXY_CONFIG  default config path      (/var/lib/servicerouter/haproxy.cfg)
#   SERVICEROUTER_HAPROXY_SOCKET  default admin socket     (/run/haproxy/admin.sock)
#   SERVICEROUTER_MASTER_SOCKET   default master socket    (/run/haproxy-master.sock)
#   SERVICEROUTER_MINIMAL_CONFIG  the minimal config       (/usr/local/share/servicerouter/haproxy-minimal.cfg)
#   SERVICEROUTER_BIN             the servicerouter binary (servicerouter, from PATH)
#   SERVICEROUTER_START_TIMEOUT   seconds HAProxy may take to create its sockets (10)
#   SERVICEROUTER_STOP_GRACE      seconds between SIGTERM and SIGKILL for the survivor (10)
set -uo pipefail

log() { printf 'servicerouter-entrypoint: %s\n' "$*" >&2; }
die() { log "$1"; exit "${2:-2}"; }

sr_bin=${SERVICEROUTER_BIN:-servicerouter}

if [ "${1:-}" != "run" ]; then
  exec "$sr_bin" "$@"
fi
shift

config=${SERVICEROUTER_HAPROXY_CONFIG:-/var/lib/servicerouter/haproxy.cfg}
socket=${SERVICEROUTER_HAPROXY_SOCKET:-/run/haproxy/admin.sock}
master=${SERVICEROUTER_MASTER_SOCKET:-/run/haproxy-master.sock}
haproxy_bin=haproxy
minimal=${SERVICEROUTER_MINIMAL_CONFIG:-/usr/local/share/servicerouter/haproxy-minimal.cfg}
start_timeout=${SERVICEROUTER_START_TIMEOUT:-10}
stop_grace=${SERVICEROUTER_STOP_GRACE:-10}
[[ $start_timeout =~ ^[0-9]+$ ]] || die "SERVICEROUTER_START_TIMEOUT must be a whole number of seconds"
[[ $stop_grace =~ ^[0-9]+$ ]] || die "SERVICEROUTER_STOP_GRACE must be a whole number of seconds"

# Which of the path flags the command line already has (their values win over the environment).
args=("$@")
have_config=0 have_socket=0 have_master=0
i=0
while [ "$i" -lt "${#args[@]}" ]; do
  arg=${args[$i]}
  name=$arg value=""
  case $arg in
    --haproxy-config=* | --haproxy-socket=* | --master-socket=* | --haproxy-bin=*)
      name=${arg%%=*}
      value=${arg#*=}
      ;;
    --haproxy-config | --haproxy-socket | --master-socket | --haproxy-bin)
      [ $((i + 1)) -lt "${#args[@]}" ] || die "$arg needs a value"
      i=$((i + 1))
      value=${args[$i]}
      ;;
    *)
      i=$((i + 1))
      continue
      ;;
  esac
  case $name in
    --haproxy-config) config=$value have_config=1 ;;
    --haproxy-socket) socket=$value have_socket=1 ;;
    --master-socket) master=$value have_master=1 ;;
    --haproxy-bin) haproxy_bin=$value ;;
  esac
  i=$((i + 1))
done

extra=()
[ "$have_config" = 1 ] || extra+=(--haproxy-config "$config")
[ "$have_socket" = 1 ] || extra+=(--haproxy-socket "$socket")
[ "$have_master" = 1 ] || extra+=(--master-socket "$master")

# The socket goes into a config line: the same characters servicerouter accepts, < 108 bytes.
for s in "$socket" "$master"; do
  if ! [[ $s =~ ^[A-Za-z0-9_.:/@-]+$ ]] || [ "${#s}" -ge 108 ]; then
    die "socket path '$s': only letters, digits and _ . : - / @ are allowed, at most 107 bytes"
  fi
done
[ -n "$config" ] || die "--haproxy-config is empty"
[ -r "$minimal" ] || die "cannot read the minimal config $minimal (SERVICEROUTER_MINIMAL_CONFIG)"

mkdir -p "$(dirname "$config")" "$(dirname "$socket")" "$(dirname "$master")" || die "cannot create the directories for $config, $socket, $master" 1

# The minimal config (placeholder filled in outside comments), written atomically. A config left
# by an earlier run is replaced on purpose: its socket path may differ from this run's, and
# servicerouter rewrites it on its first pass anyway.
filled=""
while IFS= read -r line || [ -n "$line" ]; do
  case $line in
    "#"*) ;;
    *) line=${line//@ADMIN_SOCKET@/$socket} ;;
  esac
  filled+=$line$'\n'
done <"$minimal"
if ! { printf '%s' "$filled" >"$config.entrypoint" && mv -f "$config.entrypoint" "$config"; }; then
  die "cannot write $config" 1
fi

# Sockets left by an earlier run of this container would look like a started HAProxy.
rm -f "$socket" "$master"

alive() { kill -0 "$1" 2>/dev/null; }

haproxy_pid="" sr_pid="" stopping=0
# shellcheck disable=SC2317  # called from the traps below
on_stop() {
  stopping=1
  log "$1: stopping servicerouter and HAProxy"
  for pid in $sr_pid $haproxy_pid; do kill -TERM "$pid" 2>/dev/null; done
}
trap 'on_stop SIGTERM' TERM
trap 'on_stop SIGINT' INT
trap '[ -z "$sr_pid" ] || kill -HUP "$sr_pid" 2>/dev/null' HUP

log "starting HAProxy: $haproxy_bin -W -S $master -f $config"
"$haproxy_bin" -W -S "$master" -f "$config" &
haproxy_pid=$!

# Bounded wait for the master (-S) and the admin socket (created before the worker forks).
deadline=$((SECONDS + start_timeout))
while ! { [ -S "$socket" ] && [ -S "$master" ]; }; do
  if [ "$stopping" = 1 ]; then
    wait "$haproxy_pid"
    log "stopped before servicerouter started"
    exit 0
  fi
  if ! alive "$haproxy_pid"; then
    wait "$haproxy_pid"
    status=$?
    die "HAProxy exited with status $status before creating its sockets" "$((status == 0 ? 1 : status))"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    kill -TERM "$haproxy_pid" 2>/dev/null
    wait "$haproxy_pid"
    die "HAProxy did not create $socket and $master within ${start_timeout} s" 1
  fi
  sleep 0.1
done
log "HAProxy master pid $haproxy_pid is up (admin socket $socket, master socket $master)"

# Only the paths are logged: other flags may carry credentials.
log "starting servicerouter run (added flags: ${extra[*]:-none})"
"$sr_bin" run "${args[@]}" "${extra[@]}" &
sr_pid=$!
# A signal that came while servicerouter was being started has stopped HAProxy only.
[ "$stopping" = 0 ] || kill -TERM "$sr_pid" 2>/dev/null

# `wait -n` returns early (status > 128, no pid) when a trap ran; then both may still be running.
while :; do
  finished=""
  wait -n -p finished "$sr_pid" "$haproxy_pid"
  status=$?
  [ -n "${finished:-}" ] && break
done

if [ "$finished" = "$sr_pid" ]; then
  first=servicerouter other=HAProxy other_pid=$haproxy_pid sr_status=$status
else
  first=HAProxy other=servicerouter other_pid=$sr_pid sr_status=""
fi
# After a signal the other one has had its SIGTERM already.
if [ "$stopping" = 0 ]; then
  log "$first exited with status $status; stopping $other"
  kill -TERM "$other_pid" 2>/dev/null
fi
for ((n = 0; n < stop_grace * 10; n++)); do
  alive "$other_pid" || break
  sleep 0.1
done
if alive "$other_pid"; then
  log "$other still running after ${stop_grace} s: SIGKILL"
  kill -KILL "$other_pid" 2>/dev/null
fi
wait "$other_pid"
other_status=$?
[ -n "$sr_status" ] || sr_status=$other_status

if [ "$stopping" = 1 ]; then
  log "stopped (servicerouter status $sr_status)"
  exit "$sr_status"
fi
exit "$((status == 0 ? 1 : status))"

#!/usr/bin/env bash
# The container entrypoint of the servicerouter image (PID 1 is tini, which reaps and forwards
# signals to this script; see Dockerfile).
#
#   servicerouter-entrypoint run [flags...]    HAProxy (master-worker) + `servicerouter run`, supervised
#   servicerouter-entrypoint sse [flags...]    the same (marathon-lb's image mode `sse`)
#   servicerouter-entrypoint poll [flags...]   HAProxy + `servicerouter once` every POLL_INTERVAL seconds
#                                              (marathon-lb's image mode `poll`)
#   servicerouter-entrypoint ARGS...           exec servicerouter ARGS... (sim, once, plan, templates, --help)
#
# For `run` (and `sse`, `poll`):
#  1. HAProxy's paths come from the flags when they are given (`--haproxy-config`,
#     `--haproxy-socket`, `--master-socket`, `--haproxy-bin`; `--flag VALUE` or `--flag=VALUE`, the
#     last one wins as in servicerouter), otherwise from the environment (defaults below); flags
#     that are missing are appended, so HAProxy and servicerouter always use the same paths.
#  2. marathon-lb's environment, read as its image read it:
#       HAPROXY_SSL_CERT, HAPROXY_SSL_CERT0..HAPROXY_SSL_CERT100  certificate texts (`\n` escapes as
#                              `echo -e` reads them) written to $SERVICEROUTER_SSL_CERT_DIR/cert.pem and
#                              certN.pem (mode 600) and added to --ssl-certs (after any given);
#       HAPROXY_SYSCTL_PARAMS  `key=value ...` written to /proc/sys (fatal on failure unless
#                              HAPROXY_SYSCTL_NONSTRICT is set, as `sysctl -w` was);
#       $MESOS_SANDBOX/templates  passed as --templates-dir when that directory exists and the flag is
#                              not given (marathon-lb's image copied it into its templates directory);
#       PORTS                  not needed (HAProxy hands its listening sockets to each new worker on a
#                              reload): logged and ignored;
#       HAPROXY_GLOBAL_DEFAULT_OPTIONS and HAPROXY_<TEMPLATE>  read by servicerouter itself.
#  3. The minimal config (haproxy/haproxy-minimal.cfg, `@ADMIN_SOCKET@` replaced) is written to the
#     config path: HAProxy starts with the admin socket and no frontends. servicerouter's first pass
#     writes the real config and reloads HAProxy once through the master socket.
#  4. `haproxy -W -S MASTER -f CONFIG` starts (master-worker mode, the master stays in the
#     foreground). Once both sockets exist, `servicerouter run FLAGS...` starts.
#  5. SIGTERM and SIGINT: servicerouter gets SIGTERM (it finishes the batch in flight) and HAProxy
#     SIGUSR1, its soft stop: the listeners close, connections in flight finish, and HAProxy exits
#     when the last one has, or at the config's `hard-stop-after` (5m in the default HAPROXY_HEAD).
#     SIGHUP goes to servicerouter (full resync; in poll mode: the next pass now). When either one
#     exits, the other is stopped the same way and the script exits: after a signal with
#     servicerouter's status, otherwise with the status of the one that exited first (1 if that was
#     0), so the container stops and its restart policy acts. servicerouter gets SIGKILL after
#     SERVICEROUTER_STOP_GRACE seconds, HAProxy after hard-stop-after plus that grace.
#     Give the container that long to stop (`docker stop -t`, compose `stop_grace_period`, Marathon
#     `taskKillGracePeriodSeconds`), or lower hard-stop-after in HAPROXY_HEAD.
#
# Environment (all optional):
#   SERVICEROUTER_HAPROXY_CONFIG  default config path      (/var/lib/servicerouter/haproxy.cfg)
#   SERVICEROUTER_HAPROXY_SOCKET  default admin socket     (/run/haproxy/admin.sock)
#   SERVICEROUTER_MASTER_SOCKET   default master socket    (/run/haproxy-master.sock)
#   SERVICEROUTER_MINIMAL_CONFIG  the minimal config       (/usr/local/share/servicerouter/haproxy-minimal.cfg)
#   SERVICEROUTER_BIN             the servicerouter binary (servicerouter, from PATH)
#   SERVICEROUTER_START_TIMEOUT   seconds HAProxy may take to create its sockets (10)
#   SERVICEROUTER_STOP_GRACE      seconds between SIGTERM and SIGKILL for servicerouter (10)
#   SERVICEROUTER_HAPROXY_STOP_TIMEOUT  seconds HAProxy's soft stop may take when the config has
#                                 no hard-stop-after (300)
#   SERVICEROUTER_SSL_CERT_DIR    where HAPROXY_SSL_CERT* are written (/etc/ssl, as marathon-lb)
#   SERVICEROUTER_PROC_SYS        where HAPROXY_SYSCTL_PARAMS are written (/proc/sys)
#   POLL_INTERVAL                 seconds between two passes in poll mode (60, marathon-lb's)
set -uo pipefail

log() { printf 'servicerouter-entrypoint: %s\n' "$*" >&2; }
die() { log "$1"; exit "${2:-2}"; }

sr_bin=${SERVICEROUTER_BIN:-servicerouter}

mode=${1:-}
case $mode in
  run | sse) ;;
  poll) ;;
  *) exec "$sr_bin" "$@" ;;
esac
shift

config=${SERVICEROUTER_HAPROXY_CONFIG:-/var/lib/servicerouter/haproxy.cfg}
socket=${SERVICEROUTER_HAPROXY_SOCKET:-/run/haproxy/admin.sock}
master=${SERVICEROUTER_MASTER_SOCKET:-/run/haproxy-master.sock}
haproxy_bin=haproxy
minimal=${SERVICEROUTER_MINIMAL_CONFIG:-/usr/local/share/servicerouter/haproxy-minimal.cfg}
start_timeout=${SERVICEROUTER_START_TIMEOUT:-10}
stop_grace=${SERVICEROUTER_STOP_GRACE:-10}
haproxy_stop_default=${SERVICEROUTER_HAPROXY_STOP_TIMEOUT:-300}
poll_interval=${POLL_INTERVAL:-60}
cert_dir=${SERVICEROUTER_SSL_CERT_DIR:-/etc/ssl}
proc_sys=${SERVICEROUTER_PROC_SYS:-/proc/sys}
[[ $start_timeout =~ ^[0-9]+$ ]] || die "SERVICEROUTER_START_TIMEOUT must be a whole number of seconds"
[[ $stop_grace =~ ^[0-9]+$ ]] || die "SERVICEROUTER_STOP_GRACE must be a whole number of seconds"
[[ $haproxy_stop_default =~ ^[0-9]+$ ]] || die "SERVICEROUTER_HAPROXY_STOP_TIMEOUT must be a whole number of seconds"
[[ $poll_interval =~ ^[0-9]+$ ]] && [ "$poll_interval" -ge 1 ] || die "POLL_INTERVAL must be a whole number of seconds, at least 1"

# Which of the path flags the command line already has (their values win over the environment).
# --ssl-certs is taken out (and put back, with the environment's certificates, below).
given=("$@")
args=()
have_config=0 have_socket=0 have_master=0 have_templates=0 ssl_certs=""
i=0
while [ "$i" -lt "${#given[@]}" ]; do
  arg=${given[$i]}
  name=$arg value=""
  case $arg in
    --haproxy-config=* | --haproxy-socket=* | --master-socket=* | --haproxy-bin=* | --ssl-certs=* | --templates-dir=*)
      name=${arg%%=*}
      value=${arg#*=}
      ;;
    --haproxy-config | --haproxy-socket | --master-socket | --haproxy-bin | --ssl-certs | --templates-dir)
      [ $((i + 1)) -lt "${#given[@]}" ] || die "$arg needs a value"
      i=$((i + 1))
      value=${given[$i]}
      ;;
    *)
      args+=("$arg")
      i=$((i + 1))
      continue
      ;;
  esac
  case $name in
    --haproxy-config) config=$value have_config=1 ;;
    --haproxy-socket) socket=$value have_socket=1 ;;
    --master-socket) master=$value have_master=1 ;;
    --haproxy-bin) haproxy_bin=$value ;;
    --templates-dir) have_templates=1 ;;
    --ssl-certs) ssl_certs=$value ;;
  esac
  if [ "$name" != --ssl-certs ]; then
    if [ "$arg" = "$name" ]; then args+=("$arg" "$value"); else args+=("$arg"); fi
  fi
  i=$((i + 1))
done

extra=()
[ "$have_config" = 1 ] || extra+=(--haproxy-config "$config")
[ "$have_socket" = 1 ] || extra+=(--haproxy-socket "$socket")
[ "$have_master" = 1 ] || extra+=(--master-socket "$master")

# marathon-lb's environment (see the header).
if [ -n "${PORTS:-}" ]; then
  log "PORTS=$PORTS is not needed (HAProxy binds what its config says and hands the listening sockets to each new worker on a reload); ignored"
fi
cert_files=()
if [ -n "${HAPROXY_SSL_CERT:-}" ]; then cert_files+=("cert.pem=HAPROXY_SSL_CERT"); fi
for n in $(seq 0 100); do
  var=HAPROXY_SSL_CERT$n
  if [ -n "${!var:-}" ]; then cert_files+=("cert$n.pem=$var"); fi
done
if [ "${#cert_files[@]}" -gt 0 ]; then
  mkdir -p "$cert_dir" || die "cannot create $cert_dir for the HAPROXY_SSL_CERT* certificates (SERVICEROUTER_SSL_CERT_DIR)" 1
  for entry in "${cert_files[@]}"; do
    file=$cert_dir/${entry%%=*} var=${entry#*=}
    # `echo -e` as marathon-lb's image wrote them: backslash escapes such as \n are interpreted.
    if ! (umask 077 && printf '%b\n' "${!var}" >"$file.entrypoint" && mv -f "$file.entrypoint" "$file"); then
      die "cannot write $file from $var" 1
    fi
    ssl_certs=${ssl_certs:+$ssl_certs,}$file
  done
  log "wrote ${#cert_files[@]} certificate(s) from HAPROXY_SSL_CERT* into $cert_dir"
fi
[ -z "$ssl_certs" ] || args+=(--ssl-certs "$ssl_certs")
if [ -n "${HAPROXY_SYSCTL_PARAMS:-}" ]; then
  for param in $HAPROXY_SYSCTL_PARAMS; do
    key=${param%%=*} value=${param#*=}
    if ! [[ $param == *=* && $key =~ ^[A-Za-z0-9_][A-Za-z0-9_./-]*$ && $key != *..* && $value =~ ^[A-Za-z0-9_.:,/+-]+$ ]]; then
      die "HAPROXY_SYSCTL_PARAMS: '$param' is not key=value (e.g. net.ipv4.tcp_tw_reuse=1)"
    fi
    target=$proc_sys/${key//./\/}
    if printf '%s\n' "$value" 2>/dev/null >"$target"; then
      log "sysctl $key=$value"
    elif [ -n "${HAPROXY_SYSCTL_NONSTRICT:-}" ]; then
      log "sysctl $key=$value failed (cannot write $target); HAPROXY_SYSCTL_NONSTRICT is set: going on"
    else
      die "sysctl $key=$value failed: cannot write $target (the container may need --sysctl or privileges; HAPROXY_SYSCTL_NONSTRICT=1 goes on without it)" 1
    fi
  done
fi
if [ "$have_templates" = 0 ] && [ -n "${MESOS_SANDBOX:-}" ] && [ -d "$MESOS_SANDBOX/templates" ]; then
  extra+=(--templates-dir "$MESOS_SANDBOX/templates")
fi

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
# HAProxy's soft stop: the master closes the listeners, the workers finish the connections in
# flight, the master exits after the last worker (SIGTERM would cut every connection at once).
stop_haproxy() { [ -z "$haproxy_pid" ] || kill -USR1 "$haproxy_pid" 2>/dev/null; }
stop_servicerouter() { [ -z "$sr_pid" ] || kill -TERM "$sr_pid" 2>/dev/null; }
# shellcheck disable=SC2317  # called from the traps below
on_stop() {
  stopping=1
  log "$1: stopping servicerouter, and HAProxy softly (connections in flight finish)"
  stop_servicerouter
  stop_haproxy
}
trap 'on_stop SIGTERM' TERM
trap 'on_stop SIGINT' INT
trap '[ -z "$sr_pid" ] || kill -HUP "$sr_pid" 2>/dev/null' HUP

# How long HAProxy's soft stop may take: the `hard-stop-after` of the config it runs now (HAProxy
# ends the old workers then), else SERVICEROUTER_HAPROXY_STOP_TIMEOUT. HAProxy's times are in ms
# without a unit.
haproxy_stop_seconds() {
  local value number unit
  value=$(awk '$1 == "hard-stop-after" { v = $2 } END { print v }' "$config" 2>/dev/null)
  if [[ $value =~ ^([0-9]+)(us|ms|s|m|h|d)?$ ]]; then
    number=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]:-ms}
    case $unit in
      us | ms) echo $(((number + 999) / 1000)) ;;
      s) echo "$number" ;;
      m) echo $((number * 60)) ;;
      h) echo $((number * 3600)) ;;
      d) echo $((number * 86400)) ;;
    esac
  else
    echo "$haproxy_stop_default"
  fi
}

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
    kill -TERM "$haproxy_pid" 2>/dev/null  # nothing to drain yet: no frontends
    wait "$haproxy_pid"
    die "HAProxy did not create $socket and $master within ${start_timeout} s" 1
  fi
  sleep 0.1
done
log "HAProxy master pid $haproxy_pid is up (admin socket $socket, master socket $master)"

# poll: `servicerouter once` now and every POLL_INTERVAL seconds, as marathon-lb's image did
# (a failed pass is logged and the next one comes). SIGTERM lets a pass in flight finish, then
# ends the loop; SIGHUP starts the next pass now.
# shellcheck disable=SC2317  # run in the background below
poll_loop() {
  local child="" status stop=0 phase=""
  trap 'stop=1; [ "$phase" != sleep ] || kill -TERM "$child" 2>/dev/null' TERM
  trap '[ "$phase" != sleep ] || kill -TERM "$child" 2>/dev/null' HUP
  while [ "$stop" = 0 ]; do
    phase=once
    "$sr_bin" once "$@" &
    child=$!
    # A trap returns `wait` early; the pass goes on until it ends.
    while wait "$child"; status=$?; alive "$child"; do :; done
    wait "$child"
    status=$?
    [ "$status" = 0 ] || log "servicerouter once exited with status $status; the next pass in ${poll_interval} s"
    [ "$stop" = 0 ] || break
    phase=sleep
    sleep "$poll_interval" &
    child=$!
    wait "$child"
    kill -TERM "$child" 2>/dev/null
    phase=""
  done
  exit 0
}

# Only the paths are logged: other flags may carry credentials.
if [ "$mode" = poll ]; then
  log "starting servicerouter once every ${poll_interval} s (poll mode; added flags: ${extra[*]:-none})"
  poll_loop "${args[@]}" "${extra[@]}" &
else
  log "starting servicerouter run (added flags: ${extra[*]:-none})"
  "$sr_bin" run "${args[@]}" "${extra[@]}" &
fi
sr_pid=$!
# A signal that came while servicerouter was being started has stopped HAProxy only.
[ "$stopping" = 0 ] || stop_servicerouter

# `wait -n` returns early (status > 128, no pid) when a trap ran; then both may still be running.
while :; do
  finished=""
  wait -n -p finished "$sr_pid" "$haproxy_pid"
  status=$?
  [ -n "${finished:-}" ] && break
done

if [ "$finished" = "$sr_pid" ]; then
  first=servicerouter other=HAProxy sr_status=$status
else
  first=HAProxy other=servicerouter sr_status=""
fi
# After a signal both have been told to stop already.
if [ "$stopping" = 0 ]; then
  log "$first exited with status $status; stopping $other"
  if [ "$first" = servicerouter ]; then stop_haproxy; else stop_servicerouter; fi
fi

# Waits (bounded) for $1 to exit, SIGKILL after $2 seconds; its status in $waited.
waited=0
wait_bounded() {
  local pid=$1 limit=$2 name=$3 n
  for ((n = 0; n < limit * 10; n++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name still running after ${limit} s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid"
  waited=$?
}
if [ "$first" = servicerouter ]; then
  wait_bounded "$haproxy_pid" "$(($(haproxy_stop_seconds) + stop_grace))" HAProxy
else
  wait_bounded "$sr_pid" "$stop_grace" servicerouter
  sr_status=$waited
  # HAProxy exited first; a second `wait` on it returns at once.
fi

if [ "$stopping" = 1 ]; then
  log "stopped (servicerouter status $sr_status)"
  exit "$sr_status"
fi
exit "$((status == 0 ? 1 : status))"

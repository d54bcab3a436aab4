#!/usr/bin/env bash
# Container health check: an HTTP GET on 127.0.0.1 (bash's /dev/tcp; the image has no curl) that
# passes on a 200 answer.
#   servicerouter-healthcheck [PORT [PATH]]
# Default: HAProxy's monitor URI on the stats listener (127.0.0.1:9090/_haproxy_health_check),
# which exists only once servicerouter has written its config (the minimal config has no
# listener), so "healthy" means HAProxy serves servicerouter's config. The simulator's check is
# `servicerouter-healthcheck 8080 /ping`. Docker's healthcheck timeout bounds the connect.
set -uo pipefail
port=${1:-${SERVICEROUTER_STATS_PORT:-9090}}
path=${2:-/_haproxy_health_check}
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$path" >&3
IFS= read -r -t 5 status_line <&3 || exit 1
case $status_line in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) exit 1 ;;
esac

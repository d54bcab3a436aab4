# servicerouter beside HAProxy 2.6 (Debian bookworm's package) in master-worker mode.
#
#   docker build -t servicerouter:local --build-arg SERVICEROUTER_COMMIT=$(git rev-parse --short=12 HEAD) .
#   docker run --rm servicerouter:local --help                  # any command: exec'd as is
#   docker run -d -p 80:80 -p 9090:9090 -p 9091:9091 servicerouter:local \
#       run --marathon http://marathon.example:8080 --group external --health-check
#
# `run` starts HAProxy (haproxy -W -S /run/haproxy-master.sock -f /var/lib/servicerouter/haproxy.cfg,
# minimal config first) and then `servicerouter run`, both supervised by docker/entrypoint.sh under
# tini; the entrypoint adds --haproxy-config, --haproxy-socket and --master-socket when they are not
# given. marathon-lb's image modes work too (`sse` as `run`, `poll`), and so does its environment
# (HAPROXY_SSL_CERT*, HAPROXY_SYSCTL_PARAMS, $MESOS_SANDBOX/templates; see docker/entrypoint.sh).
# The container runs as root: HAProxy binds :80 (with host networking too, as on Marathon); its
# workers run as user haproxy. `docker stop` lets HAProxy stop softly: give it time (`-t 60`).
# SERVICEROUTER_COMMIT names the commit in `--version` (the build context has no .git).
# No HEALTHCHECK here (the same image runs `sim`); docker-compose.yml and deploy/marathon-app.json
# check HAProxy's /_haproxy_health_check on the stats port, as docker/healthcheck.sh does.

ARG SWIFT_IMAGE=swift:6.2-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
ARG SERVICEROUTER_COMMIT=unknown
WORKDIR /src
# Tests/ is copied too: Package.swift declares the test targets, and SwiftPM checks their folders.
COPY . .
RUN SERVICEROUTER_COMMIT=${SERVICEROUTER_COMMIT} swift build -c release --static-swift-stdlib --product servicerouter \
 && install -D -m 0755 .build/release/servicerouter /out/servicerouter \
 && strip /out/servicerouter

FROM ${RUNTIME_IMAGE}
# haproxy: 2.6 from bookworm, which also brings libssl3 (servicerouter loads libssl.so.3 at run time
# for https:// Marathon URLs); ca-certificates for verifying them; tini as PID 1.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      haproxy ca-certificates libssl3 tini \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/servicerouter /run/haproxy
COPY --from=build /out/servicerouter /usr/local/bin/servicerouter
COPY haproxy/haproxy-minimal.cfg /usr/local/share/servicerouter/haproxy-minimal.cfg
COPY docker/entrypoint.sh /usr/local/bin/servicerouter-entrypoint
COPY docker/healthcheck.sh /usr/local/bin/servicerouter-healthcheck
RUN chmod 0755 /usr/local/bin/servicerouter-entrypoint /usr/local/bin/servicerouter-healthcheck \
 && servicerouter --version && haproxy -v | head -n 1

# 80: shared HTTP (vhost) frontend, 9090: HAProxy stats + Prometheus /metrics + /_haproxy_health_check,
# 9091: X-Marathon-App-Id frontend. Service ports (HAPROXY_{n}_PORT / servicePort) come on top.
EXPOSE 80 9090 9091
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/servicerouter-entrypoint"]
CMD ["--help"]

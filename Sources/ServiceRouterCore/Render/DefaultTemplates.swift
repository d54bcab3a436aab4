/// The built-in templates. The same texts are in the repository's `haproxy/templates/` (a test keeps
/// them identical) so an operator can copy one, edit it, and point `--templates-dir` at the copy.
public enum DefaultTemplates {
    public struct Entry: Sendable {
        public var name: String
        public var formatted: Bool
        public var text: String
        public var summary: String
    }

    public static let head = """
    global
      spread-checks 5
      max-spread-checks 15000
      hard-stop-after 5m
      mworker-max-reloads 50
      tune.ssl.default-dh-param 2048
      ssl-default-bind-options no-sslv3 no-tlsv10 no-tls-tickets
      ssl-default-server-options no-sslv3 no-tlsv10 no-tls-tickets
    defaults
      log global
      retries 3
      backlog 10000
      maxconn 10000
      timeout connect 3s
      timeout client 30s
      timeout server 30s
      timeout tunnel 3600s
      timeout http-keep-alive 1s
      timeout http-request 15s
      timeout queue 30s
      timeout tarpit 60s
      option dontlognull
      option http-server-close
      option redispatch

    """

    public static let all: [Entry] = [
        Entry(name: "HAPROXY_HEAD", formatted: false, text: head,
              summary: "The `global` and `defaults` sections. servicerouter adds its own `global` section after it with the admin socket (`--haproxy-socket`) and the structure marker, so do not put a `stats socket` on that path here."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_HEAD", formatted: false,
              text: "\nfrontend marathon_http_in\n  bind *:{httpPort}\n  mode http\n",
              summary: "The shared HTTP frontend that routes virtual hosts. `{httpPort}` is `--http-port` (80)."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_APPID_HEAD", formatted: false,
              text: "\nfrontend marathon_http_appid_in\n  bind *:{appIdPort}\n  mode http\n",
              summary: "The frontend that routes by the `X-Marathon-App-Id` header. `{appIdPort}` is `--appid-port` (9091)."),
        Entry(name: "HAPROXY_FRONTEND_HEAD", formatted: true,
              text: "\nfrontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  mode {mode}\n",
              summary: "The head of each service port's own frontend."),
        Entry(name: "HAPROXY_FRONTEND_BACKEND_GLUE", formatted: true,
              text: "  use_backend {backend}\n",
              summary: "Connects a service port's frontend to its backend."),
        Entry(name: "HAPROXY_BACKEND_HEAD", formatted: true,
              text: "\nbackend {backend}\n  balance {balance}\n  mode {mode}\n",
              summary: "The head of each backend."),
        Entry(name: "HAPROXY_BACKEND_HTTP_OPTIONS", formatted: false,
              text: "  option forwardfor\n  http-request set-header X-Forwarded-Port %[dst_port]\n  http-request add-header X-Forwarded-Proto https if { ssl_fc }\n",
              summary: "Options of http-mode backends."),
        Entry(name: "HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS", formatted: true,
              text: "  option  httpchk GET {healthCheckPath}\n  timeout check {healthCheckTimeoutSeconds}s\n",
              summary: "Backend-level health check of http-mode backends whose app has an HTTP health check."),
        Entry(name: "HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS", formatted: true,
              text: "",
              summary: "Backend-level health check of tcp backends (empty: a TCP connect check needs nothing)."),
        Entry(name: "HAPROXY_BACKEND_SERVER_OPTIONS", formatted: true,
              text: "  server {serverName} {host_ipv4}:{port} id {serverId}{cookieOptions}{healthCheckOptions}{otherOptions}\n",
              summary: "One server slot. `{serverName}` is the slot name (`s1`...), `{host_ipv4}:{port}` the task's address or the placeholder `127.0.0.1:1`, `{otherOptions}` is ` disabled` for a free or draining slot. The line must keep `server {serverName} {host_ipv4}:{port}` first."),
        Entry(name: "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS", formatted: true,
              text: "  check inter {healthCheckIntervalSeconds}s fall {healthCheckFalls}{healthCheckPortOptions}\n",
              summary: "Appended (stripped, after a space) to each server line of a backend with an HTTP health check."),
        Entry(name: "HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS", formatted: true,
              text: "  check inter {healthCheckIntervalSeconds}s fall {healthCheckFalls}{healthCheckPortOptions}\n",
              summary: "Appended to each server line of a backend with a TCP health check."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL", formatted: true,
              text: "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  use_backend {backend} if host_{cleanedUpHostname}\n",
              summary: "Routes one virtual host (no path) in the shared HTTP frontend."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_ONLY", formatted: true,
              text: "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n",
              summary: "The host ACL of one of several virtual hosts of a service."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY", formatted: true,
              text: "  use_backend {backend} if host_{cleanedUpHostname}\n",
              summary: "The routing rule after the host ACLs of a service with several virtual hosts."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH", formatted: true,
              text: "  acl host_{cleanedUpHostname} hdr(host) -i {hostname}\n  acl path_{backend} path_beg {path}\n  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n",
              summary: "Routes one virtual host and a path prefix."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH", formatted: true,
              text: "  acl path_{backend} path_beg {path}\n",
              summary: "The path ACL of a service with several virtual hosts and a path."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH", formatted: true,
              text: "  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n",
              summary: "The routing rule of a service with several virtual hosts and a path."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_APPID_ACL", formatted: true,
              text: "  acl app_{cleanedUpAppId} hdr(x-marathon-app-id) -i {appId}\n  use_backend {backend} if app_{cleanedUpAppId}\n",
              summary: "Routes requests whose `X-Marathon-App-Id` header names the app (first http port of each app)."),
    ]

    public static func entry(_ name: String) -> Entry? { all.first { $0.name == name } }
}

/// The templates in effect: defaults, overridden by a template directory or environment variables
/// (both read by the I/O edge and passed in as `overrides`).
public struct TemplateSet: Sendable, Equatable {
    public var templates: [String: Template]

    public init(overrides: [String: String] = [:]) throws {
        var t: [String: Template] = [:]
        for e in DefaultTemplates.all {
            t[e.name] = Template(name: e.name, text: overrides[e.name] ?? e.text, formatted: e.formatted)
        }
        for name in overrides.keys where t[name] == nil {
            throw Template.RenderError(template: name, reason: "unknown template name (known: \(DefaultTemplates.all.map(\.name).joined(separator: ", ")))")
        }
        templates = t
    }

    public subscript(_ name: String) -> Template { templates[name]! }
}

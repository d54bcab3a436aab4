/// The built-in templates. The same texts are in the repository's `haproxy/templates/` (a test keeps
/// them identical) so an operator can copy one, edit it, and point `--templates-dir` at the copy.
public enum DefaultTemplates {
    public struct Entry: Sendable {
        public var name: String
        public var formatted: Bool
        public var text: String
        public var summary: String
    }

    /// marathon-lb's default `option` lines of the `defaults` section; `HAPROXY_GLOBAL_DEFAULT_OPTIONS`
    /// (comma-separated) replaces them, as in marathon-lb.
    public static let defaultOptions = ["redispatch", "http-server-close", "dontlognull"]

    /// The default HAPROXY_HEAD. `log global` in `defaults` sends every proxy's log to the `log`
    /// line of `global`: standard output, as a sidecar logs (marathon-lb logged to `/dev/log`,
    /// which containers rarely have). HAProxy never blocks on it: a log line that cannot be
    /// written is dropped and counted.
    public static let head = defaultHead(options: defaultOptions)

    /// The default HAPROXY_HEAD with these `option` lines (sorted, each once, as marathon-lb
    /// writes them).
    public static func defaultHead(options: [String]) -> String {
        let lines = Set(options).sorted().map { "  option \($0)\n" }.joined()
        return headText.replacingAll("@OPTIONS@\n", with: lines)
    }

    /// `HAPROXY_GLOBAL_DEFAULT_OPTIONS`: comma-separated option names, each letters, digits, spaces
    /// and `_ . - / :` (they become `option …` lines).
    public static func parseDefaultOptions(_ raw: String) throws -> [String] {
        let parts = raw.split(separator: ",").map { String($0).trimmingScalars(where: { $0 == " " || $0 == "\t" }) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else {
            throw ValidationError(field: "HAPROXY_GLOBAL_DEFAULT_OPTIONS", value: raw, reason: "expected comma-separated HAProxy option names, e.g. redispatch,http-server-close,dontlognull,httplog")
        }
        for p in parts where p.utf8.count > 200 || !p.utf8.allSatisfy({ ProxyName.allowed($0) || $0 == 0x20 || $0 == 0x2F }) {
            throw ValidationError(field: "HAPROXY_GLOBAL_DEFAULT_OPTIONS", value: raw, reason: "an option may contain only letters, digits, spaces and _ . - / : (got \(ValidationError.quoted(p)))")
        }
        return parts.map { $0.split(separator: " ").joined(separator: " ") }
    }

    static let headText = """
    global
      log stdout format raw local0
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
    @OPTIONS@

    """

    public static let all: [Entry] = [
        Entry(name: "HAPROXY_HEAD", formatted: false, text: head,
              summary: "The `global` and `defaults` sections. servicerouter adds its own `global` section after it with the admin socket (`--haproxy-socket`) and the structure marker, so do not put a `stats socket` on that path here."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_HEAD", formatted: false,
              text: "\nfrontend marathon_http_in\n  bind {bindAddr}:{httpPort}\n  mode http\n",
              summary: "The shared HTTP frontend that routes virtual hosts. `{bindAddr}` is `--bind-address` (`*`), `{httpPort}` is `--http-port` (80)."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_APPID_HEAD", formatted: false,
              text: "\nfrontend marathon_http_appid_in\n  bind {bindAddr}:{appIdPort}\n  mode http\n",
              summary: "The frontend that routes by the `X-Marathon-App-Id` header. `{bindAddr}` is `--bind-address` (`*`), `{appIdPort}` is `--appid-port` (9091)."),
        Entry(name: "HAPROXY_FRONTEND_HEAD", formatted: true,
              text: "\nfrontend {backend}\n  bind {bindAddr}:{servicePort}{sslCert}{bindOptions}\n  mode {mode}\n",
              summary: "The head of each service port's own frontend. `{bindAddr}` is `HAPROXY_{n}_BIND_ADDR`, else `--bind-address` (`*`)."),
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
              text: "  acl host_{cleanedUpHostname} req.hdr(host),field(1,:) -i {hostname}\n  use_backend {backend} if host_{cleanedUpHostname}\n",
              summary: "Routes one virtual host (no path) in the shared HTTP frontend."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_ONLY", formatted: true,
              text: "  acl host_{cleanedUpHostname} req.hdr(host),field(1,:) -i {hostname}\n",
              summary: "The host ACL of one of several virtual hosts of a service."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY", formatted: true,
              text: "  use_backend {backend} if host_{cleanedUpHostname}\n",
              summary: "The routing rule after the host ACLs of a service with several virtual hosts."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH", formatted: true,
              text: "  acl host_{cleanedUpHostname} req.hdr(host),field(1,:) -i {hostname}\n  acl path_{backend} path_beg {path}\n  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n",
              summary: "Routes one virtual host and a path prefix."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH", formatted: true,
              text: "  acl path_{backend} path_beg {path}\n",
              summary: "The path ACL of a service with several virtual hosts and a path."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH", formatted: true,
              text: "  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n",
              summary: "The routing rule of a service with several virtual hosts and a path."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_HEAD", formatted: true,
              text: "\nfrontend marathon_https_in\n  bind {bindAddr}:{httpsPort} ssl {sslCerts}\n  mode http\n",
              summary: "The shared HTTPS frontend (only with `--ssl-certs`). `{bindAddr}` is `--bind-address` (`*`), `{sslCerts}` is `crt <file>` for each certificate; HAProxy picks one by SNI."),
        Entry(name: "HAPROXY_HTTPS_GROUPED_FRONTEND_HEAD", formatted: true,
              text: "\nfrontend marathon_https_in\n  bind {bindAddr}:{httpsPort}\n  mode tcp\n  tcp-request inspect-delay 5s\n  tcp-request content accept if {{ req_ssl_hello_type 1 }}\n",
              summary: "With `--group-https-by-vhost`: the shared HTTPS port does not terminate TLS; it reads the SNI name and passes the connection to that virtual host's own TLS frontend."),
        Entry(name: "HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_ACL", formatted: true,
              text: "  use_backend {backend} if {{ req_ssl_sni -i {host} }}\n",
              summary: "With `--group-https-by-vhost`: sends a virtual host's connections to its TLS frontend. `{host}` is the virtual host, `{backend}` the name of its loopback backend."),
        Entry(name: "HAPROXY_HTTPS_GROUPED_VHOST_BACKEND_HEAD", formatted: true,
              text: "\nbackend {name}\n  server loopback-for-tls abns@{socket} send-proxy-v2\n",
              summary: "With `--group-https-by-vhost`: the loopback from the shared HTTPS port to a virtual host's TLS frontend. `{name}` is the cleaned virtual host, `{socket}` an abstract socket name unique to this HAProxy (it includes the HTTPS port)."),
        Entry(name: "HAPROXY_HTTPS_GROUPED_VHOST_FRONTEND_HEAD", formatted: true,
              text: "\nfrontend {name}\n  mode http\n  bind abns@{socket} accept-proxy ssl {sslCerts}{bindOpts}\n",
              summary: "With `--group-https-by-vhost`: a virtual host's own TLS frontend. `{sslCerts}` are the `HAPROXY_{n}_SSL_CERT` files of the apps serving it (`--ssl-certs` when none has one), `{bindOpts}` their `HAPROXY_{n}_BIND_OPTIONS` (e.g. `verify required ca-file …` for client certificates). Its routing rules follow."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_VARS", formatted: true,
              text: "  http-request set-var(txn.sr_host) req.hdr(host),field(1,:),lower\n  http-request set-var(txn.sr_path) path\n",
              summary: "servicerouter's map routing, part 1 (in the shared HTTP frontend, right after its head): the request's host (port stripped, lower-cased) and path."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_ROUTING_VARS", formatted: true,
              text: "  http-request set-var(txn.sr_host) ssl_fc_sni,lower if { ssl_fc_sni -m found }\n  http-request set-var(txn.sr_host) req.hdr(host),field(1,:),lower unless { ssl_fc_sni -m found }\n  http-request set-var(txn.sr_path) path\n",
              summary: "Map routing, part 1, in the HTTPS frontend: the SNI name (the Host header when the client sent no SNI) and the path."),
        Entry(name: "HAPROXY_FRONTEND_ROUTING_MAPS", formatted: true,
              text: "  use_backend %[var(txn.sr_host),concat(,txn.sr_path,),map_beg({vhostPathMap})] if { var(txn.sr_host),concat(,txn.sr_path,),map_beg({vhostPathMap}) -m found }\n  use_backend %[var(txn.sr_host),map_str({vhostMap})] if { var(txn.sr_host),map_str({vhostMap}) -m found }\n",
              summary: "Map routing, part 2, after the explicit rules: vhost + path prefix first (longest prefix wins), then vhost alone. servicerouter updates both maps through the runtime API, so vhost changes need no reload."),
        Entry(name: "HAPROXY_USERLIST_HEAD", formatted: true,
              text: "\nuserlist user_{backend}\n  user {user} password {passwd}\n",
              summary: "The user list of a service with `HAPROXY_{n}_AUTH`."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH", formatted: true,
              text: "  acl host_{cleanedUpHostname} req.hdr(host),field(1,:) -i {hostname}\n  acl auth_{cleanedUpHostname} http_auth(user_{backend})\n  http-request auth realm \"{realm}\" if host_{cleanedUpHostname} !auth_{cleanedUpHostname}\n  use_backend {backend} if host_{cleanedUpHostname}\n",
              summary: "One vhost with basic auth."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH", formatted: true,
              text: "  acl auth_{cleanedUpHostname} http_auth(user_{backend})\n  http-request auth realm \"{realm}\" if host_{cleanedUpHostname} !auth_{cleanedUpHostname}\n  use_backend {backend} if host_{cleanedUpHostname}\n",
              summary: "Routing of several vhosts with basic auth."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH", formatted: true,
              text: "  acl host_{cleanedUpHostname} req.hdr(host),field(1,:) -i {hostname}\n  acl auth_{cleanedUpHostname} http_auth(user_{backend})\n  acl path_{backend} path_beg {path}\n  http-request auth realm \"{realm}\" if host_{cleanedUpHostname} path_{backend} !auth_{cleanedUpHostname}\n  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n",
              summary: "One vhost, a path, basic auth."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH", formatted: true,
              text: "  acl path_{backend} path_beg {path}\n  acl auth_{cleanedUpHostname} http_auth(user_{backend})\n",
              summary: "The path and auth ACLs of several vhosts with a path and basic auth."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH", formatted: true,
              text: "  http-request auth realm \"{realm}\" if host_{cleanedUpHostname} path_{backend} !auth_{cleanedUpHostname}\n  use_backend {backend} if host_{cleanedUpHostname} path_{backend}\n",
              summary: "Routing of several vhosts with a path and basic auth."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_ACL", formatted: true,
              text: "  use_backend {backend} if {{ ssl_fc_sni {hostname} }}\n",
              summary: "One vhost in the HTTPS frontend, by SNI."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH", formatted: true,
              text: "  acl auth_{cleanedUpHostname} http_auth(user_{backend})\n  http-request auth realm \"{realm}\" if {{ ssl_fc_sni {hostname} }} !auth_{cleanedUpHostname}\n  use_backend {backend} if {{ ssl_fc_sni {hostname} }}\n",
              summary: "One vhost with basic auth in the HTTPS frontend."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_ACL_WITH_PATH", formatted: true,
              text: "  use_backend {backend} if {{ ssl_fc_sni {hostname} }} path_{backend}\n",
              summary: "One vhost and a path in the HTTPS frontend."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH", formatted: true,
              text: "  acl auth_{cleanedUpHostname} http_auth(user_{backend})\n  http-request auth realm \"{realm}\" if {{ ssl_fc_sni {hostname} }} path_{backend} !auth_{cleanedUpHostname}\n  use_backend {backend} if {{ ssl_fc_sni {hostname} }} path_{backend}\n",
              summary: "One vhost, a path and basic auth in the HTTPS frontend."),
        Entry(name: "HAPROXY_HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", formatted: true,
              text: "  acl path_{backend} path_beg {path}\n",
              summary: "The path ACL in the HTTPS frontend."),
        Entry(name: "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS", formatted: true,
              text: "  redirect scheme https code 301 if !{{ ssl_fc }} host_{cleanedUpHostname}\n",
              summary: "`HAPROXY_{n}_REDIRECT_TO_HTTPS`: plain-HTTP requests for the vhost get a 301 to https."),
        Entry(name: "HAPROXY_BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH", formatted: true,
              text: "  redirect scheme https code 301 if !{{ ssl_fc }} host_{cleanedUpHostname} path_{backend}\n",
              summary: "The same, for a vhost with a path."),
        Entry(name: "HAPROXY_BACKEND_HSTS_OPTIONS", formatted: false,
              text: "  http-response set-header Strict-Transport-Security max-age=15768000\n",
              summary: "`HAPROXY_{n}_USE_HSTS` (marathon-lb's `rspadd` form no longer exists in HAProxy 2.1+)."),
        Entry(name: "HAPROXY_BACKEND_STICKY_OPTIONS", formatted: false,
              text: "  cookie mesosphere_server_id insert indirect nocache\n",
              summary: "`HAPROXY_{n}_STICKY`: the cookie; each slot's server line gets ` cookie <slot>`."),
        Entry(name: "HAPROXY_HTTP_BACKEND_PROXYPASS_GLUE", formatted: true,
              text: "  http-request set-header Host {hostname}\n  http-request replace-path ^{proxypath}/?(.*) /\\1\n",
              summary: "`HAPROXY_{n}_HTTP_BACKEND_PROXYPASS_PATH`: strip the prefix (and set Host to the first vhost) before forwarding (HAProxy 2.6 form of marathon-lb's `reqirep`)."),
        Entry(name: "HAPROXY_HTTP_BACKEND_REVPROXY_GLUE", formatted: true,
              text: "  http-response replace-header Location ^(https?://{hostname}(:[0-9]+)?)?(/.*)$ {rootpath}\\3\n",
              summary: "`HAPROXY_{n}_HTTP_BACKEND_REVPROXY_PATH`: the backend's redirects to the vhost get the prefix back (HAProxy 2.6 form of marathon-lb's `rspirep`)."),
        Entry(name: "HAPROXY_HTTP_BACKEND_REDIR", formatted: true,
              text: "  acl is_root path -i /\n  acl is_domain req.hdr(host),field(1,:) -i {hostname}\n  redirect code 301 location {redirpath} if is_domain is_root\n",
              summary: "`HAPROXY_{n}_HTTP_BACKEND_REDIR`: the vhost's root (`/`) redirects there."),
        Entry(name: "HAPROXY_HTTP_BACKEND_NETWORK_ALLOWED_ACL", formatted: true,
              text: "  acl network_allowed src {network_allowed}\n",
              summary: "`HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL` (http): one line per network."),
        Entry(name: "HAPROXY_HTTP_BACKEND_ACL_ALLOW_DENY", formatted: false,
              text: "  http-request allow if network_allowed\n  http-request deny\n",
              summary: "Allow the listed networks, deny the rest (http)."),
        Entry(name: "HAPROXY_TCP_BACKEND_NETWORK_ALLOWED_ACL", formatted: true,
              text: "  acl network_allowed src {network_allowed}\n",
              summary: "`HAPROXY_{n}_BACKEND_NETWORK_ALLOWED_ACL` (tcp): one line per network."),
        Entry(name: "HAPROXY_TCP_BACKEND_ACL_ALLOW_DENY", formatted: false,
              text: "  tcp-request content accept if network_allowed\n  tcp-request content reject\n",
              summary: "Allow the listed networks, reject the rest (tcp)."),
        Entry(name: "HAPROXY_HTTP_FRONTEND_APPID_ACL", formatted: true,
              text: "  acl app_{cleanedUpAppId} hdr(x-marathon-app-id) -i {appId}\n  use_backend {backend} if app_{cleanedUpAppId}\n",
              summary: "Routes requests whose `X-Marathon-App-Id` header names the app (first http port of each app)."),
    ]

    public static func entry(_ name: String) -> Entry? { all.first { $0.name == name } }

    /// The 7 templates marathon-lb defines that servicerouter does not have, and why: an
    /// override of one (file, environment variable) is refused, naming it.
    public static let marathonLBOnly: [(name: String, why: String)] = [
        ("HAPROXY_HTTPS_FRONTEND_AUTH_ACL_ONLY", "marathon-lb defines it but never renders it; HTTPS basic auth is HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH(_AND_PATH)"),
        ("HAPROXY_HTTPS_FRONTEND_AUTH_REQUEST_ONLY", "marathon-lb defines it but never renders it; HTTPS basic auth is HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH(_AND_PATH)"),
        ("HAPROXY_HTTPS_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH", "marathon-lb defines it but never renders it; HTTPS basic auth is HAPROXY_HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH"),
        ("HAPROXY_MAP_HTTPS_FRONTEND_ACL", "map routing (the default) is HAPROXY_HTTPS_FRONTEND_ROUTING_VARS and HAPROXY_FRONTEND_ROUTING_MAPS, with maps updated at runtime"),
        ("HAPROXY_MAP_HTTP_FRONTEND_ACL", "map routing (the default) is HAPROXY_HTTP_FRONTEND_ROUTING_VARS and HAPROXY_FRONTEND_ROUTING_MAPS, with maps updated at runtime"),
        ("HAPROXY_MAP_HTTP_FRONTEND_ACL_ONLY", "map routing (the default) is HAPROXY_HTTP_FRONTEND_ROUTING_VARS and HAPROXY_FRONTEND_ROUTING_MAPS, with maps updated at runtime"),
        ("HAPROXY_MAP_HTTP_FRONTEND_APPID_ACL", "the X-Marathon-App-Id frontend routes with HAPROXY_HTTP_FRONTEND_APPID_ACL"),
    ]

    /// Why a marathon-lb-only template is refused, or nil for any other name.
    public static func marathonLBOnlyReason(_ name: String) -> String? { marathonLBOnly.first { $0.name == name }?.why }
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
        for name in overrides.keys.sorted() {
            guard let template = t[name] else {
                throw Template.RenderError(template: name, reason: "unknown template name (known: \(DefaultTemplates.all.map(\.name).joined(separator: ", ")))")
            }
            try template.validate()
        }
        templates = t
    }

    public subscript(_ name: String) -> Template { templates[name]! }
}

extension Template {
    /// Every placeholder servicerouter fills in, in any template (marathon-lb's names plus
    /// `httpPort`, `appIdPort`, `httpsPort`, `vhostMap`, `vhostPathMap`, `socket`).
    public static let knownPlaceholders: Set<String> = [
        "backend", "appId", "cleanedUpAppId", "hostname", "cleanedUpHostname", "path", "realm", "user", "passwd",
        "bindAddr", "servicePort", "mode", "balance", "sslCert", "bindOptions", "proxypath", "rootpath", "redirpath",
        "network_allowed", "serverName", "host", "host_ipv4", "port", "serverId", "cookieOptions", "healthCheckOptions",
        "otherOptions", "healthCheckPath", "healthCheckTimeoutSeconds", "healthCheckIntervalSeconds", "healthCheckFalls",
        "healthCheckMaxConsecutiveFailures", "healthCheckGracePeriodSeconds", "healthCheckProtocol", "healthCheckPortIndex",
        "healthCheckPort", "healthCheckPortOptions", "httpPort", "appIdPort", "httpsPort", "sslCerts", "vhostMap", "vhostPathMap",
        "name", "socket", "bindOpts",
    ]

    /// A formatted template may only use known placeholders (marathon-lb failed at render time,
    /// for every app; servicerouter refuses the template when it is loaded).
    public func validate() throws {
        guard formatted else { return }
        for p in placeholders where !Self.knownPlaceholders.contains(p) {
            throw RenderError(template: name, reason: "unknown placeholder {\(p)}")
        }
    }
}

extension TemplateSet {
    /// The templates one service renders with: its `HAPROXY_{n}_<TEMPLATE>` labels first, when the
    /// operator enabled them (`--enable-label-templates`).
    func scoped(to service: Service, enabled: Bool) -> ScopedTemplates {
        ScopedTemplates(base: self, overrides: enabled ? service.labels.templateOverrides : [:])
    }
}

struct ScopedTemplates {
    var base: TemplateSet
    var overrides: [String: String]

    subscript(_ name: String) -> Template {
        if let text = overrides[name], let t = base.templates[name] {
            return Template(name: "HAPROXY_{n}_" + name.dropFirst("HAPROXY_".count) + " label", text: text, formatted: t.formatted)
        }
        return base[name]
    }
}

import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// Flag sets shared by the commands (names compatible with marathon-lb where they mean the same).
public enum Flags {
    public static let marathon: [FlagSpec] = [
        FlagSpec(["-m", "--marathon"], .multiValue, value: "URL", help: "Marathon URL; several are tried in turn (a standby redirects to the leader)",
                 default: "\(CommonOptions.defaultMarathon), marathon-lb's default, unless --apps-json is given"),
        FlagSpec(["--apps-json"], .value, value: "FILE", help: "read a captured /v2/apps?embed=apps.tasks payload instead of asking Marathon"),
        FlagSpec(["--auth-credentials"], .value, value: "USER:PASS", help: "HTTP basic auth for Marathon (never logged)"),
        FlagSpec(["--marathon-auth-credential-file"], .value, value: "FILE", help: "file whose first line is USER:PASS (wins over --auth-credentials)"),
        FlagSpec(["--marathon-ca-cert"], .value, value: "FILE", help: "CA bundle to verify Marathon's HTTPS certificate"),
        FlagSpec(["--marathon-timeout"], .value, value: "SECONDS", help: "timeout of Marathon requests", default: "30"),
    ]
    public static let haproxy: [FlagSpec] = [
        FlagSpec(["--haproxy-config"], .value, value: "PATH", help: "the config file HAProxy loads (written by servicerouter)", default: "/etc/haproxy/haproxy.cfg"),
        FlagSpec(["--haproxy-socket"], .value, value: "PATH", help: "HAProxy's admin stats socket (servicerouter writes its stats socket line)", default: "/var/run/haproxy/admin.sock"),
        FlagSpec(["--master-socket"], .value, value: "PATH", help: "HAProxy's master CLI socket (haproxy -W -S PATH); reloads go through it"),
        FlagSpec(["-c", "--command"], .value, value: "CMD", help: "shell command that reloads HAProxy (used when --master-socket is not given)"),
        FlagSpec(["--haproxy-bin"], .value, value: "PATH", help: "haproxy binary used for `haproxy -c`", default: "haproxy"),
        FlagSpec(["--reload-timeout"], .value, value: "SECONDS", help: "how long to wait for the new worker after a reload", default: "30"),
        FlagSpec(["--haproxy-user"], .value, value: "USER", help: "user HAProxy's workers run as (`user` in the config); root keeps them root",
                 default: "haproxy when servicerouter runs as root and that user exists, else none"),
        FlagSpec(["--haproxy-group"], .value, value: "GROUP", help: "group HAProxy's workers run as", default: "the user's name when such a group exists, else the user's primary group"),
    ]
    public static let routing: [FlagSpec] = [
        FlagSpec(["--group"], .repeatable, value: "GROUP", help: "route apps whose HAPROXY_GROUP / HAPROXY_{n}_GROUP is GROUP; '*' routes every app (required)"),
        FlagSpec(["-H", "--health-check"], .switchFlag, help: "route only tasks whose Marathon health checks are all alive"),
        FlagSpec(["--strict-mode"], .switchFlag, help: "route a service port only when HAPROXY_{n}_ENABLED=true"),
        FlagSpec(["--min-slots"], .value, value: "N", help: "smallest number of server slots per backend", default: "8"),
        FlagSpec(["--min-serv-port-ip-per-task"], .value, value: "PORT", help: "with --max-serv-port-ip-per-task: IP-per-task apps that Marathon gives no service port get one from this range (marathon-lb's deterministic assignment)"),
        FlagSpec(["--max-serv-port-ip-per-task"], .value, value: "PORT", help: "upper end of that range"),
    ]
    public static let render: [FlagSpec] = [
        FlagSpec(["--bind-address"], .value, value: "ADDR", help: "address of every frontend: shared HTTP/HTTPS, app-id, each service port (HAPROXY_{n}_BIND_ADDR wins) and the stats listener unless --haproxy-stats names one; * or a numeric IP", default: "*"),
        FlagSpec(["--templates-dir"], .value, value: "DIR", help: "directory of template overrides (files named HAPROXY_<NAME>); HAPROXY_<NAME> environment variables also override"),
        FlagSpec(["--http-port"], .value, value: "PORT", help: "port of the shared HTTP (virtual host) frontend", default: "80"),
        FlagSpec(["--appid-port"], .value, value: "PORT", help: "port of the X-Marathon-App-Id frontend; 0 disables it", default: "9091"),
        FlagSpec(["--dont-bind-http-https"], .switchFlag, help: "do not bind the shared HTTP frontend"),
        FlagSpec(["--haproxy-stats"], .value, value: "ADDR:PORT", help: "HAProxy's stats page and Prometheus exporter (/metrics); 'off' disables it", default: "--bind-address:9090"),
        FlagSpec(["--ssl-certs"], .value, value: "FILES", help: "comma-separated PEM files: bind the shared HTTPS frontend (SNI routing) with them"),
        FlagSpec(["--https-port"], .value, value: "PORT", help: "port of the shared HTTPS frontend (with --ssl-certs)", default: "443"),
        FlagSpec(["--group-https-by-vhost"], .switchFlag, help: "the HTTPS port hands each connection by SNI to a TLS frontend per virtual host, with that host's HAPROXY_{n}_SSL_CERT and HAPROXY_{n}_BIND_OPTIONS (--ssl-certs when none); needs --ssl-certs"),
        FlagSpec(["--vhost-routing"], .value, value: "map|acl", help: "map: vhosts in map files updated at runtime (vhost changes need no reload); acl: marathon-lb's ACL rules", default: "map"),
        FlagSpec(["--haproxy-map"], .switchFlag, help: "accepted for marathon-lb compatibility (map routing is the default)"),
        FlagSpec(["--enable-label-templates"], .switchFlag, help: "honour per-app HAPROXY_{n}_<TEMPLATE> labels (arbitrary HAProxy config from whoever deploys an app; off by default)"),
    ]
    /// marathon-lb flags with no meaning here: accepted, each with one warning saying why it
    /// changes nothing (its own image passes `--syslog-socket` on every start). `--longhelp`
    /// prints the help. Values are still checked as marathon-lb checked them.
    public static let marathonLBIgnored: [FlagSpec] = [
        FlagSpec(["--syslog-socket"], .value, value: "PATH", help: "marathon-lb's; ignored with a warning (servicerouter logs to standard error)"),
        FlagSpec(["--max-reload-retries"], .value, value: "N", help: "marathon-lb's; ignored with a warning (a reload is confirmed within --reload-timeout)"),
        FlagSpec(["--reload-interval"], .value, value: "SECONDS", help: "marathon-lb's; ignored with a warning (a reload is confirmed within --reload-timeout)"),
        FlagSpec(["--archive-versions"], .value, value: "N", help: "marathon-lb's; ignored with a warning (<config>.last-good and <config>.rejected are kept)"),
        FlagSpec(["--lru-cache-capacity"], .value, value: "N", help: "marathon-lb's; ignored with a warning (nothing to size)"),
        FlagSpec(["--skip-config-cleanup"], .switchFlag, help: "marathon-lb's; ignored with a warning (a bad app is always left out alone)"),
        FlagSpec(["--longhelp"], .switchFlag, help: "marathon-lb's; prints this help and where the long references are"),
    ]
    /// marathon-lb flags servicerouter refuses on purpose: exit 2 with what to use instead.
    public static let marathonLBRefused: [FlagSpec] = [
        FlagSpec(["--skip-validation"], .switchFlag, help: "marathon-lb's; refused: every candidate config is validated"),
        FlagSpec(["--dcos-auth-credentials"], .value, value: "JSON", help: "marathon-lb's; refused: DC/OS service accounts are not supported"),
    ]
    public static let logging: [FlagSpec] = [
        FlagSpec(["--log-level"], .value, value: "LEVEL", help: "debug, info, warning or error", default: "info"),
        FlagSpec(["--log-format"], .value, value: "FORMAT", help: "text or json", default: "text"),
    ]
    public static let help: [FlagSpec] = [
        FlagSpec(["-h", "--help"], .switchFlag, help: "show this help"),
        FlagSpec(["--version"], .switchFlag, help: "print the version and the commit it was built from"),
    ]
}

/// Options every Marathon-reading, HAProxy-driving command shares, validated.
public struct CommonOptions: Sendable {
    public var marathonURLs: [URL]
    public var appsJSON: String?
    public var credentials: String?
    /// `--marathon-auth-credential-file`, when the credentials came from it.
    public var credentialsFile: String?
    public var caCert: String?
    public var marathonTimeout: Double
    public var configPath: String
    public var socketPath: String
    public var masterSocket: String?
    public var reloadCommand: String?
    public var haproxyBinary: String
    public var reloadTimeout: Double
    public var routing: RoutingOptions
    public var render: RenderOptions
    public var templates: TemplateSet
    public var logLevel: LogLevel
    public var logFormat: LogFormat
    /// Said once at start-up (`logStartup`): ignored marathon-lb flags, environment that changes
    /// nothing. Never silent, never fatal.
    public var warnings: [String] = []
    /// `--marathon` was not given: marathon-lb's default is used (logged at start-up).
    public var marathonIsDefault = false

    /// marathon-lb's default Marathon.
    public static let defaultMarathon = "http://master.mesos:8080"

    public static func parse(_ a: ParsedArguments, requireGroup: Bool = true, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CommonOptions {
        var urls: [URL] = []
        for raw in a.strings("--marathon") {
            guard let u = URL(string: raw), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
                throw UsageError("--marathon: '\(redactURL(raw))' is not an http(s) URL")
            }
            urls.append(u)
        }
        let appsJSON = a.string("--apps-json")
        let marathonIsDefault = urls.isEmpty && appsJSON == nil
        if marathonIsDefault {
            urls = [URL(string: defaultMarathon)!]
        }
        var warnings = try marathonLBWarnings(a)
        var credentials = a.string("--auth-credentials")
        if let file = a.string("--marathon-auth-credential-file") {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw UsageError("--marathon-auth-credential-file: cannot read \(file)")
            }
            credentials = text.split(whereSeparator: \.isNewline).first.map { String($0).trimmingWhitespace() }
        }
        if let c = credentials, !c.contains(":") {
            throw UsageError("credentials must be USER:PASS")
        }
        let groups = a.strings("--group")
        if requireGroup && groups.isEmpty {
            throw UsageError("--group is required (marathon-lb's rule); use --group '*' to route every app")
        }
        if groups.contains(where: { $0.trimmingWhitespace().isEmpty }) {
            throw UsageError("--group: an empty group matches no app; name a group, or use --group '*' to route every app")
        }
        let httpPort: Int? = a.has("--dont-bind-http-https") ? nil : try a.int("--http-port", default: 80, range: 1...65535)
        let appIdPort = try a.int("--appid-port", default: 9091, range: 0...65535)
        let bindAddress: String
        do { bindAddress = try RenderOptions.validateBindAddress(a.string("--bind-address") ?? "*") } catch { throw UsageError("\(error)") }
        var stats: RenderOptions.StatsListener?
        let statsText = a.string("--haproxy-stats") ?? "\(bindAddress):9090"
        if statsText != "off" {
            guard let colon = statsText.lastIndex(of: ":"), let port = Int(statsText[statsText.index(after: colon)...]),
                  (1...65535).contains(port) else {
                throw UsageError("--haproxy-stats: expected ADDR:PORT or off, got '\(statsText)'")
            }
            let addr = String(statsText[..<colon])
            guard addr == "*" || IPAddress.isNumeric(addr) else {
                throw UsageError("--haproxy-stats: address must be * or a numeric IP, got '\(addr)'")
            }
            stats = .init(address: addr, port: port)
        }
        let socketPath = a.string("--haproxy-socket") ?? "/var/run/haproxy/admin.sock"
        do { _ = try RenderOptions.validateSocketPath(socketPath) } catch { throw UsageError("\(error)") }
        let configPath = a.string("--haproxy-config") ?? "/etc/haproxy/haproxy.cfg"
        var https: RenderOptions.HTTPS?
        if let certs = a.string("--ssl-certs") {
            let files = certs.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
            guard !files.isEmpty else { throw UsageError("--ssl-certs: expected one or more PEM files") }
            https = .init(port: try a.int("--https-port", default: 443, range: 1...65535), certificates: files)
        }
        guard let routingMode = RenderOptions.VhostRouting(rawValue: a.string("--vhost-routing") ?? "map") else {
            throw UsageError("--vhost-routing: expected map or acl")
        }
        let mapDirectory = configPath.droppingLastPathComponent
        let (workers, workerWarning) = try WorkerIdentityChoice.resolve(user: a.string("--haproxy-user"), group: a.string("--haproxy-group"))
        var render = RenderOptions(adminSocket: socketPath, httpPort: httpPort, appIdPort: appIdPort == 0 ? nil : appIdPort, stats: stats,
                                   https: https, vhostRouting: routingMode, mapDirectory: mapDirectory.isEmpty ? "." : mapDirectory,
                                   labelTemplates: a.has("--enable-label-templates"), bindAddress: bindAddress, workerIdentity: workers)
        if a.has("--group-https-by-vhost") {
            guard https != nil else {
                throw UsageError("--group-https-by-vhost needs --ssl-certs (the certificates of virtual hosts whose apps give none)")
            }
            render.groupHTTPSByVhost = true
        }
        do {
            _ = try RenderOptions.validateSocketPath(render.vhostMapPath)
            for cert in https?.certificates ?? [] { _ = try LabelParser.filePath(cert, field: "--ssl-certs") }
        } catch {
            throw UsageError("\(error)")
        }
        let minSlots = try a.int("--min-slots", default: 8, range: 1...10_000)
        var ipPerTaskPorts: ClosedRange<Int>?
        switch (a.has("--min-serv-port-ip-per-task"), a.has("--max-serv-port-ip-per-task")) {
        case (true, true):
            let low = try a.int("--min-serv-port-ip-per-task", default: 0, range: 1...65535)
            let high = try a.int("--max-serv-port-ip-per-task", default: 0, range: 1...65535)
            guard low <= high else {
                throw UsageError("--min-serv-port-ip-per-task (\(low)) must not be above --max-serv-port-ip-per-task (\(high))")
            }
            ipPerTaskPorts = low...high
        case (false, false): break
        default: throw UsageError("--min-serv-port-ip-per-task and --max-serv-port-ip-per-task go together (the range to assign from)")
        }
        var routing = RoutingOptions(groups: groups, healthCheck: a.has("--health-check"), strictMode: a.has("--strict-mode"),
                                     minSlots: minSlots, reservedPorts: render.reservedPorts, ipPerTaskServicePorts: ipPerTaskPorts)
        routing.labelTemplates = render.labelTemplates
        let templates: TemplateSet
        let loaded = try TemplateOverrides.load(directory: a.string("--templates-dir"), environment: environment)
        do {
            templates = try TemplateSet(overrides: loaded.overrides)
        } catch {
            throw UsageError("\(error)")
        }
        warnings += loaded.warnings
        if let workerWarning { warnings.append(workerWarning) }
        guard let level = LogLevel(name: a.string("--log-level") ?? "info") else {
            throw UsageError("--log-level: expected debug, info, warning or error")
        }
        guard let format = LogFormat(rawValue: a.string("--log-format") ?? "text") else {
            throw UsageError("--log-format: expected text or json")
        }
        return CommonOptions(
            marathonURLs: urls, appsJSON: appsJSON, credentials: credentials, credentialsFile: a.string("--marathon-auth-credential-file"),
            caCert: a.string("--marathon-ca-cert"),
            marathonTimeout: try a.double("--marathon-timeout", default: 30, range: 0.1...3600),
            configPath: configPath, socketPath: socketPath,
            masterSocket: a.string("--master-socket"), reloadCommand: a.string("--command"),
            haproxyBinary: a.string("--haproxy-bin") ?? "haproxy",
            reloadTimeout: try a.double("--reload-timeout", default: 30, range: 1...3600),
            routing: routing, render: render, templates: templates, logLevel: level, logFormat: format,
            warnings: warnings, marathonIsDefault: marathonIsDefault)
    }

    /// One warning per ignored marathon-lb flag given; a refused one, or a value marathon-lb itself
    /// would have refused, is a usage error.
    static func marathonLBWarnings(_ a: ParsedArguments) throws -> [String] {
        if a.has("--skip-validation") {
            throw UsageError("--skip-validation is not supported: every candidate config is checked with `haproxy -c` before it is installed (a refused one is kept as <config>.rejected and never loaded)")
        }
        if a.has("--dcos-auth-credentials") {
            throw UsageError("--dcos-auth-credentials is not supported (no DC/OS service accounts): use --auth-credentials USER:PASS or --marathon-auth-credential-file FILE")
        }
        var out: [String] = []
        let reload = "a reload is validated first, confirmed on the master socket within --reload-timeout, and a failed one is retried on the next change"
        let ignored: [(flag: String, integer: Bool, why: String)] = [
            ("--syslog-socket", false, "servicerouter logs to standard error (--log-format text|json, --log-level); HAProxy's own log goes where HAPROXY_HEAD's `log` line says (standard output by default)"),
            ("--max-reload-retries", true, reload),
            ("--reload-interval", true, reload),
            ("--archive-versions", true, "servicerouter keeps the previous config as <config>.last-good and a refused one as <config>.rejected"),
            ("--lru-cache-capacity", true, "health is remembered per task and DNS answers are cached for 60 s, with no size to tune"),
            ("--skip-config-cleanup", false, "an app that cannot be rendered, or that `haproxy -c` refuses, is always left out alone while the others go on"),
        ]
        for f in ignored where a.has(f.flag) {
            if f.integer, let v = a.string(f.flag), Int(v.trimmingWhitespace()) == nil {
                throw UsageError("\(f.flag): expected an integer (as marathon-lb did), got '\(v)'")
            }
            out.append("\(f.flag) is marathon-lb's and changes nothing here; ignored: \(f.why)")
        }
        return out
    }

    public var logger: Logger { Logger.stderr(level: logLevel, format: logFormat) }

    /// The start-up notices: the Marathon default when it is used, then each warning.
    public func logStartup(_ logger: Logger) {
        if marathonIsDefault {
            logger.info("no --marathon given: using marathon-lb's default", [("marathon", Self.defaultMarathon)])
        }
        for w in warnings { logger.warning(w) }
    }

    public var reloadMethod: HAProxyProcessControl.ReloadMethod {
        if let m = masterSocket { return .masterSocket(m) }
        if let c = reloadCommand { return .command(c) }
        return .none
    }

    public func settings(reloadAlways: Bool = false) -> ReconcilerSettings {
        var s = ReconcilerSettings(pass: PassSettings(routing: routing, render: render, templates: templates, reloadAlways: reloadAlways),
                                   configPath: configPath)
        s.reloadTimeout = reloadTimeout
        return s
    }
}

/// Template overrides from a directory (files named `HAPROXY_<NAME>`) and the environment
/// (`HAPROXY_<NAME>`, with `\n` for newlines, as marathon-lb reads them). The environment wins,
/// like marathon-lb. Both sources treat a name alike: a template servicerouter has is loaded; one
/// of the 7 templates only marathon-lb has is refused, naming it and what replaces it. A file
/// with any other `HAPROXY_` name is refused (a typo there can only be a mistake); such an
/// environment variable gets a warning with the closest template name (the environment holds
/// other things too).
public enum TemplateOverrides {
    public struct Loaded: Sendable {
        public var overrides: [String: String] = [:]
        public var warnings: [String] = []
    }

    /// Environment variables marathon-lb (or its image) reads that are not templates.
    public static let otherEnvironment: Set<String> = [
        "HAPROXY_GLOBAL_DEFAULT_OPTIONS", "HAPROXY_SSL_CERT", "HAPROXY_SYSCTL_PARAMS", "HAPROXY_SYSCTL_NONSTRICT", "HAPROXY_SYSLOGD",
        // The official haproxy Docker image's own.
        "HAPROXY_VERSION", "HAPROXY_URL", "HAPROXY_SHA256",
    ]

    public static func load(directory: String?, environment: [String: String]) throws -> Loaded {
        var out = Loaded()
        let known = Set(DefaultTemplates.all.map(\.name))
        var refused: [String] = []
        func refuse(_ name: String, from source: String) -> Bool {
            guard let why = DefaultTemplates.marathonLBOnlyReason(name) else { return false }
            refused.append("\(name) (\(source)): \(why)")
            return true
        }
        if let directory {
            let files: [String]
            do { files = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
                throw UsageError("--templates-dir: cannot read \(directory): \(error.foundationDescription)")
            }
            for f in files.sorted() where f.hasPrefix("HAPROXY_") {
                if refuse(f, from: "file in --templates-dir \(directory)") { continue }
                guard known.contains(f) else {
                    let hint = EditDistance.closest(to: f, among: DefaultTemplates.all.map(\.name)).map { " (did you mean \($0)?)" } ?? ""
                    throw UsageError("--templates-dir: \(directory)/\(f) is not a template servicerouter knows\(hint); `servicerouter templates` lists them")
                }
                guard let text = try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) else {
                    throw UsageError("--templates-dir: cannot read \(directory)/\(f)")
                }
                out.overrides[f] = text
            }
        }
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("HAPROXY_") && !value.isEmpty {
            if known.contains(name) {
                out.overrides[name] = value.replacingAll("\\n", with: "\n")
            } else if refuse(name, from: "environment variable") {
                continue
            } else if !otherEnvironment.contains(name), !isCertificateVariable(name) {
                let hint = EditDistance.closest(to: name, among: DefaultTemplates.all.map(\.name)).map { " (did you mean \($0)?)" } ?? ""
                out.warnings.append("environment variable \(name) is neither a template nor a setting servicerouter reads; ignored\(hint)")
            }
        }
        if !refused.isEmpty {
            throw UsageError("templates marathon-lb has and servicerouter does not; remove them: " + refused.joined(separator: "; "))
        }
        // marathon-lb's HAPROXY_GLOBAL_DEFAULT_OPTIONS: the default HEAD's `option` lines.
        if let raw = environment["HAPROXY_GLOBAL_DEFAULT_OPTIONS"], !raw.isEmpty {
            if out.overrides["HAPROXY_HEAD"] != nil {
                out.warnings.append("HAPROXY_GLOBAL_DEFAULT_OPTIONS ignored: HAPROXY_HEAD is overridden, and its `option` lines are the ones in force")
            } else {
                do {
                    out.overrides["HAPROXY_HEAD"] = DefaultTemplates.defaultHead(options: try DefaultTemplates.parseDefaultOptions(raw))
                } catch {
                    throw UsageError("\(error)")
                }
            }
        }
        return out
    }

    /// `HAPROXY_SSL_CERT0` … `HAPROXY_SSL_CERT100` (marathon-lb's image; read by docker/entrypoint.sh).
    static func isCertificateVariable(_ name: String) -> Bool {
        guard name.hasPrefix("HAPROXY_SSL_CERT") else { return false }
        let n = name.dropFirst("HAPROXY_SSL_CERT".count)
        return !n.isEmpty && n.allSatisfy(\.isNumber)
    }
}

/// Hides a URL's password (credentials never reach logs).
public func redactURL(_ s: String) -> String {
    guard var c = URLComponents(string: s), c.user != nil || c.password != nil else { return s }
    c.user = c.user.map { _ in "***" }
    c.password = c.password.map { _ in "***" }
    return c.string ?? "<url>"
}

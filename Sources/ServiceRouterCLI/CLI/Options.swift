import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// Flag sets shared by the commands (names compatible with marathon-lb where they mean the same).
public enum Flags {
    public static let marathon: [FlagSpec] = [
        FlagSpec(["-m", "--marathon"], .multiValue, value: "URL", help: "Marathon URL; several are tried in turn (a standby redirects to the leader)"),
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
        FlagSpec(["--templates-dir"], .value, value: "DIR", help: "directory of template overrides (files named HAPROXY_<NAME>); HAPROXY_<NAME> environment variables also override"),
        FlagSpec(["--http-port"], .value, value: "PORT", help: "port of the shared HTTP (virtual host) frontend", default: "80"),
        FlagSpec(["--appid-port"], .value, value: "PORT", help: "port of the X-Marathon-App-Id frontend; 0 disables it", default: "9091"),
        FlagSpec(["--dont-bind-http-https"], .switchFlag, help: "do not bind the shared HTTP frontend"),
        FlagSpec(["--haproxy-stats"], .value, value: "ADDR:PORT", help: "HAProxy's stats page and Prometheus exporter (/metrics); 'off' disables it", default: "*:9090"),
        FlagSpec(["--ssl-certs"], .value, value: "FILES", help: "comma-separated PEM files: bind the shared HTTPS frontend (SNI routing) with them"),
        FlagSpec(["--https-port"], .value, value: "PORT", help: "port of the shared HTTPS frontend (with --ssl-certs)", default: "443"),
        FlagSpec(["--group-https-by-vhost"], .switchFlag, help: "the HTTPS port hands each connection by SNI to a TLS frontend per virtual host, with that host's HAPROXY_{n}_SSL_CERT and HAPROXY_{n}_BIND_OPTIONS (--ssl-certs when none); needs --ssl-certs"),
        FlagSpec(["--vhost-routing"], .value, value: "map|acl", help: "map: vhosts in map files updated at runtime (vhost changes need no reload); acl: marathon-lb's ACL rules", default: "map"),
        FlagSpec(["--haproxy-map"], .switchFlag, help: "accepted for marathon-lb compatibility (map routing is the default)"),
        FlagSpec(["--enable-label-templates"], .switchFlag, help: "honour per-app HAPROXY_{n}_<TEMPLATE> labels (arbitrary HAProxy config from whoever deploys an app; off by default)"),
    ]
    public static let logging: [FlagSpec] = [
        FlagSpec(["--log-level"], .value, value: "LEVEL", help: "debug, info, warning or error", default: "info"),
        FlagSpec(["--log-format"], .value, value: "FORMAT", help: "text or json", default: "text"),
    ]
    public static let help: [FlagSpec] = [FlagSpec(["-h", "--help"], .switchFlag, help: "show this help")]
}

/// Options every Marathon-reading, HAProxy-driving command shares, validated.
public struct CommonOptions: Sendable {
    public var marathonURLs: [URL]
    public var appsJSON: String?
    public var credentials: String?
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

    public static func parse(_ a: ParsedArguments, requireGroup: Bool = true, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> CommonOptions {
        var urls: [URL] = []
        for raw in a.strings("--marathon") {
            guard let u = URL(string: raw), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
                throw UsageError("--marathon: '\(redactURL(raw))' is not an http(s) URL")
            }
            urls.append(u)
        }
        let appsJSON = a.string("--apps-json")
        if urls.isEmpty && appsJSON == nil {
            urls = [URL(string: "http://master.mesos:8080")!]
        }
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
        let httpPort: Int? = a.has("--dont-bind-http-https") ? nil : try a.int("--http-port", default: 80, range: 1...65535)
        let appIdPort = try a.int("--appid-port", default: 9091, range: 0...65535)
        var stats: RenderOptions.StatsListener?
        let statsText = a.string("--haproxy-stats") ?? "*:9090"
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
        var render = RenderOptions(adminSocket: socketPath, httpPort: httpPort, appIdPort: appIdPort == 0 ? nil : appIdPort, stats: stats,
                                   https: https, vhostRouting: routingMode, mapDirectory: mapDirectory.isEmpty ? "." : mapDirectory,
                                   labelTemplates: a.has("--enable-label-templates"))
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
        let routing = RoutingOptions(groups: groups, healthCheck: a.has("--health-check"), strictMode: a.has("--strict-mode"),
                                     minSlots: minSlots, reservedPorts: render.reservedPorts, ipPerTaskServicePorts: ipPerTaskPorts)
        let templates: TemplateSet
        do {
            templates = try TemplateSet(overrides: TemplateOverrides.load(directory: a.string("--templates-dir"), environment: environment))
        } catch {
            throw UsageError("\(error)")
        }
        guard let level = LogLevel(name: a.string("--log-level") ?? "info") else {
            throw UsageError("--log-level: expected debug, info, warning or error")
        }
        guard let format = LogFormat(rawValue: a.string("--log-format") ?? "text") else {
            throw UsageError("--log-format: expected text or json")
        }
        return CommonOptions(
            marathonURLs: urls, appsJSON: appsJSON, credentials: credentials, caCert: a.string("--marathon-ca-cert"),
            marathonTimeout: try a.double("--marathon-timeout", default: 30, range: 0.1...3600),
            configPath: configPath, socketPath: socketPath,
            masterSocket: a.string("--master-socket"), reloadCommand: a.string("--command"),
            haproxyBinary: a.string("--haproxy-bin") ?? "haproxy",
            reloadTimeout: try a.double("--reload-timeout", default: 30, range: 1...3600),
            routing: routing, render: render, templates: templates, logLevel: level, logFormat: format)
    }

    public var logger: Logger { Logger.stderr(level: logLevel, format: logFormat) }

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
/// like marathon-lb.
public enum TemplateOverrides {
    public static func load(directory: String?, environment: [String: String]) throws -> [String: String] {
        var out: [String: String] = [:]
        let known = Set(DefaultTemplates.all.map(\.name))
        if let directory {
            let files: [String]
            do { files = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
                throw UsageError("--templates-dir: cannot read \(directory): \(error.foundationDescription)")
            }
            for f in files.sorted() where f.hasPrefix("HAPROXY_") {
                guard known.contains(f) else { throw UsageError("--templates-dir: unknown template \(f)") }
                guard let text = try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) else {
                    throw UsageError("--templates-dir: cannot read \(f)")
                }
                out[f] = text
            }
        }
        for name in known {
            if let v = environment[name], !v.isEmpty { out[name] = v.replacingAll("\\n", with: "\n") }
        }
        return out
    }
}

/// Hides a URL's password (credentials never reach logs).
public func redactURL(_ s: String) -> String {
    guard var c = URLComponents(string: s), c.user != nil || c.password != nil else { return s }
    c.user = c.user.map { _ in "***" }
    c.password = c.password.map { _ in "***" }
    return c.string ?? "<url>"
}

/// Settings of the generated config that do not come from Marathon.
public struct RenderOptions: Sendable, Equatable {
    /// The admin stats socket servicerouter drives (`--haproxy-socket`).
    public var adminSocket: String
    /// The shared HTTP (vhost) frontend's port; nil: not bound (`--dont-bind-http-https`).
    public var httpPort: Int?
    /// The `X-Marathon-App-Id` frontend's port; nil: not bound.
    public var appIdPort: Int?
    /// HAProxy's own stats page and Prometheus exporter; nil: none.
    public var stats: StatsListener?

    public struct StatsListener: Sendable, Equatable {
        public var address: String
        public var port: Int
        public init(address: String, port: Int) {
            self.address = address
            self.port = port
        }
    }

    public init(adminSocket: String, httpPort: Int? = 80, appIdPort: Int? = 9091, stats: StatsListener? = nil) {
        self.adminSocket = adminSocket
        self.httpPort = httpPort
        self.appIdPort = appIdPort
        self.stats = stats
    }

    /// Ports this config binds besides the service ports.
    public var reservedPorts: Set<Int> {
        Set([httpPort, appIdPort, stats?.port].compactMap { $0 })
    }

    /// A socket path goes into a config line: only plain path characters.
    public static func validateSocketPath(_ p: String) throws -> String {
        guard !p.isEmpty, p.utf8.count < 108, p.utf8.allSatisfy({ ProxyName.allowed($0) || $0 == 0x2F || $0 == 0x40 }) else {
            throw ValidationError(field: "--haproxy-socket", value: p, reason: "a socket path may contain only letters, digits and _ . : - / @ (at most 107 bytes)")
        }
        return p
    }
}

/// The rendered config and the fingerprint of its structure (everything but slot contents).
public struct RenderedConfig: Sendable, Equatable {
    public var text: String
    /// Changes exactly when a reload is needed: frontends, backends, binds, ACLs, slot counts,
    /// templates. Written into the config as `setenv SERVICEROUTER_STRUCTURE <hash>` so the running
    /// HAProxy can be asked which structure it loaded (`show env`).
    public var structureHash: String

    public static let structureVariable = "SERVICEROUTER_STRUCTURE"
    public static let structureVariableName = ProxyName(unchecked: structureVariable)
}

public enum ConfigRenderer {
    /// Renders haproxy.cfg. Deterministic: the same input gives byte-identical output.
    public static func render(desired: DesiredState, plan: ReconcilePlan, templates: TemplateSet,
                              options: RenderOptions) throws -> RenderedConfig {
        let socket = try RenderOptions.validateSocketPath(options.adminSocket)
        var w = Writer()
        w.text(try templates["HAPROXY_HEAD"].render([:]))

        if let stats = options.stats {
            w.text("\nlisten stats\n  bind \(stats.address):\(stats.port)\n  mode http\n  stats enable\n  stats uri /haproxy?stats\n  http-request use-service prometheus-exporter if { path /metrics }\n  monitor-uri /_haproxy_health_check\n")
        }

        // HTTP services, in marathon-lb's order: by (app id, service port), then stably by weight.
        let httpServices = desired.services.filter { $0.mode == .http }
            .sorted { ($0.appId, $0.servicePort.value) < ($1.appId, $1.servicePort.value) }

        if let httpPort = options.httpPort {
            w.text(try templates["HAPROXY_HTTP_FRONTEND_HEAD"].render(["httpPort": String(httpPort)]))
            var chunks: [(weight: Int, text: String)] = []
            for s in httpServices where !s.vhosts.isEmpty {
                chunks.append((s.labels.backendWeight, try vhostRules(s, templates)))
            }
            for c in stableSortedByWeight(chunks) { w.text(c.text) }
        }

        if let appIdPort = options.appIdPort {
            w.text(try templates["HAPROXY_HTTP_FRONTEND_APPID_HEAD"].render(["appIdPort": String(appIdPort)]))
            var seenApps = Set<String>()
            for s in httpServices where seenApps.insert(s.appId).inserted {
                w.text(try templates["HAPROXY_HTTP_FRONTEND_APPID_ACL"].render([
                    "cleanedUpAppId": cleaned(s.appId), "appId": s.appId, "backend": s.backend.text,
                    "hostname": s.vhosts.first?.text ?? "",
                ]))
            }
        }

        for s in desired.services {
            let values = [
                "backend": s.backend.text, "bindAddr": s.labels.bindAddress, "servicePort": String(s.servicePort.value),
                "mode": s.mode.rawValue, "sslCert": "", "bindOptions": "",
            ]
            w.text(try templates["HAPROXY_FRONTEND_HEAD"].render(values))
            w.text(try templates["HAPROXY_FRONTEND_BACKEND_GLUE"].render(values))
        }

        for s in desired.services {
            guard let bp = plan.backend(s.backend) else { continue }
            try renderBackend(s, bp, templates, into: &w)
        }

        let hash = w.skeletonHash()
        let header = "# Generated by servicerouter. Do not edit: it is rewritten on every change.\n"
        let runtime = "\nglobal\n  stats socket \(socket) mode 600 level admin expose-fd listeners\n  setenv \(RenderedConfig.structureVariable) \(hash)\n"
        // The runtime section goes right after HEAD (the first piece).
        return RenderedConfig(text: header + w.realText(insertingAfterFirst: runtime), structureHash: hash)
    }

    static func renderBackend(_ s: Service, _ bp: BackendPlan, _ templates: TemplateSet, into w: inout Writer) throws {
        w.text(try templates["HAPROXY_BACKEND_HEAD"].render([
            "backend": s.backend.text, "balance": s.labels.balance.rawValue, "mode": s.mode.rawValue,
        ]))
        if s.mode == .http {
            w.text(try templates["HAPROXY_BACKEND_HTTP_OPTIONS"].render([:]))
        }
        var serverCheck = ""
        if let hc = s.healthCheck {
            let values = healthValues(hc)
            let isHTTP: Bool = if case .http = hc.kind { true } else { false }
            w.text(try templates[isHTTP ? "HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS" : "HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS"].render(values))
            let server = try templates[isHTTP ? "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS" : "HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS"].render(values)
            let stripped = server.trimming(" \t\n")
            serverCheck = stripped.isEmpty ? "" : " " + stripped
        }
        let serverTemplate = templates["HAPROXY_BACKEND_SERVER_OPTIONS"]
        for n in 1...bp.slotCount {
            let name = SlotPlanner.slotName(n).text
            func line(_ endpoint: Endpoint, disabled: Bool) throws -> String {
                try serverTemplate.render([
                    "serverName": name, "host": endpoint.ip.text, "host_ipv4": endpoint.ip.text,
                    "port": String(endpoint.port.value), "serverId": String(n), "cookieOptions": "",
                    "healthCheckOptions": serverCheck, "otherOptions": disabled ? " disabled" : "",
                ])
            }
            let skeleton = try line(SlotPlanner.placeholder, disabled: true)
            if let d = bp.slots[n - 1] {
                w.slot(real: try line(d.endpoint, disabled: d.routing != .serve), skeleton: skeleton)
            } else {
                w.slot(real: skeleton, skeleton: skeleton)
            }
        }
    }

    static func healthValues(_ hc: HealthCheckSpec) -> [String: String] {
        var path = "/"
        if case .http(let p) = hc.kind { path = p }
        return [
            "healthCheckPath": path,
            "healthCheckTimeoutSeconds": String(hc.timeoutSeconds),
            "healthCheckIntervalSeconds": String(hc.intervalSeconds),
            "healthCheckFalls": String(hc.fall),
            "healthCheckMaxConsecutiveFailures": String(hc.fall - 1),
            "healthCheckGracePeriodSeconds": String(max(0, hc.source.gracePeriodSeconds)),
            "healthCheckProtocol": hc.source.proto.rawValue,
            "healthCheckPortIndex": hc.source.portIndex.map(String.init) ?? "",
            "healthCheckPort": hc.port.map { String($0.value) } ?? "",
            "healthCheckPortOptions": hc.port.map { " port \($0.value)" } ?? "",
        ]
    }

    /// The vhost rules of one http service in the shared frontend (marathon-lb's layout).
    static func vhostRules(_ s: Service, _ templates: TemplateSet) throws -> String {
        let acl = cleaned(s.vhosts[0].text) + "_" + cleanedAppPath(s.appId)
        var values = [
            "cleanedUpHostname": acl, "backend": s.backend.text, "appId": s.appId,
            "hostname": s.vhosts[0].text, "path": s.labels.path?.text ?? "",
        ]
        if s.vhosts.count == 1 {
            return try templates[s.labels.path == nil ? "HAPROXY_HTTP_FRONTEND_ACL" : "HAPROXY_HTTP_FRONTEND_ACL_WITH_PATH"].render(values)
        }
        var out = ""
        if s.labels.path != nil {
            out += try templates["HAPROXY_HTTP_FRONTEND_ACL_ONLY_WITH_PATH"].render(values)
        }
        for host in s.vhosts {
            values["hostname"] = host.text
            out += try templates["HAPROXY_HTTP_FRONTEND_ACL_ONLY"].render(values)
        }
        out += try templates[s.labels.path == nil ? "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY" : "HAPROXY_HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH"].render(values)
        return out
    }

    /// marathon-lb's ACL-name cleaning: everything but letters, digits and '-' becomes '_'.
    static func cleaned(_ s: String) -> String {
        String(s.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" ? $0 : "_" })
    }

    static func cleanedAppPath(_ appId: String) -> String {
        String(appId.drop(while: { $0 == "/" }).map { $0 == "/" ? "_" : $0 })
    }

    static func stableSortedByWeight<T>(_ items: [(weight: Int, text: T)]) -> [(weight: Int, text: T)] {
        items.enumerated().sorted { a, b in
            a.element.weight != b.element.weight ? a.element.weight > b.element.weight : a.offset < b.offset
        }.map(\.element)
    }

    /// Accumulates the config twice over: as written, and as a skeleton with every slot line in
    /// its free form, whose hash is the structure fingerprint.
    struct Writer {
        private var pieces: [(real: String, skeleton: String?)] = []

        mutating func text(_ s: String) { pieces.append((s, nil)) }
        mutating func slot(real: String, skeleton: String) { pieces.append((real, skeleton)) }

        func skeletonHash() -> String {
            var h = FNV1a64()
            for p in pieces { h.add(p.skeleton ?? p.real) }
            return h.hex
        }

        func realText(insertingAfterFirst extra: String) -> String {
            var out = ""
            out.reserveCapacity(pieces.reduce(extra.utf8.count) { $0 + $1.real.utf8.count })
            for (i, p) in pieces.enumerated() {
                out += p.real
                if i == 0 { out += extra }
            }
            return out
        }
    }
}

/// 64-bit FNV-1a: a fast, stable, non-cryptographic fingerprint.
public struct FNV1a64: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    public init() {}
    public mutating func add(_ s: String) {
        for b in s.utf8 {
            value ^= UInt64(b)
            value &*= 0x0000_0100_0000_01B3
        }
    }
    public var hex: String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

extension String {
    func trimming(_ set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

public enum ConfigRenderer {
    /// Renders haproxy.cfg. Deterministic: the same input gives byte-identical output.
    ///
    /// Order (marathon-lb's): HEAD, servicerouter's runtime `global` section, stats listener, user
    /// lists, the shared HTTP frontend (explicit vhost rules by weight, then the vhost maps), the
    /// app-id frontend, the shared HTTPS frontend, each service port's frontend, each backend.
    /// A service whose per-app template cannot be rendered is left out (with a diagnostic); nothing
    /// else is affected.
    public static func render(desired: DesiredState, plan: ReconcilePlan, templates: TemplateSet,
                              options: RenderOptions) throws -> RenderedConfig {
        var renderer = IncrementalRenderer(templates: templates, options: options)
        return try renderer.render(desired: desired, plan: plan)
    }

    /// The whole render; `cached` gives the pieces of each service whose service and slots are
    /// those of the previous render, `store` receives what this render used. Returns nil when
    /// every service was cached in the same order: the previous config is then the answer.
    static func render(desired: DesiredState, plan: ReconcilePlan, templates: TemplateSet, options: RenderOptions,
                       cached: [ProxyName: IncrementalRenderer.Entry], previousOrder: [ProxyName]?,
                       store: inout [ProxyName: IncrementalRenderer.Entry], order: inout [ProxyName]) throws -> RenderedConfig? {
        let socket = try RenderOptions.validateSocketPath(options.adminSocket)
        let useMaps = options.vhostRouting == .map
        let vhostMap = try RenderOptions.validateSocketPath(options.vhostMapPath)
        let vhostPathMap = try RenderOptions.validateSocketPath(options.vhostPathMapPath)

        // Each service's pieces are rendered first, so a failing per-app template drops only it.
        var pieces: [ServicePieces] = []
        var diagnostics: [Diagnostic] = []
        var entries = [ProxyName: IncrementalRenderer.Entry](minimumCapacity: desired.services.count)
        var names: [ProxyName] = []
        names.reserveCapacity(desired.services.count)
        var allCached = true
        for s in desired.services {
            guard let bp = plan.backend(s.backend) else { continue }
            names.append(s.backend)
            if let e = cached[s.backend], e.slotCount == bp.slotCount, e.slots == bp.slots, e.pieces.service == s {
                pieces.append(e.pieces)
                // The plan's own (equal) slots are kept, so the cache never holds a second copy.
                entries[s.backend] = IncrementalRenderer.Entry(slotCount: bp.slotCount, slots: bp.slots, pieces: e.pieces)
                continue
            }
            allCached = false
            do {
                let p = try ServicePieces(s, bp, templates.scoped(to: s, enabled: options.labelTemplates), options: options, useMaps: useMaps)
                pieces.append(p)
                entries[s.backend] = IncrementalRenderer.Entry(slotCount: bp.slotCount, slots: bp.slots, pieces: p)
            } catch {
                diagnostics.append(Diagnostic(.error, .badLabel, appId: s.appId, "service port \(s.servicePort) left out: \(error)"))
            }
        }
        store = entries
        order = names
        if allCached, let previousOrder, previousOrder == names { return nil }

        var w = Writer()
        let head = try templates["HAPROXY_HEAD"].render([:])
        w.text(head)
        if let section = options.workerIdentity?.section(afterHead: head) { w.text(section) }
        if let stats = options.stats {
            w.text("\nlisten stats\n  bind \(stats.address):\(stats.port)\n  mode http\n  stats enable\n  stats uri /haproxy?stats\n  stats show-legends\n  http-request use-service prometheus-exporter if { path /metrics }\n  monitor-uri /_haproxy_health_check\n")
        }
        for p in pieces { if let u = p.userlist { w.text(u) } }

        // HTTP chunks in marathon-lb's order: by (app id, service port), then stably by weight.
        let httpPieces = pieces.filter { $0.service.mode == .http }
            .sorted { ($0.service.appId, $0.service.servicePort.value) < ($1.service.appId, $1.service.servicePort.value) }
        let mapValues = ["vhostMap": vhostMap, "vhostPathMap": vhostPathMap]
        if let httpPort = options.httpPort {
            w.text(try templates["HAPROXY_HTTP_FRONTEND_HEAD"].render(["httpPort": String(httpPort), "bindAddr": options.bindAddress]))
            if useMaps { w.text(try templates["HAPROXY_HTTP_FRONTEND_ROUTING_VARS"].render([:])) }
            for c in stableSortedByWeight(httpPieces.compactMap { p in p.httpRules.map { (p.service.labels.backendWeight, $0) } }) {
                w.text(c.text)
            }
            if useMaps { w.text(try templates["HAPROXY_FRONTEND_ROUTING_MAPS"].render(mapValues)) }
        }
        if let appIdPort = options.appIdPort {
            w.text(try templates["HAPROXY_HTTP_FRONTEND_APPID_HEAD"].render(["appIdPort": String(appIdPort), "bindAddr": options.bindAddress]))
            var seenApps = Set<String>()
            for p in httpPieces where seenApps.insert(p.service.appId).inserted { w.text(p.appIdRule) }
        }
        if let https = options.https, options.groupHTTPSByVhost {
            w.text(try groupedHTTPS(httpPieces, https: https, templates: templates, options: options, mapValues: mapValues,
                                    taken: Set(pieces.map(\.service.backend.text)), diagnostics: &diagnostics))
        } else if let https = options.https {
            let certs = try https.certificates.map { "crt " + (try LabelParser.filePath($0, field: "--ssl-certs")) }.joined(separator: " ")
            w.text(try templates["HAPROXY_HTTPS_FRONTEND_HEAD"].render(["httpsPort": String(https.port), "sslCerts": certs, "bindAddr": options.bindAddress]))
            if useMaps { w.text(try templates["HAPROXY_HTTPS_FRONTEND_ROUTING_VARS"].render([:])) }
            for c in stableSortedByWeight(httpPieces.compactMap { p in p.httpsRules.map { (p.service.labels.backendWeight, $0) } }) {
                w.text(c.text)
            }
            if useMaps { w.text(try templates["HAPROXY_FRONTEND_ROUTING_MAPS"].render(mapValues)) }
        }
        for p in pieces { w.text(p.frontend) }
        for p in pieces { w.backend(p.backend) }

        var maps: [String: [MapEntry]] = [:]
        if useMaps {
            maps[vhostMap] = pieces.flatMap(\.hostEntries).sorted()
            maps[vhostPathMap] = pieces.flatMap(\.pathEntries).sorted()
        }
        let hash = w.skeletonHash()
        let header = "# Generated by servicerouter. Do not edit: it is rewritten on every change.\n"
        let runtime = "\nglobal\n  stats socket \(socket) mode 600 level admin expose-fd listeners\n  description \(RenderedConfig.structureDescriptionPrefix)\(hash)\n"
        return RenderedConfig(text: header + w.realText(insertingAfterFirst: runtime), structureHash: hash, maps: maps,
                              diagnostics: diagnostics)
    }

    /// Everything one service contributes to the config.
    struct ServicePieces {
        var service: Service
        var userlist: String?
        var httpRules: String?
        var httpsRules: String?
        var appIdRule: String
        var frontend: String
        var backend: BackendText
        var hostEntries: [MapEntry] = []
        var pathEntries: [MapEntry] = []
        /// `--group-https-by-vhost`: the explicit HTTPS rules of each vhost, for its own frontend.
        var groupedHTTPSRules: [(host: HostName, text: String)] = []

        init(_ s: Service, _ bp: BackendPlan, _ t: ScopedTemplates, options: RenderOptions, useMaps: Bool) throws {
            service = s
            let l = s.labels
            let firstHost = s.vhosts.first?.text ?? ""
            let acl = ConfigRenderer.cleaned(s.vhosts.first?.text ?? "") + "_" + ConfigRenderer.cleanedAppPath(s.appId)
            let common = [
                "backend": s.backend.text, "appId": s.appId, "cleanedUpAppId": ConfigRenderer.cleaned(s.appId),
                "hostname": firstHost, "cleanedUpHostname": acl, "path": l.path?.text ?? "",
                "realm": l.auth?.realm ?? "", "user": l.auth?.user ?? "", "passwd": l.auth?.passwordHash ?? "",
                // HAPROXY_{n}_BIND_ADDR wins over --bind-address.
                "bindAddr": s.appLabels[LabelParser.key("BIND_ADDR", s.portIndex)] != nil ? l.bindAddress : options.bindAddress,
                "servicePort": String(s.servicePort.value), "mode": s.mode.rawValue,
                "balance": l.balance.rawValue,
            ]
            if let a = l.auth, s.mode == .http {
                userlist = try t["HAPROXY_USERLIST_HEAD"].render(common.merging(["user": a.user, "passwd": a.passwordHash]) { $1 })
            }
            appIdRule = try t["HAPROXY_HTTP_FRONTEND_APPID_ACL"].render(common)
            if s.mode == .http, !s.vhosts.isEmpty {
                if useMaps && !l.needsExplicitRules {
                    for host in s.vhosts {
                        if let path = l.path {
                            pathEntries.append(MapEntry(key: host.text + path.text, value: s.backend.text))
                        } else {
                            hostEntries.append(MapEntry(key: host.text, value: s.backend.text))
                        }
                    }
                } else {
                    (httpRules, httpsRules) = try VhostRules.render(s, t, common)
                    if options.https == nil { httpsRules = nil }
                    if options.https != nil, options.groupHTTPSByVhost {
                        groupedHTTPSRules = try ConfigRenderer.perVhostHTTPSRules(s, t, common)
                    }
                }
            }
            var frontendValues = common
            frontendValues["sslCert"] = l.sslCert.map { " ssl crt \($0)" } ?? ""
            frontendValues["bindOptions"] = l.bindOptions.map { " \($0)" } ?? ""
            frontend = try t["HAPROXY_FRONTEND_HEAD"].render(frontendValues) + t["HAPROXY_FRONTEND_BACKEND_GLUE"].render(frontendValues)
            backend = try ConfigRenderer.backendPieces(s, bp, t, common)
        }
    }

    /// A backend section as written, and the fingerprint of its skeleton (every slot line in its
    /// free form). Kept per service in the render cache, so one string per backend instead of two
    /// per slot (25,000 slots at 10,000 tasks).
    struct BackendText {
        var real: String
        var skeletonDigest: UInt64
    }

    static func backendPieces(_ s: Service, _ bp: BackendPlan, _ t: ScopedTemplates, _ common: [String: String]) throws -> BackendText {
        var out = BackendBuilder()
        try backendPieces(s, bp, t, common, into: &out)
        return BackendText(real: String(decoding: out.real, as: UTF8.self), skeletonDigest: out.skeleton.value)
    }

    /// Accumulates a backend section in bytes: the text as written and, hashed as it goes, its
    /// skeleton (the section without its slot lines but the first, in its free form).
    struct BackendBuilder {
        var real: [UInt8] = []
        var skeleton = FNV1a64()
        mutating func text(_ t: String) {
            real.append(contentsOf: t.utf8)
            skeleton.add(t)
        }
    }

    private static func backendPieces(_ s: Service, _ bp: BackendPlan, _ t: ScopedTemplates, _ common: [String: String],
                                      into out: inout BackendBuilder) throws {
        let l = s.labels
        out.text(try t["HAPROXY_BACKEND_HEAD"].render(common))
        if s.mode == .http {
            if l.useHSTS { out.text(try t["HAPROXY_BACKEND_HSTS_OPTIONS"].render(common)) }
            out.text(try t["HAPROXY_BACKEND_HTTP_OPTIONS"].render(common))
            if let p = l.proxyPassPath, !s.vhosts.isEmpty {
                out.text(try t["HAPROXY_HTTP_BACKEND_PROXYPASS_GLUE"].render(common.merging(["proxypath": p.text == "/" ? "" : p.text]) { $1 }))
            }
            if let p = l.revProxyPath, !s.vhosts.isEmpty {
                let root = p.text.hasSuffix("/") ? String(p.text.dropLast()) : p.text
                out.text(try t["HAPROXY_HTTP_BACKEND_REVPROXY_GLUE"].render(common.merging(["rootpath": root]) { $1 }))
            }
            if let r = l.redirectRoot, !s.vhosts.isEmpty {
                out.text(try t["HAPROXY_HTTP_BACKEND_REDIR"].render(common.merging(["redirpath": r]) { $1 }))
            }
        }
        if !l.networkAllowed.isEmpty {
            let prefix = s.mode == .http ? "HAPROXY_HTTP_BACKEND" : "HAPROXY_TCP_BACKEND"
            for net in l.networkAllowed {
                out.text(try t[prefix + "_NETWORK_ALLOWED_ACL"].render(common.merging(["network_allowed": net]) { $1 }))
            }
            out.text(try t[prefix + "_ACL_ALLOW_DENY"].render(common))
        }
        if l.sticky { out.text(try t["HAPROXY_BACKEND_STICKY_OPTIONS"].render(common)) }

        var serverCheck: (Endpoint?) throws -> String = { _ in "" }
        var checkDependsOnSlot = false
        if let hc = s.healthCheck {
            let isHTTP: Bool = if case .http = hc.kind { true } else { false }
            let values = healthValues(hc)
            out.text(try t[isHTTP ? "HAPROXY_BACKEND_HTTP_HEALTHCHECK_OPTIONS" : "HAPROXY_BACKEND_TCP_HEALTHCHECK_OPTIONS"].render(values.merging(common) { a, _ in a }))
            let template = t[isHTTP ? "HAPROXY_BACKEND_SERVER_HTTP_HEALTHCHECK_OPTIONS" : "HAPROXY_BACKEND_SERVER_TCP_HEALTHCHECK_OPTIONS"]
            let perTaskPort = l.healthCheckPortIndex != nil
            checkDependsOnSlot = perTaskPort
            serverCheck = { checkPort in
                var v = values
                if perTaskPort {
                    // The check port is the task's port at HAPROXY_{n}_BACKEND_HEALTHCHECK_PORT_INDEX:
                    // slot content (runtime `check-port`), so the skeleton carries a placeholder.
                    let p = checkPort?.port.value ?? 1
                    v["healthCheckPort"] = String(p)
                    v["healthCheckPortOptions"] = " port \(p)"
                }
                let stripped = try template.render(v).trimming(" \t\n")
                return stripped.isEmpty ? "" : " " + stripped
            }
        }
        let serverTemplate = t["HAPROXY_BACKEND_SERVER_OPTIONS"]
        // The same for every slot unless the check port is per task: rendered once.
        let sharedCheck = checkDependsOnSlot ? nil : try serverCheck(nil)
        let slotLine = try SlotLineRenderer(serverTemplate, sticky: l.sticky)
        let placeholderIP = SlotPlanner.placeholder.ip.text
        // Slots stay slots whatever the template says: one line that starts with the slot. Every
        // slot line has the template's shape, so the first slot's free form is checked (and is the
        // one slot line in the fingerprint: how many slots there are is not structure — a backend
        // grows at runtime with dynamic servers, without a reload).
        var first: [UInt8] = []
        try slotLine.append(slot: 1, ip: placeholderIP, port: 1, check: try sharedCheck ?? serverCheck(nil), disabled: true, into: &first)
        let firstText = String(decoding: first, as: UTF8.self)
        guard Self.isServerLine(firstText, startingWith: "server s1 \(placeholderIP):1") else {
            throw Template.RenderError(template: "HAPROXY_BACKEND_SERVER_OPTIONS",
                                       reason: "a server line must be one line starting with `server {serverName} {host_ipv4}:{port}`")
        }
        out.skeleton.add(firstText)
        out.real.reserveCapacity(out.real.count + bp.slotCount * (first.count + 8))
        for n in 1...bp.slotCount {
            if let d = bp.slots[n - 1] {
                let check = try sharedCheck ?? serverCheck(d.checkPort.map { Endpoint(ip: d.endpoint.ip, port: $0) })
                try slotLine.append(slot: n, ip: d.endpoint.ip.text, port: d.endpoint.port.value, check: check,
                                    disabled: d.routing != .serve, into: &out.real)
            } else if n == 1 {
                out.real.append(contentsOf: first)
            } else {
                try slotLine.append(slot: n, ip: placeholderIP, port: 1, check: try sharedCheck ?? serverCheck(nil), disabled: true, into: &out.real)
            }
        }
    }

    /// `HAPROXY_BACKEND_SERVER_OPTIONS` compiled for slot lines: its placeholders resolved to the
    /// slot's values once, so a line is a few byte copies (25,000 lines at 10,000 tasks).
    struct SlotLineRenderer {
        enum Part {
            case literal([UInt8]), name, host, port, id, cookie, check, other
        }
        let template: Template
        let parts: [Part]?
        let sticky: Bool

        init(_ template: Template, sticky: Bool) throws {
            self.template = template
            self.sticky = sticky
            parts = try template.segments.map { segments in
                try segments.map { s -> Part in
                    switch s {
                    case .literal(let bytes): return .literal(bytes)
                    case .field("serverName"): return .name
                    case .field("host"), .field("host_ipv4"): return .host
                    case .field("port"): return .port
                    case .field("serverId"): return .id
                    case .field("cookieOptions"): return .cookie
                    case .field("healthCheckOptions"): return .check
                    case .field("otherOptions"): return .other
                    case .field(let name):
                        guard !template.formatted else {
                            throw Template.RenderError(template: template.name, reason: "unknown placeholder {\(name)}")
                        }
                        return .literal(Array("{\(name)}".utf8))
                    }
                }
            }
        }

        func append(slot n: Int, ip: String, port: Int, check: String, disabled: Bool, into out: inout [UInt8]) throws {
            guard let parts else {
                // Not ASCII: the general renderer.
                let name = "s\(n)"
                let text = try template.render([
                    "serverName": name, "host": ip, "host_ipv4": ip, "port": String(port), "serverId": String(n),
                    "cookieOptions": sticky ? " cookie \(name)" : "", "healthCheckOptions": check, "otherOptions": disabled ? " disabled" : "",
                ])
                out.append(contentsOf: text.utf8)
                return
            }
            for p in parts {
                switch p {
                case .literal(let bytes): out.append(contentsOf: bytes)
                case .name:
                    out.append(0x73)  // "s"
                    Self.digits(n, into: &out)
                case .host: out.append(contentsOf: ip.utf8)
                case .port: Self.digits(port, into: &out)
                case .id: Self.digits(n, into: &out)
                case .cookie:
                    if sticky {
                        out.append(contentsOf: " cookie s".utf8)
                        Self.digits(n, into: &out)
                    }
                case .check: out.append(contentsOf: check.utf8)
                case .other: if disabled { out.append(contentsOf: " disabled".utf8) }
                }
            }
        }

        /// A non-negative integer's decimal digits.
        static func digits(_ value: Int, into out: inout [UInt8]) {
            if value < 10 { return out.append(UInt8(0x30 + value)) }
            var v = value, buffer: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                                    UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            withUnsafeMutableBytes(of: &buffer) { b in
                while v > 0 {
                    b[19 - count] = UInt8(0x30 + v % 10)
                    v /= 10
                    count += 1
                }
                out.append(contentsOf: b[(20 - count)...])
            }
        }
    }

    /// One line ending in "\n" (no other "\n" or "\r") whose text, without leading spaces or tabs, is `expected` alone or
    /// `expected` followed by a space (and trailing spaces, tabs or newline are allowed after it).
    static func isServerLine(_ text: String, startingWith expected: String) -> Bool {
        let u = text.utf8
        guard u.last == 0x0A, u.firstIndex(of: 0x0A) == u.index(before: u.endIndex), !u.contains(0x0D) else { return false }
        let isBlank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 }
        let body = u.drop(while: isBlank)
        guard body.starts(with: expected.utf8) else { return false }
        let rest = body.dropFirst(expected.utf8.count)
        guard let first = rest.first else { return false }
        // A space: more options follow. Otherwise only blanks up to the final newline.
        return first == 0x20 || rest.dropLast().allSatisfy(isBlank)
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

    /// marathon-lb's ACL-name cleaning: everything but letters, digits and '-' becomes '_'.
    static func cleaned(_ s: String) -> String {
        String(s.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" ? $0 : "_" })
    }

    static func cleanedAppPath(_ appId: String) -> String {
        String(appId.drop(while: { $0 == "/" }).map { $0 == "/" ? "_" : $0 })
    }

    static func stableSortedByWeight(_ items: [(Int, String)]) -> [(weight: Int, text: String)] {
        items.enumerated().sorted { a, b in
            a.element.0 != b.element.0 ? a.element.0 > b.element.0 : a.offset < b.offset
        }.map { (weight: $0.element.0, text: $0.element.1) }
    }

    /// Accumulates the config twice over: as written, and as a skeleton with every slot line in
    /// its free form, whose hash is the structure fingerprint.
    struct Writer {
        enum Piece {
            case text(String)
            case slot(real: String, skeleton: String)
        }
        private enum Part {
            case text(String)
            /// A backend section: its skeleton enters the fingerprint as its own digest.
            case backend(BackendText)
        }
        private var pieces: [Part] = []

        mutating func text(_ s: String) { pieces.append(.text(s)) }
        mutating func backend(_ b: BackendText) { pieces.append(.backend(b)) }

        func skeletonHash() -> String {
            var h = FNV1a64()
            for p in pieces {
                switch p {
                case .text(let t): h.add(t)
                case .backend(let b): h.add(b.skeletonDigest)
                }
            }
            return h.hex
        }

        func realText(insertingAfterFirst extra: String) -> String {
            var out = ""
            var size = extra.utf8.count
            for p in pieces {
                switch p {
                case .text(let t): size += t.utf8.count
                case .backend(let b): size += b.real.utf8.count
                }
            }
            out.reserveCapacity(size)
            for (i, p) in pieces.enumerated() {
                switch p {
                case .text(let t): out += t
                case .backend(let b): out += b.real
                }
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
    /// The 8 bytes of `v`, little-endian.
    public mutating func add(_ v: UInt64) {
        for i in 0..<8 {
            value ^= (v >> (8 * UInt64(i))) & 0xFF
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

/// `/v2/apps` payloads read straight from their UTF-8 bytes into the wire types of
/// `MarathonDecoding.swift`, which then build the models exactly as for JSONDecoder.
///
/// Why: at 10,000 tasks the payload is ~5 MB; JSONDecoder and the Decodable wire types took
/// ~150 ms and ~45 MB of transient memory to read it, on every full resync. This reader makes
/// no intermediate tree.
///
/// It is a fast path only. It accepts nothing it cannot treat exactly as JSONDecoder and the
/// lenient types do: any malformed JSON, wrong type, missing id, duplicate key, unusual number,
/// odd root shape or encoding makes it give up (nil), and the caller decodes the payload the
/// general way, which also produces the skip reasons for bad apps.
enum FastAppsDecoding {
    struct GiveUp: Error {}

    static func apps(_ data: some Sequence<UInt8>) -> (apps: [MarathonApp], skipped: [SkippedApp])? {
        if let result = data.withContiguousStorageIfAvailable({ apps(bytes: $0) }) { return result }
        return Array(data).withUnsafeBufferPointer { apps(bytes: $0) }
    }

    static func apps(bytes: UnsafeBufferPointer<UInt8>) -> (apps: [MarathonApp], skipped: [SkippedApp])? {
        var r = JSONBytes(bytes)
        do {
            return (try root(&r), [])
        } catch {
            return nil
        }
    }

    /// `{"apps": [...]}` (other keys skipped) or a bare array of apps. Each app becomes its model
    /// as soon as it is read, so only one app's wire form is alive at a time.
    static func root(_ r: inout JSONBytes) throws -> [MarathonApp] {
        r.skipSpace()
        var apps: [MarathonApp]?
        if r.peek == UInt8(ascii: "[") {
            apps = try array(&r) { try app(&$0).model() }
        } else {
            try r.object { r, key in
                switch key {
                case "apps":
                    guard apps == nil else { throw GiveUp() }
                    apps = try array(&r) { try app(&$0).model() }
                case "app":
                    throw GiveUp()  // `{"app": {...}}`: rare, left to the general path
                default:
                    try r.skipValue()
                }
            }
        }
        r.skipSpace()
        guard let apps, r.atEnd else { throw GiveUp() }
        return apps
    }

    static func app(_ r: inout JSONBytes) throws -> WireApp {
        var id: String?
        var w = WireApp(id: "")
        try fields(&r) { r, key in
            switch key {
            case "id": id = try r.string()
            case "labels":
                w.labels = try r.nullable { r in
                    var labels: [String: String] = [:]
                    try r.object { r, k in
                        guard labels.updateValue(try r.string(), forKey: k.string) == nil else { throw GiveUp() }
                    }
                    return labels
                }
            case "instances": w.instances = try r.nullable { try $0.flexibleInt() }
            case "version": w.version = try r.nullable { try $0.string() }
            case "versionInfo":
                w.versionInfo = try r.nullable { r in
                    var v = WireApp.VersionInfo(lastConfigChangeAt: nil)
                    try fields(&r) { r, k in
                        guard "lastConfigChangeAt" ~= k else { return false }
                        v.lastConfigChangeAt = try r.nullable { try $0.string() }
                        return true
                    }
                    return v
                }
            case "ports": w.ports = try r.nullable { r in try array(&r) { try $0.flexibleInt() } }
            case "portDefinitions":
                w.portDefinitions = try r.nullable { r in
                    try array(&r) { r in
                        var d = WireApp.PortDefinition(port: nil)
                        try fields(&r) { r, k in
                            guard "port" ~= k else { return false }
                            d.port = try r.nullable { try $0.flexibleInt() }
                            return true
                        }
                        return d
                    }
                }
            case "networks":
                w.networks = try r.nullable { r in
                    try array(&r) { r in
                        var n = WireApp.Network(mode: nil)
                        try fields(&r) { r, k in
                            guard "mode" ~= k else { return false }
                            n.mode = try r.nullable { try $0.string() }
                            return true
                        }
                        return n
                    }
                }
            case "container":
                w.container = try r.nullable { r in
                    var c = WireApp.Container(portMappings: nil, docker: nil)
                    try fields(&r) { r, k in
                        switch k {
                        case "portMappings": c.portMappings = try r.nullable { try portMappings(&$0) }
                        case "docker":
                            c.docker = try r.nullable { r in
                                var d = WireApp.Docker(network: nil, portMappings: nil)
                                try fields(&r) { r, k in
                                    switch k {
                                    case "network": d.network = try r.nullable { try $0.string() }
                                    case "portMappings": d.portMappings = try r.nullable { try portMappings(&$0) }
                                    default: return false
                                    }
                                    return true
                                }
                                return d
                            }
                        default: return false
                        }
                        return true
                    }
                    return c
                }
            case "ipAddress":
                w.ipAddress = try r.nullable { r in
                    var spec = WireApp.IPAddressSpec(discovery: nil)
                    try fields(&r) { r, k in
                        guard "discovery" ~= k else { return false }
                        spec.discovery = try r.nullable { r in
                            var d = WireApp.IPAddressSpec.Discovery(ports: nil)
                            try fields(&r) { r, k in
                                guard "ports" ~= k else { return false }
                                d.ports = try r.nullable { r in
                                    try array(&r) { r in
                                        var p = WireApp.IPAddressSpec.Discovery.Port(number: nil)
                                        try fields(&r) { r, k in
                                            guard "number" ~= k else { return false }
                                            p.number = try r.nullable { try $0.flexibleInt() }
                                            return true
                                        }
                                        return p
                                    }
                                }
                                return true
                            }
                            return d
                        }
                        return true
                    }
                    return spec
                }
            case "healthChecks": w.healthChecks = try r.nullable { r in try array(&r) { try healthCheck(&$0) } }
            case "upgradeStrategy":
                w.upgradeStrategy = try r.nullable { r in
                    var u = WireApp.UpgradeStrategy(maximumOverCapacity: nil)
                    try fields(&r) { r, k in
                        guard "maximumOverCapacity" ~= k else { return false }
                        u.maximumOverCapacity = try r.nullable { try $0.double() }
                        return true
                    }
                    return u
                }
            case "tasks": w.tasks = try r.nullable { r in try array(&r) { try task(&$0) } }
            default: return false
            }
            return true
        }
        guard let id else { throw GiveUp() }
        w.id = id
        return w
    }

    static func portMappings(_ r: inout JSONBytes) throws -> [WireApp.PortMapping] {
        try array(&r) { r in
            var m = WireApp.PortMapping(containerPort: nil, hostPort: nil, servicePort: nil)
            try fields(&r) { r, k in
                switch k {
                case "containerPort": m.containerPort = try r.nullable { try $0.flexibleInt() }
                case "hostPort": m.hostPort = try r.nullable { try $0.flexibleInt() }
                case "servicePort": m.servicePort = try r.nullable { try $0.flexibleInt() }
                default: return false
                }
                return true
            }
            return m
        }
    }

    static func healthCheck(_ r: inout JSONBytes) throws -> WireHealthCheck {
        var h = WireHealthCheck()
        try fields(&r) { r, k in
            switch k {
            case "protocol": h.protocol = try r.nullable { try $0.string() }
            case "path": h.path = try r.nullable { try $0.string() }
            case "portIndex": h.portIndex = try r.nullable { try $0.flexibleInt() }
            case "port": h.port = try r.nullable { try $0.flexibleInt() }
            case "intervalSeconds": h.intervalSeconds = try r.nullable { try $0.flexibleInt() }
            case "timeoutSeconds": h.timeoutSeconds = try r.nullable { try $0.flexibleInt() }
            case "maxConsecutiveFailures": h.maxConsecutiveFailures = try r.nullable { try $0.flexibleInt() }
            case "gracePeriodSeconds": h.gracePeriodSeconds = try r.nullable { try $0.flexibleInt() }
            default: return false
            }
            return true
        }
        return h
    }

    static func task(_ r: inout JSONBytes) throws -> WireTask {
        var id: String?
        var t = WireTask(id: "")
        try fields(&r) { r, k in
            switch k {
            case "id": id = try r.string()
            case "appId": t.appId = try r.nullable { try $0.string() }
            case "host": t.host = try r.nullable { try $0.string() }
            case "state": t.state = try r.nullable { try $0.string() }
            case "ports": t.ports = try r.nullable { r in try array(&r) { try $0.flexibleInt() } }
            case "ipAddresses":
                t.ipAddresses = try r.nullable { r in
                    try array(&r) { r in
                        var a = WireTask.IPAddress(ipAddress: nil)
                        try fields(&r) { r, k in
                            guard "ipAddress" ~= k else { return false }
                            a.ipAddress = try r.nullable { try $0.string() }
                            return true
                        }
                        return a
                    }
                }
            case "healthCheckResults":
                t.healthCheckResults = try r.nullable { r in
                    try array(&r) { r in
                        var h = WireTask.HealthResult(alive: nil)
                        try fields(&r) { r, k in
                            guard "alive" ~= k else { return false }
                            h.alive = try r.nullable { try $0.bool() }
                            return true
                        }
                        return h
                    }
                }
            default: return false
            }
            return true
        }
        guard let id else { throw GiveUp() }
        t.id = id
        return t
    }

    /// An object whose known keys `read` handles (returning true); other keys are skipped. A
    /// known key seen twice gives up (JSONDecoder keeps the first; rare enough to leave to it).
    static func fields(_ r: inout JSONBytes, _ read: (inout JSONBytes, JSONBytes.Key) throws -> Bool) throws {
        var seen: [JSONBytes.Key] = []
        try r.object { r, key in
            if try read(&r, key) {
                guard !seen.contains(key) else { throw GiveUp() }
                seen.append(key)
            } else {
                try r.skipValue()
            }
        }
    }

    static func array<T>(_ r: inout JSONBytes, _ element: (inout JSONBytes) throws -> T) throws -> [T] {
        var out: [T] = []
        try r.array { r in out.append(try element(&r)) }
        return out
    }
}

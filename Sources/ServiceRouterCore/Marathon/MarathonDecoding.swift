import FoundationEssentials

/// An app that could not be decoded, with the reason; the rest of the payload still decodes.
public struct SkippedApp: Sendable, Equatable, CustomStringConvertible {
    public var appId: String?
    public var index: Int
    public var reason: String

    public var description: String {
        "app \(appId ?? "#\(index)") skipped: \(reason)"
    }
}

public struct MarathonDecodeError: Error, CustomStringConvertible, Sendable {
    public var what: String
    public var reason: String
    public var description: String { "cannot decode \(what): \(reason)" }
}

/// Decodes Marathon payloads: `/v2/apps?embed=apps.tasks`, `/v2/apps/<id>`, a bare app definition,
/// and `/v2/tasks`. Supports the 1.5+ shape (`networks`, `container.portMappings`,
/// `portDefinitions`) and the older ones (`ports`, `container.docker.portMappings`, `ipAddress`).
public enum MarathonDecoding {
    /// `{"apps":[...]}`, `{"app":{...}}`, a single app object, or a bare array of apps.
    /// A malformed app is reported in `skipped`; a malformed document throws.
    public static func apps(from data: some DataProtocol) throws -> (apps: [MarathonApp], skipped: [SkippedApp]) {
        // Well-formed payloads (nearly all) are read straight from their bytes; anything else comes
        // here, where JSONDecoder and the lenient types below decide (and explain what is wrong).
        if let decoded = FastAppsDecoding.apps(data) { return decoded }
        return try appsDecodable(from: data)
    }

    /// The general path: JSONDecoder and the lenient wire types.
    static func appsDecodable(from data: some DataProtocol) throws -> (apps: [MarathonApp], skipped: [SkippedApp]) {
        let bytes = Data(data)
        let root: RootDocument
        do {
            root = try JSONDecoder().decode(RootDocument.self, from: bytes)
        } catch {
            // JSONDecoder says only "not valid JSON" of a document nested deeper than it reads.
            let depth = nestingDepth(bytes)
            if depth > maxNesting {
                throw MarathonDecodeError(what: "Marathon apps payload",
                                          reason: "document: JSON nested \(depth) levels deep (at most \(maxNesting) are read); this is not a Marathon answer")
            }
            throw MarathonDecodeError(what: "Marathon apps payload", reason: describe(error))
        }
        var apps: [MarathonApp] = []
        var skipped: [SkippedApp] = []
        for (i, entry) in root.apps.enumerated() {
            switch entry.result {
            case .success(let wire):
                do { apps.append(try wire.model()) } catch {
                    skipped.append(SkippedApp(appId: wire.id, index: i, reason: describe(error)))
                }
            case .failure(let error):
                skipped.append(SkippedApp(appId: entry.id, index: i, reason: describe(error)))
            }
        }
        return (apps, skipped)
    }

    /// `{"tasks":[...]}` or `{"task":{...}}` (`/v2/tasks`, `/v2/apps/<id>/tasks`).
    public static func tasks(from data: some DataProtocol) throws -> [MarathonTask] {
        do {
            let doc = try JSONDecoder().decode(TasksDocument.self, from: Data(data))
            return try doc.tasks.map { try $0.model(defaultAppId: nil) }
        } catch let e as MarathonDecodeError {
            throw e
        } catch {
            throw MarathonDecodeError(what: "Marathon tasks payload", reason: describe(error))
        }
    }

    /// One app definition (`api_post_event.appDefinition`, `/v2/apps/<id>`'s `app`).
    public static func app(from data: some DataProtocol) throws -> MarathonApp {
        do {
            return try JSONDecoder().decode(WireApp.self, from: Data(data)).model()
        } catch let e as MarathonDecodeError {
            throw e
        } catch {
            throw MarathonDecodeError(what: "Marathon app", reason: describe(error))
        }
    }

    /// A readable one-line reason for a decoding failure: the JSON path and what was wrong.
    /// The deepest nesting JSONDecoder reads.
    static let maxNesting = 512

    /// How deeply arrays and objects nest in `bytes` (strings skipped, escapes honoured).
    static func nestingDepth(_ bytes: some Collection<UInt8>) -> Int {
        var depth = 0, deepest = 0
        var inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
                continue
            }
            switch b {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                depth += 1
                deepest = max(deepest, depth)
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
        }
        return deepest
    }

    static func describe(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        }
        switch error {
        case let e as MarathonDecodeError: return e.reason
        case DecodingError.typeMismatch(let type, let ctx):
            return "\(path(ctx.codingPath).isEmpty ? "value" : path(ctx.codingPath)): expected \(type)"
        case DecodingError.valueNotFound(let type, let ctx):
            return "\(path(ctx.codingPath)): expected \(type), found null"
        case DecodingError.keyNotFound(let key, let ctx):
            return "\(path(ctx.codingPath + [key])): missing"
        case DecodingError.dataCorrupted(let ctx):
            let underlying = ctx.underlyingError?.foundationDescription
            return "\(path(ctx.codingPath).isEmpty ? "document" : path(ctx.codingPath)): \(underlying ?? ctx.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

// MARK: - Wire format

private struct RootDocument: Decodable {
    var apps: [Lenient<WireApp>]

    enum Keys: String, CodingKey { case apps, app }

    init(from decoder: Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var out: [Lenient<WireApp>] = []
            while !list.isAtEnd { out.append(try list.decode(Lenient<WireApp>.self)) }
            apps = out
            return
        }
        let c = try decoder.container(keyedBy: Keys.self)
        if c.contains(.apps) {
            apps = try c.decode([Lenient<WireApp>].self, forKey: .apps)
        } else if c.contains(.app) {
            apps = [try c.decode(Lenient<WireApp>.self, forKey: .app)]
        } else {
            apps = [try Lenient<WireApp>(from: decoder)]
        }
    }
}

private struct TasksDocument: Decodable {
    var tasks: [WireTask]
    enum Keys: String, CodingKey { case tasks, task }
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        if c.contains(.tasks) {
            tasks = try c.decode([WireTask].self, forKey: .tasks)
        } else {
            tasks = [try c.decode(WireTask.self, forKey: .task)]
        }
    }
}

/// Decodes one element and keeps the error instead of failing the whole array.
private struct Lenient<T: Decodable>: Decodable {
    var result: Result<T, Error>
    var id: String?

    enum IdKey: String, CodingKey { case id }

    init(from decoder: Decoder) throws {
        id = try? decoder.container(keyedBy: IdKey.self).decodeIfPresent(String.self, forKey: .id)
        do { result = .success(try T(from: decoder)) } catch { result = .failure(error) }
    }
}

/// A number Marathon may write as an integer or a float (`"instances": 1.0` happens).
struct FlexibleInt: Decodable {
    var value: Int
    init(value: Int) { self.value = value }
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) {
            value = i
        } else {
            let d = try c.decode(Double.self)
            guard d.isFinite, d == d.rounded(), abs(d) < 1e12 else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected an integer, found \(d)")
            }
            value = Int(d)
        }
    }
}

struct WireApp: Decodable {
    var id: String
    var labels: [String: String]?
    var instances: FlexibleInt?
    var version: String?
    var versionInfo: VersionInfo?
    var ports: [FlexibleInt]?
    var portDefinitions: [PortDefinition]?
    var networks: [Network]?
    var container: Container?
    var ipAddress: IPAddressSpec?
    var healthChecks: [WireHealthCheck]?
    var upgradeStrategy: UpgradeStrategy?
    var tasks: [WireTask]?

    struct VersionInfo: Decodable { var lastConfigChangeAt: String? }
    struct PortDefinition: Decodable { var port: FlexibleInt? }
    struct Network: Decodable { var mode: String? }
    struct PortMapping: Decodable {
        var containerPort: FlexibleInt?
        var hostPort: FlexibleInt?
        var servicePort: FlexibleInt?
    }
    struct Docker: Decodable {
        var network: String?
        var portMappings: [PortMapping]?
    }
    struct Container: Decodable {
        var portMappings: [PortMapping]?
        var docker: Docker?
    }
    struct IPAddressSpec: Decodable {
        struct Discovery: Decodable {
            struct Port: Decodable { var number: FlexibleInt? }
            var ports: [Port]?
        }
        var discovery: Discovery?
    }
    struct UpgradeStrategy: Decodable { var maximumOverCapacity: Double? }

    func model() throws -> MarathonApp {
        let mappings = container?.portMappings ?? container?.docker?.portMappings
        let modes = (networks ?? []).compactMap(\.mode)
        let dockerNetwork = container?.docker?.network?.uppercased()
        // IP-per-task: 1.5+ `networks: [{mode: container}]`, or pre-1.5 `ipAddress` / docker USER network.
        let ipPerTask = modes.contains("container") || ipAddress != nil || dockerNetwork == "USER"
        let bridged = modes.contains("container/bridge") || dockerNetwork == "BRIDGE"

        var servicePorts: [Int] = []
        if let mappings, !mappings.isEmpty, bridged || ipPerTask || portDefinitions == nil {
            servicePorts = mappings.map { $0.servicePort?.value ?? 0 }
        } else if let defs = portDefinitions, !defs.isEmpty {
            servicePorts = defs.map { $0.port?.value ?? 0 }
        } else if let ports, !ports.isEmpty {
            servicePorts = ports.map(\.value)
        } else if let mappings {
            servicePorts = mappings.map { $0.servicePort?.value ?? 0 }
        }
        var containerPorts = (mappings ?? []).map { $0.containerPort?.value ?? 0 }
        if containerPorts.isEmpty, let discovery = ipAddress?.discovery?.ports {
            containerPorts = discovery.map { $0.number?.value ?? 0 }
        }
        let tasks = try (self.tasks ?? []).enumerated().map { (i, t) in
            do { return try t.model(defaultAppId: self.id.hasPrefix("/") ? self.id : "/" + self.id) } catch {
                throw MarathonDecodeError(what: "task", reason: "tasks[\(i)]: \(MarathonDecoding.describe(error))")
            }
        }
        // Marathon stores ids as absolute paths; app definitions may omit the leading slash.
        let id = self.id.hasPrefix("/") ? self.id : "/" + self.id
        return MarathonApp(
            id: id,
            labels: labels ?? [:],
            instances: instances?.value ?? 1,
            version: version,
            configChangedAt: versionInfo?.lastConfigChangeAt ?? version,
            servicePorts: servicePorts,
            containerPorts: containerPorts,
            networking: ipPerTask ? .ipPerTask : .host,
            healthChecks: (healthChecks ?? []).map { $0.model() },
            maximumOverCapacity: upgradeStrategy?.maximumOverCapacity ?? 1,
            tasks: tasks
        )
    }
}

struct WireHealthCheck: Decodable {
    var `protocol`: String?
    var path: String?
    var portIndex: FlexibleInt?
    var port: FlexibleInt?
    var intervalSeconds: FlexibleInt?
    var timeoutSeconds: FlexibleInt?
    var maxConsecutiveFailures: FlexibleInt?
    var gracePeriodSeconds: FlexibleInt?

    func model() -> MarathonHealthCheck {
        MarathonHealthCheck(
            proto: MarathonHealthCheck.CheckProtocol(rawValue: (self.protocol ?? "HTTP").uppercased()) ?? .other,
            path: path,
            portIndex: portIndex?.value,
            port: port?.value,
            intervalSeconds: intervalSeconds?.value ?? 60,
            timeoutSeconds: timeoutSeconds?.value ?? 20,
            maxConsecutiveFailures: maxConsecutiveFailures?.value ?? 3,
            gracePeriodSeconds: gracePeriodSeconds?.value ?? 300)
    }
}

struct WireTask: Decodable {
    var id: String
    var appId: String?
    var host: String?
    var ports: [FlexibleInt]?
    var ipAddresses: [IPAddress]?
    var state: String?
    var healthCheckResults: [HealthResult]?

    struct IPAddress: Decodable { var ipAddress: String? }
    struct HealthResult: Decodable { var alive: Bool? }

    func model(defaultAppId: String?) throws -> MarathonTask {
        // A state this version does not know is treated like TASK_UNKNOWN: no traffic.
        let taskState = state.map { TaskState(rawValue: $0) ?? .unknown }
        let results = healthCheckResults ?? []
        return MarathonTask(
            id: id,
            appId: appId ?? defaultAppId ?? "",
            host: host ?? "",
            ports: (ports ?? []).map(\.value),
            ipAddresses: (ipAddresses ?? []).compactMap(\.ipAddress),
            state: taskState,
            healthAlive: results.isEmpty ? nil : results.map { $0.alive ?? false })
    }
}

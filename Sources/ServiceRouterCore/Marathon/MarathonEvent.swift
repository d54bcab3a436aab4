import FoundationEssentials

/// One event from Marathon's `/v2/events` stream, reduced to what routing needs.
public enum MarathonEvent: Sendable, Equatable {
    /// `event_stream_attached`: the first event of every connection.
    case streamAttached
    /// `status_update_event`: one task changed state; enough to add or remove one server.
    case statusUpdate(StatusUpdate)
    /// `health_status_changed_event`: one instance became healthy or unhealthy.
    case healthChanged(HealthChange)
    /// An event that changes apps' structure (definitions, deployments, groups): the caller
    /// resyncs from `/v2/apps`. `appId` is set when the event names a single app.
    case appChanged(appId: String?, eventType: String)
    /// Anything else (Marathon has ~30 event types; most do not matter for routing).
    case other(eventType: String)

    /// The `event_type` filter servicerouter subscribes with (`/v2/events?event_type=…`).
    public static let subscribedTypes: [String] = [
        "status_update_event",
        "health_status_changed_event",
        "api_post_event",
        "app_terminated_event",
        "deployment_success",
        "deployment_failed",
        "deployment_info",
        "deployment_step_success",
        "deployment_step_failure",
        "group_change_success",
    ]

    /// Event types that mean "app definitions or deployments changed".
    static let structureTypes: Set<String> = [
        "api_post_event", "app_terminated_event", "deployment_success", "deployment_failed",
        "deployment_info", "deployment_step_success", "deployment_step_failure", "group_change_success",
    ]

    public var eventType: String {
        switch self {
        case .streamAttached: "event_stream_attached"
        case .statusUpdate: "status_update_event"
        case .healthChanged: "health_status_changed_event"
        case .appChanged(_, let type), .other(let type): type
        }
    }

    /// Decodes one SSE event. The type is the SSE `event:` name, else the JSON `eventType` (an
    /// `event:` line separated from its `data:` by a blank line is dispatched as "message", so
    /// the name alone cannot be trusted). Unknown JSON fields are ignored; a malformed payload is
    /// a failure value naming the event type and what was wrong.
    public static func decode(_ event: SSEEvent) -> Result<MarathonEvent, MarathonDecodeError> {
        let data = Data(event.data.utf8)
        let named = (event.type.isEmpty || event.type == "message") ? nil : event.type
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: data)
        } catch {
            return .failure(MarathonDecodeError(what: "Marathon event \(named ?? "(unnamed)")",
                                                reason: MarathonDecoding.describe(error)))
        }
        guard let type = named ?? header.eventType, !type.isEmpty else {
            return .failure(MarathonDecodeError(what: "Marathon event",
                                                reason: "no SSE event name and no eventType in the JSON"))
        }
        do {
            return .success(try decode(type: type, data: data))
        } catch {
            return .failure(MarathonDecodeError(what: "Marathon event \(type)", reason: MarathonDecoding.describe(error)))
        }
    }

    private static func decode(type: String, data: Data) throws -> MarathonEvent {
        let decoder = JSONDecoder()
        switch type {
        case "event_stream_attached":
            return .streamAttached
        case "status_update_event":
            return .statusUpdate(try decoder.decode(WireStatusUpdate.self, from: data).model())
        case "health_status_changed_event":
            return .healthChanged(try decoder.decode(WireHealthChange.self, from: data).model())
        case "api_post_event":
            let post = try decoder.decode(WireAPIPost.self, from: data)
            return .appChanged(appId: post.appDefinition?.id, eventType: type)
        case _ where type.hasPrefix("app_terminated"):
            let wire = try decoder.decode(WireAppRef.self, from: data)
            return .appChanged(appId: wire.appId, eventType: type)
        case _ where structureTypes.contains(type):
            return .appChanged(appId: nil, eventType: type)
        default:
            return .other(eventType: type)
        }
    }
}

/// `status_update_event`.
public struct StatusUpdate: Sendable, Equatable {
    public var taskId: String
    public var appId: String
    /// Unknown state strings become `.unknown` (no traffic), as in task snapshots.
    public var taskStatus: TaskState
    public var host: String
    public var ports: [Int]
    public var ipAddresses: [String]
    public var version: String?
    public var timestamp: String?

    public init(taskId: String, appId: String, taskStatus: TaskState, host: String, ports: [Int] = [],
                ipAddresses: [String] = [], version: String? = nil, timestamp: String? = nil) {
        self.taskId = taskId
        self.appId = appId
        self.taskStatus = taskStatus
        self.host = host
        self.ports = ports
        self.ipAddresses = ipAddresses
        self.version = version
        self.timestamp = timestamp
    }
}

/// `health_status_changed_event`.
public struct HealthChange: Sendable, Equatable {
    public var appId: String
    /// The instance id (Marathon 1.4+); older versions sent the task id as `taskId`.
    public var instanceId: String
    public var alive: Bool
    public var version: String?
    public var timestamp: String?

    public init(appId: String, instanceId: String, alive: Bool, version: String? = nil, timestamp: String? = nil) {
        self.appId = appId
        self.instanceId = instanceId
        self.alive = alive
        self.version = version
        self.timestamp = timestamp
    }
}

// MARK: - Wire format

private struct Header: Decodable {
    var eventType: String?
}

/// An integer Marathon may write as `31182` or `31182.0`.
private struct LenientInt: Decodable {
    var value: Int
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let i = try? c.decode(Int.self) {
            value = i
            return
        }
        let d = try c.decode(Double.self)
        guard d.isFinite, d == d.rounded(), abs(d) < 1e12 else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "expected an integer, found \(d)")
        }
        value = Int(d)
    }
}

private struct WireStatusUpdate: Decodable {
    var taskId: String
    var appId: String
    var taskStatus: String
    var host: String?
    var ports: [LenientInt]?
    var ipAddresses: [IPAddress]?
    var version: String?
    var timestamp: String?

    struct IPAddress: Decodable { var ipAddress: String? }

    func model() -> StatusUpdate {
        StatusUpdate(taskId: taskId, appId: appId, taskStatus: TaskState(rawValue: taskStatus) ?? .unknown,
                     host: host ?? "", ports: (ports ?? []).map(\.value),
                     ipAddresses: (ipAddresses ?? []).compactMap(\.ipAddress),
                     version: version, timestamp: timestamp)
    }
}

private struct WireHealthChange: Decodable {
    var appId: String
    var instanceId: String?
    var taskId: String?
    var alive: Bool
    var version: String?
    var timestamp: String?

    func model() throws -> HealthChange {
        guard let id = instanceId ?? taskId else {
            throw MarathonDecodeError(what: "health_status_changed_event", reason: ".instanceId: missing (and no .taskId)")
        }
        return HealthChange(appId: appId, instanceId: id, alive: alive, version: version, timestamp: timestamp)
    }
}

private struct WireAPIPost: Decodable {
    struct AppDefinition: Decodable { var id: String? }
    var appDefinition: AppDefinition?
}

private struct WireAppRef: Decodable {
    var appId: String?
}

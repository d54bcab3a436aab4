import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// A timed script of changes for demos and reliability tests. The file is JSON: either
/// `{"steps": [...]}` or a bare array of steps. Each step has `at` (seconds from the start of the
/// scenario, default 0) and an `action`; steps run in `at` order (ties keep file order).
///
/// ```json
/// {"steps": [
///   {"at": 0,   "action": "createApp", "app": {"id": "/web", "instances": 2, "labels": {"HAPROXY_GROUP": "external"}}},
///   {"at": 2,   "action": "scale", "appId": "/web", "instances": 4},
///   {"at": 4,   "action": "kill", "appId": "/web", "index": 0, "scale": false},
///   {"at": 5,   "action": "replace", "appId": "/web"},
///   {"at": 6,   "action": "restart", "appId": "/web"},
///   {"at": 8,   "action": "failHealth", "appId": "/web", "index": 1},
///   {"at": 9,   "action": "restoreHealth", "appId": "/web", "index": 1},
///   {"at": 10,  "action": "updateLabels", "appId": "/web", "labels": {"HAPROXY_GROUP": "internal"}},
///   {"at": 12,  "action": "dropEvents"},
///   {"at": 14,  "action": "deleteApp", "appId": "/web"}
/// ]}
/// ```
///
/// Actions and their fields (a task is named by `taskId`, or by `appId` + `index` into the
/// app's tasks in launch order):
/// - `createApp` `app` (a Marathon app definition) · `deleteApp` `appId` · `scale` `appId` `instances`
/// - `restart` `appId` · `updateLabels` `appId` `labels` · `replace` `appId`
/// - `kill` task [`scale`: bool] · `crashTask` task · `dieSilently` task
/// - `failHealth` task · `restoreHealth` task · `hideHealth` · `showHealth`
/// - `dropEvents` · `silenceEvents` · `resumeEvents` · `cutEvents`
/// - `failRequests` `count` [`status`] · `hangRequests` `count` `seconds` · `clearFaults`
/// - `becomeStandby` `leader` [`status`] · `becomeLeader`
/// - `wait` (does nothing; marks the end of a scenario that should keep running until `at`)
public struct Scenario: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var at: Double
        public var action: String
        public var fields: JSONObject
    }

    public var steps: [Step]

    static let actions: Set<String> = [
        "createApp", "deleteApp", "scale", "restart", "updateLabels", "replace", "kill", "crashTask", "dieSilently",
        "failHealth", "restoreHealth", "hideHealth", "showHealth", "dropEvents", "silenceEvents", "resumeEvents",
        "cutEvents", "failRequests", "hangRequests", "clearFaults", "becomeStandby", "becomeLeader", "wait",
    ]

    public init(steps: [Step]) { self.steps = steps }

    public static func load(file path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ScenarioError(step: nil, reason: "cannot read scenario file \(path)")
        }
        return try parse(Array(data))
    }

    public static func parse(_ bytes: [UInt8]) throws -> Scenario {
        let root: JSONValue
        do { root = try JSONValue.parse(bytes) } catch { throw ScenarioError(step: nil, reason: "\(error)") }
        guard let list = root.arrayValue ?? root["steps"]?.arrayValue else {
            throw ScenarioError(step: nil, reason: "expected {\"steps\": [...]} or an array of steps")
        }
        var steps: [Step] = []
        for (i, item) in list.enumerated() {
            guard let o = item.objectValue else { throw ScenarioError(step: i, reason: "a step must be an object") }
            guard let action = o["action"]?.stringValue, actions.contains(action) else {
                throw ScenarioError(step: i, reason: "unknown or missing action \(o["action"]?.text ?? "null")")
            }
            let at = o["at"]?.doubleValue ?? 0
            guard at >= 0, at < 86_400 else { throw ScenarioError(step: i, reason: "`at` must be between 0 and 86400 seconds") }
            steps.append(Step(at: at, action: action, fields: o))
        }
        return Scenario(steps: steps.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element))
    }
}

public struct ScenarioError: Error, Sendable, CustomStringConvertible {
    public var step: Int?
    public var reason: String
    public var description: String { step.map { "scenario step \($0): \(reason)" } ?? "scenario: \(reason)" }
}

extension MarathonSimulator {
    public func runScenario(file path: String, logger: Logger = .silent) async throws {
        try await runScenario(try Scenario.load(file: path), logger: logger)
    }

    /// Loads a scenario from a `file://` URL.
    public func runScenario(url: URL, logger: Logger = .silent) async throws {
        try await runScenario(file: url.path, logger: logger)
    }

    /// Runs the steps at their times. Returns after the last step; throws at the first step that
    /// fails (naming it), or when the surrounding task is cancelled.
    public func runScenario(_ scenario: Scenario, logger: Logger = .silent) async throws {
        let start = Monotonic.now()
        for (i, step) in scenario.steps.enumerated() {
            let wait = step.at - (Monotonic.now() - start)
            if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
            logger.info("scenario step", [("at", String(step.at)), ("action", step.action)])
            do {
                try await perform(step)
            } catch let e as ScenarioError {
                throw ScenarioError(step: i, reason: e.reason)
            } catch {
                throw ScenarioError(step: i, reason: "\(step.action): \(error)")
            }
        }
    }

    private func perform(_ step: Scenario.Step) async throws {
        let f = step.fields
        func string(_ key: String) throws -> String {
            guard let v = f[key]?.stringValue else { throw ScenarioError(step: nil, reason: "\(step.action) needs \(key)") }
            return v
        }
        func int(_ key: String) throws -> Int {
            guard let v = f[key]?.intValue else { throw ScenarioError(step: nil, reason: "\(step.action) needs \(key)") }
            return v
        }
        func task() async throws -> String {
            if let id = f["taskId"]?.stringValue { return id }
            let appId = try string("appId")
            let index = f["index"]?.intValue ?? 0
            let tasks = await self.tasks(appId).filter { $0.state != .killing }
            guard index >= 0, index < tasks.count else {
                throw ScenarioError(step: nil, reason: "\(appId) has no task #\(index) (it has \(tasks.count))")
            }
            return tasks[index].id
        }
        switch step.action {
        case "createApp":
            guard let app = f["app"] else { throw ScenarioError(step: nil, reason: "createApp needs app") }
            do { try await createApp(try AppSpec.parse(app)) } catch let e as AppValidationError {
                throw ScenarioError(step: nil, reason: "invalid app: \(e)")
            }
        case "deleteApp": try await deleteApp(try string("appId"))
        case "scale": try await scale(try string("appId"), instances: try int("instances"))
        case "restart": try await restartApp(try string("appId"))
        case "updateLabels":
            let labels = (f["labels"]?.objectValue?.pairs ?? []).reduce(into: [String: String]()) { $0[$1.0] = $1.1.stringValue }
            try await updateLabels(try string("appId"), labels)
        case "replace": try await replaceTask(try string("appId"))
        case "kill": try await killTask(try await task(), scale: f["scale"]?.boolValue ?? false)
        case "crashTask": try await crashTask(try await task())
        case "dieSilently": try await killTaskProcessSilently(try await task())
        case "failHealth": try await setHealth(try await task(), alive: false)
        case "restoreHealth": try await setHealth(try await task(), alive: true)
        case "hideHealth": hideHealthResults(true)
        case "showHealth": hideHealthResults(false)
        case "dropEvents": dropEventStreams()
        case "silenceEvents": silenceEventStreams(true)
        case "resumeEvents": silenceEventStreams(false)
        case "cutEvents": cutEventStreamsMidEvent()
        case "failRequests": failNextRequests(try int("count"), status: f["status"]?.intValue ?? 503)
        case "hangRequests": hangNextRequests(try int("count"), seconds: f["seconds"]?.doubleValue ?? 5)
        case "clearFaults": clearRequestFaults()
        case "becomeStandby": becomeStandby(leaderURL: try string("leader"), redirectStatus: f["status"]?.intValue ?? 307)
        case "becomeLeader": becomeLeader()
        case "wait": break
        default: throw ScenarioError(step: nil, reason: "unknown action \(step.action)")
        }
    }
}

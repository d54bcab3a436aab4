import ServiceRouterCore
import ServiceRouterIO

/// The private `/_sim/...` control API: the same faults and actions as the programmatic API,
/// for tests and demos that drive the simulator from another process. No auth, no faults apply.
enum SimControlRoutes {
    static let help = """
        POST /_sim/faults/fail?count=N&status=503     next N Marathon requests answer status (500/503)
        POST /_sim/faults/hang?count=N&seconds=T      next N Marathon requests hang T seconds first
        POST /_sim/faults/clear                       disarm request faults
        POST /_sim/events/drop                        close every /v2/events stream
        POST /_sim/events/silence                     streams stay open, no events, no heartbeats
        POST /_sim/events/resume                      end the silence
        POST /_sim/events/cut                         each stream sends half its next event, then closes
        POST /_sim/health/hide                        healthCheckResults become [] (leader failover)
        POST /_sim/health/show                        health results come back
        POST /_sim/tasks/<taskId>/health?alive=false  fail (or restore) a task's health
        POST /_sim/tasks/<taskId>/die                 the process dies, Marathon does not notice
        POST /_sim/tasks/<taskId>/crash               the process dies, TASK_FAILED, replaced
        POST /_sim/apps/<appId>/replace               kill one task of the app, start another
        POST /_sim/role/standby?leader=URL&status=307 become a standby redirecting to URL
        POST /_sim/role/leader                        become the leader again
        GET  /_sim/state                              counts: apps, tasks, listeners, streams
        """

    static func handle(_ r: HTTPServerRequest, api: MarathonAPI) -> HTTPServerResponse {
        let path = r.path
        let engine = api.engine
        let ok: JSONValue = ["ok": true]
        func int(_ name: String, _ fallback: Int) -> Int { r.queryValue(name).flatMap { Int($0) } ?? fallback }
        func double(_ name: String, _ fallback: Double) -> Double { r.queryValue(name).flatMap { Double($0) } ?? fallback }
        do {
            switch (r.method, path) {
            case ("GET", "/_sim"), ("GET", "/_sim/"): return .text(help + "\n")
            case ("GET", "/_sim/state"):
                let s = engine.snapshot()
                return api.json(["apps": .int(s.apps.count), "tasks": .int(s.tasks.count),
                                 "deployments": .int(s.deployments.count), "listeners": .int(engine.pool.listenerCount),
                                 "eventStreams": .int(api.bus.subscriberCount), "eventsPublished": .int(api.bus.publishedCount)])
            case ("POST", "/_sim/faults/fail"): api.control.failNext(int("count", 1), status: int("status", 503))
            case ("POST", "/_sim/faults/hang"): api.control.hangNext(int("count", 1), seconds: double("seconds", 5))
            case ("POST", "/_sim/faults/clear"): api.control.clearFaults()
            case ("POST", "/_sim/events/drop"): api.bus.dropAll()
            case ("POST", "/_sim/events/silence"): api.bus.setSilent(true)
            case ("POST", "/_sim/events/resume"): api.bus.setSilent(false)
            case ("POST", "/_sim/events/cut"): api.bus.cutAllMidEvent()
            case ("POST", "/_sim/health/hide"): engine.setHealthResultsHidden(true)
            case ("POST", "/_sim/health/show"): engine.setHealthResultsHidden(false)
            case ("POST", "/_sim/role/leader"): api.control.becomeLeader()
            case ("POST", "/_sim/role/standby"):
                guard let leader = r.queryValue("leader") else {
                    return api.json(["message": "leader=URL is required"], status: 400)
                }
                api.control.becomeStandby(leaderURL: leader, redirectStatus: int("status", 307))
            default:
                let parts = path.split(separator: "/").map(String.init)
                if r.method == "POST", parts.count == 4, parts[1] == "tasks" {
                    switch parts[3] {
                    case "health": try engine.setHealth(parts[2], alive: r.queryValue("alive") != "false")
                    case "die": try engine.killProcessSilently(parts[2])
                    case "crash": try engine.crashTask(parts[2])
                    default: return api.json(["message": .string("unknown task action \(parts[3])")], status: 404)
                    }
                } else if r.method == "POST", parts.count >= 4, parts[1] == "apps", parts.last == "replace" {
                    let id = AppSpec.normalize(id: parts[2..<(parts.count - 1)].joined(separator: "/"))
                    let killed = try engine.replaceTask(appId: id)
                    return api.json(["killed": .string(killed)])
                } else {
                    return api.json(["message": .string("unknown simulator control \(r.method) \(path)")], status: 404)
                }
            }
            return api.json(ok)
        } catch let e as SimulatorError {
            return api.json(e.json, status: e.status)
        } catch {
            return api.json(["message": .string("\(error)")], status: 500)
        }
    }
}

import Foundation
import Testing
@testable import ServiceRouterCore

// Small model builders for the core tests (fixtures and the seeded generator come from
// ServiceRouterTestSupport).
@_exported import ServiceRouterTestSupport

func pname(_ s: String) -> ProxyName { try! ProxyName(s) }
func ip(_ s: String) -> IPAddress { try! IPAddress(s) }
func ep(_ s: String, _ port: Int) -> Endpoint { Endpoint(ip: ip(s), port: try! Port(port)) }

/// A host-networked app with one task per `(id, host, port)` on numeric hosts.
func makeApp(_ id: String, ports: [Int] = [10000], labels: [String: String] = [:], instances: Int = 1,
             configChangedAt: String? = nil, healthChecks: [MarathonHealthCheck] = [],
             maximumOverCapacity: Double = 1, tasks: [MarathonTask] = []) -> MarathonApp {
    MarathonApp(id: id, labels: labels, instances: instances, version: configChangedAt, configChangedAt: configChangedAt,
                servicePorts: ports, networking: .host, healthChecks: healthChecks,
                maximumOverCapacity: maximumOverCapacity, tasks: tasks)
}

func makeTask(_ id: String, app: String = "/app", host: String = "10.0.0.1", ports: [Int] = [31000],
              state: TaskState? = .running, health: [Bool]? = nil, ips: [String] = []) -> MarathonTask {
    MarathonTask(id: id, appId: app, host: host, ports: ports, ipAddresses: ips, state: state, healthAlive: health)
}

/// One live slot as `show servers state` would report it.
func liveSlot(_ backend: String, _ n: Int, _ addr: String = "127.0.0.1", _ port: Int = 1, flags: Int = 0,
              uweight: Int = 1, iweight: Int = 1) -> LiveServer {
    LiveServer(backend: pname(backend), name: pname("s\(n)"), serverID: n, address: addr, port: port,
               operationalState: flags & 0x05 != 0 ? 0 : 2, adminFlags: flags, userWeight: uweight, initialWeight: iweight)
}

/// Live flags as HAProxy 2.6 reports them: a config-`disabled` free slot is 5 (0x04|0x01).
enum Flags {
    static let ready = 0
    static let freeSlot = 5
    static let maint = 1
    static let drain = 8
    static let readyAfterDisabled = 4
    static let drainAfterDisabled = 12
}

/// A `Service` built directly (tests of the planner and renderer do not need Marathon apps).
func makeService(_ appId: String = "/web", port: Int = 10000, mode: ServiceLabels.Mode = .tcp,
                 labels: ServiceLabels = ServiceLabels(), healthCheck: HealthCheckSpec? = nil,
                 minimumSlots: Int = 8, servers: [DesiredServer] = []) -> Service {
    Service(appId: appId, portIndex: 0, servicePort: try! Port(port),
            backend: try! DesiredStateBuilder.backendName(appId: appId, servicePort: port), mode: mode,
            labels: labels, healthCheck: healthCheck, minimumSlots: minimumSlots, servers: servers,
            appLabels: [:], configChangedAt: nil)
}

func server(_ taskId: String, _ addr: String, _ port: Int, _ routing: DesiredServer.Routing = .serve) -> DesiredServer {
    DesiredServer(taskId: taskId, endpoint: ep(addr, port), routing: routing)
}

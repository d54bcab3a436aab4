import Foundation
import Testing
@testable import ServiceRouterCore

// Shared helpers for the core tests: fixtures, small model builders, a seeded PRNG.

enum Fixture {
    /// A file from `Fixtures/<folder>/`, byte for byte.
    static func data(_ name: String, in folder: String = "marathon") throws -> Data {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/\(folder)"),
                               "fixture \(folder)/\(name) is missing from the test bundle")
        return try Data(contentsOf: url)
    }

    static func text(_ name: String, in folder: String = "haproxy") throws -> String {
        String(decoding: try data(name, in: folder), as: UTF8.self)
    }

    /// Every file with this extension in `Fixtures/<folder>/`, by name.
    static func names(withExtension ext: String, in folder: String = "marathon") -> [String] {
        (Bundle.module.urls(forResourcesWithExtension: ext, subdirectory: "Fixtures/\(folder)") ?? [])
            .compactMap { $0.lastPathComponent }.sorted()
    }
}

/// SplitMix64: a tiny, fast, seedable generator, so property tests are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension RandomNumberGenerator {
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

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

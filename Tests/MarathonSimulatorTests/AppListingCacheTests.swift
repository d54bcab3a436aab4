import Foundation
import ServiceRouterCore
import ServiceRouterIO
import Testing
@testable import MarathonSimulator

/// `/v2/apps` from the per-app cache must be byte for byte what rendering everything anew writes,
/// whatever changed in between.
@Suite struct AppListingCacheTests {
    static let targets = [
        "/v2/apps?embed=apps.tasks",
        "/v2/apps",
        "/v2/apps?embed=apps.tasks&embed=apps.lastTaskFailure&embed=apps.deployments",
        "/v2/apps?embed=app.tasks,app.counts&id=web",
        "/v2/apps?embed=apps.tasks&label=team==blue",
    ]

    static func request(_ target: String) throws -> HTTPServerRequest {
        var parser = HTTPRequestParser()
        parser.append(Array("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        guard case .request(let head) = parser.next() else { throw RawHTTPError(description: "unparsable \(target)") }
        return HTTPServerRequest(head: head)
    }

    /// Every target over HTTP (through the cache) against the uncached rendering. Timers may
    /// change the state between the two: a comparison only counts when the uncached bytes
    /// were the same just before and just after the HTTP answer.
    static func expectSameBytes(_ sim: MarathonSimulator, _ step: String) async throws {
        for target in targets {
            let r = try request(target)
            var compared = false
            for _ in 0..<20 where !compared {
                let before = sim.api.uncachedListing(r)
                let cached = try await RawHTTP.get(port: sim.port, target)
                let after = sim.api.uncachedListing(r)
                guard before == after else { continue }
                #expect(cached.status == 200)
                let difference = Self.firstDifference(cached.body, before)
                #expect(difference == nil, "\(step): \(target) differs from the uncached rendering \(difference ?? "")")
                compared = true
            }
            #expect(compared, "\(step): \(target) never settled long enough to compare")
        }
    }

    /// Where two documents part, with some text of each (a full dump would be megabytes).
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> String? {
        guard a != b else { return nil }
        let i = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
        func around(_ x: [UInt8]) -> String { String(decoding: x[max(0, i - 80)..<min(x.count, i + 80)], as: UTF8.self) }
        return "at byte \(i) of \(a.count)/\(b.count): cached …\(around(a))… uncached …\(around(b))…"
    }

    @Test func cachedListingEqualsUncachedAcrossChanges() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/web", instances: 3, labels: ["team": "blue"],
                                            healthChecks: [.init(path: "/health")]))
            try await sim.createApp(AppSpec(id: "/api/v1", instances: 2, labels: ["team": "red"], env: ["A": "1\n\"q\""]))
            try await sim.createApp(AppSpec(id: "/bridge", instances: 1, network: .bridge,
                                            portMappings: [.init(containerPort: 80)], dockerImage: "nginx"))
            try await sim.waitForDeployments()
            try await Self.expectSameBytes(sim, "start")
            // Unchanged: the second round is served from the cache only.
            let warm = sim.api.listingCache.counts
            try await Self.expectSameBytes(sim, "unchanged")
            #expect(sim.api.listingCache.counts.misses == warm.misses)

            try await sim.scale("/web", instances: 5)
            try await Self.expectSameBytes(sim, "scale up (deployment running or done)")
            try await sim.waitForDeployments()
            try await Self.expectSameBytes(sim, "scale up done")

            let web = await sim.tasks("/web")
            try await sim.killTask(web[0].id)
            try await Self.expectSameBytes(sim, "kill")
            try await sim.killTask(web[1].id, scale: true)
            try await sim.waitForDeployments()
            try await Self.expectSameBytes(sim, "kill with scale")

            try await sim.setHealth(web[2].id, alive: false)
            try await Self.expectSameBytes(sim, "health failed")
            try await sim.setHealth(web[2].id, alive: true)
            try await Self.expectSameBytes(sim, "health back")
            sim.hideHealthResults()
            try await Self.expectSameBytes(sim, "health results hidden")
            sim.hideHealthResults(false)

            let api = await sim.tasks("/api/v1")
            try await sim.crashTask(api[0].id)
            try await Self.expectSameBytes(sim, "crash (lastTaskFailure)")

            try await sim.updateLabels("/api/v1", ["team": "blue"])
            try await Self.expectSameBytes(sim, "label change (rolling restart)")
            try await sim.restartApp("/bridge")
            try await sim.waitForDeployments()
            try await Self.expectSameBytes(sim, "restart done")

            try await sim.deleteApp("/web")
            try await sim.waitForDeployments()
            try await Self.expectSameBytes(sim, "delete")
            try await sim.createApp(AppSpec(id: "/web", instances: 1, labels: ["team": "blue"]))
            try await sim.waitForDeployments()
            try await Self.expectSameBytes(sim, "recreated under the same id")
        }
    }

    @Test func oneChangedTaskRendersOnlyItsApp() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApps((1...20).map { AppSpec(id: "/many/app-" + ($0 < 10 ? "0\($0)" : "\($0)"), instances: 2) })
            try await sim.waitForDeployments()
            _ = try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks")
            let before = sim.api.listingCache.counts
            try await sim.killTask(await sim.tasks("/many/app-07")[0].id)
            try await sim.waitForDeployments()
            let r = try await RawHTTP.get(port: sim.port, "/v2/apps?embed=apps.tasks")
            let after = sim.api.listingCache.counts
            #expect(after.misses - before.misses == 1)
            #expect(after.hits - before.hits == 19)
            #expect(Self.firstDifference(r.body, sim.api.uncachedListing(try Self.request("/v2/apps?embed=apps.tasks"))) == nil)
        }
    }

    @Test func everyTaskWriteAdvancesItsAppsRevisionOnly() async throws {
        try await withSimulator(.init(heartbeatInterval: nil, killGracePeriod: 0)) { sim in
            try await sim.createApp(AppSpec(id: "/a", instances: 2))
            try await sim.createApp(AppSpec(id: "/b", instances: 1))
            let s0 = sim.engine.snapshot()
            let (a0, b0) = (s0.tasks.revision(of: "/a"), s0.tasks.revision(of: "/b"))
            #expect(a0 > 0 && b0 > 0 && s0.tasks.revision(of: "/none") == 0)
            try await sim.setHealth(await sim.tasks("/a")[0].id, alive: false)
            let s1 = sim.engine.snapshot()
            #expect(s1.tasks.revision(of: "/a") > a0 && s1.tasks.revision(of: "/b") == b0)
            try await sim.killTask(await sim.tasks("/b")[0].id)
            let s2 = sim.engine.snapshot()
            #expect(s2.tasks.revision(of: "/b") > b0 && s2.tasks.revision(of: "/a") == s1.tasks.revision(of: "/a"))
        }
    }

    @Test func serializerWritesNumbersStringsAndLiteralsAsBefore() throws {
        let value: JSONValue = ["i": [0, 7, -7, 10, 1234567890, .int(Int.max), .int(Int.min)],
                                "d": [0.1, 1.15, 2.0, -3.0, .double(.infinity), 1e20],
                                "s": ["plain", "q\"b\\n\nr\rt\t\u{01}", "ünï", ""],
                                "l": [true, false, nil]]
        let text = value.text
        #expect(text == #"{"i":[0,7,-7,10,1234567890,9223372036854775807,-9223372036854775808],"#
                + #""d":[0.1,1.15,2,-3,null,1e+20],"s":["plain","q\"b\\n\nr\rt\t\u0001","ünï",""],"l":[true,false,null]}"#)
        #expect(try JSONValue.parse(text)["s"] == value["s"])
    }
}

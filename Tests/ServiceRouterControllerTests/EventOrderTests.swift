import Testing
import ServiceRouterController
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport

/// Task events never wait on a slow `/v2/apps`, and an older event never undoes a newer one.
@Suite struct EventOrderTests {
    static let web = "/web", backend = "web_10000"

    func app(_ tasks: [(String, Int)]) -> MarathonApp { harnessApp(Self.web, port: 10000, tasks: tasks.map { ($0.0, $0.1) }) }

    @Test func taskEventsReachHAProxyWhileASnapshotFetchHangs() async throws {
        let h = try ControllerHarness(apps: [app([("web.1", 31001), ("web.2", 31002)])])
        h.start()
        try await eventually("the start-up pass") { h.haproxy.reloads == 1 }
        // Marathon's /v2/apps hangs; a resync is asked for meanwhile.
        h.source.hold()
        h.push(.resync("SIGHUP"))
        try await eventually("the fetch to hang") { h.source.waitingFetches == 1 }
        h.push(statusUpdate(Self.web, "web.2", .killed, port: 31002))
        h.push(statusUpdate(Self.web, "web.3", .running, port: 31003))
        try await eventually("both events applied while the fetch hangs") {
            h.haproxy.serving(Self.backend) == ["127.0.0.1:31001", "127.0.0.1:31003"]
        }
        #expect(h.source.waitingFetches == 1, "the fetch is still hanging")
        // The answer comes, made before Marathon knew of either change: the events are applied
        // on top of it, so neither is lost.
        h.source.release()
        try await eventually("the snapshot's full pass") { h.fullPasses.count == 2 }
        try await h.waitUntilIdle()
        #expect(h.haproxy.serving(Self.backend) == ["127.0.0.1:31001", "127.0.0.1:31003"])
        #expect(h.haproxy.reloads == 1)
        await h.stop()
    }

    @Test func aFailedFetchKeepsTheEventsThatArrivedMeanwhile() async throws {
        let h = try ControllerHarness(apps: [app([("web.1", 31001), ("web.2", 31002)])])
        h.start()
        try await eventually("the start-up pass") { h.haproxy.reloads == 1 }
        h.source.hold()
        h.source.fail("HTTP 503")
        h.push(.resync("periodic"))
        try await eventually("the fetch to hang") { h.source.waitingFetches == 1 }
        h.push(statusUpdate(Self.web, "web.1", .killed, port: 31001))
        try await eventually("the kill applied") { h.haproxy.serving(Self.backend) == ["127.0.0.1:31002"] }
        h.source.release()
        try await eventually("the failure seen") {
            h.controller.activity.all.contains { if case .fetchFailed = $0 { true } else { false } }
        }
        try await h.waitUntilIdle()
        #expect(h.haproxy.serving(Self.backend) == ["127.0.0.1:31002"], "the failed fetch drops no event")
        await h.stop()
    }

    @Test func aStaleRunningAfterKilledDoesNotBringTheTaskBack() async throws {
        let h = try ControllerHarness(apps: [app([("web.1", 31001), ("web.2", 31002)])])
        h.start()
        try await eventually("the start-up pass") { h.haproxy.reloads == 1 }
        h.push(statusUpdate(Self.web, "web.2", .killed, port: 31002, at: "2026-01-01T00:00:02.000Z"))
        try await eventually("the kill applied") { h.haproxy.serving(Self.backend) == ["127.0.0.1:31001"] }
        h.push(statusUpdate(Self.web, "web.2", .running, port: 31002, at: "2026-01-01T00:00:01.000Z"))
        try await h.waitUntilIdle()
        #expect(h.haproxy.serving(Self.backend) == ["127.0.0.1:31001"])
        #expect(h.logged(.info, "stale event ignored"))
        // Even a snapshot taken before Marathon knew keeps it out (Mesos never reuses a task id).
        h.push(.resync("SIGHUP"))
        try await eventually("the resync") { h.fullPasses.count == 2 }
        try await h.waitUntilIdle()
        #expect(h.haproxy.serving(Self.backend) == ["127.0.0.1:31001"])
        await h.stop()
    }
}

/// The model's ordering rules, on values.
@Suite struct ClusterModelTests {
    func update(_ task: String, _ state: TaskState, at ts: String? = nil) -> ClusterModel.Event {
        .status(StatusUpdate(taskId: task, appId: "/a", taskStatus: state, host: "127.0.0.1", ports: [1000], timestamp: ts))
    }

    func model() -> ClusterModel {
        var m = ClusterModel()
        m.replace(with: [MarathonApp(id: "/a", servicePorts: [10000],
                                     tasks: [MarathonTask(id: "t1", appId: "/a", host: "127.0.0.1", ports: [1000], state: .running)])])
        return m
    }

    @Test func olderTimestampsAndBackwardStatesAreStale() {
        var m = model()
        #expect(m.apply(update("t1", .killing, at: "2026-01-01T00:00:05Z")) == .changed(appId: "/a"))
        if case .stale = m.apply(update("t1", .running, at: "2026-01-01T00:00:04.999Z")) {} else { Issue.record("older event applied") }
        if case .stale = m.apply(update("t1", .running)) {} else { Issue.record("killing → running without timestamps applied") }
        #expect(m.apply(update("t1", .killed)) == .changed(appId: "/a"))
        if case .stale = m.apply(update("t1", .running, at: "2026-01-01T00:10:00Z")) {} else { Issue.record("a terminated task came back") }
        #expect(m.apps["/a"]?.tasks.isEmpty == true)
    }

    @Test func unreachableTasksMayComeBack() {
        var m = model()
        #expect(m.apply(update("t1", .unreachable)) == .changed(appId: "/a"))
        #expect(m.apply(update("t1", .running)) == .changed(appId: "/a"))
    }

    @Test func eventsDuringASnapshotAreReplayedOverIt() {
        var m = model()
        m.beginSnapshot()
        _ = m.apply(update("t2", .running))
        _ = m.apply(update("t1", .killed))
        let (_, again) = m.replace(with: [MarathonApp(id: "/a", servicePorts: [10000],
                                                      tasks: [MarathonTask(id: "t1", appId: "/a", host: "127.0.0.1", ports: [1000])])])
        #expect(!again)
        #expect(m.apps["/a"]?.tasks.map(\.id) == ["t2"])
    }

    @Test func aReplayedEventForAnAppTheSnapshotLacksAsksForAnotherSnapshot() {
        var m = model()
        m.beginSnapshot()
        _ = m.apply(.status(StatusUpdate(taskId: "n1", appId: "/new", taskStatus: .running, host: "127.0.0.1", ports: [1])))
        #expect(m.replace(with: []).needsAnotherSnapshot)
    }

    @Test func timestampsParseAsMarathonWritesThem() {
        #expect(ClusterModel.milliseconds("1970-01-01T00:00:00.000Z") == 0)
        #expect(ClusterModel.milliseconds("2014-03-01T23:29:30.158Z") == 1_393_716_570_158)
        #expect(ClusterModel.milliseconds("2014-03-01T23:29:30Z") == 1_393_716_570_000)
        #expect(ClusterModel.milliseconds("2014-03-01T23:29:30.1Z") == 1_393_716_570_100)
        #expect(ClusterModel.milliseconds("2014-03-01T23:29:30.123456Z") == 1_393_716_570_123)
        for bad in ["", "yesterday", "2014-13-01T00:00:00Z", "2014-03-01T23:29:30.Z", "2014-03-01T23:29:30+01:00"] {
            #expect(ClusterModel.milliseconds(bad) == nil, "\(bad)")
        }
    }
}

/// The input queue: coalescing, bounds and debounce, on a manual clock.
@Suite struct InputQueueTests {
    func update(_ task: String, _ state: TaskState, at ts: String? = nil) -> ControllerInput {
        .statusUpdate(StatusUpdate(taskId: task, appId: "/app", taskStatus: state, host: "127.0.0.1", ports: [31000], timestamp: ts))
    }

    @Test func aBurstIsOneBatchOfEachTasksNewestEvent() {
        let time = ManualTime(now: 100)
        let q = InputQueue(time: time)
        for i in 0..<10_000 {
            let state: TaskState = i >= 9_950 ? .running : (i % 2 == 0 ? .starting : .staging)
            q.push(update("t\(i % 50)", state))
        }
        let batch = q.drain()
        #expect(batch.inputs == 10_000)
        #expect(batch.events.count == 50, "memory is bounded by the number of distinct tasks")
        #expect(batch.events.allSatisfy { if case .status(let u) = $0 { u.taskStatus == .running } else { false } })
        #expect(batch.oldestEventAt == 100)
        #expect(q.drain().isEmpty)
    }

    @Test func coalescingKeepsWhatTheModelWouldKeep() {
        let q = InputQueue(time: ManualTime())
        q.push(update("t", .killed))
        q.push(update("t", .running))
        q.push(update("u", .running, at: "2026-01-01T00:00:02Z"))
        q.push(update("u", .killing, at: "2026-01-01T00:00:01Z"))
        let states = q.drain().events.compactMap { if case .status(let u) = $0 { u.taskStatus } else { nil } }
        #expect(states == [.killed, .running])
    }

    @Test func moreDistinctTasksThanTheBoundBecomeAResync() {
        let q = InputQueue(maxPending: 1_000, time: ManualTime())
        for i in 0..<10_000 { q.push(update("task-\(i)", .running)) }
        let batch = q.drain()
        #expect(batch.events.count <= 1_000)
        #expect(batch.resync == "event flood: more than 1000 tasks changed in one batch")
    }

    @Test func structuralEventsAreDebouncedWithABoundedDelay() {
        let time = ManualTime(now: 100)
        let q = InputQueue(debounce: 0.05, time: time)
        for _ in 0..<1_000 {
            q.push(.structureChanged("api_post_event"))
            time.advance(by: 0.00001)
        }
        #expect(q.nextDeadline == 100.05, "more events in the window do not move the deadline")
        #expect(q.drain().resync == nil)
        time.advance(to: 100.05)
        #expect(q.drain().resync == "api_post_event event")
        #expect(q.drain().isEmpty)
    }
}

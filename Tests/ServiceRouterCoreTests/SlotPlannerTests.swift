import Testing
@testable import ServiceRouterCore

/// Slot assignment and the minimal runtime commands, against HAProxy's live slots.
@Suite struct SlotPlannerTests {
    static let be = "web_10000"

    func desired(_ services: Service...) -> DesiredState { DesiredState(services: services) }

    /// `s1...sN` of one backend: given slots carry what the dictionary says, the others are free.
    func liveBackend(_ backend: String = be, count: Int, _ slots: [Int: (String, Int, Int)] = [:],
                     uweights: [Int: Int] = [:]) -> [LiveServer] {
        (1...count).map { n in
            if let (addr, port, flags) = slots[n] {
                return liveSlot(backend, n, addr, port, flags: flags, uweight: uweights[n] ?? 1)
            }
            return liveSlot(backend, n, flags: Flags.freeSlot, uweight: uweights[n] ?? 1)
        }
    }

    func onlyBackend(_ plan: ReconcilePlan) throws -> BackendPlan {
        #expect(plan.backends.count == 1)
        return try #require(plan.backends.first)
    }

    let A = server("web.a", "10.0.0.1", 31001)
    let B = server("web.b", "10.0.0.2", 31002)
    let C = server("web.c", "10.0.0.3", 31003)
    let D = server("web.d", "10.0.0.4", 31004)
    var web: ProxyName { pname(Self.be) }
    func s(_ n: Int) -> ProxyName { pname("s\(n)") }

    // MARK: - Pure helpers

    @Test(arguments: [(8, 0, 8), (8, 8, 8), (8, 9, 14), (0, 0, 1), (1, 1, 1), (1, 2, 3), (2, 3, 5), (10, 20, 30),
                      (4, 5, 8), (100, 3, 100), (0, 1, 2)])
    func slotCountGrowsToOneAndAHalfTimesTheTasks(_ minimum: Int, _ tasks: Int, _ expected: Int) {
        #expect(SlotPlanner.slotCount(minimum: minimum, tasks: tasks) == expected)
    }

    @Test(arguments: [("s1", 1), ("s12", 12), ("s100000", 100_000), ("s0", nil), ("s01", nil), ("s-1", nil), ("S1", nil),
                      ("s", nil), ("x1", nil), ("s1a", nil), ("srv1", nil), ("s1.0", nil), ("s 1".replacingOccurrences(of: " ", with: "_"), nil)] as [(String, Int?)])
    func slotNumbers(_ name: String, _ expected: Int?) {
        #expect(SlotPlanner.slotNumber(pname(name)) == expected)
    }

    @Test func slotNamesAndPlaceholder() {
        #expect(SlotPlanner.slotName(7).text == "s7")
        #expect(SlotPlanner.placeholder.description == "127.0.0.1:1")
    }

    // MARK: - Fresh backends

    @Test func freshBackendGetsMinimumSlotsInTaskOrder() throws {
        let plan = SlotPlanner.plan(desired: desired(makeService(servers: [A, B, C])), live: LiveState())
        let b = try onlyBackend(plan)
        #expect(b.backend == web)
        #expect(b.slotCount == 8)
        #expect(b.slots == [A, B, C, nil, nil, nil, nil, nil])
        #expect(b.commands.isEmpty, "nothing is live: the config carries it all")
        #expect(b.freedSlots.isEmpty)
        #expect(b.structureChanged)
        #expect(plan.commands.isEmpty)
        #expect(plan.slotCounts == [web: 8])
    }

    @Test func freshBackendWithMoreTasksThanTheMinimum() throws {
        let servers = (1...10).map { server("t\($0 < 10 ? "0" : "")\($0)", "10.0.1.\($0)", 31000) }
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(servers: servers)), live: LiveState()))
        #expect(b.slotCount == 15)
        #expect(Array(b.slots.prefix(10)) == servers)
        #expect(b.slots.suffix(5).allSatisfy { $0 == nil })
    }

    @Test func emptyServiceStillHasASlot() throws {
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 0)), live: LiveState()))
        #expect(b.slotCount == 1)
        #expect(b.slots == [nil])
    }

    // MARK: - Adoption

    @Test func adoptsLiveSlotsByAddressWithNoCommand() throws {
        let live = LiveState(servers: liveBackend(count: 8, [5: ("10.0.0.1", 31001, Flags.ready), 2: ("10.0.0.2", 31002, Flags.readyAfterDisabled)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(servers: [A, B])), live: live))
        #expect(b.slotCount == 8)
        #expect(b.slots[4] == A)
        #expect(b.slots[1] == B)
        #expect(b.slots.compactMap { $0 }.count == 2)
        #expect(b.commands == [], "nothing changed → no command")
        #expect(!b.structureChanged)
        #expect(b.freedSlots.isEmpty)
    }

    @Test func adoptionIsIndependentOfLiveOrder() throws {
        let servers = liveBackend(count: 8, [3: ("10.0.0.1", 31001, 0), 7: ("10.0.0.3", 31003, 0)])
        let d = desired(makeService(servers: [A, B, C]))
        let p1 = SlotPlanner.plan(desired: d, live: LiveState(servers: servers))
        let p2 = SlotPlanner.plan(desired: d, live: LiveState(servers: servers.reversed()))
        #expect(p1 == p2)
        let b = try onlyBackend(p1)
        #expect(b.slots[2] == A)
        #expect(b.slots[6] == C)
        #expect(b.slots[0] == B, "the new task takes the lowest never-freed slot")
        #expect(b.commands == [.setAddress(backend: web, server: s(1), endpoint: B.endpoint),
                               .setState(backend: web, server: s(1), state: .ready)])
    }

    @Test func drainingTaskInADrainingSlotNeedsNothing() throws {
        let live = LiveState(servers: liveBackend(count: 4, [1: ("10.0.0.2", 31002, Flags.drain), 2: ("10.0.0.1", 31001, Flags.drainAfterDisabled)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 4, servers: [
            server("web.b", "10.0.0.2", 31002, .drain), server("web.a", "10.0.0.1", 31001, .drain)])), live: live))
        #expect(b.commands == [])
    }

    @Test func ipv6TaskAddressAdoptsTheSlotHAProxyReports() throws {
        // HAProxy prints inet_ntop's text; the task may be written differently.
        var app = makeApp("/v6", ports: [10000], tasks: [makeTask("v6.1", app: "/v6", ports: [8080], ips: ["FE80:0:0:0:0:0:0:1"])])
        app.networking = .ipPerTask
        let d = DesiredStateBuilder.build(apps: [app], options: RoutingOptions(groups: ["*"], minSlots: 2))
        let live = LiveState(servers: [liveSlot("v6_10000", 1, flags: Flags.freeSlot), liveSlot("v6_10000", 2, "fe80::1", 8080)])
        let b = try onlyBackend(SlotPlanner.plan(desired: d, live: live))
        #expect(b.slots[1]?.taskId == "v6.1")
        #expect(b.commands == [])
    }

    // MARK: - Replacing tasks

    @Test func replacedTaskFreesItsSlotAndTheNewOneTakesTheLeastRecentlyFreed() throws {
        let live = LiveState(servers: liveBackend(count: 8, [1: ("10.0.0.1", 31001, 0), 2: ("10.0.0.2", 31002, 0)]))
        var history = SlotHistory()
        history.freedAt[web] = [3: 100, 4: 50, 5: 70, 6: 90, 7: 95, 8: 99]
        let plan = SlotPlanner.plan(desired: desired(makeService(servers: [A, C])), live: live, history: history, now: 200)
        let b = try onlyBackend(plan)
        #expect(b.slots == [A, nil, nil, C, nil, nil, nil, nil])
        #expect(b.freedSlots == [2])
        #expect(plan.commands == [
            .setState(backend: web, server: s(2), state: .maint),
            .setAddress(backend: web, server: s(4), endpoint: C.endpoint),
            .setState(backend: web, server: s(4), state: .ready),
        ])
        #expect(!b.structureChanged)
    }

    @Test func neverFreedSlotsComeBeforeRecentlyFreedOnes() throws {
        let live = LiveState(servers: liveBackend(count: 4, [1: ("10.0.0.1", 31001, 0)]))
        var history = SlotHistory()
        history.freedAt[web] = [2: 10, 3: 5]
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 4, servers: [A, B, C])), live: live, history: history))
        #expect(b.slots == [A, nil, C, B], "s4 was never freed, then s3 (freed at 5) before s2 (freed at 10)")
    }

    @Test func slotFreedInThisPlanIsTheLastResort() throws {
        // Two slots, both busy: B leaves, C arrives. Only s2 is free: C goes there directly.
        let live = LiveState(servers: liveBackend(count: 2, [1: ("10.0.0.1", 31001, 0), 2: ("10.0.0.2", 31002, 0)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 2, servers: [A, C])), live: live))
        #expect(b.slots == [A, C])
        #expect(b.commands == [.setAddress(backend: web, server: s(2), endpoint: C.endpoint)])
        #expect(b.freedSlots == [])
        // With a third, free slot, C goes there and s2 is taken out of service.
        let live3 = LiveState(servers: liveBackend(count: 3, [1: ("10.0.0.1", 31001, 0), 2: ("10.0.0.2", 31002, 0)]))
        let b3 = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 2, servers: [A, C])), live: live3))
        #expect(b3.slots == [A, nil, C])
        #expect(b3.freedSlots == [2])
    }

    @Test func killingTaskIsDrainedThenFreed() throws {
        let app = { (state: TaskState?) in
            makeApp("/web", tasks: [makeTask("web.a", app: "/web", host: "10.0.0.1", ports: [31001]),
                                    makeTask("web.b", app: "/web", host: "10.0.0.2", ports: [31002], state: state)])
        }
        let options = RoutingOptions(groups: ["*"], minSlots: 4)
        var live = LiveState(servers: liveBackend(count: 4, [1: ("10.0.0.1", 31001, 0), 2: ("10.0.0.2", 31002, 0)]))
        let draining = SlotPlanner.plan(desired: DesiredStateBuilder.build(apps: [app(.killing)], options: options), live: live)
        #expect(draining.commands == [.setState(backend: web, server: s(2), state: .drain)])
        #expect(draining.backends[0].freedSlots == [])
        #expect(draining.backends[0].slots[1]?.routing == .drain)

        live = apply(draining.commands, to: live)
        #expect(live.backends[web]?[1].admin == .drain)
        let killed = SlotPlanner.plan(desired: DesiredStateBuilder.build(apps: [app(.killed)], options: options), live: live)
        #expect(killed.commands == [.setState(backend: web, server: s(2), state: .maint)])
        #expect(killed.backends[0].freedSlots == [2])
    }

    @Test func maintSlotStillCarryingTheAddressOnlyNeedsReady() throws {
        var history = SlotHistory()
        history.freedAt[web] = [3: 1000, 4: 1]
        let live = LiveState(servers: liveBackend(count: 4, [1: ("10.0.0.1", 31001, 0), 3: ("10.0.0.3", 31003, Flags.maint)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 4, servers: [A, C])), live: live, history: history))
        #expect(b.slots == [A, nil, C, nil], "the address match wins over least-recently-freed")
        #expect(b.commands == [.setState(backend: web, server: s(3), state: .ready)])
    }

    @Test func activeSlotWinsOverAMaintSlotWithTheSameAddress() throws {
        let live = LiveState(servers: liveBackend(count: 4, [1: ("10.0.0.1", 31001, Flags.maint), 3: ("10.0.0.1", 31001, 0)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 4, servers: [A])), live: live))
        #expect(b.slots == [nil, nil, A, nil])
        #expect(b.commands == [])
    }

    @Test func twoActiveSlotsWithOneAddressKeepTheFirstAndFreeTheOther() throws {
        let live = LiveState(servers: liveBackend(count: 3, [2: ("10.0.0.1", 31001, 0), 3: ("10.0.0.1", 31001, 0)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 3, servers: [A])), live: live))
        #expect(b.slots == [nil, A, nil])
        #expect(b.commands == [.setState(backend: web, server: s(3), state: .maint)])
    }

    @Test func slotWithAnUnparsableAddressIsReaddressed() throws {
        let one = LiveState(servers: [liveSlot(Self.be, 1, "agent1.example", 31001, flags: 0)])
        let b1 = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 1, servers: [A])), live: one))
        #expect(b1.slots == [A])
        #expect(b1.commands == [.setAddress(backend: web, server: s(1), endpoint: A.endpoint)])
        // With an idle slot next to it, the in-service slot with the unknown address is freed instead.
        let two = LiveState(servers: [liveSlot(Self.be, 1, "agent1.example", 31001, flags: 0), liveSlot(Self.be, 2, "-", 0, flags: Flags.freeSlot)])
        let b2 = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 2, servers: [A])), live: two))
        #expect(b2.slots == [nil, A])
        #expect(b2.commands == [.setState(backend: web, server: s(1), state: .maint),
                                .setAddress(backend: web, server: s(2), endpoint: A.endpoint),
                                .setState(backend: web, server: s(2), state: .ready)])
    }

    @Test func changedWeightIsReset() throws {
        let live = LiveState(servers: liveBackend(count: 3, [1: ("10.0.0.1", 31001, 0)], uweights: [1: 5, 2: 0, 3: 7]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 3, servers: [A, B])), live: live))
        #expect(b.commands == [
            .setWeight(backend: web, server: s(1), weight: 1),
            .setAddress(backend: web, server: s(2), endpoint: B.endpoint),
            .setState(backend: web, server: s(2), state: .ready),
            .setWeight(backend: web, server: s(2), weight: 1),
        ], "free slots keep whatever weight until they are used")
    }

    // MARK: - Growth

    @Test func growsWhenTasksExceedLiveSlots() throws {
        let tasks = (1...9).map { server("t\($0)", "10.0.2.\($0)", 31000) }
        let live = LiveState(servers: (1...8).map { liveSlot(Self.be, $0, "10.0.2.\($0)", 31000) })
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(servers: tasks)), live: live))
        #expect(b.slotCount == 14)
        #expect(b.structureChanged)
        #expect(Array(b.slots.prefix(9)) == tasks, "live tasks keep their slots; the new one takes s9")
        #expect(b.commands == [], "s9 does not exist yet: the reload's config carries it")
    }

    @Test func growsWhenTheMinimumRises() throws {
        let live = LiveState(servers: liveBackend(count: 8, [1: ("10.0.0.1", 31001, 0)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 12, servers: [A])), live: live))
        #expect(b.slotCount == 12)
        #expect(b.structureChanged)
        #expect(b.slots[0] == A)
    }

    @Test func neverShrinks() throws {
        let live = LiveState(servers: liveBackend(count: 14, [1: ("10.0.0.1", 31001, 0), 9: ("10.0.0.2", 31002, 0)]))
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(minimumSlots: 2, servers: [A, B])), live: live))
        #expect(b.slotCount == 14)
        #expect(!b.structureChanged)
        #expect(b.commands == [])
        #expect(b.slots[8] == B)
    }

    // MARK: - Foreign live backends

    @Test(arguments: [
        ["web1", "web2"], ["s1", "s3"], ["s1", "s1"], ["s0", "s1"], ["s1", "s2", "backup"], ["s01", "s2"],
    ])
    func liveServersNotNamedS1ToSNAreTreatedAsAbsent(_ names: [String]) throws {
        let live = LiveState(servers: names.enumerated().map { i, n in
            LiveServer(backend: web, name: pname(n), serverID: i + 1, address: "10.0.0.1", port: 31001)
        })
        let b = try onlyBackend(SlotPlanner.plan(desired: desired(makeService(servers: [A, B])), live: live))
        #expect(b.slotCount == 8)
        #expect(b.structureChanged)
        #expect(b.commands == [])
        #expect(b.slots.prefix(2) == [A, B])
    }

    // MARK: - Command order and determinism

    @Test func commandsAreFreesThenAddressesThenStates() throws {
        let other = pname("api_10001")
        let liveA = liveBackend(count: 3, [1: ("10.0.0.1", 31001, 0), 2: ("10.0.0.2", 31002, 0)], uweights: [1: 9])
        let liveB = liveBackend("api_10001", count: 3, [1: ("10.1.0.1", 31001, 0), 2: ("10.1.0.2", 31002, 0)], uweights: [1: 9])
        let web = makeService(minimumSlots: 3, servers: [A, C])
        let api = makeService("/api", port: 10001, minimumSlots: 3, servers: [server("api.a", "10.1.0.1", 31001), server("api.c", "10.1.0.3", 31003)])
        let plan = SlotPlanner.plan(desired: desired(web, api), live: LiveState(servers: liveA + liveB))
        #expect(plan.backends.map(\.backend) == [self.web, other])
        #expect(plan.backend(self.web)?.commands == [
            .setWeight(backend: self.web, server: s(1), weight: 1),
            .setState(backend: self.web, server: s(2), state: .maint),
            .setAddress(backend: self.web, server: s(3), endpoint: C.endpoint),
            .setState(backend: self.web, server: s(3), state: .ready),
        ])
        #expect(plan.commands == [
            .setState(backend: self.web, server: s(2), state: .maint),
            .setState(backend: other, server: s(2), state: .maint),
            .setAddress(backend: self.web, server: s(3), endpoint: C.endpoint),
            .setAddress(backend: other, server: s(3), endpoint: ep("10.1.0.3", 31003)),
            .setWeight(backend: self.web, server: s(1), weight: 1),
            .setState(backend: self.web, server: s(3), state: .ready),
            .setWeight(backend: other, server: s(1), weight: 1),
            .setState(backend: other, server: s(3), state: .ready),
        ])
    }

    @Test func backendsNotDesiredAreNotTouched() throws {
        let live = LiveState(servers: liveBackend("gone_1", count: 2, [1: ("10.9.9.9", 1, 0)]) + liveBackend(count: 2))
        let plan = SlotPlanner.plan(desired: desired(makeService(minimumSlots: 2, servers: [A])), live: live)
        #expect(plan.backends.map(\.backend) == [web])
        #expect(plan.commands.allSatisfy { $0.backend == web })
    }

    @Test func slotHistoryRecordsFreesAndForgetsReuse() throws {
        let live = LiveState(servers: liveBackend(count: 3, [1: ("10.0.0.1", 31001, 0), 2: ("10.0.0.2", 31002, 0)]))
        var history = SlotHistory()
        history.freedAt[web] = [3: 5]
        let plan = SlotPlanner.plan(desired: desired(makeService(minimumSlots: 3, servers: [A, C])), live: live, history: history)
        history.record(plan, at: 42)
        #expect(history.freedAt[web] == [2: 42], "s2 freed now; s3 is in use again")
        history.freedAt[pname("old_1")] = [1: 1]
        history.forget(backendsNotIn: [web])
        #expect(history.freedAt.keys.sorted() == [web])
    }

    /// Applies runtime commands to a live state the way HAProxy 2.6 does (see the captured
    /// `show servers state` fixtures: `state ready` clears the CLI maint/drain bits, not the config one).
    func apply(_ commands: [RuntimeCommand], to live: LiveState, sourceLocation: SourceLocation = #_sourceLocation) -> LiveState {
        var servers = live.backendOrder.flatMap { live.backends[$0] ?? [] }
        for c in commands {
            guard let b = c.backend, case let name? = Self.slotTarget(of: c),
                  let i = servers.firstIndex(where: { $0.backend == b && $0.name == name }) else {
                Issue.record("\(c): No such server.", sourceLocation: sourceLocation)
                continue
            }
            switch c {
            case let .setAddress(_, _, e):
                servers[i].address = e.ip.text
                servers[i].port = e.port.value
            case .setState(_, _, .ready): servers[i].adminFlags &= ~(0x01 | 0x08)
            case .setState(_, _, .drain): servers[i].adminFlags = (servers[i].adminFlags & ~0x01) | 0x08
            case .setState(_, _, .maint): servers[i].adminFlags |= 0x01
            case let .setWeight(_, _, w): servers[i].userWeight = w
            default: break
            }
        }
        return LiveState(servers: servers)
    }

    static func slotTarget(of c: RuntimeCommand) -> ProxyName? {
        switch c {
        case let .setAddress(_, s, _), let .setState(_, s, _), let .setWeight(_, s, _): s
        default: nil
        }
    }

    /// What a reload with the rendered config gives: every slot line as written, runtime state gone.
    func reloaded(_ plan: ReconcilePlan) -> LiveState {
        LiveState(servers: plan.backends.flatMap { b in
            b.slots.enumerated().map { i, d -> LiveServer in
                let e = d?.endpoint ?? SlotPlanner.placeholder
                let disabled = d?.routing != .serve
                return liveSlot(b.backend.text, i + 1, e.ip.text, e.port.value, flags: disabled ? Flags.freeSlot : Flags.ready)
            }
        })
    }

    @Test func planIsDeterministicAndConvergesOnRandomScenarios() throws {
        var rng = SplitMix64(seed: 2024)
        var withCommands = 0, withReload = 0, withFrees = 0
        let pool = (1...14).map { server("t\($0 < 10 ? "0" : "")\($0)", "10.3.0.\($0 % 7 + 1)", 31000 + $0) }
        for round in 0..<400 {
            var services: [Service] = []
            var liveServers: [LiveServer] = []
            var history = SlotHistory()
            for b in 0..<Int.random(in: 1...3, using: &rng) {
                let name = "b\(b)_\(10000 + b)"
                var chosen = pool.filter { _ in rng.chance(0.4) }
                chosen = chosen.map { var d = $0; d.taskId = "\(name).\(d.taskId)"; if rng.chance(0.15) { d.routing = .drain }; return d }
                services.append(makeService("/b\(b)", port: 10000 + b, minimumSlots: Int.random(in: 1...6, using: &rng), servers: chosen))
                if rng.chance(0.85) {
                    let count = Int.random(in: 1...10, using: &rng)
                    for n in 1...count {
                        let flags = rng.pick([Flags.freeSlot, Flags.freeSlot, Flags.ready, Flags.ready, Flags.drain, Flags.maint,
                                              Flags.readyAfterDisabled, Flags.drainAfterDisabled])
                        let e = flags == Flags.freeSlot ? SlotPlanner.placeholder : rng.pick(pool).endpoint
                        liveServers.append(liveSlot(name, n, e.ip.text, e.port.value, flags: flags, uweight: rng.chance(0.1) ? 3 : 1))
                        if rng.chance(0.3) { history.freedAt[pname(name), default: [:]][n] = Double(Int.random(in: 0...100, using: &rng)) }
                    }
                }
            }
            let d = DesiredState(services: services)
            let live = LiveState(servers: liveServers.shuffled(using: &rng))
            let plan = SlotPlanner.plan(desired: d, live: live, history: history, now: 1000)
            #expect(plan == SlotPlanner.plan(desired: d, live: LiveState(servers: liveServers), history: history, now: 1000),
                    "round \(round): the order of `show servers state` rows does not matter")
            try checkInvariants(plan, d, live, history, round: round)
            if !plan.commands.isEmpty { withCommands += 1 }
            if plan.backends.contains(where: \.structureChanged) { withReload += 1 }
            if plan.backends.contains(where: { !$0.freedSlots.isEmpty }) { withFrees += 1 }

            // Applying the commands (or reloading when the structure changed) reaches the plan:
            // planning again sends nothing and moves nothing.
            let after: LiveState
            if plan.backends.contains(where: \.structureChanged) {
                let fresh = reloaded(plan)
                let fix = SlotPlanner.plan(desired: d, live: fresh)
                #expect(fix.commands.allSatisfy { if case .setState(_, _, .drain) = $0 { true } else { false } },
                        "round \(round): after a reload only draining slots need a command: \(fix.commands)")
                after = apply(fix.commands, to: fresh)
            } else {
                after = apply(plan.commands, to: live)
            }
            let again = SlotPlanner.plan(desired: d, live: after, history: history, now: 2000)
            #expect(again.commands == [], "round \(round): \(again.commands)")
            for b in plan.backends {
                #expect(again.backend(b.backend)?.slots == b.slots, "round \(round): \(b.backend) moved tasks")
                #expect(again.backend(b.backend)?.structureChanged == false)
            }
        }
        // The generator reaches every path.
        #expect(withCommands > 100 && withReload > 100 && withFrees > 50, "\(withCommands) \(withReload) \(withFrees)")
    }

    func checkInvariants(_ plan: ReconcilePlan, _ d: DesiredState, _ live: LiveState, _ history: SlotHistory, round: Int) throws {
        // Frees, then addresses, then everything else.
        let phase = plan.commands.map { c -> Int in
            switch c {
            case .setState(_, _, .maint): 0
            case .setAddress: 1
            default: 2
            }
        }
        #expect(phase == phase.sorted(), "round \(round)")
        #expect(plan.commands.count == plan.backends.reduce(0) { $0 + $1.commands.count })

        for service in d.services {
            let b = try #require(plan.backend(service.backend))
            let liveSlots = live.backends[service.backend] ?? []
            let valid = !liveSlots.isEmpty && Set(liveSlots.compactMap { SlotPlanner.slotNumber($0.name) }) == Set(1...liveSlots.count)
                && liveSlots.allSatisfy { SlotPlanner.slotNumber($0.name) != nil }
            let needed = max(service.minimumSlots, service.servers.count)
            if valid, liveSlots.count >= needed {
                #expect(b.slotCount == liveSlots.count && !b.structureChanged, "round \(round)")
            } else {
                #expect(b.slotCount == SlotPlanner.slotCount(minimum: service.minimumSlots, tasks: service.servers.count), "round \(round)")
                #expect(b.structureChanged, "round \(round)")
            }
            #expect(b.slots.count == b.slotCount)
            // Every task exactly once.
            #expect(b.slots.compactMap { $0 }.sorted { $0.taskId < $1.taskId } == service.servers, "round \(round)")
            guard valid else {
                #expect(b.commands.isEmpty)
                continue
            }
            let byNumber = Dictionary(uniqueKeysWithValues: liveSlots.map { (SlotPlanner.slotNumber($0.name)!, $0) })
            // Commands only for live slots, and none that changes nothing.
            for c in b.commands {
                let target = try #require(Self.slotTarget(of: c))
                let n = try #require(SlotPlanner.slotNumber(target))
                let l = try #require(byNumber[n], "round \(round): command for a slot that is not live: \(c)")
                switch c {
                case let .setAddress(_, _, e): #expect(l.endpoint != e)
                case let .setState(_, _, st): #expect(l.admin != st)
                case let .setWeight(_, _, w): #expect(l.userWeight != w && w == l.initialWeight)
                default: Issue.record("unexpected \(c)")
                }
            }
            // A task already served by a live slot stays there (the lowest such slot, active ones first).
            for server in service.servers {
                let carrying = byNumber.keys.sorted().filter { byNumber[$0]!.endpoint == server.endpoint }
                let active = carrying.filter { byNumber[$0]!.admin != .maint }
                guard let expected = active.first ?? carrying.first else { continue }
                #expect(b.slots[expected - 1] == server, "round \(round): \(server.taskId) should stay in s\(expected)")
            }
            // New tasks: never into a slot freed by this plan while another is free, and into the
            // least recently freed ones.
            let freedAt = history.freedAt[service.backend] ?? [:]
            func key(_ n: Int) -> (Double, Int) { (freedAt[n] ?? -.infinity, n) }
            let adopted = Set((1...b.slotCount).filter { n in b.slots[n - 1].map { byNumber[n]?.endpoint == $0.endpoint } ?? false })
            let candidates = (1...b.slotCount).filter { !adopted.contains($0) }
            let busy = Set(candidates.filter { byNumber[$0].map { $0.admin != .maint } ?? false })
            let chosen = candidates.filter { b.slots[$0 - 1] != nil }
            let idle = candidates.filter { !busy.contains($0) }
            if chosen.contains(where: busy.contains) {
                #expect(idle.allSatisfy { b.slots[$0 - 1] != nil }, "round \(round): a busy slot was reused while s\(idle) were free")
            }
            for c in chosen where !busy.contains(c) {
                for u in idle where b.slots[u - 1] == nil {
                    #expect(key(c) <= key(u), "round \(round): s\(c) was chosen over the less recently freed s\(u)")
                }
            }
        }
    }
}

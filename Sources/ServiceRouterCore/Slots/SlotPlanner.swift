/// Slot planning: which task sits in which pre-allocated server slot of a backend, how many slots
/// a backend has, and the minimal runtime commands that turn HAProxy's live slots into that.
///
/// Rules (docs/architecture.md, "Slots"):
/// - Slots are named `s1`...`sN`. A free slot has a placeholder address and is in maintenance.
/// - A task keeps its slot for its whole life: live slots are matched to tasks by address, so a
///   controller that starts next to a running HAProxy adopts what it finds instead of reshuffling.
/// - A new task takes the free slot that was freed longest ago (a slot freed in the same batch
///   only as a last resort): HAProxy may still hold connections to the old address.
/// - Slot count: `max(minimumSlots, ...)`; a live backend keeps its count while the tasks fit, and
///   only grows (one reload) when they do not, to 1.5× the tasks it must hold.
public struct BackendPlan: Sendable, Equatable {
    public var backend: ProxyName
    public var slotCount: Int
    /// `slots[i]` is slot `s(i+1)`: the task it serves, or nil when free.
    public var slots: [DesiredServer?]
    public var commands: [RuntimeCommand]
    /// Slot numbers (1-based) taken out of service by this plan.
    public var freedSlots: [Int]
    /// The backend exists live with a different slot count (or not at all).
    public var structureChanged: Bool
    /// Slots beyond the live backend's (it outgrew them), to add at runtime as dynamic servers
    /// when HAProxy can (their commands come from the pass planner, which has the rendered
    /// server lines); empty for a backend that is not live.
    public var addedSlots: [Int] = []
    /// The live backend's slot count, when it has one.
    public var liveSlotCount: Int?
}

public struct ReconcilePlan: Sendable, Equatable {
    public var backends: [BackendPlan] {
        didSet { index = Self.index(backends) }
    }
    /// Every runtime command, in order: frees, then address changes, then state changes.
    public var commands: [RuntimeCommand]
    /// Position of each backend's first plan: the renderer looks up every backend, which was a
    /// linear search (half a million name comparisons for 1,000 backends).
    private var index: [ProxyName: Int]

    public init(backends: [BackendPlan], commands: [RuntimeCommand]) {
        self.backends = backends
        self.commands = commands
        self.index = Self.index(backends)
    }

    /// Gives each backend whose slots equal those of `previous` (the plan in force) that plan's
    /// very array: plans, the render cache and the status snapshot outlive a pass, and at 10,000
    /// tasks a second equal copy of 25,000 slots is megabytes. Equal arrays then also compare in
    /// constant time.
    public mutating func shareSlots(with previous: [ProxyName: BackendPlan]) {
        var out = backends
        var shared = false
        for i in out.indices {
            if let p = previous[out[i].backend], p.slots == out[i].slots {
                out[i].slots = p.slots
                shared = true
            }
        }
        if shared { backends = out }
    }

    private static func index(_ backends: [BackendPlan]) -> [ProxyName: Int] {
        var index = [ProxyName: Int](minimumCapacity: backends.count)
        for (i, b) in backends.enumerated() where index[b.backend] == nil { index[b.backend] = i }
        return index
    }

    public func backend(_ name: ProxyName) -> BackendPlan? { index[name].map { backends[$0] } }
    public var slotCounts: [ProxyName: Int] { Dictionary(uniqueKeysWithValues: backends.map { ($0.backend, $0.slotCount) }) }
}

/// When each slot was last freed, remembered by the controller between batches.
public struct SlotHistory: Sendable, Equatable {
    public var freedAt: [ProxyName: [Int: Double]] = [:]
    public init() {}

    public mutating func record(_ plan: ReconcilePlan, at now: Double) {
        for b in plan.backends {
            for s in b.freedSlots { freedAt[b.backend, default: [:]][s] = now }
            // Slots given to tasks are no longer free.
            for (i, server) in b.slots.enumerated() where server != nil { freedAt[b.backend]?[i + 1] = nil }
        }
    }

    public mutating func forget(backendsNotIn names: Set<ProxyName>) {
        freedAt = freedAt.filter { names.contains($0.key) }
    }
}

public enum SlotPlanner {
    public static let placeholder = Endpoint(ip: try! IPAddress("127.0.0.1"), port: try! Port(1))

    public static func slotName(_ number: Int) -> ProxyName { ProxyName(unchecked: "s\(number)") }

    /// The slot number of a name `s<N>` (N > 0, written without a sign or leading zero), or nil.
    public static func slotNumber(_ name: ProxyName) -> Int? {
        // On bytes: this runs for every live server of every full pass (25,000 at 10,000 tasks).
        var n = 0, digits = 0
        for (i, b) in name.text.utf8.enumerated() {
            if i == 0 {
                guard b == 0x73 else { return nil }  // "s"
                continue
            }
            guard b >= 0x30 && b <= 0x39, !(digits == 0 && b == 0x30) else { return nil }
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (v, o2) = m.addingReportingOverflow(Int(b - 0x30))
            guard !o1, !o2 else { return nil }
            n = v
            digits += 1
        }
        return digits > 0 ? n : nil
    }

    /// Plans every desired backend against the live state.
    public static func plan(desired: DesiredState, live: LiveState, history: SlotHistory = SlotHistory(), now: Double = 0) -> ReconcilePlan {
        var backends: [BackendPlan] = []
        for service in desired.services {
            backends.append(planBackend(service, live: live.backends[service.backend],
                                        freedAt: history.freedAt[service.backend] ?? [:]))
        }
        // Order: frees first (so nothing is routed to a dead task a moment longer than needed),
        // then new addresses, then the state changes that put slots into service.
        var frees: [RuntimeCommand] = [], addrs: [RuntimeCommand] = [], states: [RuntimeCommand] = []
        for b in backends {
            for c in b.commands {
                switch c {
                case .setState(_, _, .maint): frees.append(c)
                case .setAddress: addrs.append(c)
                default: states.append(c)
                }
            }
        }
        return ReconcilePlan(backends: backends, commands: frees + addrs + states)
    }

    /// The number of slots a backend needs for `taskCount` tasks when it has none yet or too few.
    public static func slotCount(minimum: Int, tasks: Int) -> Int {
        tasks <= minimum ? max(1, minimum) : max(minimum, (tasks * 3 + 1) / 2)
    }

    static func planBackend(_ service: Service, live: [LiveServer]?, freedAt: [Int: Double]) -> BackendPlan {
        // Live slots by number (`liveSlots[n]` is slot n, index 0 unused) with their addresses
        // parsed once; a backend whose servers are not exactly s1..sK is treated as absent.
        var liveSlots: [LiveServer?] = []
        var liveEndpoints: [Endpoint?] = []
        var liveCount: Int?
        if let live, !live.isEmpty {
            var byNumber = [LiveServer?](repeating: nil, count: live.count + 1)
            var exact = true
            for s in live {
                guard let n = slotNumber(s.name), n <= live.count, byNumber[n] == nil else {
                    exact = false
                    break
                }
                byNumber[n] = s
            }
            if exact {
                liveSlots = byNumber
                liveEndpoints = byNumber.map { $0?.endpoint }
                liveCount = live.count
            }
        }
        func liveSlot(_ n: Int) -> LiveServer? { n < liveSlots.count ? liveSlots[n] : nil }
        func liveEndpoint(_ n: Int) -> Endpoint? { n < liveEndpoints.count ? liveEndpoints[n] : nil }

        let servers = service.servers
        let needed = max(service.minimumSlots, servers.count)
        let count: Int
        if let liveCount, liveCount >= needed {
            count = liveCount
        } else {
            count = slotCount(minimum: service.minimumSlots, tasks: servers.count)
        }

        var slots: [DesiredServer?] = Array(repeating: nil, count: count)
        var placed = Set<Endpoint>(minimumCapacity: servers.count)
        // The first server of each address (index into `servers`).
        var byEndpoint = [Endpoint: Int](minimumCapacity: servers.count)
        for (i, d) in servers.enumerated() where byEndpoint[d.endpoint] == nil { byEndpoint[d.endpoint] = i }

        // 1. Keep tasks in the live slots that already serve their address (active ones first,
        //    then slots in maintenance that still carry the address: no address change needed).
        for activePass in [true, false] {
            for n in 1...count {
                guard slots[n - 1] == nil, let l = liveSlot(n), let e = liveEndpoint(n),
                      (l.admin != .maint) == activePass, let d = byEndpoint[e], !placed.contains(e) else { continue }
                slots[n - 1] = servers[d]
                placed.insert(e)
            }
        }
        // 2. New tasks take free slots: freed longest ago first; slots that serve something now
        //    (freed by this very plan) last. (Sorted only when a task needs one.)
        if servers.contains(where: { !placed.contains($0.endpoint) }) {
            var free: [(busy: Int, freedAt: Double, n: Int)] = []
            for n in 1...count where slots[n - 1] == nil {
                let busy = liveSlot(n).map { $0.admin != .maint } ?? false
                free.append((busy ? 1 : 0, freedAt[n] ?? -.infinity, n))
            }
            free.sort { ($0.busy, $0.freedAt, $0.n) < ($1.busy, $1.freedAt, $1.n) }
            var freeIterator = free.makeIterator()
            for d in servers where !placed.contains(d.endpoint) {
                guard let n = freeIterator.next()?.n else { break }  // cannot happen: count >= servers
                slots[n - 1] = d
                placed.insert(d.endpoint)
            }
        }

        // 3. Commands, only for slots that exist live.
        var commands: [RuntimeCommand] = []
        var freed: [Int] = []
        for n in 1...count {
            guard let l = liveSlot(n) else { continue }
            let name = slotName(n)
            if let d = slots[n - 1] {
                if liveEndpoint(n) != d.endpoint {
                    commands.append(.setAddress(backend: service.backend, server: name, endpoint: d.endpoint))
                }
                let want: LiveServer.Admin = d.routing == .serve ? .ready : .drain
                if l.admin != want {
                    commands.append(.setState(backend: service.backend, server: name, state: want))
                }
                if let cp = d.checkPort, l.checkPort != cp.value {
                    commands.append(.setCheckPort(backend: service.backend, server: name, port: cp))
                }
                // A slot's weight belongs to the config; a weight changed by hand is reset.
                if l.userWeight != l.initialWeight {
                    commands.append(.setWeight(backend: service.backend, server: name, weight: l.initialWeight))
                }
            } else if l.admin != .maint {
                commands.append(.setState(backend: service.backend, server: name, state: .maint))
                freed.append(n)
            }
        }
        var plan = BackendPlan(backend: service.backend, slotCount: count, slots: slots, commands: commands,
                               freedSlots: freed, structureChanged: liveCount != count)
        plan.liveSlotCount = liveCount
        if let liveCount, count > liveCount { plan.addedSlots = Array((liveCount + 1)...count) }
        return plan
    }
}

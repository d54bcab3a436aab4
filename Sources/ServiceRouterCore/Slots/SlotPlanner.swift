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
}

public struct ReconcilePlan: Sendable, Equatable {
    public var backends: [BackendPlan]
    /// Every runtime command, in order: frees, then address changes, then state changes.
    public var commands: [RuntimeCommand]

    public init(backends: [BackendPlan], commands: [RuntimeCommand]) {
        self.backends = backends
        self.commands = commands
    }

    public func backend(_ name: ProxyName) -> BackendPlan? { backends.first { $0.backend == name } }
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

    /// The slot number of a name `s<N>`, or nil.
    public static func slotNumber(_ name: ProxyName) -> Int? {
        let t = name.text
        guard t.hasPrefix("s"), let n = Int(t.dropFirst()), n > 0, "s\(n)" == t else { return nil }
        return n
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
        // Live slots by number; a backend whose servers are not exactly s1..sK is treated as absent.
        var liveSlots: [Int: LiveServer] = [:]
        var liveCount: Int?
        if let live {
            let numbers = live.compactMap { slotNumber($0.name) }
            if numbers.count == live.count, Set(numbers) == Set(1...max(1, live.count)), !live.isEmpty {
                for s in live { liveSlots[slotNumber(s.name)!] = s }
                liveCount = live.count
            }
        }
        let servers = service.servers
        let needed = max(service.minimumSlots, servers.count)
        let count: Int
        if let liveCount, liveCount >= needed {
            count = liveCount
        } else {
            count = slotCount(minimum: service.minimumSlots, tasks: servers.count)
        }

        var slots: [DesiredServer?] = Array(repeating: nil, count: count)
        var placed = Set<Endpoint>()
        let byEndpoint = Dictionary(servers.map { ($0.endpoint, $0) }, uniquingKeysWith: { a, _ in a })

        // 1. Keep tasks in the live slots that already serve their address (active ones first,
        //    then slots in maintenance that still carry the address: no address change needed).
        for activePass in [true, false] {
            for n in 1...count {
                guard slots[n - 1] == nil, let l = liveSlots[n], let e = l.endpoint,
                      (l.admin != .maint) == activePass, let d = byEndpoint[e], !placed.contains(e) else { continue }
                slots[n - 1] = d
                placed.insert(e)
            }
        }
        // 2. New tasks take free slots: freed longest ago first; slots that serve something now
        //    (freed by this very plan) last.
        let free = (1...count).filter { slots[$0 - 1] == nil }.sorted { a, b in
            func key(_ n: Int) -> (Int, Double, Int) {
                let busy = liveSlots[n].map { $0.admin != .maint } ?? false
                return (busy ? 1 : 0, freedAt[n] ?? -.infinity, n)
            }
            return key(a) < key(b)
        }
        var freeIterator = free.makeIterator()
        for d in servers where !placed.contains(d.endpoint) {
            guard let n = freeIterator.next() else { break }  // cannot happen: count >= servers
            slots[n - 1] = d
            placed.insert(d.endpoint)
        }

        // 3. Commands, only for slots that exist live.
        var commands: [RuntimeCommand] = []
        var freed: [Int] = []
        for n in 1...count {
            guard let l = liveSlots[n] else { continue }
            let name = slotName(n)
            if let d = slots[n - 1] {
                if l.endpoint != d.endpoint {
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
        return BackendPlan(backend: service.backend, slotCount: count, slots: slots, commands: commands,
                           freedSlots: freed, structureChanged: liveCount != count)
    }
}

/// The event fast path's decisions: a task event touches one app; its services get their
/// servers rebuilt from the model and planned against those backends' live slots only. Which
/// services exist, their ports, vhosts and conflicts stay those of the last full pass — anything
/// the fast path cannot do alone becomes a `FullPassReason`.
public enum FastPath {
    /// Services with their servers rebuilt from the current tasks of `apps`: one app, or every
    /// colour of a blue/green deployment group (which of their tasks drain depends on all of them).
    public static func rebuild(_ apps: [MarathonApp], current: [Service], routing: RoutingOptions, health: [String: Bool],
                               resolvedHosts: [String: IPAddress]) -> Result<[Service], FullPassReason> {
        let rebuilt = DesiredStateBuilder.build(apps: apps, options: routing, context: BuildContext(
            resolvedHosts: resolvedHosts, lastKnownHealth: health, incumbentBackends: Set(current.map(\.backend))))
        var out: [Service] = []
        out.reserveCapacity(current.count)
        for var s in current {
            guard let fresh = rebuilt.services.first(where: { $0.backend == s.backend }) else {
                return .failure(.backendChangedShape(s.backend))
            }
            s.servers = fresh.servers
            out.append(s)
        }
        return .success(out)
    }

    public enum Decision: Sendable, Equatable {
        /// Send these commands (possibly none) and adopt the plan.
        case apply(ReconcilePlan)
        case fullPass(FullPassReason)
    }

    /// Plans the rebuilt services against what HAProxy reported for their backends, read on one
    /// connection with the worker's identity (`live`), which must be the worker the last full
    /// pass configured.
    public static func plan(_ services: [Service], live: LiveView, expected: HAProxyIdentity?, ledger: SlotLedger,
                            now: Double, reloadAlways: Bool) -> Decision {
        guard live.identity == expected else {
            return .fullPass(.haproxyChanged(from: expected?.pid, to: live.identity.pid))
        }
        let plan = SlotPlanner.plan(desired: DesiredState(services: services), live: live.servers,
                                    history: ledger.history, now: now)
        if let grown = plan.backends.first(where: \.structureChanged) {
            return .fullPass(.slotsExhausted(grown.backend, needed: grown.slotCount))
        }
        if reloadAlways, !plan.commands.isEmpty { return .fullPass(.reloadAlways) }
        return .apply(plan)
    }
}

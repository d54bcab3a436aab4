/// The slot assignment in force, by backend, and when each slot was last freed: what the slot
/// planner needs from earlier passes. A task keeps its slot; a new task takes the slot that
/// rested longest.
public struct SlotLedger: Sendable, Equatable {
    public private(set) var assignment: [ProxyName: BackendPlan] = [:]
    public private(set) var history = SlotHistory()

    public init() {}

    /// Takes a plan as the assignment in force. A full pass (`replacingAll`) plans every backend,
    /// so backends it does not name are forgotten; the fast path plans only some.
    public mutating func adopt(_ plan: ReconcilePlan, at now: Double, replacingAll: Bool) {
        history.record(plan, at: now)
        if replacingAll {
            var fresh = [ProxyName: BackendPlan](minimumCapacity: plan.backends.count)
            for b in plan.backends { fresh[b.backend] = b }
            assignment = fresh
            history.forget(backendsNotIn: Set(fresh.keys))
        } else {
            for b in plan.backends { assignment[b.backend] = b }
        }
    }

    /// The assignment of the given backends, in the given order, as one plan (for a render).
    public func plan(for backends: [ProxyName]) -> ReconcilePlan {
        ReconcilePlan(backends: backends.compactMap { assignment[$0] }, commands: [])
    }
}

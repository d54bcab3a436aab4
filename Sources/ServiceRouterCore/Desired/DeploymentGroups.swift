/// marathon-lb's deployment groups (`get_apps`): the apps that share `HAPROXY_DEPLOYMENT_GROUP` —
/// the colours of a blue/green deploy — are one service. Its backend holds the tasks of every
/// colour; the oldest app (by `HAPROXY_DEPLOYMENT_STARTED_AT`) gives the labels, the service ports
/// and the health check; as the newest colour's tasks become healthy, as many of the older
/// colour's tasks drain, never so many that fewer than the target serve.
///
/// Rules, in marathon-lb's terms and where they differ:
/// - **Order.** Oldest first by `HAPROXY_DEPLOYMENT_STARTED_AT` (an app without it is the oldest),
///   then by app id (marathon-lb: Marathon's listing order).
/// - **Target.** The newest colour's `HAPROXY_DEPLOYMENT_TARGET_INSTANCES` when it carries
///   `HAPROXY_DEPLOYMENT_NEW_INSTANCES` (zdd writes both), else 1 — marathon-lb's rule.
/// - **Healthy new tasks** `H`: running tasks of the newest colour whose Marathon health results
///   are all alive (or, without results, whose last known health was alive); without health checks,
///   its running tasks. (marathon-lb counted any alive result, and without health checks the new
///   app's *requested* instances, so old tasks drained before new ones ran.)
/// - **Drained old tasks**: the first `k` of the older colours' serving tasks in task-id order,
///   `k = min(serving, H, max(0, H + min(instances, serving) − target))` — marathon-lb's bound
///   (`H + old instances − target`), counting only old tasks that still serve, so a task that is
///   already draining (`TASK_KILLING`, unreachable) never lets more drain.
/// - marathon-lb also swapped old and new when the old app was scaled more recently than the new
///   one; zdd scales the old app down at every step, so that flipped which colour drains in the
///   middle of a deploy. servicerouter keeps the start-time order.
/// - With more than two apps in a group (a stuck deploy), the newest is the new colour and every
///   other app is old.
public enum DeploymentGroups {
    public struct Group: Sendable, Equatable {
        /// The merged service's app id: the group with a leading `/`.
        public var id: String
        /// Oldest first; `members[0]` gives the labels.
        public var members: [MarathonApp]
        /// Task ids of the older colours that drain.
        public var draining: Set<String>
        /// The tasks the backend must hold at once: both colours at full size (see `slotPeak`).
        public var peak: Int

        public var old: MarathonApp { members[0] }
        public var new: MarathonApp? { members.count > 1 ? members[members.count - 1] : nil }
    }

    /// Splits Marathon's apps into apps of their own and deployment groups. An app whose
    /// deployment labels are invalid is left out with an error (its group goes on without it).
    public static func partition(_ apps: [MarathonApp], lastKnownHealth: [String: Bool] = [:],
                                 diagnostics: inout [Diagnostic]) -> (plain: [MarathonApp], groups: [Group]) {
        var plain: [MarathonApp] = []
        var byGroup: [String: [(app: MarathonApp, labels: DeploymentLabels)]] = [:]
        for app in apps {
            do {
                guard let labels = try DeploymentLabels.parse(app.labels) else {
                    plain.append(app)
                    continue
                }
                byGroup[labels.serviceId, default: []].append((app, labels))
            } catch let e as ValidationError {
                diagnostics.append(Diagnostic(.error, .badLabel, appId: app.id, "app skipped: invalid \(e)"))
            } catch {
                diagnostics.append(Diagnostic(.error, .badApp, appId: app.id, "app skipped: \(error)"))
            }
        }
        var groups: [Group] = []
        for id in byGroup.keys.sorted() {
            let members = byGroup[id]!.sorted { a, b in
                switch (a.labels.startedAt, b.labels.startedAt) {
                case let (x?, y?) where x != y: return x < y
                case (nil, _?): return true
                case (_?, nil): return false
                default: return a.app.id < b.app.id
                }
            }
            let apps = members.map(\.app)
            var draining: Set<String> = []
            if let new = members.last, members.count > 1 {
                draining = Set(drainingTasks(old: Array(apps.dropLast()), new: new.app, newLabels: new.labels,
                                             lastKnownHealth: lastKnownHealth))
            }
            groups.append(Group(id: id, members: apps, draining: draining, peak: slotPeak(members.map { ($0.app, $0.labels) })))
        }
        return (plain, groups)
    }

    /// The target a deploy works towards (marathon-lb's `target_instances`).
    public static func target(_ new: MarathonApp, _ labels: DeploymentLabels) -> Int {
        labels.newInstances != nil ? (labels.targetInstances ?? new.instances) : 1
    }

    /// New-colour tasks that count as healthy (see the type's documentation).
    public static func healthyTasks(_ app: MarathonApp, lastKnownHealth: [String: Bool] = [:]) -> [MarathonTask] {
        app.tasks.filter { t in
            guard (t.state?.routing ?? .serve) == .serve else { return false }
            guard !app.healthChecks.isEmpty else { return true }
            if let alive = t.healthAlive { return alive.allSatisfy { $0 } }
            return lastKnownHealth[t.id] == true
        }
    }

    /// Which of the older colours' tasks drain, in task-id order (the same answer for the load
    /// balancer and for `servicerouter zdd`, which kills exactly these).
    public static func drainingTasks(old: [MarathonApp], new: MarathonApp, newLabels: DeploymentLabels,
                                     lastKnownHealth: [String: Bool] = [:]) -> [String] {
        let serving = old.flatMap(\.tasks).filter { ($0.state?.routing ?? .serve) == .serve }.map(\.id).sorted()
        let instances = old.reduce(0) { $0 + max(0, $1.instances) }
        let healthy = healthyTasks(new, lastKnownHealth: lastKnownHealth).count
        let bound = max(0, healthy + min(instances, serving.count) - target(new, newLabels))
        return Array(serving.prefix(min(serving.count, healthy, bound)))
    }

    /// Tasks the merged backend must be able to hold at once, so that no step of a blue/green
    /// deploy needs a bigger backend (which would reload): two colours at the size of the largest
    /// one, a colour's size being the larger of its instances and its target. One colour alone
    /// already reserves room for the next one (zdd deploys the next colour to the current one's
    /// instance count), so the slot count stays the same from the first new task to the old
    /// colour's deletion.
    static func slotPeak(_ members: [(app: MarathonApp, labels: DeploymentLabels)]) -> Int {
        let size = members.map { max($0.app.instances, $0.labels.targetInstances ?? 0) }.max() ?? 0
        return min(2 * max(0, size), 100_000)
    }
}

import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// Marathon's scheduling decisions: how many tasks to start and which to kill so each app
/// matches its definition, and when a deployment is done.
extension SimulatorEngine {
    /// Starts and kills tasks until every dirty app matches its definition, finishing
    /// deployments on the way. Bounded: each pass either settles an app or changes a task.
    func settleDirtyApps(_ s: inout EngineState) {
        for _ in 0..<100_000 {
            guard !s.dirtyApps.isEmpty else { return }
            let appId = s.dirtyApps.removeFirst()
            reconcile(appId, &s)
            finishDeployments(appId, &s)
        }
        options.logger.warning("simulator scheduler did not settle", [("apps", s.dirtyApps.joined(separator: ","))])
    }

    func isReady(_ t: TaskRecord, _ app: AppRecord) -> Bool {
        t.state == .running && (!app.hasHealthChecks || t.health?.alive == true)
    }

    func reconcile(_ appId: String, _ s: inout EngineState) {
        guard let app = s.apps[appId], !app.deleting else { return }
        let live = s.tasks(of: appId).filter { $0.state != .killing && !$0.state.isTerminal }
        let current = live.filter { $0.configVersion == app.lastConfigChangeAt }
        let old = live.filter { $0.configVersion != app.lastConfigChangeAt }
        let target = app.spec.instances
        if current.count > target {
            // Scaling down: Marathon's default killSelection is YOUNGEST_FIRST.
            for t in current.sorted(by: { $0.sequence > $1.sequence }).prefix(current.count - target) {
                beginKill(t.id, &s)
            }
        }
        if old.isEmpty {
            for _ in 0..<max(0, target - current.count) { launchTask(appId, &s) }
            return
        }
        // Rolling upgrade within upgradeStrategy: never fewer than minimumHealthCapacity ready
        // tasks, never more than (1 + maximumOverCapacity) × instances tasks at once.
        let strategy = app.spec.upgradeStrategy
        let ready = current.filter { isReady($0, app) }.count
        let minHealthy = Int((Double(target) * strategy.minimumHealthCapacity).rounded(.up))
        var maxTotal = target + Int((Double(target) * strategy.maximumOverCapacity).rounded(.down))
        if maxTotal == target && minHealthy >= target { maxTotal += 1 }
        var oldCount = old.count
        for t in old.sorted(by: { $0.sequence < $1.sequence }) where oldCount + ready - 1 >= minHealthy {
            beginKill(t.id, &s)
            oldCount -= 1
        }
        var newCount = min(current.count, target)
        var total = oldCount + newCount
        while newCount < target && total < maxTotal {
            launchTask(appId, &s)
            newCount += 1
            total += 1
        }
    }

    func finishDeployments(_ appId: String, _ s: inout EngineState) {
        guard var app = s.apps[appId] else { return }
        let tasks = s.tasks(of: appId)
        if app.deleting {
            guard tasks.isEmpty else { return }
            s.apps[appId] = nil
            s.tasksByApp[appId] = nil
            s.usedServicePorts.subtract(app.servicePorts)
            let time = now()
            publish("app_terminated_event") { MarathonEvents.appTerminated(appId: appId, at: time) }
            completeDeployments(app.deploymentIDs, &s)
            return
        }
        guard !app.deploymentIDs.isEmpty else { return }
        let converged = tasks.count == app.spec.instances
            && tasks.allSatisfy { $0.configVersion == app.lastConfigChangeAt && isReady($0, app) }
        guard converged else { return }
        let ids = app.deploymentIDs
        app.deploymentIDs = []
        s.apps[appId] = app
        completeDeployments(ids, &s)
    }

    func completeDeployments(_ ids: [String], _ s: inout EngineState) {
        for id in ids {
            guard let d = s.deployments.removeValue(forKey: id) else { continue }
            s.deploymentOrder.removeAll { $0 == id }
            let time = now()
            publish("deployment_step_success") { MarathonEvents.deploymentStepSuccess(d, at: time) }
            publish("deployment_success") { MarathonEvents.deploymentSuccess(d, at: time) }
        }
    }
}

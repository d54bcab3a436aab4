import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// One task's life: STAGING → RUNNING (+ health results) → KILLING → KILLED, or FAILED.
/// Each step publishes Marathon's events for it and marks the app for the scheduler.
extension SimulatorEngine {
    func launchTask(_ appId: String, _ s: inout EngineState) {
        guard let app = s.apps[appId] else { return }
        let uuid = UUID().uuidString.lowercased()
        let prefix = appId.split(separator: "/").joined(separator: "_")
        let taskId = "\(prefix).instance-\(uuid)._app.1"
        s.sequence += 1
        var octet: Int?
        var ip = "127.0.0.1"
        if app.spec.network == .container {
            guard let free = (2...254).first(where: { !s.usedContainerOctets.contains($0) }) else {
                options.logger.error("no free 127.0.0.x address for an IP-per-task task", [("app", appId)])
                return
            }
            octet = free
            s.usedContainerOctets.insert(free)
            ip = "127.0.0.\(free)"
        }
        // Bind the task's listeners now: Marathon knows a task's host ports from STAGING on.
        var endpoints: [TaskServerPool.Token] = []
        var listenPorts: [Int] = []
        var bindError: Error?
        for i in 0..<app.spec.portCount {
            do {
                let listener = app.spec.network == .container
                    ? try Listener.tcp(host: ip, port: app.spec.portMappings[i].containerPort, backlog: 128)
                    : try HostPorts.listen(ip: ip, range: options.hostPortRange)
                listenPorts.append(listener.port)
                endpoints.append(pool.hold(listener, taskId: taskId, healthPath: app.spec.healthPath))
            } catch {
                bindError = error
                break
            }
        }
        let ports = app.spec.network == .container ? app.spec.portMappings.map(\.hostPort).filter { $0 != 0 } : listenPorts
        let task = TaskRecord(id: taskId, instanceId: "\(prefix).marathon-\(uuid)", appId: appId, slaveId: slaveId,
                              host: options.taskHost, ipAddress: ip, ports: ports, listenPorts: listenPorts,
                              servicePorts: app.servicePorts, state: .staging, stagedAt: now(), startedAt: nil,
                              version: app.version, configVersion: app.lastConfigChangeAt, endpoints: endpoints,
                              sequence: s.sequence, containerIPOctet: octet)
        s.tasks[taskId] = task
        s.tasksByApp[appId, default: []].append(taskId)
        let time = now()
        publish("status_update_event") { MarathonEvents.statusUpdate(task, status: .staging, message: "", at: time) }
        publish("instance_changed_event") { MarathonEvents.instanceChanged(task, condition: "Staging", at: time) }
        if let bindError {
            options.logger.error("task listener failed", [("task", taskId), ("error", "\(bindError)")])
            finishTask(taskId, as: .failed, message: "Failed to bind: \(bindError)", &s)
            return
        }
        if options.taskStartDelay <= 0 {
            markRunning(taskId, &s)
        } else {
            after(options.taskStartDelay) { engine in
                engine.mutate { engine.markRunning(taskId, &$0) }
            }
        }
    }

    func markRunning(_ taskId: String, _ s: inout EngineState) {
        guard var t = s.tasks[taskId], t.state == .staging || t.state == .starting else { return }
        t.state = .running
        t.startedAt = now()
        s.tasks[taskId] = t
        for token in t.endpoints {
            pool.setHealthy(token, t.wantsHealthy)
            pool.activate(token)
        }
        let task = t
        let time = now()
        publish("status_update_event") { MarathonEvents.statusUpdate(task, status: .running, message: "", at: time) }
        publish("instance_changed_event") { MarathonEvents.instanceChanged(task, condition: "Running", at: time) }
        if s.apps[t.appId]?.hasHealthChecks == true {
            if options.healthCheckDelay <= 0 {
                recordHealth(taskId, &s)
            } else {
                after(options.healthCheckDelay) { engine in
                    engine.mutate { engine.recordHealth(taskId, &$0) }
                }
            }
        }
        s.markDirty(t.appId)
    }

    /// Records a health check result from the task's wanted health; an event when it changed.
    func recordHealth(_ taskId: String, _ s: inout EngineState) {
        guard var t = s.tasks[taskId], t.state == .running || t.state == .killing,
              let app = s.apps[t.appId], let check = app.spec.healthChecks.first else { return }
        let time = now()
        let previous = t.health?.alive
        var h = t.health ?? HealthRecord(alive: t.wantsHealthy, consecutiveFailures: 0)
        h.alive = t.wantsHealthy
        if t.wantsHealthy {
            h.consecutiveFailures = 0
            if h.firstSuccess == nil { h.firstSuccess = time }
            h.lastSuccess = time
        } else {
            // The result only turns unhealthy after maxConsecutiveFailures failures: say so.
            h.consecutiveFailures = max(h.consecutiveFailures + 1, check.maxConsecutiveFailures)
            h.lastFailure = time
            h.lastFailureCause = "503 Service Unavailable"
        }
        t.health = h
        s.tasks[taskId] = t
        let task = t
        if !t.wantsHealthy {
            publish("failed_health_check_event") { MarathonEvents.failedHealthCheck(task, check: check, at: time) }
        }
        if previous != h.alive {
            publish("health_status_changed_event") { MarathonEvents.healthChanged(task, alive: h.alive, at: time) }
        }
        if !h.alive && options.killUnhealthyTasks && t.state == .running {
            publish("unhealthy_instance_kill_event") {
                ["appId": .string(task.appId), "taskId": .string(task.id), "instanceId": .string(task.instanceId),
                 "version": .string(task.version), "reason": "HealthCheck failed", "host": .string(task.host),
                 "slaveId": .string(task.slaveId), "eventType": "unhealthy_instance_kill_event", "timestamp": .string(time)]
            }
            beginKill(taskId, &s)
        }
        s.markDirty(t.appId)
    }

    /// TASK_KILLING now; the process keeps serving for the kill grace period, then TASK_KILLED.
    func beginKill(_ taskId: String, _ s: inout EngineState) {
        guard var t = s.tasks[taskId], !t.state.isTerminal, t.state != .killing else { return }
        let wasRunning = t.state == .running
        t.state = .killing
        s.tasks[taskId] = t
        let task = t
        let time = now()
        if wasRunning {
            publish("status_update_event") { MarathonEvents.statusUpdate(task, status: .killing, message: "", at: time) }
            publish("instance_changed_event") { MarathonEvents.instanceChanged(task, condition: "Killing", at: time) }
        }
        let grace = wasRunning ? (s.apps[t.appId]?.spec.taskKillGracePeriodSeconds ?? options.killGracePeriod) : 0
        s.markDirty(t.appId)
        if grace <= 0 {
            finishTask(taskId, as: .killed, message: "Container exited with status 137", &s)
        } else {
            after(grace) { engine in
                engine.mutate { engine.finishTask(taskId, as: .killed, message: "Container exited with status 137", &$0) }
            }
        }
    }

    /// A terminal state: the listener closes and the task leaves the app.
    func finishTask(_ taskId: String, as final: TaskState, message: String, _ s: inout EngineState) {
        guard var t = s.tasks.removeValue(forKey: taskId) else { return }
        s.tasksByApp[t.appId]?.removeAll { $0 == taskId }
        for token in t.endpoints { pool.remove(token) }
        if let octet = t.containerIPOctet { s.usedContainerOctets.remove(octet) }
        t.state = final
        let task = t
        let time = now()
        let condition = final == .failed ? "Failed" : "Killed"
        publish("status_update_event") { MarathonEvents.statusUpdate(task, status: final, message: message, at: time) }
        publish("instance_changed_event") { MarathonEvents.instanceChanged(task, condition: condition, at: time) }
        if final == .failed, var app = s.apps[t.appId] {
            app.lastTaskFailure = ["appId": .string(t.appId), "host": .string(t.host), "message": .string(message),
                                   "state": .string(final.rawValue), "taskId": .string(t.id), "timestamp": .string(time),
                                   "version": .string(t.version), "slaveId": .string(t.slaveId)]
            s.apps[t.appId] = app
        }
        s.markDirty(t.appId)
    }
}

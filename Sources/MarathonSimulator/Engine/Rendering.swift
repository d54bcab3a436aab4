import ServiceRouterCore

/// Marathon 1.5+ JSON shapes for apps, tasks and deployments (compare with the captures in
/// shared/fixtures/marathon: `zdd_app_blue_marathon1.5.json`, `marathon15_apps.json`, `tasks.json`).
enum Rendering {
    struct AppEmbed: OptionSet, Sendable {
        let rawValue: Int
        static let tasks = AppEmbed(rawValue: 1)
        static let counts = AppEmbed(rawValue: 2)
        static let deployments = AppEmbed(rawValue: 4)
        static let lastTaskFailure = AppEmbed(rawValue: 8)
        /// The event form (`api_post_event.appDefinition`) also carries the deprecated `ports`.
        static let deprecatedPorts = AppEmbed(rawValue: 16)
    }

    static func app(_ app: AppRecord, state: EngineState, embed: AppEmbed) -> JSONValue {
        Self.app(app, tasks: state.tasks(of: app.id), healthResultsHidden: state.healthResultsHidden, embed: embed)
    }

    /// An app from exactly these inputs and nothing else: `AppListingCache` relies on it (equal
    /// inputs, equal bytes), so anything new the JSON depends on must come in as a parameter.
    static func app(_ app: AppRecord, tasks: [TaskRecord], healthResultsHidden: Bool, embed: AppEmbed) -> JSONValue {
        let spec = app.spec
        var o: JSONObject = ["id": .string(spec.id)]
        if let roles = spec.acceptedResourceRoles { o["acceptedResourceRoles"] = .strings(roles) }
        o["backoffFactor"] = 1.15
        o["backoffSeconds"] = 1
        if let cmd = spec.cmd { o["cmd"] = .string(cmd) }
        if spec.dockerImage != nil || spec.network != .host {
            var container: JSONObject = ["type": spec.dockerImage == nil ? "MESOS" : "DOCKER"]
            if let image = spec.dockerImage {
                container["docker"] = ["forcePullImage": false, "image": .string(image), "parameters": [], "privileged": false]
            }
            container["volumes"] = []
            if spec.network != .host && !spec.ipAddressDiscovery {
                container["portMappings"] = .array(spec.portMappings.enumerated().map { i, m in
                    var pm: JSONObject = ["containerPort": .int(m.containerPort)]
                    if spec.network == .bridge || m.hostPort != 0 { pm["hostPort"] = .int(m.hostPort) }
                    pm["labels"] = .stringMap(m.labels)
                    if let name = m.name { pm["name"] = .string(name) }
                    pm["protocol"] = .string(m.protocol)
                    pm["servicePort"] = .int(i < app.servicePorts.count ? app.servicePorts[i] : m.servicePort)
                    return .object(pm)
                })
            }
            o["container"] = .object(container)
        }
        o["cpus"] = .double(spec.cpus)
        o["disk"] = .double(spec.disk)
        o["env"] = .stringMap(spec.env)
        o["executor"] = ""
        o["healthChecks"] = .array(spec.healthChecks.map(healthCheck))
        o["instances"] = .int(spec.instances)
        o["labels"] = .stringMap(spec.labels)
        o["maxLaunchDelaySeconds"] = 3600
        o["mem"] = .double(spec.mem)
        o["gpus"] = 0
        if spec.ipAddressDiscovery {
            // Marathon 1.4: `ipAddress` instead of `networks`, and no service port anywhere.
            o["ipAddress"] = ["discovery": ["ports": .array(spec.portMappings.map { m in
                var p: JSONObject = ["number": .int(m.containerPort), "protocol": .string(m.protocol)]
                if let name = m.name { p["name"] = .string(name) }
                return .object(p)
            })], "groups": [], "labels": [:], "networkName": .string(spec.networkName ?? "dcos")]
            o["portDefinitions"] = []
            if embed.contains(.deprecatedPorts) { o["ports"] = [] }
        } else {
            var network: JSONObject = ["mode": .string(spec.network.rawValue)]
            if spec.network == .container { network = ["name": .string(spec.networkName ?? "dcos"), "mode": "container"] }
            o["networks"] = [.object(network)]
        }
        if spec.network == .host {
            o["portDefinitions"] = .array(spec.portDefinitions.enumerated().map { i, d in
                var pd: JSONObject = ["port": .int(i < app.servicePorts.count ? app.servicePorts[i] : d.port),
                                      "protocol": .string(d.protocol)]
                if let name = d.name { pd["name"] = .string(name) }
                pd["labels"] = .stringMap(d.labels)
                return .object(pd)
            })
            if embed.contains(.deprecatedPorts) { o["ports"] = .ints(app.servicePorts) }
        }
        o["requirePorts"] = false
        o["upgradeStrategy"] = ["maximumOverCapacity": .double(spec.upgradeStrategy.maximumOverCapacity),
                                "minimumHealthCapacity": .double(spec.upgradeStrategy.minimumHealthCapacity)]
        o["version"] = .string(app.version)
        o["versionInfo"] = ["lastScalingAt": .string(app.lastScalingAt), "lastConfigChangeAt": .string(app.lastConfigChangeAt)]
        o["killSelection"] = "YOUNGEST_FIRST"
        o["unreachableStrategy"] = ["inactiveAfterSeconds": 0, "expungeAfterSeconds": 0]
        if let grace = spec.taskKillGracePeriodSeconds { o["taskKillGracePeriodSeconds"] = .double(grace) }
        if embed.contains(.counts) {
            let health = tasks.map { healthResultsHidden ? nil : $0.health }
            o["tasksStaged"] = .int(tasks.filter { $0.state == .staging || $0.state == .starting }.count)
            o["tasksRunning"] = .int(tasks.filter { $0.state == .running }.count)
            o["tasksHealthy"] = .int(health.filter { $0?.alive == true }.count)
            o["tasksUnhealthy"] = .int(health.filter { $0?.alive == false }.count)
        }
        if embed.contains(.deployments) {
            o["deployments"] = .array(app.deploymentIDs.map { ["id": .string($0)] })
        }
        if embed.contains(.lastTaskFailure), let failure = app.lastTaskFailure { o["lastTaskFailure"] = failure }
        if embed.contains(.tasks) {
            o["tasks"] = .array(tasks.map { task($0, app: app, healthResultsHidden: healthResultsHidden) })
        }
        return .object(o)
    }

    static func healthCheck(_ h: AppSpec.HealthCheck) -> JSONValue {
        var o: JSONObject = ["gracePeriodSeconds": .int(h.gracePeriodSeconds),
                             "intervalSeconds": .int(h.intervalSeconds),
                             "maxConsecutiveFailures": .int(h.maxConsecutiveFailures)]
        if let path = h.path { o["path"] = .string(path) }
        if let portIndex = h.portIndex { o["portIndex"] = .int(portIndex) }
        if let port = h.port { o["port"] = .int(port) }
        o["protocol"] = .string(h.protocol)
        o["timeoutSeconds"] = .int(h.timeoutSeconds)
        o["delaySeconds"] = .int(h.delaySeconds)
        if h.protocol == "HTTP" || h.protocol == "HTTPS" { o["ignoreHttp1xx"] = .bool(h.ignoreHttp1xx) }
        return .object(o)
    }

    static func ipAddresses(_ t: TaskRecord) -> JSONValue {
        [["ipAddress": .string(t.ipAddress), "protocol": "IPv4"]]
    }

    static func task(_ t: TaskRecord, app: AppRecord?, state: EngineState) -> JSONValue {
        task(t, app: app, healthResultsHidden: state.healthResultsHidden)
    }

    static func task(_ t: TaskRecord, app: AppRecord?, healthResultsHidden: Bool) -> JSONValue {
        var o: JSONObject = ["ipAddresses": ipAddresses(t), "stagedAt": .string(t.stagedAt), "state": .string(t.state.rawValue),
                             "ports": .ints(t.ports)]
        if let startedAt = t.startedAt { o["startedAt"] = .string(startedAt) }
        o["version"] = .string(t.version)
        o["id"] = .string(t.id)
        o["appId"] = .string(t.appId)
        o["slaveId"] = .string(t.slaveId)
        o["host"] = .string(t.host)
        o["servicePorts"] = .ints(t.servicePorts)
        if app?.hasHealthChecks == true {
            if healthResultsHidden {
                o["healthCheckResults"] = []
            } else if let h = t.health {
                o["healthCheckResults"] = [.object(healthResult(h, instanceId: t.instanceId))]
            } else {
                o["healthCheckResults"] = []
            }
        }
        return .object(o)
    }

    static func healthResult(_ h: HealthRecord, instanceId: String) -> JSONObject {
        ["alive": .bool(h.alive), "consecutiveFailures": .int(h.consecutiveFailures),
         "firstSuccess": .optional(h.firstSuccess), "lastFailure": .optional(h.lastFailure),
         "lastSuccess": .optional(h.lastSuccess), "lastFailureCause": .optional(h.lastFailureCause),
         "instanceId": .string(instanceId)]
    }

    static func deployment(_ d: DeploymentRecord) -> JSONValue {
        let action: JSONValue = ["action": .string(d.action), "app": .string(d.appId)]
        return ["id": .string(d.id), "version": .string(d.version), "affectedApps": [.string(d.appId)],
                "affectedPods": [], "steps": [["actions": [action]]],
                "currentActions": [["action": .string(d.action), "app": .string(d.appId), "readinessCheckResults": []]],
                "currentStep": 1, "totalSteps": 1]
    }

    /// The plan as Marathon's `plan-format=light` writes it (no original/target groups).
    static func plan(_ d: DeploymentRecord) -> JSONValue {
        ["id": .string(d.id), "steps": [["actions": [["action": .string(d.action), "app": .string(d.appId)]]]],
         "version": .string(d.version)]
    }
}

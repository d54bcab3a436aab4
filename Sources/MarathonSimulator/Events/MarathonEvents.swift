import ServiceRouterCore

/// The event payloads Marathon 1.x puts on `/v2/events`, field for field as in its docs and the
/// captures (`events.txt`, `multi-event-blanklines-in-between.txt`).
enum MarathonEvents {
    static func streamAttached(remoteAddress: String, at time: String) -> JSONValue {
        ["remoteAddress": .string(remoteAddress), "eventType": "event_stream_attached", "timestamp": .string(time)]
    }

    static func streamDetached(remoteAddress: String, at time: String) -> JSONValue {
        ["remoteAddress": .string(remoteAddress), "eventType": "event_stream_detached", "timestamp": .string(time)]
    }

    static func statusUpdate(_ t: TaskRecord, status: TaskState, message: String, at time: String) -> JSONValue {
        ["slaveId": .string(t.slaveId), "taskId": .string(t.id), "taskStatus": .string(status.rawValue),
         "message": .string(message), "appId": .string(t.appId), "host": .string(t.host),
         "ipAddresses": Rendering.ipAddresses(t), "ports": .ints(t.ports), "version": .string(t.version),
         "eventType": "status_update_event", "timestamp": .string(time)]
    }

    /// `condition` is Marathon's instance condition: Staging, Running, Killing, Killed, Failed, ...
    static func instanceChanged(_ t: TaskRecord, condition: String, at time: String) -> JSONValue {
        ["instanceId": .string(t.instanceId), "condition": .string(condition), "runSpecId": .string(t.appId),
         "agentId": .string(t.slaveId), "host": .string(t.host), "runSpecVersion": .string(t.version),
         "timestamp": .string(time), "eventType": "instance_changed_event"]
    }

    static func healthChanged(_ t: TaskRecord, alive: Bool, at time: String) -> JSONValue {
        ["appId": .string(t.appId), "instanceId": .string(t.instanceId), "version": .string(t.version),
         "alive": .bool(alive), "eventType": "health_status_changed_event", "timestamp": .string(time)]
    }

    static func failedHealthCheck(_ t: TaskRecord, check: AppSpec.HealthCheck, at time: String) -> JSONValue {
        ["appId": .string(t.appId), "taskId": .string(t.id), "instanceId": .string(t.instanceId),
         "healthCheck": Rendering.healthCheck(check), "eventType": "failed_health_check_event",
         "timestamp": .string(time)]
    }

    static func apiPost(clientIp: String, uri: String, app: JSONValue, at time: String) -> JSONValue {
        ["clientIp": .string(clientIp), "uri": .string(uri), "appDefinition": app, "eventType": "api_post_event",
         "timestamp": .string(time)]
    }

    static func appTerminated(appId: String, at time: String) -> JSONValue {
        ["appId": .string(appId), "eventType": "app_terminated_event", "timestamp": .string(time)]
    }

    static func groupChangeSuccess(version: String, at time: String) -> JSONValue {
        ["groupId": "/", "version": .string(version), "eventType": "group_change_success", "timestamp": .string(time)]
    }

    static func deploymentInfo(_ d: DeploymentRecord, at time: String) -> JSONValue {
        ["plan": Rendering.plan(d), "currentStep": ["actions": [["action": .string(d.action), "app": .string(d.appId)]]],
         "eventType": "deployment_info", "timestamp": .string(time)]
    }

    static func deploymentStepSuccess(_ d: DeploymentRecord, at time: String) -> JSONValue {
        ["plan": Rendering.plan(d), "currentStep": ["actions": [["action": .string(d.action), "app": .string(d.appId)]]],
         "eventType": "deployment_step_success", "timestamp": .string(time)]
    }

    static func deploymentSuccess(_ d: DeploymentRecord, at time: String) -> JSONValue {
        ["id": .string(d.id), "plan": Rendering.plan(d), "eventType": "deployment_success", "timestamp": .string(time)]
    }

    static func deploymentFailed(_ d: DeploymentRecord, at time: String) -> JSONValue {
        ["id": .string(d.id), "plan": Rendering.plan(d), "reason": "The deployment has been superseded",
         "eventType": "deployment_failed", "timestamp": .string(time)]
    }
}

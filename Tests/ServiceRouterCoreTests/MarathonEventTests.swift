import Foundation
import Testing
@testable import ServiceRouterCore

private func decodeAll(_ fixture: String) throws -> [MarathonEvent] {
    try parseSSE(try marathonFixture(fixture)).map { try MarathonEvent.decode($0).get() }
}

private func decode(_ type: String, _ json: String) -> Result<MarathonEvent, MarathonDecodeError> {
    MarathonEvent.decode(SSEEvent(type: type, data: json))
}

/// An event dispatched without an SSE name (its type comes from the JSON).
private func decode(_ json: String) -> Result<MarathonEvent, MarathonDecodeError> {
    decode("message", json)
}

private func failureReason(_ result: Result<MarathonEvent, MarathonDecodeError>) -> String? {
    if case .failure(let e) = result { return e.description }
    return nil
}

@Suite("MarathonEvent")
struct MarathonEventTests {
    @Test func marathonDocsExample() throws {
        let events = try decodeAll("events.txt")
        #expect(events == [
            .streamAttached,
            .statusUpdate(StatusUpdate(
                taskId: "foo.0664256e-6771-11e5-94e1-be5b2935a987", appId: "/foo", taskStatus: .failed,
                host: "srv5.hw.ca1.mesosphere.com", ports: [31776], ipAddresses: [],
                version: "2015-09-30T09:09:17.614Z", timestamp: "2015-09-30T12:44:45.681Z")),
            .statusUpdate(StatusUpdate(
                taskId: "test-app.5dd78972-6771-11e5-94e1-be5b2935a987", appId: "/test-app", taskStatus: .running,
                host: "srv4.hw.ca1.mesosphere.com", ports: [31182], ipAddresses: [],
                version: "2015-09-11T22:11:03.156Z", timestamp: "2015-09-30T12:47:11.286Z")),
        ])
    }

    @Test func jettyCapture() throws {
        #expect(try decodeAll("single-event.txt") == [.streamAttached])
    }

    @Test func eventsDispatchedAsMessageTakeTheirTypeFromJSON() throws {
        let events = try decodeAll("multi-event-blanklines-in-between.txt")
        #expect(events == [
            .appChanged(appId: nil, eventType: "group_change_success"),
            .appChanged(appId: "/asgard-dev/bla", eventType: "api_post_event"),
            .statusUpdate(StatusUpdate(
                taskId: "asgard-dev_bla.0139427f-b042-11e8-9638-0242ac12001f", appId: "/asgard-dev/bla",
                taskStatus: .killed, host: "172.18.0.51", ports: [30989], ipAddresses: ["172.17.0.4"],
                version: "2018-09-04T12:56:56.861Z", timestamp: "2018-09-04T12:59:57.728Z")),
            .other(eventType: "instance_changed_event"),
        ])
    }

    @Test func healthEventNewAndOldShapes() throws {
        let new = decode("health_status_changed_event", """
            {"appId":"/web","instanceId":"web.marathon-11ce6b5e-1234","version":"2018-01-01T00:00:00.000Z",\
            "alive":true,"eventType":"health_status_changed_event","timestamp":"2018-01-01T00:00:01.000Z","extra":[1]}
            """)
        #expect(try new.get() == .healthChanged(HealthChange(
            appId: "/web", instanceId: "web.marathon-11ce6b5e-1234", alive: true,
            version: "2018-01-01T00:00:00.000Z", timestamp: "2018-01-01T00:00:01.000Z")))
        // Marathon before 1.4 named the task.
        let old = decode(#"{"appId":"/web","taskId":"web.abc","alive":false,"eventType":"health_status_changed_event"}"#)
        #expect(try old.get() == .healthChanged(HealthChange(appId: "/web", instanceId: "web.abc", alive: false)))
        let neither = decode(#"{"appId":"/web","alive":false,"eventType":"health_status_changed_event"}"#)
        #expect(failureReason(neither)?.contains("instanceId") == true)
    }

    @Test func structureEvents() throws {
        #expect(try decode(#"{"appId":"/gone","eventType":"app_terminated_event"}"#).get()
                == .appChanged(appId: "/gone", eventType: "app_terminated_event"))
        for type in ["deployment_success", "deployment_failed", "deployment_info", "deployment_step_success",
                     "deployment_step_failure", "group_change_success"] {
            #expect(try decode(type, #"{"id":"d1","plan":{"steps":[]}}"#).get() == .appChanged(appId: nil, eventType: type))
        }
        // api_post_event without an app definition (e.g. a group PUT) still means "resync".
        #expect(try decode(#"{"uri":"/v2/groups","eventType":"api_post_event"}"#).get()
                == .appChanged(appId: nil, eventType: "api_post_event"))
        #expect(try decode(#"{"eventType":"failed_health_check_event","appId":"/x"}"#).get()
                == .other(eventType: "failed_health_check_event"))
    }

    @Test func unknownTaskStateAndFloatPorts() throws {
        let result = decode("status_update_event", """
            {"taskId":"a.1","appId":"/a","taskStatus":"TASK_SOMETHING_NEW","host":"h","ports":[31000.0,31001]}
            """)
        #expect(try result.get() == .statusUpdate(StatusUpdate(
            taskId: "a.1", appId: "/a", taskStatus: .unknown, host: "h", ports: [31000, 31001])))
    }

    @Test func everySubscribedTypeDecodesToARoutingCase() throws {
        for type in MarathonEvent.subscribedTypes {
            let json = #"{"eventType":"\#(type)","taskId":"t","appId":"/a","taskStatus":"TASK_RUNNING","instanceId":"i","alive":true}"#
            let event = try decode(json).get()
            if case .other = event { Issue.record("\(type) decoded as .other") }
            #expect(event.eventType == type)
        }
    }

    @Test func sseNameWinsOverJSON() throws {
        #expect(try decode("app_terminated_event", #"{"appId":"/a","eventType":"something_else"}"#).get()
                == .appChanged(appId: "/a", eventType: "app_terminated_event"))
    }

    // MARK: failures

    @Test func malformedJSONIsAFailureNotACrash() {
        let reason = failureReason(decode("status_update_event", #"{"taskId": "a.1", "appId": "#))
        #expect(reason?.contains("status_update_event") == true)
        #expect(failureReason(decode("")) != nil)
        #expect(failureReason(decode("[1,2]")) != nil)
        #expect(failureReason(decode("not json at all")) != nil)
    }

    @Test func missingEventTypeIsAFailure() {
        #expect(failureReason(decode(#"{"appId":"/a"}"#))?.contains("eventType") == true)
    }

    @Test func wrongFieldTypesNameTheField() {
        let ports = failureReason(decode(#"{"eventType":"status_update_event","taskId":"t","appId":"/a","taskStatus":"TASK_RUNNING","ports":"31000"}"#))
        #expect(ports?.contains("ports") == true)
        let missing = failureReason(decode(#"{"eventType":"status_update_event","appId":"/a","taskStatus":"TASK_RUNNING"}"#))
        #expect(missing?.contains("taskId") == true)
        let alive = failureReason(decode(#"{"eventType":"health_status_changed_event","appId":"/a","instanceId":"i","alive":"yes"}"#))
        #expect(alive?.contains("alive") == true)
    }
}

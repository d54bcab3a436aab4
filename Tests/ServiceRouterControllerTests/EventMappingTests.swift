import FoundationEssentials
import Testing
import ServiceRouterController
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterTestSupport

/// The event stream as controller inputs.
@Suite struct EventMappingTests {
    /// A (re)connect becomes the reason of a full pass, which is logged: the URL without its ten
    /// `event_type` query parameters and without credentials.
    @Test func aConnectReasonCarriesTheURLWithoutQueryOrCredentials() async throws {
        let url = try #require(URL(string: "http://user:secret@marathon.mesos:8080/v2/events?event_type=status_update_event&event_type=api_post_event"))
        let (stream, continuation) = AsyncStream<StreamHappening>.makeStream()
        continuation.yield(.connected(url))
        continuation.finish()
        var inputs: [ControllerInput] = []
        for await input in EventMapping.inputs(stream, logger: .silent) { inputs.append(input) }
        #expect(inputs == [.connected("http://marathon.mesos:8080/v2/events")])
    }
}

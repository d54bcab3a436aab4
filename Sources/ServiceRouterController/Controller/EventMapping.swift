import ServiceRouterCore
import ServiceRouterIO

/// Marathon's event stream, as controller inputs.
public enum EventMapping {
    /// Maps the stream, logging what is dropped. (The client logs connects and disconnects
    /// itself, once each.)
    public static func inputs(_ stream: AsyncStream<StreamHappening>, logger: Logger) -> AsyncStream<ControllerInput> {
        AsyncStream { continuation in
            let task = Task {
                for await happening in stream {
                    switch happening {
                    case .connected(let url): continuation.yield(.connected(MarathonClient.brief(url)))
                    case .disconnected(let reason, _): continuation.yield(.disconnected(reason))
                    case .undecodable: break
                    case .event(let event): if let input = input(for: event) { continuation.yield(input) }
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The input for one event; nil for events that do not matter for routing.
    public static func input(for event: MarathonEvent) -> ControllerInput? {
        switch event {
        case .statusUpdate(var u):
            u.appId = absolute(u.appId)
            return .statusUpdate(u)
        case .healthChanged(var h):
            h.appId = absolute(h.appId)
            return .healthChanged(h)
        case .appChanged(_, let type):
            return .structureChanged(type)
        case .streamAttached, .other:
            return nil
        }
    }

    /// Marathon writes app ids with a leading `/` in snapshots; some events omit it.
    static func absolute(_ id: String) -> String { id.hasPrefix("/") ? id : "/" + id }
}

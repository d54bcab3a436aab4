import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO

/// GET /v2/events as Marathon's Jetty EventSource servlet serves it: only for
/// `Accept: text/event-stream` (exactly; anything else is a 405), no chunked encoding,
/// `Connection: close`, CRLF framing, a bare CRLF as heartbeat.
enum EventStream {
    static func response(_ r: HTTPServerRequest, api: MarathonAPI) -> HTTPServerResponse {
        guard r.headers.values("Accept").contains("text/event-stream") else {
            return .text("HTTP method GET is not supported by this URL\n", status: 405)
        }
        let filter = Set(r.queryValues("event_type").filter { !$0.isEmpty })
        var headers = HTTPHeaders()
        headers.set("Content-Type", "text/event-stream;charset=utf-8")
        headers.set("Cache-Control", "no-cache")
        let bus = api.bus
        let engine = api.engine
        let heartbeat = api.options.heartbeatInterval
        let remote = r.remoteAddress.isEmpty ? "127.0.0.1" : r.remoteAddress
        return .stream(200, headers) { writer in
            let subscriber = bus.subscribe(filter: filter, remoteAddress: remote)
            subscriber.attach(writer)
            // Marathon puts the attach on its event bus: every stream sees it, this one first.
            let attachedAt = VersionClock.timestamp()
            bus.publish("event_stream_attached") { MarathonEvents.streamAttached(remoteAddress: remote, at: attachedAt) }
            defer {
                bus.unsubscribe(subscriber)
                let time = VersionClock.timestamp()
                bus.publish("event_stream_detached") { MarathonEvents.streamDetached(remoteAddress: remote, at: time) }
            }
            var lastWrite = Monotonic.now()
            // Ends when the client goes, the stream is dropped or overflows, or the server stops.
            while !engine.isStopped {
                switch subscriber.next(timeout: 0.1) {
                case .closed:
                    return
                case .frames(let frames, let cutFirst):
                    for (i, frame) in frames.enumerated() {
                        if i == 0 && cutFirst {
                            writer.write(Array(frame.prefix(max(1, frame.count / 2))))
                            return
                        }
                        guard writer.write(frame) else { return }
                    }
                    lastWrite = Monotonic.now()
                case .idle:
                    break
                }
                guard writer.isOpen else { return }
                if let heartbeat, heartbeat > 0, !bus.isSilent, Monotonic.now() - lastWrite >= heartbeat {
                    guard writer.write([0x0D, 0x0A]) else { return }
                    lastWrite = Monotonic.now()
                }
            }
        }
    }
}

import Dispatch
import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import Synchronization

/// Fans Marathon events out to `/v2/events` subscribers, with Marathon's framing and its
/// slow-consumer rule, plus the stream faults tests need (drop, silence, cut mid-event).
final class EventBus: Sendable {
    private let state = Mutex(BusState())
    let backlogLimit: Int

    private struct BusState {
        var subscribers: [Int: EventSubscriber] = [:]
        var nextID = 0
        /// A hung leader: nothing is delivered, no heartbeats, connections stay open.
        var silent = false
        var published = 0
    }

    init(backlogLimit: Int) { self.backlogLimit = backlogLimit }

    /// One SSE frame, exactly as Marathon's Jetty servlet writes it.
    static func frame(type: String, data: JSONValue) -> [UInt8] {
        var out = Array("event: \(type)\r\ndata: ".utf8)
        data.write(into: &out)
        out.append(contentsOf: [0x0D, 0x0A, 0x0D, 0x0A])
        return out
    }

    var isSilent: Bool { state.withLock { $0.silent } }
    var subscriberCount: Int { state.withLock { $0.subscribers.count } }
    var publishedCount: Int { state.withLock { $0.published } }

    /// `data` is only built when some subscriber wants `type` (10,000 task starts with nobody
    /// listening should not encode 40,000 events).
    func publish(_ type: String, _ data: () -> JSONValue) {
        state.withLock { s in
            s.published += 1
            guard !s.silent else { return }
            var frame: [UInt8]?
            for sub in s.subscribers.values where sub.wants(type) {
                if frame == nil { frame = Self.frame(type: type, data: data()) }
                if !sub.enqueue(frame!, limit: backlogLimit) {
                    s.subscribers[sub.id] = nil
                }
            }
        }
    }

    func subscribe(filter: Set<String>, remoteAddress: String) -> EventSubscriber {
        state.withLock { s in
            s.nextID += 1
            let sub = EventSubscriber(id: s.nextID, filter: filter, remoteAddress: remoteAddress)
            s.subscribers[sub.id] = sub
            return sub
        }
    }

    func unsubscribe(_ sub: EventSubscriber) {
        state.withLock { _ = $0.subscribers.removeValue(forKey: sub.id) }
        sub.close()
    }

    /// Closes every event stream (Marathon restarting, a proxy cutting idle connections).
    func dropAll() {
        let subs = state.withLock { s -> [EventSubscriber] in
            let all = Array(s.subscribers.values)
            s.subscribers = [:]
            return all
        }
        for sub in subs { sub.close() }
    }

    func setSilent(_ silent: Bool) {
        state.withLock { $0.silent = silent }
    }

    /// Each current stream sends only the first half of its next event, then closes.
    func cutAllMidEvent() {
        let subs = state.withLock { Array($0.subscribers.values) }
        for sub in subs { sub.cutNextFrame() }
    }
}

/// One connected `/v2/events` client: a queue of frames written by its connection's thread.
final class EventSubscriber: Sendable {
    let id: Int
    let filter: Set<String>
    let remoteAddress: String
    private let state = Mutex(SubscriberState())
    private let signal = DispatchSemaphore(value: 0)

    private struct SubscriberState {
        var frames: [[UInt8]] = []
        var head = 0
        var closed = false
        var overflowed = false
        var cutNext = false
        var writer: StreamWriter?
    }

    init(id: Int, filter: Set<String>, remoteAddress: String) {
        self.id = id
        self.filter = filter
        self.remoteAddress = remoteAddress
    }

    func wants(_ type: String) -> Bool { filter.isEmpty || filter.contains(type) }

    func attach(_ writer: StreamWriter) {
        let closeNow = state.withLock { s -> Bool in
            s.writer = writer
            return s.closed
        }
        if closeNow { writer.close() }
    }

    /// False when the subscriber is now gone: more than `limit` frames behind (Marathon 1.8+
    /// disconnects such a consumer) or closed.
    func enqueue(_ frame: [UInt8], limit: Int) -> Bool {
        let (ok, writerToClose) = state.withLock { s -> (Bool, StreamWriter?) in
            guard !s.closed else { return (false, nil) }
            s.frames.append(frame)
            if s.frames.count - s.head > limit {
                s.overflowed = true
                s.closed = true
                s.frames = []
                s.head = 0
                return (false, s.writer)
            }
            return (true, nil)
        }
        // Closing the writer unblocks a send stuck on a full socket buffer.
        writerToClose?.close()
        signal.signal()
        return ok
    }

    func close() {
        let writer = state.withLock { s -> StreamWriter? in
            s.closed = true
            return s.writer
        }
        writer?.close()
        signal.signal()
    }

    func cutNextFrame() {
        state.withLock { $0.cutNext = true }
    }

    var overflowed: Bool { state.withLock { $0.overflowed } }

    enum Next {
        case frames([[UInt8]], cutFirst: Bool)
        case idle
        case closed
    }

    /// Waits up to `timeout` for frames.
    func next(timeout: Double) -> Next {
        if let ready = take() { return ready }
        _ = signal.wait(timeout: .now() + timeout)
        return take() ?? .idle
    }

    private func take() -> Next? {
        state.withLock { s -> Next? in
            if s.closed { return .closed }
            guard s.head < s.frames.count else {
                s.frames.removeAll(keepingCapacity: true)
                s.head = 0
                return nil
            }
            // Small batches: frames taken but not yet written are not counted as backlog, so the
            // slow-consumer rule stays within 64 frames of exact.
            let end = min(s.head + 64, s.frames.count)
            let batch = Array(s.frames[s.head..<end])
            s.head = end
            if s.head == s.frames.count {
                s.frames.removeAll(keepingCapacity: true)
                s.head = 0
            } else if s.head > 4096 {
                s.frames.removeFirst(s.head)
                s.head = 0
            }
            let cut = s.cutNext
            s.cutNext = false
            return .frames(batch, cutFirst: cut)
        }
    }
}

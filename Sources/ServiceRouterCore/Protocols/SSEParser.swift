/// One Server-Sent Event, as dispatched by the parser.
public struct SSEEvent: Sendable, Equatable {
    /// The `event:` field, or "message" when the event had none.
    public var type: String
    /// The `data:` lines joined with "\n".
    public var data: String
    /// The last event ID seen on the stream (it persists across events, as in the SSE spec), or nil.
    public var id: String?

    public init(type: String = "message", data: String, id: String? = nil) {
        self.type = type
        self.data = data
        self.id = id
    }
}

/// The stream broke one of the parser's size limits. The parser stays failed after this: the
/// connection must be dropped (a stream this far off the protocol cannot be resynchronised).
public struct SSEParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case lineTooLong
        case eventTooLarge
    }

    public var kind: Kind
    public var limit: Int

    public var description: String {
        switch kind {
        case .lineTooLong: "event stream line longer than \(limit) bytes"
        case .eventTooLarge: "event stream event larger than \(limit) bytes"
        }
    }
}

/// A Server-Sent Events parser (the WHATWG "event stream interpretation"), as a pure state machine:
/// bytes in, events out. Chunk boundaries never change the result — a CR that ends one chunk and an
/// LF that starts the next are one line ending — so it can be fed straight from socket reads.
///
/// Memory is bounded: a line longer than `maxLineBytes` or an event whose data exceeds
/// `maxEventBytes` throws `SSEParseError` instead of growing without limit.
public struct SSEParser: Sendable {
    public let maxLineBytes: Int
    public let maxEventBytes: Int

    /// The last `retry:` value (milliseconds) the server sent, if any.
    public private(set) var retryMilliseconds: Int?

    private var line: [UInt8] = []
    /// The previous byte was a CR: an LF right after it belongs to the same line ending.
    private var afterCR = false
    /// How many bytes of a leading UTF-8 BOM have been matched; nil once past the stream start.
    private var bomMatched: Int? = 0
    private var data: [UInt8] = []
    private var hasData = false
    private var eventType = ""
    private var lastEventId: String?
    private var failure: SSEParseError?

    private static let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    private static let lf: UInt8 = 0x0A
    private static let cr: UInt8 = 0x0D
    private static let colon: UInt8 = 0x3A
    private static let space: UInt8 = 0x20

    public init(maxLineBytes: Int = 4 << 20, maxEventBytes: Int = 16 << 20) {
        self.maxLineBytes = max(1, maxLineBytes)
        self.maxEventBytes = max(1, maxEventBytes)
    }

    /// True when some of an event has been read but not yet dispatched (a blank line is missing).
    /// At end of stream such an event is discarded, as the spec says; callers may want to log it.
    public var hasPartialEvent: Bool { hasData || !line.isEmpty || !eventType.isEmpty }

    /// Parses `bytes` and returns the events completed by them, in order.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [SSEEvent] {
        if let failure { throw failure }
        var events: [SSEEvent] = []
        do {
            for byte in bytes { try consume(byte, into: &events) }
        } catch let error as SSEParseError {
            failure = error
            throw error
        }
        return events
    }

    private mutating func consume(_ byte: UInt8, into events: inout [SSEEvent]) throws {
        if let matched = bomMatched {
            if byte == Self.bom[matched] {
                bomMatched = matched + 1 == Self.bom.count ? nil : matched + 1
                return
            }
            // Not a BOM after all: the bytes matched so far are ordinary line content.
            bomMatched = nil
            for b in Self.bom[..<matched] { try append(b) }
        }
        if afterCR {
            afterCR = false
            if byte == Self.lf { return }
        }
        switch byte {
        case Self.cr:
            afterCR = true
            try endLine(into: &events)
        case Self.lf:
            try endLine(into: &events)
        default:
            try append(byte)
        }
    }

    private mutating func append(_ byte: UInt8) throws {
        guard line.count < maxLineBytes else { throw SSEParseError(kind: .lineTooLong, limit: maxLineBytes) }
        line.append(byte)
    }

    private mutating func endLine(into events: inout [SSEEvent]) throws {
        defer { line.removeAll(keepingCapacity: line.count <= 4096) }
        if line.isEmpty {
            if let event = dispatch() { events.append(event) }
            return
        }
        if line[0] == Self.colon { return }  // a comment
        let name: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: Self.colon) {
            name = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == Self.space { value = value.dropFirst() }
        } else {
            name = line[...]
            value = []
        }
        switch String(decoding: name, as: UTF8.self) {
        case "event":
            eventType = String(decoding: value, as: UTF8.self)
        case "data":
            let size = data.count + (hasData ? 1 : 0) + value.count
            guard size <= maxEventBytes else { throw SSEParseError(kind: .eventTooLarge, limit: maxEventBytes) }
            if hasData { data.append(Self.lf) }
            data.append(contentsOf: value)
            hasData = true
        case "id":
            // The spec ignores ids containing NUL (they could not be sent back in Last-Event-ID).
            if !value.contains(0) { lastEventId = String(decoding: value, as: UTF8.self) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                retryMilliseconds = Int(String(decoding: value, as: UTF8.self))
            }
        default:
            break  // unknown fields are ignored
        }
    }

    /// A blank line: dispatch the pending event if it has data (`event:` alone dispatches nothing
    /// and is forgotten — which is why Marathon's type must also be read from the JSON).
    private mutating func dispatch() -> SSEEvent? {
        defer {
            data.removeAll(keepingCapacity: data.count <= 65536)
            hasData = false
            eventType = ""
        }
        guard hasData else { return nil }
        let id = (lastEventId?.isEmpty ?? true) ? nil : lastEventId
        return SSEEvent(type: eventType.isEmpty ? "message" : eventType,
                        data: String(decoding: data, as: UTF8.self), id: id)
    }
}

/// A response's status line and headers.
public struct HTTPResponseHead: Sendable, Equatable {
    public var version: String
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders

    public init(version: String = "HTTP/1.1", status: Int, reason: String = "", headers: HTTPHeaders = [:]) {
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
    }
}

/// What the parser produced from the bytes fed so far.
public enum HTTPResponsePart: Sendable, Equatable {
    case head(HTTPResponseHead)
    /// Body bytes as they arrive, with any chunked framing removed.
    case body([UInt8])
    /// The body is complete (with the chunked trailers, if any).
    case end(trailers: HTTPHeaders)
}

public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badStatusLine
        case badHeader
        case headTooLarge
        case tooManyHeaders
        case badContentLength
        case badChunk
        case truncated
    }

    public var kind: Kind
    public var detail: String

    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "invalid HTTP response: \(detail)" }
}

/// An incremental HTTP/1.1 response parser (RFC 9112), as a pure state machine. It frames the body
/// by Content-Length, chunked transfer coding (extensions and trailers included) or the end of the
/// connection, and hands body bytes out as they arrive — Marathon's event stream is an unframed
/// body that never ends, read until the connection closes.
public struct HTTPResponseParser: Sendable {
    public struct Limits: Sendable {
        /// Status line plus headers (and, separately, the chunked trailers).
        public var maxHeadBytes: Int
        public var maxHeaderCount: Int
        /// A chunk-size line, extensions included.
        public var maxChunkLineBytes: Int

        public init(maxHeadBytes: Int = 64 << 10, maxHeaderCount: Int = 128, maxChunkLineBytes: Int = 4096) {
            self.maxHeadBytes = maxHeadBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxChunkLineBytes = maxChunkLineBytes
        }
    }

    private enum State: Sendable {
        case head
        case fixed(remaining: Int)
        case untilClose
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case done
        case failed(HTTPParseError)
    }

    public let limits: Limits
    /// HEAD responses have no body whatever their headers say.
    public let requestMethod: String
    private var state: State = .head
    /// The line being assembled (head, chunk-size or trailer lines).
    private var line: [UInt8] = []
    private var headBytes = 0
    private var headLines: [String] = []
    private var trailerLines: [String] = []

    public init(requestMethod: String = "GET", limits: Limits = Limits()) {
        self.requestMethod = requestMethod.uppercased()
        self.limits = limits
    }

    /// True once the whole response (head and body) has been read.
    public var isComplete: Bool {
        if case .done = state { return true }
        return false
    }

    /// True when the body ends only when the connection does.
    public var readsUntilClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// Parses `bytes`; returns the parts they complete. Bytes after a complete response are ignored
    /// (requests are sent with `Connection: close`).
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [HTTPResponsePart] {
        if case .failed(let e) = state { throw e }
        var parts: [HTTPResponsePart] = []
        var body: [UInt8] = []
        do {
            var i = bytes.startIndex
            while i != bytes.endIndex {
                switch state {
                case .head, .chunkSize, .chunkDataEnd, .trailers:
                    let byte = bytes[i]
                    bytes.formIndex(after: &i)
                    try consumeLineByte(byte, parts: &parts, body: &body)
                case .fixed(let remaining):
                    let end = bytes.index(i, offsetBy: remaining, limitedBy: bytes.endIndex) ?? bytes.endIndex
                    body.append(contentsOf: bytes[i..<end])
                    let left = remaining - bytes.distance(from: i, to: end)
                    i = end
                    if left == 0 {
                        flush(&body, into: &parts)
                        finishBody(trailers: [:], parts: &parts)
                    } else {
                        state = .fixed(remaining: left)
                    }
                case .chunkData(let remaining):
                    let end = bytes.index(i, offsetBy: remaining, limitedBy: bytes.endIndex) ?? bytes.endIndex
                    body.append(contentsOf: bytes[i..<end])
                    let left = remaining - bytes.distance(from: i, to: end)
                    i = end
                    state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                case .untilClose:
                    body.append(contentsOf: bytes[i...])
                    i = bytes.endIndex
                case .done:
                    i = bytes.endIndex
                case .failed(let e):
                    throw e
                }
            }
        } catch let error as HTTPParseError {
            state = .failed(error)
            throw error
        }
        flush(&body, into: &parts)
        return parts
    }

    /// The connection closed: ends a read-until-close body; anything else unfinished is truncated.
    public mutating func finish() throws -> [HTTPResponsePart] {
        switch state {
        case .done:
            return []
        case .untilClose:
            state = .done
            return [.end(trailers: [:])]
        case .failed(let e):
            throw e
        case .head:
            let e = HTTPParseError(.truncated, headBytes == 0 && line.isEmpty
                                   ? "connection closed before any response" : "connection closed in the response head")
            state = .failed(e)
            throw e
        case .fixed(let remaining):
            let e = HTTPParseError(.truncated, "connection closed with \(remaining) body bytes missing")
            state = .failed(e)
            throw e
        case .chunkSize, .chunkData, .chunkDataEnd, .trailers:
            let e = HTTPParseError(.truncated, "connection closed inside the chunked body")
            state = .failed(e)
            throw e
        }
    }

    // MARK: - Lines

    private mutating func consumeLineByte(_ byte: UInt8, parts: inout [HTTPResponsePart], body: inout [UInt8]) throws {
        if byte != 0x0A {
            line.append(byte)
            try checkLineLimit()
            return
        }
        // Lines end in CRLF; a bare LF is tolerated (RFC 9112 §2.2).
        if line.last == 0x0D { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        let wasEmpty = line.isEmpty
        line.removeAll(keepingCapacity: true)
        switch state {
        case .head:
            if wasEmpty {
                if headLines.isEmpty { return }  // tolerate stray CRLFs before the status line
                try endHead(parts: &parts)
            } else {
                headLines.append(text)
                if headLines.count > limits.maxHeaderCount + 1 {
                    throw HTTPParseError(.tooManyHeaders, "more than \(limits.maxHeaderCount) header fields")
                }
            }
        case .chunkSize:
            let size = try Self.chunkSize(text)
            if size == 0 {
                headBytes = 0
                state = .trailers
            } else {
                state = .chunkData(remaining: size)
            }
        case .chunkDataEnd:
            guard wasEmpty else { throw HTTPParseError(.badChunk, "chunk data not followed by CRLF") }
            state = .chunkSize
        case .trailers:
            if wasEmpty {
                flush(&body, into: &parts)
                finishBody(trailers: try Self.headers(from: trailerLines[...]), parts: &parts)
            } else {
                trailerLines.append(text)
                if trailerLines.count > limits.maxHeaderCount {
                    throw HTTPParseError(.tooManyHeaders, "more than \(limits.maxHeaderCount) trailer fields")
                }
            }
        default:
            break
        }
    }

    private mutating func checkLineLimit() throws {
        switch state {
        case .head, .trailers:
            headBytes += 1
            if headBytes > limits.maxHeadBytes {
                throw HTTPParseError(.headTooLarge, "header section larger than \(limits.maxHeadBytes) bytes")
            }
        case .chunkSize:
            if line.count > limits.maxChunkLineBytes {
                throw HTTPParseError(.badChunk, "chunk-size line longer than \(limits.maxChunkLineBytes) bytes")
            }
        case .chunkDataEnd:
            if line.count > 1 { throw HTTPParseError(.badChunk, "chunk data not followed by CRLF") }
        default:
            break
        }
    }

    private mutating func endHead(parts: inout [HTTPResponsePart]) throws {
        let head = try Self.head(from: headLines)
        headLines.removeAll()
        headBytes = 0
        // Interim 1xx responses (100 Continue, 103 Early Hints) precede the real one.
        if (100..<200).contains(head.status) && head.status != 101 { return }
        parts.append(.head(head))
        state = try framing(of: head)
        if case .done = state { parts.append(.end(trailers: [:])) }
    }

    /// RFC 9112 §6.3, in order: no-body statuses, Transfer-Encoding, Content-Length, else until close.
    private func framing(of head: HTTPResponseHead) throws -> State {
        if requestMethod == "HEAD" || head.status == 204 || head.status == 304 || (100..<200).contains(head.status) {
            return .done
        }
        let codings = head.headers.values("Transfer-Encoding")
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingSpaces().lowercased() }
            .filter { !$0.isEmpty }
        if let last = codings.last {
            return last == "chunked" ? .chunkSize : .untilClose
        }
        let lengths = head.headers.values("Content-Length")
            .flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
            .map { $0.trimmingSpaces() }
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), !first.isEmpty,
                  first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), first.utf8.count <= 18,
                  let n = Int(first) else {
                throw HTTPParseError(.badContentLength, "invalid Content-Length \(lengths.joined(separator: ","))")
            }
            return n == 0 ? .done : .fixed(remaining: n)
        }
        return .untilClose
    }

    private mutating func finishBody(trailers: HTTPHeaders, parts: inout [HTTPResponsePart]) {
        state = .done
        parts.append(.end(trailers: trailers))
    }

    private func flush(_ body: inout [UInt8], into parts: inout [HTTPResponsePart]) {
        if !body.isEmpty {
            parts.append(.body(body))
            body = []
        }
    }

    // MARK: - Grammar

    private static func head(from lines: [String]) throws -> HTTPResponseHead {
        guard let statusLine = lines.first else { throw HTTPParseError(.badStatusLine, "empty status line") }
        // status-line = HTTP-version SP status-code SP [ reason-phrase ]
        let pieces = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard pieces.count >= 2, pieces[0].hasPrefix("HTTP/1."), pieces[0].count == 8,
              pieces[1].count == 3, pieces[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              let status = Int(pieces[1]), status >= 100 else {
            throw HTTPParseError(.badStatusLine, "bad status line \(quoted(statusLine))")
        }
        let reason = pieces.count > 2 ? String(pieces[2]) : ""
        return HTTPResponseHead(version: String(pieces[0]), status: status, reason: reason,
                                headers: try headers(from: lines.dropFirst()))
    }

    private static func headers(from lines: ArraySlice<String>) throws -> HTTPHeaders {
        var fields: [(String, String)] = []
        for line in lines {
            if line.first == " " || line.first == "\t" {
                // obs-fold: a continuation of the previous value; a client may replace it with SP.
                guard let last = fields.popLast() else {
                    throw HTTPParseError(.badHeader, "continuation line before any header")
                }
                fields.append((last.0, last.1 + " " + line.trimmingSpaces()))
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw HTTPParseError(.badHeader, "header line without a colon: \(quoted(line))")
            }
            let name = line[..<colon]
            guard !name.isEmpty, !name.contains(where: { $0 == " " || $0 == "\t" }) else {
                throw HTTPParseError(.badHeader, "bad header name \(quoted(String(name)))")
            }
            fields.append((String(name), line[line.index(after: colon)...].trimmingSpaces()))
        }
        return HTTPHeaders(fields)
    }

    private static func chunkSize(_ line: String) throws -> Int {
        // chunk = chunk-size [ chunk-ext ] CRLF; extensions are ignored.
        let sizeText = (line.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            .trimmingSpaces()
        let hexDigits = sizeText.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }
        guard !sizeText.isEmpty, hexDigits, sizeText.utf8.count <= 15, let size = Int(sizeText, radix: 16) else {
            throw HTTPParseError(.badChunk, "bad chunk-size line \(quoted(line))")
        }
        return size
    }

    private static func quoted(_ s: String) -> String {
        let cut = s.count > 80 ? String(s.prefix(80)) + "…" : s
        return "\"" + cut + "\""
    }
}

fileprivate extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's OWS).
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

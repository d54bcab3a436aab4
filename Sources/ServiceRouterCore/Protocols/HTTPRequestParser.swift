/// An incremental HTTP/1.1 request parser: a pure state machine with no I/O.
///
/// The server appends bytes as they arrive and asks for the next action until it gets
/// `.needMoreData`. Requests may be pipelined: several can sit in the buffer at once, and they
/// come out one `next()` at a time in order. Only `Content-Length` bodies are accepted: no client
/// of ours (Marathon clients, HAProxy checks, curl, Prometheus) sends chunked requests, and
/// rejecting them with 501 is allowed by RFC 9112.
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Request line plus all header lines, terminators included.
        public var maxHeadBytes: Int
        public var maxHeaderCount: Int
        public var maxBodyBytes: Int
        /// Empty lines tolerated before a request line (RFC 9112 §2.2: "SHOULD ignore at least one").
        public var maxLeadingEmptyLines: Int

        public init(maxHeadBytes: Int = 64 * 1024, maxHeaderCount: Int = 100, maxBodyBytes: Int = 8 << 20,
                    maxLeadingEmptyLines: Int = 8) {
            self.maxHeadBytes = maxHeadBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxBodyBytes = maxBodyBytes
            self.maxLeadingEmptyLines = maxLeadingEmptyLines
        }
    }

    public enum Action: Sendable, Equatable {
        /// A complete request; call `next()` again, more may be buffered (pipelining).
        case request(ParsedHTTPRequest)
        /// The head asked for `Expect: 100-continue` and its body has not fully arrived: the
        /// server should write `HTTP/1.1 100 Continue` (curl waits a second for it otherwise).
        case sendContinue
        /// Nothing complete in the buffer.
        case needMoreData
        /// The stream is unusable from here on: answer `error.status` and close.
        case error(HTTPRequestParseError)
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    /// Start of the unparsed bytes in `buffer`.
    private var start = 0
    /// Where the search for the next LF resumes.
    private var scan = 0
    private var state = State.head(HeadProgress())

    private struct HeadProgress: Sendable {
        var lines: [String] = []
        var leadingEmptyLines = 0
        /// Index in `buffer` where this head began (after leading empty lines).
        var headStart: Int?
    }

    private enum State: Sendable {
        case head(HeadProgress)
        case body(ParsedHTTPRequest, length: Int, continueSent: Bool)
        case failed(HTTPRequestParseError)
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet consumed by a returned request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// True when no request is partially received (a clean place to close a keep-alive connection).
    public var isIdle: Bool {
        if case .head(let p) = state { return p.lines.isEmpty && bufferedByteCount == 0 }
        return false
    }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if case .failed = state { return }
        // Compact now and then so a long keep-alive connection does not grow its buffer forever.
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            scan -= start
            if case .head(var p) = state, let hs = p.headStart {
                p.headStart = hs - start
                state = .head(p)
            }
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func next() -> Action {
        while true {
            switch state {
            case .failed(let error):
                return .error(error)
            case .body(let head, let length, let continueSent):
                if bufferedByteCount >= length {
                    var request = head
                    request.body = Array(buffer[start..<(start + length)])
                    start += length
                    scan = start
                    state = .head(HeadProgress())
                    return .request(request)
                }
                if head.expectsContinue && !continueSent {
                    state = .body(head, length: length, continueSent: true)
                    return .sendContinue
                }
                return .needMoreData
            case .head(var progress):
                guard let lf = buffer[scan...].firstIndex(of: 0x0A) else {
                    scan = buffer.count
                    let used = buffer.count - (progress.headStart ?? start)
                    if used > limits.maxHeadBytes {
                        return fail(.headTooLarge, "request head exceeds \(limits.maxHeadBytes) bytes")
                    }
                    state = .head(progress)
                    return .needMoreData
                }
                var lineEnd = lf
                if lineEnd > start && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let lineStart = start
                start = lf + 1
                scan = start
                if lineEnd == lineStart {
                    if progress.lines.isEmpty {
                        progress.leadingEmptyLines += 1
                        if progress.leadingEmptyLines > limits.maxLeadingEmptyLines {
                            return fail(.badRequestLine, "too many empty lines before the request line")
                        }
                        state = .head(progress)
                        continue
                    }
                    if let hs = progress.headStart, lf + 1 - hs > limits.maxHeadBytes {
                        return fail(.headTooLarge, "request head exceeds \(limits.maxHeadBytes) bytes")
                    }
                    switch Self.makeRequest(lines: progress.lines, limits: limits) {
                    case .failure(let error):
                        state = .failed(error)
                        return .error(error)
                    case .success(let (request, length)):
                        state = .body(request, length: length, continueSent: length == 0)
                        continue
                    }
                }
                if progress.headStart == nil { progress.headStart = lineStart }
                if let hs = progress.headStart, lf + 1 - hs > limits.maxHeadBytes {
                    return fail(.headTooLarge, "request head exceeds \(limits.maxHeadBytes) bytes")
                }
                if progress.lines.count > limits.maxHeaderCount {
                    return fail(.tooManyHeaders, "more than \(limits.maxHeaderCount) header fields")
                }
                progress.lines.append(String(decoding: buffer[lineStart..<lineEnd], as: UTF8.self))
                state = .head(progress)
            }
        }
    }

    private mutating func fail(_ kind: HTTPRequestParseError.Kind, _ detail: String) -> Action {
        let error = HTTPRequestParseError(kind: kind, detail: detail)
        state = .failed(error)
        return .error(error)
    }

    private static func makeRequest(lines: [String], limits: Limits) -> Result<(ParsedHTTPRequest, Int), HTTPRequestParseError> {
        func failure(_ kind: HTTPRequestParseError.Kind, _ detail: String) -> Result<(ParsedHTTPRequest, Int), HTTPRequestParseError> {
            .failure(HTTPRequestParseError(kind: kind, detail: detail))
        }
        let requestLine = lines[0]
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            return failure(.badRequestLine, "malformed request line \(quoted(requestLine))")
        }
        let method = String(parts[0])
        guard method.utf8.allSatisfy(isTokenByte) else {
            return failure(.badRequestLine, "invalid method \(quoted(method))")
        }
        guard let version = HTTPVersion(parts[2]) else {
            return failure(.badRequestLine, "malformed version \(quoted(String(parts[2])))")
        }
        guard version.major == 1 else {
            return failure(.unsupportedVersion, "HTTP version \(version) is not supported")
        }
        var headers = HTTPHeaders()
        for line in lines.dropFirst() {
            if let first = line.utf8.first, first == 0x20 || first == 0x09 {
                return failure(.badHeader, "obsolete line folding is not accepted")
            }
            guard let colon = line.utf8.firstIndex(of: 0x3A) else {
                return failure(.badHeader, "header line without a colon: \(quoted(line))")
            }
            let name = String(line[..<colon])
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                return failure(.badHeader, "invalid header name \(quoted(name))")
            }
            let value = String(line[line.index(after: colon)...]).trimmingOWS()
            headers.add(name, value)
        }
        if headers.count > limits.maxHeaderCount {
            return failure(.tooManyHeaders, "more than \(limits.maxHeaderCount) header fields")
        }
        if let te = headers["Transfer-Encoding"] {
            return failure(.unsupportedTransferEncoding, "Transfer-Encoding \(quoted(te)) is not supported")
        }
        var length = 0
        let lengths = headers.values("Content-Length")
        if !lengths.isEmpty {
            let distinct = Set(lengths.flatMap { $0.split(separator: ",").map { String($0).trimmingOWS() } })
            guard distinct.count == 1, let text = distinct.first, !text.isEmpty, text.utf8.count <= 18,
                  text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text) else {
                return failure(.badContentLength, "invalid Content-Length \(lengths.joined(separator: ", "))")
            }
            length = n
        }
        if length > limits.maxBodyBytes {
            return failure(.bodyTooLarge, "body of \(length) bytes exceeds \(limits.maxBodyBytes)")
        }
        let tokens = headers.values("Connection").flatMap { $0.split(separator: ",") }
            .map { String($0).trimmingOWS().lowercased() }
        let keepAlive: Bool
        if tokens.contains("close") {
            keepAlive = false
        } else if version.minor >= 1 {
            keepAlive = true
        } else {
            keepAlive = tokens.contains("keep-alive")
        }
        let expects = headers["Expect"]?.lowercased() == "100-continue" && version.minor >= 1
        let request = ParsedHTTPRequest(method: method, target: String(parts[1]), version: version, headers: headers,
                                  body: [], keepAlive: keepAlive, expectsContinue: expects)
        return .success((request, length))
    }

    private static func quoted(_ s: String) -> String {
        "\"" + (s.count > 80 ? String(s.prefix(80)) + "…" : s) + "\""
    }

    /// RFC 9110 token characters.
    static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }
}

/// Why a request stream could not be parsed; `status` is what to answer before closing.
public struct HTTPRequestParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badRequestLine, badHeader, badContentLength, tooManyHeaders, headTooLarge, bodyTooLarge
        case unsupportedVersion, unsupportedTransferEncoding
    }

    public var kind: Kind
    public var detail: String

    public var status: Int {
        switch kind {
        case .badRequestLine, .badHeader, .badContentLength: 400
        case .tooManyHeaders, .headTooLarge: 431
        case .bodyTooLarge: 413
        case .unsupportedVersion: 505
        case .unsupportedTransferEncoding: 501
        }
    }

    public var description: String { "bad HTTP request: \(detail)" }
}

public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    init?(_ text: Substring) {
        let u = Array(text.utf8)
        guard u.count == 8, text.hasPrefix("HTTP/"), u[6] == UInt8(ascii: "."),
              (0x30...0x39).contains(u[5]), (0x30...0x39).contains(u[7]) else { return nil }
        major = Int(u[5] - 0x30)
        minor = Int(u[7] - 0x30)
    }

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// One parsed request.
public struct ParsedHTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request target as sent (origin form: path and query).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Whether the connection may carry another request after the answer to this one.
    public var keepAlive: Bool
    public var expectsContinue: Bool

    public init(method: String, target: String, version: HTTPVersion = HTTPVersion(major: 1, minor: 1),
                headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], keepAlive: Bool = true,
                expectsContinue: Bool = false) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
    }

    /// The percent-decoded path, without the query.
    public var path: String {
        let raw = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return Self.percentDecode(raw, plusIsSpace: false)
    }

    /// The raw query string after `?`, if any.
    public var query: String? {
        guard let q = target.firstIndex(of: "?") else { return nil }
        return String(target[target.index(after: q)...])
    }

    /// Decoded `name=value` pairs in order; a bare `name` gives an empty value.
    public var queryItems: [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = Self.percentDecode(kv[0], plusIsSpace: true)
            let value = kv.count > 1 ? Self.percentDecode(kv[1], plusIsSpace: true) : ""
            return (name, value)
        }
    }

    /// Every value of the query parameter `name` (parameters may repeat, e.g. `event_type`).
    public func queryValues(_ name: String) -> [String] {
        queryItems.filter { $0.name == name }.map(\.value)
    }

    public func queryValue(_ name: String) -> String? { queryValues(name).first }

    /// Decodes `%XX` escapes (invalid ones are kept as they are).
    public static func percentDecode<S: StringProtocol>(_ text: S, plusIsSpace: Bool) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%"), i + 2 < bytes.count, let h = hexValue(bytes[i + 1]), let l = hexValue(bytes[i + 2]) {
                out.append(h << 4 | l)
                i += 3
                continue
            }
            out.append(plusIsSpace && b == UInt8(ascii: "+") ? UInt8(ascii: " ") : b)
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}

extension String {
    fileprivate func caseInsensitiveEquals(_ other: String) -> Bool {
        let a = utf8, b = other.utf8
        guard a.count == b.count else { return false }
        return zip(a, b).allSatisfy { x, y in
            x == y || (x | 0x20 == y | 0x20 && (x | 0x20) >= 0x61 && (x | 0x20) <= 0x7A)
        }
    }

    /// Strips optional whitespace (SP / HTAB) at both ends, as header values allow.
    fileprivate func trimmingOWS() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

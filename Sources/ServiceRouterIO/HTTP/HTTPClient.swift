import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import ServiceRouterCore

public struct HTTPRequest: Sendable {
    public var method: String
    public var url: URL
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String = "GET", url: URL, headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, reason: String = "", headers: HTTPHeaders = [:], body: [UInt8] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A failed exchange. `url` is always redacted (no user or password), and no header values are
/// ever included, so the error can be logged as it is.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case invalidRequest
        case connect
        /// The whole exchange took longer than its timeout.
        case timeout
        /// No byte arrived for the idle timeout (a dead stream).
        case idle
        case invalidResponse
        case bodyTooLarge
        /// TLS could not be set up or the handshake failed (untrusted or wrong certificate, no libssl).
        case tls
        case transport
    }

    public var kind: Kind
    public var url: String
    public var detail: String

    public init(_ kind: Kind, url: URL, _ detail: String) {
        self.kind = kind
        self.url = url.redacted
        self.detail = detail
    }

    public var description: String { "\(url): \(detail)" }
}

extension URL {
    /// This URL without its user and password: the only form used in errors and logs.
    public var redacted: String {
        guard var c = URLComponents(url: self, resolvingAgainstBaseURL: true) else { return "<unparseable URL>" }
        guard c.user != nil || c.password != nil else { return absoluteString }
        c.user = nil
        c.password = nil
        return c.string ?? "<unparseable URL>"
    }
}

/// A response arriving part by part: `.head`, then `.body` chunks as they are read, then `.end`.
/// Iteration throws `HTTPClientError` (idle timeout, connection errors, bad framing). `cancel()`
/// — or cancelling the iterating task — closes the connection within ~0.2 s.
public struct HTTPStream: AsyncSequence, Sendable {
    public typealias Element = HTTPResponsePart
    let parts: AsyncThrowingStream<HTTPResponsePart, Error>
    let token: HTTPCancellation

    public func makeAsyncIterator() -> AsyncThrowingStream<HTTPResponsePart, Error>.AsyncIterator {
        parts.makeAsyncIterator()
    }

    public func cancel() { token.cancel() }
}

/// A small HTTP/1.1 client over `Connection.tcp`, one connection per request (`Connection: close`).
/// `https://` runs the same exchange over a `TLSConnection` (the system's OpenSSL 3, loaded at run
/// time). Redirects are never followed here: callers that want them (the Marathon client) follow
/// them so that they control which headers go along.
public struct HTTPClient: Sendable {
    /// Bounds the TCP connect, and separately the TLS handshake.
    public var connectTimeout: Double
    /// `send` refuses bodies larger than this.
    public var maxBodyBytes: Int
    /// A PEM CA bundle: when set, `https://` servers must have a certificate chain to one of its
    /// certificates (and only those); when nil, the system trust store is used. Read at each connection.
    public var caCertificateFile: String?
    public var userAgent: String

    public init(connectTimeout: Double = 5, maxBodyBytes: Int = 256 << 20, caCertificateFile: String? = nil,
                userAgent: String = "servicerouter") {
        self.connectTimeout = connectTimeout
        self.maxBodyBytes = maxBodyBytes
        self.caCertificateFile = caCertificateFile
        self.userAgent = userAgent
    }

    /// With a CA file set, throws `.tls` unless libssl loads and the file holds usable CA
    /// certificates (call it at startup to fail early). Without one there is nothing to check:
    /// plain-http setups must not depend on libssl.
    public func checkTLSConfiguration() throws {
        guard let file = caCertificateFile else { return }
        do {
            _ = try TLSContext(caFile: file)
        } catch {
            throw HTTPClientError(.tls, url: URL(fileURLWithPath: file), (error as? TLSError)?.detail ?? "\(error)")
        }
    }

    /// One request, whole response. `timeout` bounds the whole exchange, connect included.
    ///
    /// The body is collected on the thread that reads the socket, into one buffer sized from
    /// Content-Length: handing it over chunk by chunk through an async stream let a fast server
    /// queue up to a second copy of a large answer (the 5 MB `/v2/apps` at 10,000 tasks) while
    /// the consumer caught up.
    public func send(_ request: HTTPRequest, timeout: Double) async throws -> HTTPResponse {
        let token = HTTPCancellation()
        let exchange = HTTPExchange(request: request, target: try HTTPTarget(request.url), userAgent: userAgent,
                                    caFile: caCertificateFile, token: token)
        try Self.validate(request)
        let connectTimeout = connectTimeout, maxBodyBytes = maxBodyBytes
        let deadline = Monotonic.now() + timeout
        let response = try await withTaskCancellationHandler {
            try await Blocking.run { () throws -> HTTPResponse? in
                var head: HTTPResponseHead?
                var body: [UInt8] = []
                var complete: HTTPResponse?
                var tooLarge = false
                try exchange.run(connectTimeout: connectTimeout, idleTimeout: timeout, deadline: deadline, timeout: timeout) { part in
                    switch part {
                    case .head(let h):
                        head = h
                        if let declared = h.headers["Content-Length"].flatMap({ Int($0) }), declared > 0, declared <= maxBodyBytes {
                            body.reserveCapacity(declared)
                        }
                    case .body(let bytes):
                        guard !tooLarge else { return }
                        body.append(contentsOf: bytes)
                        if body.count > maxBodyBytes {
                            tooLarge = true
                            body = []
                            token.cancel()
                        }
                    case .end:
                        if let head, !tooLarge {
                            complete = HTTPResponse(status: head.status, reason: head.reason, headers: head.headers, body: body)
                        }
                    }
                }
                if tooLarge {
                    throw HTTPClientError(.bodyTooLarge, url: request.url, "response body larger than \(maxBodyBytes) bytes")
                }
                return complete
            }
        } onCancel: {
            token.cancel()
        }
        if let response { return response }
        try Task.checkCancellation()
        throw HTTPClientError(.invalidResponse, url: request.url, "connection ended without a complete response")
    }

    /// A response read incrementally, for never-ending bodies such as an event stream. The stream
    /// fails with `.idle` when no byte (heartbeats included) arrives for `idleTimeout` seconds.
    public func stream(_ request: HTTPRequest, idleTimeout: Double) -> HTTPStream {
        open(request, idleTimeout: idleTimeout, deadline: nil)
    }

    func open(_ request: HTTPRequest, idleTimeout: Double, deadline: Double?) -> HTTPStream {
        let token = HTTPCancellation()
        let (parts, continuation) = AsyncThrowingStream<HTTPResponsePart, Error>.makeStream()
        continuation.onTermination = { _ in token.cancel() }
        // `HTTPStream.cancel()` ends the consumer's iteration at once, whatever the transport.
        token.onCancel { continuation.finish() }
        let stream = HTTPStream(parts: parts, token: token)
        let exchange: HTTPExchange
        do {
            exchange = HTTPExchange(request: request, target: try HTTPTarget(request.url), userAgent: userAgent,
                                    caFile: caCertificateFile, token: token)
            try Self.validate(request)
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        let connectTimeout = connectTimeout
        do {
            try Blocking.start(name: "http \(exchange.target.hostHeader)") {
                do {
                    try exchange.run(connectTimeout: connectTimeout, idleTimeout: idleTimeout, deadline: deadline) {
                        continuation.yield($0)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        } catch {
            continuation.finish(throwing: HTTPClientError(.transport, url: request.url, "cannot start a thread for the stream: \(error)"))
        }
        return stream
    }

    /// Header injection guard: names and values must not smuggle line breaks.
    static func validate(_ request: HTTPRequest) throws {
        let method = request.method
        guard !method.isEmpty, method.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPClientError(.invalidRequest, url: request.url, "invalid method")
        }
        for (name, value) in request.headers {
            if name.isEmpty || name.contains(where: { $0 == ":" || $0.isWhitespace || $0.isNewline })
                || value.contains(where: \.isNewline) {
                throw HTTPClientError(.invalidRequest, url: request.url, "invalid header field \(name.debugDescription)")
            }
        }
    }
}

/// Where a URL points, in the forms the request line and the socket need.
struct HTTPTarget: Sendable {
    var url: URL
    var isTLS: Bool
    var host: String
    var port: Int
    /// `host[:port]`, IPv6 literals in brackets.
    var hostHeader: String
    /// Path and query, percent-encoded as given.
    var requestTarget: String
    /// `Basic …` built from the URL's user info, if it has any.
    var basicAuthorization: String?

    init(_ url: URL) throws {
        guard let c = URLComponents(url: url, resolvingAgainstBaseURL: true),
              let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw HTTPClientError(.invalidRequest, url: url, "only http:// and https:// URLs are supported")
        }
        var host = c.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw HTTPClientError(.invalidRequest, url: url, "URL has no host") }
        self.url = url
        isTLS = scheme == "https"
        self.host = host
        let defaultPort = isTLS ? 443 : 80
        port = c.port ?? defaultPort
        let hostText = host.contains(":") ? "[\(host)]" : host
        hostHeader = port == defaultPort ? hostText : "\(hostText):\(port)"
        let path = c.percentEncodedPath.isEmpty ? "/" : c.percentEncodedPath
        requestTarget = path + (c.percentEncodedQuery.map { "?" + $0 } ?? "")
        if let user = c.user {
            let pair = user + ":" + (c.password ?? "")
            basicAuthorization = "Basic " + Data(pair.utf8).base64EncodedString()
        }
    }
}

/// A cancellation flag plus actions to run once when it is set, and the socket of the exchange
/// in progress, which cancelling shuts down (under the lock, so never after the exchange released
/// it and the descriptor number could belong to something else).
final class HTTPCancellation: Sendable {
    private struct State {
        var cancelled = false
        var actions: [@Sendable () -> Void] = []
        var socket: Int32?
    }
    private let state = Mutex(State())

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func cancel() {
        let actions = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.cancelled else { return [] }
            s.cancelled = true
            if let fd = s.socket { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
            defer { s.actions = [] }
            return s.actions
        }
        for action in actions { action() }
    }

    /// The exchange reads `fd` from now on; false when already cancelled.
    func attach(_ fd: Int32) -> Bool {
        state.withLock { s in
            guard !s.cancelled else { return false }
            s.socket = fd
            return true
        }
    }

    /// The exchange is about to close its socket.
    func detach() { state.withLock { $0.socket = nil } }

    /// Runs `action` on cancellation (at once if already cancelled).
    func onCancel(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { s -> Bool in
            if s.cancelled { return true }
            s.actions.append(action)
            return false
        }
        if now { action() }
    }
}

import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
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
        case tls
        case unsupported
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

/// A small HTTP/1.1 client. `http://` is spoken directly over `Connection.tcp` (one connection
/// per request, `Connection: close`); `https://` goes through FoundationNetworking's URLSession,
/// which wraps libcurl and its TLS. Redirects are never followed here: callers that want them
/// (the Marathon client) follow them so that they control which headers go along.
public struct HTTPClient: Sendable {
    public var connectTimeout: Double
    /// `send` refuses bodies larger than this.
    public var maxBodyBytes: Int
    /// A PEM CA bundle to trust for `https://`. Not supported on Linux: see `checkTLSConfiguration`.
    public var caCertificateFile: String?
    public var userAgent: String

    enum Transport: Sendable { case automatic, urlSession }
    /// Tests force URLSession for `http://` to exercise the path `https://` takes.
    var transport: Transport = .automatic

    /// How long a blocked read waits before it looks at the cancellation flag again.
    static let pollSlice = 0.1

    public init(connectTimeout: Double = 5, maxBodyBytes: Int = 256 << 20, caCertificateFile: String? = nil,
                userAgent: String = "servicerouter") {
        self.connectTimeout = connectTimeout
        self.maxBodyBytes = maxBodyBytes
        self.caCertificateFile = caCertificateFile
        self.userAgent = userAgent
    }

    /// Throws when the TLS settings cannot be honoured (call it at startup to fail early).
    ///
    /// swift-corelibs-foundation hands libcurl only the system CA bundle on Linux: its
    /// `URLSessionCertificateAuthorityInfoFile` variable is read only on Android, and libcurl
    /// itself reads no CA variable (`SSL_CERT_FILE` and `CURL_CA_BUNDLE` change nothing). So a
    /// private CA must be installed into the system trust store instead.
    public func checkTLSConfiguration() throws {
        guard let file = caCertificateFile else { return }
        throw HTTPClientError(.unsupported, url: URL(fileURLWithPath: file), """
            a custom CA bundle cannot be used for https: FoundationNetworking on Linux gives libcurl only \
            the system CA bundle. Install the CA into the system trust store instead (copy it to \
            /usr/local/share/ca-certificates/<name>.crt and run update-ca-certificates) and drop the CA option
            """)
    }

    /// One request, whole response. `timeout` bounds the whole exchange, connect included.
    public func send(_ request: HTTPRequest, timeout: Double) async throws -> HTTPResponse {
        let stream = open(request, idleTimeout: timeout, deadline: Monotonic.now() + timeout)
        defer { stream.cancel() }
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        for try await part in stream {
            switch part {
            case .head(let h):
                head = h
            case .body(let bytes):
                body.append(contentsOf: bytes)
                if body.count > maxBodyBytes {
                    throw HTTPClientError(.bodyTooLarge, url: request.url, "response body larger than \(maxBodyBytes) bytes")
                }
            case .end:
                guard let head else { break }
                return HTTPResponse(status: head.status, reason: head.reason, headers: head.headers, body: body)
            }
        }
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
        let target: HTTPTarget
        do {
            target = try HTTPTarget(request.url)
            if target.isTLS { try checkTLSConfiguration() }
            try Self.validate(request)
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        if target.isTLS || transport == .urlSession {
            URLSessionExchange.start(request, target: target, userAgent: userAgent, idleTimeout: idleTimeout,
                                     deadline: deadline, token: token, continuation: continuation)
        } else {
            let connectTimeout = connectTimeout
            let userAgent = userAgent
            Blocking.detach(name: "http \(target.hostHeader)") {
                do {
                    try SocketExchange(request: request, target: target, userAgent: userAgent, token: token)
                        .run(connectTimeout: connectTimeout, idleTimeout: idleTimeout, deadline: deadline) {
                            continuation.yield($0)
                        }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
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
    /// The URL without user info (what URLSession is given).
    var bareURL: URL

    init(_ url: URL) throws {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: true),
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
        c.user = nil
        c.password = nil
        c.fragment = nil
        bareURL = c.url ?? url
    }
}

/// A cancellation flag plus actions to run once when it is set.
final class HTTPCancellation: Sendable {
    private let state = Mutex<(cancelled: Bool, actions: [@Sendable () -> Void])>((false, []))

    var isCancelled: Bool { state.withLock { $0.cancelled } }

    func cancel() {
        let actions = state.withLock { s -> [@Sendable () -> Void] in
            guard !s.cancelled else { return [] }
            s.cancelled = true
            defer { s.actions = [] }
            return s.actions
        }
        for action in actions { action() }
    }

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

// MARK: - http:// over a socket

/// One request on its own connection, read on the calling (blocking) thread. Reads wait at most
/// `HTTPClient.pollSlice` so that cancellation is seen promptly without touching the socket from
/// another thread.
struct SocketExchange {
    var request: HTTPRequest
    var target: HTTPTarget
    var userAgent: String
    var token: HTTPCancellation

    func run(connectTimeout: Double, idleTimeout: Double, deadline: Double?,
             emit: (HTTPResponsePart) -> Void) throws {
        if token.isCancelled { return }
        var connectLimit = connectTimeout
        if let deadline { connectLimit = max(0.001, min(connectLimit, deadline - Monotonic.now())) }
        let connection: Connection
        do {
            connection = try Connection.tcp(host: target.host, port: target.port, timeout: connectLimit)
        } catch let e as TimeoutError {
            throw HTTPClientError(.connect, url: request.url, "connect timed out after \(seconds(connectLimit)) s (\(e.target))")
        } catch {
            throw HTTPClientError(.connect, url: request.url, "cannot connect: \(error)")
        }
        defer { connection.close() }
        do {
            try connection.write(requestBytes())
        } catch {
            throw HTTPClientError(.transport, url: request.url, "cannot send the request: \(error)")
        }
        var parser = HTTPResponseParser(requestMethod: request.method)
        var lastByte = Monotonic.now()
        while !token.isCancelled {
            let now = Monotonic.now()
            let idleLimit = lastByte + idleTimeout
            if let deadline, now >= deadline {
                throw HTTPClientError(.timeout, url: request.url, "no complete response within the timeout")
            }
            if now >= idleLimit {
                throw HTTPClientError(.idle, url: request.url, "no data for \(seconds(idleTimeout)) s")
            }
            let wait = min(HTTPClient.pollSlice, min(idleLimit, deadline ?? idleLimit) - now)
            let chunk: [UInt8]?
            do {
                chunk = try connection.read(max: 65536, timeout: max(0.001, wait))
            } catch is TimeoutError {
                continue
            } catch {
                throw HTTPClientError(.transport, url: request.url, "read failed: \(error)")
            }
            do {
                guard let chunk else {
                    for part in try parser.finish() { emit(part) }
                    return
                }
                lastByte = Monotonic.now()
                for part in try parser.feed(chunk) { emit(part) }
            } catch let e as HTTPParseError {
                throw HTTPClientError(.invalidResponse, url: request.url, e.description)
            }
            if parser.isComplete { return }
        }
    }

    func requestBytes() -> [UInt8] {
        var headers = request.headers
        if !headers.contains("Host") { headers.add("Host", target.hostHeader) }
        if !headers.contains("User-Agent") { headers.add("User-Agent", userAgent) }
        if !headers.contains("Authorization"), let auth = target.basicAuthorization { headers.add("Authorization", auth) }
        if !request.body.isEmpty || ["POST", "PUT", "PATCH"].contains(request.method.uppercased()) {
            headers.set("Content-Length", String(request.body.count))
        }
        headers.set("Connection", "close")
        var text = "\(request.method) \(target.requestTarget) HTTP/1.1\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + request.body
    }
}

fileprivate func seconds(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(format: "%.3g", value)
}

// MARK: - https:// through URLSession

/// One request through URLSession, delivered through a data delegate so that body bytes arrive as
/// libcurl reads them. Redirects are handed back, not followed. Idle and overall timeouts are
/// enforced by a watchdog here rather than trusted to URLSession's own timers.
enum URLSessionExchange {
    static func start(_ request: HTTPRequest, target: HTTPTarget, userAgent: String, idleTimeout: Double,
                      deadline: Double?, token: HTTPCancellation,
                      continuation: AsyncThrowingStream<HTTPResponsePart, Error>.Continuation) {
        var urlRequest = URLRequest(url: target.bareURL)
        urlRequest.httpMethod = request.method
        urlRequest.cachePolicy = .reloadIgnoringLocalCacheData
        var headers = request.headers
        if !headers.contains("User-Agent") { headers.add("User-Agent", userAgent) }
        if !headers.contains("Authorization"), let auth = target.basicAuthorization { headers.add("Authorization", auth) }
        for (name, value) in headers { urlRequest.addValue(value, forHTTPHeaderField: name) }
        if !request.body.isEmpty { urlRequest.httpBody = Data(request.body) }

        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.httpShouldSetCookies = false
        // Backstops only; the watchdog below fires first.
        configuration.timeoutIntervalForRequest = idleTimeout + 5
        configuration.timeoutIntervalForResource = deadline.map { max(1, $0 - Monotonic.now() + 5) } ?? 365 * 86400
        let bridge = URLSessionDataBridge(url: request.url, continuation: continuation)
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1  // body chunks must stay in order
        let session = URLSession(configuration: configuration, delegate: bridge, delegateQueue: queue)
        let task = session.dataTask(with: urlRequest)

        let watchdog = Task {
            while !token.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(HTTPClient.pollSlice * 1e9))
                let now = Monotonic.now()
                if let deadline, now >= deadline {
                    continuation.finish(throwing: HTTPClientError(.timeout, url: request.url,
                                                                  "no complete response within the timeout"))
                    break
                }
                if now >= bridge.lastActivity + idleTimeout {
                    continuation.finish(throwing: HTTPClientError(.idle, url: request.url,
                                                                  "no data for \(seconds(idleTimeout)) s"))
                    break
                }
            }
        }
        token.onCancel {
            watchdog.cancel()
            // Not inline: cancellation can be triggered from inside a delegate callback, and
            // `URLSessionTask.cancel()` waits synchronously on the task's own queue.
            DispatchQueue.global().async {
                task.cancel()
                session.invalidateAndCancel()
            }
        }
        task.resume()
    }
}

final class URLSessionDataBridge: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // @unchecked: the only mutable state is behind the Mutex; the rest is immutable.
    private let url: URL
    private let continuation: AsyncThrowingStream<HTTPResponsePart, Error>.Continuation
    private let activity = Mutex<Double>(Monotonic.now())

    init(url: URL, continuation: AsyncThrowingStream<HTTPResponsePart, Error>.Continuation) {
        self.url = url
        self.continuation = continuation
    }

    var lastActivity: Double { activity.withLock { $0 } }

    private func touch() { activity.withLock { $0 = Monotonic.now() } }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void) {
        touch()
        if let http = response as? HTTPURLResponse {
            var headers = HTTPHeaders()
            for (key, value) in http.allHeaderFields {
                headers.add("\(key.base)", "\(value)")
            }
            let reason = HTTPURLResponse.localizedString(forStatusCode: http.statusCode)
            continuation.yield(.head(HTTPResponseHead(status: http.statusCode, reason: reason, headers: headers)))
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        touch()
        continuation.yield(.body(Array(data)))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)  // the caller decides whether (and with which headers) to follow
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        session.finishTasksAndInvalidate()
        guard let error else {
            continuation.yield(.end(trailers: [:]))
            continuation.finish()
            return
        }
        continuation.finish(throwing: Self.map(error, url: url))
    }

    /// URLSession's errors, without their user info (which can hold the URL).
    static func map(_ error: Error, url: URL) -> Error {
        guard let e = error as? URLError else {
            return HTTPClientError(.transport, url: url, "\(type(of: error)) \((error as NSError).code)")
        }
        let text = "\(e.localizedDescription) (URLError \(e.code.rawValue))"
        switch e.code {
        case .cancelled:
            return CancellationError()
        case .serverCertificateUntrusted, .serverCertificateHasBadDate, .serverCertificateNotYetValid,
             .serverCertificateHasUnknownRoot, .secureConnectionFailed, .clientCertificateRejected,
             .clientCertificateRequired:
            return HTTPClientError(.tls, url: url, "TLS: \(text)")
        case .timedOut:
            return HTTPClientError(.timeout, url: url, text)
        case .cannotConnectToHost, .cannotFindHost, .dnsLookupFailed, .notConnectedToInternet:
            return HTTPClientError(.connect, url: url, text)
        default:
            // corelibs reports libcurl's certificate failures (CURLE_PEER_FAILED_VERIFICATION) as
            // URLError -1 ("unknown") carrying curl's message; classify them by that message.
            let lower = text.lowercased()
            if lower.contains("ssl") || lower.contains("certificate") || lower.contains("tls") {
                return HTTPClientError(.tls, url: url, "TLS: \(text)")
            }
            return HTTPClientError(.transport, url: url, text)
        }
    }
}

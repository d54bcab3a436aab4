import FoundationEssentials
import ServiceRouterCore

/// HTTP basic credentials for Marathon (`--http_credentials user:pass` on Marathon's side).
/// Printing them never shows the password.
public struct BasicCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public var user: String
    public var password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// `user:password` (the password may contain colons).
    public init(text: String) throws {
        let line = text.trimmingWhitespaceAndNewlines()
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
            throw MarathonConfigurationError(reason: "credentials are not of the form user:password")
        }
        user = String(line[..<colon])
        password = String(line[line.index(after: colon)...])
    }

    /// The first line of `path`, trimmed, as `user:password`.
    public init(file path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw MarathonConfigurationError(reason: "cannot read credentials file \(path): \(error.foundationDescription)")
        }
        let first = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? ""
        do {
            try self.init(text: String(first))
        } catch {
            throw MarathonConfigurationError(reason: "credentials file \(path): first line is not of the form user:password")
        }
    }

    /// The `Authorization` header value.
    public var authorization: String { "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }

    public var description: String { "BasicCredentials(user: \(user), password: <redacted>)" }
    public var debugDescription: String { description }
}

/// Never contains the secret itself.
public struct MarathonConfigurationError: Error, CustomStringConvertible, Sendable {
    public var reason: String
    public var description: String { reason }
}

/// Where Marathon is: the URLs of its instances (tried in turn; a standby redirects to the leader)
/// and the credentials for all of them. User info in a URL becomes the credentials and is removed
/// from the URL, so URLs can be logged.
public struct MarathonEndpoints: Sendable, Equatable, CustomStringConvertible {
    public var urls: [URL]
    public var credentials: BasicCredentials?

    public init(urls: [URL], credentials: BasicCredentials? = nil) throws {
        guard !urls.isEmpty else { throw MarathonConfigurationError(reason: "no Marathon URL given") }
        var found = credentials
        self.urls = try urls.map { url in
            guard var c = URLComponents(url: url, resolvingAgainstBaseURL: true),
                  let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
                  let host = c.host, !host.isEmpty else {
                throw MarathonConfigurationError(reason: "not an http(s) URL: \(url.redacted)")
            }
            if let user = c.user, found == nil {
                found = BasicCredentials(user: user, password: c.password ?? "")
            }
            c.user = nil
            c.password = nil
            return c.url ?? url
        }
        self.credentials = found
    }

    /// A comma-separated list, as given on the command line.
    public init(list: String, credentials: BasicCredentials? = nil) throws {
        let texts = list.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        let urls = try texts.map { text -> URL in
            guard let url = URL(string: text) else { throw MarathonConfigurationError(reason: "not a URL: \(text.prefix(200))") }
            return url
        }
        try self.init(urls: urls, credentials: credentials)
    }

    public var description: String {
        urls.map(\.redacted).joined(separator: ",") + (credentials == nil ? "" : " (with credentials)")
    }
}

/// What happened on the event stream, in order.
public enum StreamHappening: Sendable, Equatable {
    /// A 200 answer to `/v2/events` (after redirects) from this URL.
    case connected(URL)
    case event(MarathonEvent)
    /// An event that could not be decoded; the stream goes on.
    case undecodable(reason: String)
    /// The stream ended or could not be opened; the next attempt starts in `retryIn` seconds.
    case disconnected(reason: String, retryIn: Double)
}

public struct MarathonClientError: Error, CustomStringConvertible, Sendable {
    /// One line per URL tried, redacted.
    public var attempts: [String]
    public var description: String { "Marathon unavailable: " + attempts.joined(separator: "; ") }
}

/// Talks to Marathon: app snapshots and the event stream, across several Marathon URLs, following
/// a standby's redirect to the leader, with basic auth on every request (redirects included).
public struct MarathonClient: Sendable {
    public var endpoints: MarathonEndpoints
    public var http: HTTPClient
    /// Bounds each snapshot request (connect included).
    public var requestTimeout: Double
    /// Silence (no byte at all, heartbeats included) after which the event stream is dead.
    /// Marathon sends a heartbeat about every 10 s.
    public var streamTimeout: Double
    public var maxBackoff: Double
    /// A connection must stay up this long before a disconnect reconnects at the initial delay.
    public var healthyAfter: Double
    public var logger: Logger
    /// What the reconnect delay waits on (a manual time source in tests).
    public var time: any TimeSource
    var random: @Sendable () -> Double

    static let maxRedirects = 3
    static let redirectStatuses: Set<Int> = [301, 302, 303, 307, 308]

    public init(endpoints: MarathonEndpoints, http: HTTPClient = HTTPClient(), requestTimeout: Double = 30,
                streamTimeout: Double = 30, maxBackoff: Double = 30, healthyAfter: Double = 10, logger: Logger = .silent,
                time: any TimeSource = SystemTime(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.endpoints = endpoints
        self.http = http
        self.requestTimeout = requestTimeout
        self.streamTimeout = streamTimeout
        self.maxBackoff = maxBackoff
        self.healthyAfter = healthyAfter
        self.logger = logger
        self.time = time
        self.random = random
    }

    // MARK: - Snapshots

    /// `GET /v2/apps?embed=apps.tasks&embed=apps.deployments` from the first Marathon that answers 200.
    public func fetchApps() async throws -> (data: [UInt8], from: URL) {
        let query = [URLQueryItem(name: "embed", value: "apps.tasks"), URLQueryItem(name: "embed", value: "apps.deployments")]
        let (response, url) = try await get(path: "/v2/apps", query: query)
        return (response.body, url)
    }

    /// A GET against each Marathon URL in turn until one answers 200 (after redirects).
    public func get(path: String, query: [URLQueryItem] = []) async throws -> (response: HTTPResponse, from: URL) {
        var attempts: [String] = []
        for base in endpoints.urls {
            let url = Self.url(base, path: path, query: query)
            do {
                let (response, final) = try await followingRedirects(from: url) { url in
                    try await http.send(request(url, accept: "application/json"), timeout: requestTimeout)
                }
                if response.status == 200 { return (response, final) }
                attempts.append("\(final.redacted): \(Self.statusText(response))")
            } catch let e as RedirectError {
                attempts.append(e.description)
            } catch let e as HTTPClientError where e.kind == .timeout || e.kind == .idle {
                // Say which setting bounded the wait, so the operator knows what to raise.
                attempts.append("\(e) (--marathon-timeout \(Self.seconds(requestTimeout)))")
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempts.append("\(error)")
            }
            try Task.checkCancellation()
        }
        let failure = MarathonClientError(attempts: attempts)
        logger.warning("Marathon request failed", [("path", path), ("error", failure.description)])
        throw failure
    }

    /// A request that changes something (`POST`, `PUT`, `DELETE` — `servicerouter zdd`), with an
    /// optional JSON body, against each Marathon URL in turn until one answers at all: the answer
    /// is returned whatever its status (the caller reads Marathon's message); only a failure to
    /// reach a Marathon moves on to the next. Redirects (a standby) are followed with the same
    /// method and body.
    public func send(_ method: String, path: String, query: [URLQueryItem] = [], json body: [UInt8]? = nil) async throws -> (response: HTTPResponse, from: URL) {
        var attempts: [String] = []
        for base in endpoints.urls {
            let url = Self.url(base, path: path, query: query)
            do {
                return try await followingRedirects(from: url) { url in
                    var r = request(url, accept: "application/json")
                    r.method = method
                    if let body {
                        r.body = body
                        r.headers.add("Content-Type", "application/json")
                    }
                    return try await http.send(r, timeout: requestTimeout)
                }
            } catch let e as RedirectError {
                attempts.append(e.description)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                attempts.append("\(error)")
            }
            try Task.checkCancellation()
        }
        let failure = MarathonClientError(attempts: attempts)
        logger.warning("Marathon request failed", [("method", method), ("path", path), ("error", failure.description)])
        throw failure
    }

    // MARK: - Event stream

    /// The event stream, forever: connects, decodes events, and reconnects with backoff after any
    /// failure, trying each Marathon URL in turn. Ends only when the consuming task is cancelled (or
    /// the consumer drops the stream); then every connection is closed within ~0.2 s.
    /// `finished` runs once the reconnect loop has ended: after it, no connection is opened.
    public func events(types: [String] = MarathonEvent.subscribedTypes,
                       finished: (@Sendable () -> Void)? = nil) -> AsyncStream<StreamHappening> {
        let (stream, continuation) = AsyncStream<StreamHappening>.makeStream()
        let task = Task {
            await runEvents(types: types, continuation: continuation)
            finished?()
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    private func runEvents(types: [String], continuation: AsyncStream<StreamHappening>.Continuation) async {
        var policy = ReconnectPolicy(initial: 0.5, maximum: maxBackoff, healthyAfter: healthyAfter)
        var index = 0
        let query = types.map { URLQueryItem(name: "event_type", value: $0) }
        while !Task.isCancelled {
            let base = endpoints.urls[index % endpoints.urls.count]
            let outcome = await streamOnce(Self.url(base, path: "/v2/events", query: query), policy: &policy, continuation: continuation)
            if Task.isCancelled { break }
            let (delay, healthy) = policy.disconnected(at: time.now(), random: random())
            // A connection that worked is tried again first; anything else moves to the next Marathon.
            if !healthy { index += 1 }
            logger.warning("Marathon event stream disconnected",
                           [("reason", outcome.reason), ("retry_in_s", delay.fixed(2))])
            continuation.yield(.disconnected(reason: outcome.reason, retryIn: delay))
            do {
                try await time.sleep(for: delay)
            } catch {
                break
            }
        }
        continuation.finish()
    }

    private struct Outcome {
        var reason: String
    }

    /// One connection: until it fails, ends, or the task is cancelled.
    private func streamOnce(_ start: URL, policy: inout ReconnectPolicy,
                            continuation: AsyncStream<StreamHappening>.Continuation) async -> Outcome {
        var url = start
        var redirects = 0
        while true {
            let stream = http.stream(request(url, accept: "text/event-stream"), idleTimeout: streamTimeout)
            defer { stream.cancel() }
            var parser = SSEParser()
            var next: URL?
            do {
                parts: for try await part in stream {
                    switch part {
                    case .head(let head):
                        if Self.redirectStatuses.contains(head.status) {
                            next = try Self.redirectTarget(head, from: url, redirects: redirects)
                            break parts
                        }
                        guard head.status == 200 else {
                            return Outcome(reason: "\(Self.brief(url)): HTTP \(head.status) \(head.reason)")
                        }
                        logger.info("event stream connected", [("url", Self.brief(url))])
                        policy.connected(at: time.now())
                        continuation.yield(.connected(url))
                    case .body(let bytes):
                        for event in try parser.feed(bytes) {
                            switch MarathonEvent.decode(event) {
                            case .success(let e):
                                continuation.yield(.event(e))
                            case .failure(let e):
                                logger.warning("undecodable Marathon event", [("reason", e.description)])
                                continuation.yield(.undecodable(reason: e.description))
                            }
                        }
                    case .end:
                        let tail = parser.hasPartialEvent ? " in the middle of an event" : ""
                        return Outcome(reason: "\(Self.brief(url)): stream closed by Marathon\(tail)")
                    }
                }
            } catch let e as SSEParseError {
                return Outcome(reason: "\(Self.brief(url)): \(e.description)")
            } catch let e as RedirectError {
                return Outcome(reason: e.description)
            } catch let e as HTTPClientError where e.kind == .idle {
                return Outcome(reason: "\(Self.brief(url)): \(e.detail) (--stream-timeout \(Self.seconds(streamTimeout)); Marathon sends a heartbeat about every 10 s)")
            } catch let e as HTTPClientError {
                return Outcome(reason: "\(Self.brief(url)): \(e.detail)")
            } catch {
                return Outcome(reason: "\(Self.brief(url)): \(error)")
            }
            guard let target = next else {
                return Outcome(reason: Task.isCancelled ? "cancelled" : "\(Self.brief(url)): stream ended")
            }
            url = target
            redirects += 1
        }
    }

    // MARK: - Requests and redirects

    private func request(_ url: URL, accept: String) -> HTTPRequest {
        var headers: HTTPHeaders = ["Accept": accept]
        if let credentials = endpoints.credentials { headers.add("Authorization", credentials.authorization) }
        return HTTPRequest(method: "GET", url: url, headers: headers)
    }

    private struct RedirectError: Error, CustomStringConvertible {
        var description: String
    }

    /// Sends, and follows up to `maxRedirects` redirects; credentials go along on every hop
    /// (a Marathon standby redirects to the leader, which wants them too).
    private func followingRedirects(from start: URL,
                                    send: (URL) async throws -> HTTPResponse) async throws -> (HTTPResponse, URL) {
        var url = start
        var redirects = 0
        while true {
            let response = try await send(url)
            guard Self.redirectStatuses.contains(response.status) else { return (response, url) }
            url = try Self.redirectTarget(HTTPResponseHead(status: response.status, reason: response.reason,
                                                           headers: response.headers),
                                          from: url, redirects: redirects)
            redirects += 1
        }
    }

    private static func redirectTarget(_ head: HTTPResponseHead, from url: URL, redirects: Int) throws -> URL {
        guard redirects < maxRedirects else {
            throw RedirectError(description: "\(brief(url)): more than \(maxRedirects) redirects")
        }
        guard let location = head.headers["Location"], !location.isEmpty else {
            throw RedirectError(description: "\(brief(url)): HTTP \(head.status) without a Location")
        }
        guard let target = URL(string: location, relativeTo: url)?.absoluteURL,
              let scheme = target.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw RedirectError(description: "\(brief(url)): HTTP \(head.status) to an unusable Location")
        }
        return target
    }

    /// `base` (which may carry a path prefix, e.g. behind a proxy) + `path`, with `query`.
    static func url(_ base: URL, path: String, query: [URLQueryItem]) -> URL {
        guard var c = URLComponents(url: base, resolvingAgainstBaseURL: true) else { return base }
        var prefix = c.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        c.path = prefix + path
        c.queryItems = query.isEmpty ? nil : query
        c.fragment = nil
        return c.url ?? base
    }

    /// The redacted URL without its query: event stream URLs carry ten `event_type` parameters,
    /// which only make log lines (and the reasons of the passes they start) unreadable.
    public static func brief(_ url: URL) -> String {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: true) else { return url.redacted }
        c.user = nil
        c.password = nil
        c.query = nil
        return c.string ?? url.redacted
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : value.significant(3)
    }

    private static func statusText(_ response: HTTPResponse) -> String {
        var text = "HTTP \(response.status) \(response.reason)"
        // Marathon explains 4xx/5xx in a short JSON body ({"message": …}); keep it, on one line.
        let body = response.text.split(whereSeparator: \.isNewline).joined(separator: " ")
        if !body.isEmpty { text += ": " + String(body.prefix(200)) }
        return text
    }
}

import FoundationEssentials
import ServiceRouterCore

/// What an exchange reads and writes: a plain `Connection`, or a `TLSConnection` over one.
protocol ByteStream: AnyObject {
    func write(_ bytes: [UInt8]) throws
    func read(max: Int, timeout: Double?) throws -> [UInt8]?
    func close()
    /// The socket underneath (cancellation shuts it down to wake a blocked read).
    var socketDescriptor: Int32 { get }
}

extension Connection: ByteStream {
    var socketDescriptor: Int32 { fd }
}
extension TLSConnection: ByteStream {}

/// One request on its own connection, read on the calling (blocking) thread. A read blocks until
/// data, the idle timeout or the deadline; cancellation wakes it by shutting the socket down
/// (through the token, which never touches a descriptor after the exchange released it), so an
/// idle event stream costs no wake-ups.
struct HTTPExchange: Sendable {
    var request: HTTPRequest
    var target: HTTPTarget
    var userAgent: String
    /// For `https://`: nil trusts the system store.
    var caFile: String?
    var token: HTTPCancellation

    /// `timeout`: what `deadline` was computed from, for the error that names it.
    func run(connectTimeout: Double, idleTimeout: Double, deadline: Double?, timeout: Double? = nil,
             emit: (HTTPResponsePart) -> Void) throws {
        if token.isCancelled { return }
        let stream = try connect(connectTimeout: connectTimeout, writeTimeout: idleTimeout, deadline: deadline)
        guard token.attach(stream.socketDescriptor) else {
            stream.close()
            return
        }
        defer {
            token.detach()
            stream.close()
        }
        do {
            try stream.write(requestBytes())
        } catch let e as TLSError {
            throw HTTPClientError(.transport, url: request.url, "cannot send the request: \(e.detail)")
        } catch {
            throw HTTPClientError(.transport, url: request.url, "cannot send the request: \(error)")
        }
        var parser = HTTPResponseParser(requestMethod: request.method)
        var lastByte = Monotonic.now()
        while !token.isCancelled {
            let now = Monotonic.now()
            let idleLimit = lastByte + idleTimeout
            if let deadline, now >= deadline {
                throw HTTPClientError(.timeout, url: request.url, "no complete response within \(seconds(timeout ?? idleTimeout)) s")
            }
            if now >= idleLimit {
                throw HTTPClientError(.idle, url: request.url, "no data for \(seconds(idleTimeout)) s")
            }
            let wait = min(idleLimit, deadline ?? idleLimit) - now
            let chunk: [UInt8]?
            do {
                chunk = try stream.read(max: 65536, timeout: max(0.001, wait))
            } catch is TimeoutError {
                continue
            } catch _ where token.isCancelled {
                return
            } catch let e as TLSError {
                throw HTTPClientError(.transport, url: request.url, e.detail)
            } catch {
                throw HTTPClientError(.transport, url: request.url, "read failed: \(error)")
            }
            if token.isCancelled { return }
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

    /// TCP connect, then for `https://` the TLS handshake; each bounded by `connectTimeout` and
    /// by the deadline. The TLS context is built first, so a bad CA file fails before connecting.
    private func connect(connectTimeout: Double, writeTimeout: Double, deadline: Double?) throws -> any ByteStream {
        func limit() -> Double {
            guard let deadline else { return connectTimeout }
            return max(0.001, min(connectTimeout, deadline - Monotonic.now()))
        }
        var context: TLSContext?
        if target.isTLS {
            do {
                context = try TLSContext(caFile: caFile)
            } catch {
                throw HTTPClientError(.tls, url: request.url, "\(error)")
            }
        }
        let connectLimit = limit()
        let connection: Connection
        do {
            connection = try Connection.tcp(host: target.host, port: target.port, timeout: connectLimit)
        } catch let e as TimeoutError {
            throw HTTPClientError(.connect, url: request.url, "connect timed out after \(seconds(connectLimit)) s (\(e.target))")
        } catch {
            throw HTTPClientError(.connect, url: request.url, "cannot connect: \(error)")
        }
        guard let context else { return connection }
        let handshakeLimit = limit()
        do {
            return try TLSConnection(connection, context: context, serverName: target.host, timeout: handshakeLimit,
                                     writeTimeout: writeTimeout)
        } catch let e as TimeoutError {
            throw HTTPClientError(.connect, url: request.url, "TLS handshake timed out after \(seconds(handshakeLimit)) s (\(e.target))")
        } catch let e as TLSError {
            throw HTTPClientError(.tls, url: request.url, e.detail)
        } catch {
            throw HTTPClientError(.connect, url: request.url, "TLS handshake: \(error)")
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

private func seconds(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : value.significant(3)
}

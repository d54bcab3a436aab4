#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FoundationEssentials

/// A failed system call: which operation, on what, and the errno text.
/// Every libc call of the project goes through this folder; the rest of the code sees only this type.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public var operation: String
    public var target: String
    public var code: Int32

    public init(_ operation: String, target: String, code: Int32 = errno) {
        self.operation = operation
        self.target = target
        self.code = code
    }

    public var description: String {
        "\(operation) \(target): \(errnoText(code)) (errno \(code))"
    }

    /// ECONNREFUSED / ENOENT on a Unix socket path: the peer is not there (yet).
    public var isPeerAbsent: Bool { code == ECONNREFUSED || code == ENOENT || code == ECONNRESET }
}

func errnoText(_ code: Int32) -> String {
    guard let p = strerror(code) else { return "error \(code)" }
    return String(validatingCString: p) ?? "error \(code)"
}

/// Raised when a read or a connect did not finish before its deadline.
public struct TimeoutError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var target: String
    public init(_ operation: String, target: String) { self.operation = operation; self.target = target }
    public var description: String { "\(operation) \(target): timed out" }
}

/// A connected stream socket (TCP or Unix). Used by one thread at a time: a connection may be
/// handed to another thread (hence `@unchecked Sendable`), never used from two at once.
/// Blocking calls run off the cooperative pool (see `Blocking`).
public final class Connection: @unchecked Sendable {
    public let fd: Int32
    public let peer: String
    private var closed = false

    init(fd: Int32, peer: String) {
        self.fd = fd
        self.peer = peer
        var one: Int32 = 1
        // Never die of SIGPIPE on a peer that went away; we get EPIPE instead.
        #if canImport(Darwin)
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        _ = one
    }

    deinit { close() }

    public func close() {
        if !closed {
            closed = true
            _ = Glibc.close(fd)
        }
    }

    /// Connects to a Unix stream socket.
    public static func unix(path: String, timeout: Double = 2) throws -> Connection {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", target: path) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            Glibc.close(fd)
            throw SystemError("connect", target: path, code: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let e = SystemError("connect", target: path)
            Glibc.close(fd)
            throw e
        }
        return Connection(fd: fd, peer: path)
    }

    /// Connects to `host:port` over TCP (IPv4 or IPv6; names are resolved), with a connect timeout.
    public static func tcp(host: String, port: Int, timeout: Double = 5) throws -> Connection {
        let target = "\(host):\(port)"
        var lastError: Error = SystemError("connect", target: target, code: EHOSTUNREACH)
        for address in try Resolver.socketAddresses(host: host, port: port) {
            let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemError("socket", target: target) }
            do {
                try connectWithTimeout(fd: fd, address: address, timeout: timeout, target: target)
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return Connection(fd: fd, peer: target)
            } catch {
                Glibc.close(fd)
                lastError = error
            }
        }
        throw lastError
    }

    private static func connectWithTimeout(fd: Int32, address: SocketAddress, timeout: Double, target: String) throws {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(fd, F_SETFL, flags) }
        let rc = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if rc == 0 { return }
        guard errno == EINPROGRESS else { throw SystemError("connect", target: target) }
        guard try poll(fd: fd, events: Int16(POLLOUT), timeout: timeout) else {
            throw TimeoutError("connect", target: target)
        }
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
        if soError != 0 { throw SystemError("connect", target: target, code: soError) }
    }

    /// Writes all bytes (blocking).
    public func write(_ bytes: [UInt8]) throws {
        if let code = Self.sendAll(fd, bytes) { throw SystemError("write", target: peer, code: code) }
    }

    /// Sends every byte on `fd` (retrying on EINTR, never raising SIGPIPE); the errno on failure.
    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += n
        }
        return nil
    }

    public func write(_ string: String) throws { try write(Array(string.utf8)) }

    /// Reads up to `max` bytes. Returns nil at end of stream; throws `TimeoutError` when nothing
    /// arrived within `timeout` seconds (nil timeout: wait forever).
    public func read(max: Int = 65536, timeout: Double?) throws -> [UInt8]? {
        if let timeout {
            guard try Self.poll(fd: fd, events: Int16(POLLIN), timeout: timeout) else {
                throw TimeoutError("read", target: peer)
            }
        }
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", target: peer)
            }
            if n == 0 { return nil }
            buffer.removeLast(max - n)
            return buffer
        }
    }

    /// Reads until the peer closes, at most `limit` bytes, each read waiting at most `timeout`.
    public func readToEnd(limit: Int = 64 << 20, timeout: Double) throws -> [UInt8] {
        var all: [UInt8] = []
        while let chunk = try read(timeout: timeout) {
            all.append(contentsOf: chunk)
            if all.count > limit { throw SystemError("read", target: peer, code: EMSGSIZE) }
        }
        return all
    }

    public func shutdownWrite() { _ = shutdown(fd, Int32(SHUT_WR)) }

    /// Waits until `fd` is ready for `events`; false on timeout.
    static func poll(fd: Int32, events: Int16, timeout: Double) throws -> Bool {
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let deadline = Monotonic.now() + timeout
        while true {
            let remaining = max(0, deadline - Monotonic.now())
            let rc = Glibc.poll(&pfd, 1, Int32((remaining * 1000).rounded(.up)))
            if rc < 0 {
                if errno == EINTR { continue }
                throw SystemError("poll", target: "fd \(fd)")
            }
            return rc > 0
        }
    }
}

/// A listening TCP or Unix socket.
public final class Listener: @unchecked Sendable {
    // @unchecked: `fd` is immutable; `close()` may race with `accept()` on purpose (it wakes it up).
    public let fd: Int32
    public let port: Int
    public let address: String

    private init(fd: Int32, port: Int, address: String) {
        self.fd = fd
        self.port = port
        self.address = address
    }

    deinit { Glibc.close(fd) }

    /// Listens on `host:port` (port 0: the kernel picks one; read it back from `port`).
    public static func tcp(host: String = "127.0.0.1", port: Int, backlog: Int32 = 512) throws -> Listener {
        let target = "\(host):\(port)"
        guard let address = try Resolver.socketAddresses(host: host, port: port).first else {
            throw SystemError("bind", target: target, code: EADDRNOTAVAIL)
        }
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket", target: target) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard address.withSockaddr({ bind(fd, $0, $1) }) == 0 else {
            let e = SystemError("bind", target: target)
            Glibc.close(fd)
            throw e
        }
        guard listen(fd, backlog) == 0 else {
            let e = SystemError("listen", target: target)
            Glibc.close(fd)
            throw e
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let boundPort = SocketAddress(storage: storage, length: len).port
        return Listener(fd: fd, port: boundPort, address: host)
    }

    /// Waits up to `timeout` seconds for a connection; nil on timeout.
    public func accept(timeout: Double) throws -> Connection? {
        guard try Connection.poll(fd: fd, events: Int16(POLLIN), timeout: timeout) else { return nil }
        let client = Glibc.accept(fd, nil, nil)
        if client < 0 {
            if errno == EAGAIN || errno == EINTR || errno == ECONNABORTED { return nil }
            throw SystemError("accept", target: "\(address):\(port)")
        }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return Connection(fd: client, peer: "\(address):\(port)")
    }

    /// Stops accepting; a blocked `accept` returns.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

/// A resolved socket address.
struct SocketAddress {
    var storage: sockaddr_storage
    var length: socklen_t

    var family: Int32 { Int32(storage.ss_family) }

    var port: Int {
        var s = storage
        return withUnsafePointer(to: &s) { p -> Int in
            if Int32(storage.ss_family) == AF_INET6 {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// The numeric IP text of this address.
    var ip: String {
        var s = storage
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let rc = withUnsafePointer(to: &s) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST)
            }
        }
        guard rc == 0 else { return "" }
        let end = host.firstIndex(of: 0) ?? host.endIndex
        return String(decoding: host[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var s = storage
        return withUnsafePointer(to: &s) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

/// Name resolution through getaddrinfo.
public enum Resolver {
    static func socketAddresses(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        let lookup = (host == "*" || host.isEmpty) ? "0.0.0.0" : host
        let rc = getaddrinfo(lookup, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            throw ResolveError(host: host, reason: gai_strerror(rc).flatMap { String(validatingCString: $0) } ?? "error \(rc)")
        }
        defer { freeaddrinfo(first) }
        var out: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            var storage = sockaddr_storage()
            withUnsafeMutableBytes(of: &storage) { dst in
                dst.copyMemory(from: UnsafeRawBufferPointer(start: info.pointee.ai_addr, count: Int(info.pointee.ai_addrlen)))
            }
            out.append(SocketAddress(storage: storage, length: info.pointee.ai_addrlen))
            cursor = info.pointee.ai_next
        }
        // Prefer IPv4: the runtime API placeholder addresses and most agents are IPv4.
        return out.filter { $0.family == AF_INET } + out.filter { $0.family != AF_INET }
    }

    /// Resolves `host` to its IP addresses (IPv4 first). Numeric input comes back unchanged.
    public static func addresses(of host: String) throws -> [String] {
        var seen = Set<String>()
        return try socketAddresses(host: host, port: 0).map(\.ip).filter { !$0.isEmpty && seen.insert($0).inserted }
    }
}

public struct ResolveError: Error, CustomStringConvertible, Sendable {
    public var host: String
    public var reason: String
    public var description: String { "cannot resolve \(host): \(reason)" }
}

/// A monotonic clock in seconds.
public enum Monotonic {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

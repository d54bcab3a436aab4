#if canImport(Glibc)
import Glibc
#endif

/// A TLS failure. `detail` carries OpenSSL's own error text and, for a failed handshake, the
/// certificate verification result.
public struct TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// libssl or libcrypto could not be loaded (or lacks a function).
        case libraryUnavailable
        /// The context could not be set up (CA file unreadable or without certificates, …).
        case configuration
        case handshake
        /// A read or write failed after the handshake.
        case io
        /// The peer closed the connection without a TLS close_notify: what was read may be truncated.
        case unexpectedEOF
    }

    public var kind: Kind
    /// `host:port`, or the file or library concerned.
    public var peer: String
    public var detail: String

    public init(_ kind: Kind, peer: String, _ detail: String) {
        self.kind = kind
        self.peer = peer
        self.detail = detail
    }

    public var description: String { peer.isEmpty ? detail : "\(peer): \(detail)" }
}

/// The functions of the system's OpenSSL 3 that servicerouter calls, looked up once with `dlopen`
/// and `dlsym`: no headers, no link-time dependency. Debian's libssl3 is installed wherever
/// HAProxy is (HAProxy links it).
final class OpenSSL: @unchecked Sendable {
    // @unchecked: nothing but C function pointers, all set in `init` and never changed.
    typealias Pointer = OpaquePointer
    let TLS_client_method: @convention(c) () -> Pointer?
    let SSL_CTX_new: @convention(c) (Pointer?) -> Pointer?
    let SSL_CTX_free: @convention(c) (Pointer?) -> Void
    let SSL_CTX_set_default_verify_paths: @convention(c) (Pointer?) -> Int32
    let SSL_CTX_load_verify_locations: @convention(c) (Pointer?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Int32
    let SSL_CTX_set_verify: @convention(c) (Pointer?, Int32, Pointer?) -> Void
    let SSL_CTX_ctrl: @convention(c) (Pointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let SSL_new: @convention(c) (Pointer?) -> Pointer?
    let SSL_free: @convention(c) (Pointer?) -> Void
    let SSL_set_fd: @convention(c) (Pointer?, Int32) -> Int32
    let SSL_ctrl: @convention(c) (Pointer?, Int32, Int, UnsafeMutableRawPointer?) -> Int
    let SSL_set1_host: @convention(c) (Pointer?, UnsafePointer<CChar>?) -> Int32
    let SSL_get0_param: @convention(c) (Pointer?) -> Pointer?
    let SSL_connect: @convention(c) (Pointer?) -> Int32
    let SSL_read: @convention(c) (Pointer?, UnsafeMutableRawPointer?, Int32) -> Int32
    let SSL_write: @convention(c) (Pointer?, UnsafeRawPointer?, Int32) -> Int32
    let SSL_shutdown: @convention(c) (Pointer?) -> Int32
    let SSL_get_error: @convention(c) (Pointer?, Int32) -> Int32
    let SSL_get_verify_result: @convention(c) (Pointer?) -> Int
    let SSL_get_version: @convention(c) (Pointer?) -> UnsafePointer<CChar>?
    // libcrypto
    let X509_VERIFY_PARAM_set1_ip_asc: @convention(c) (Pointer?, UnsafePointer<CChar>?) -> Int32
    let X509_verify_cert_error_string: @convention(c) (Int) -> UnsafePointer<CChar>?
    let ERR_get_error: @convention(c) () -> UInt
    let ERR_error_string_n: @convention(c) (UInt, UnsafeMutablePointer<CChar>?, Int) -> Void
    let ERR_clear_error: @convention(c) () -> Void

    static let libssl = "libssl.so.3"
    static let libcrypto = "libcrypto.so.3"

    /// Loaded on first use, once for the process (the libraries are never unloaded).
    static let shared: Result<OpenSSL, TLSError> = Result { try OpenSSL(libssl: libssl, libcrypto: libcrypto) }
        .mapError { $0 as? TLSError ?? TLSError(.libraryUnavailable, peer: libssl, "\($0)") }

    init(libssl: String, libcrypto: String) throws {
        let ssl = try Self.open(libssl)
        let crypto = try Self.open(libcrypto)
        func fn<T>(_ handle: UnsafeMutableRawPointer, _ name: String, _ library: String) throws -> T {
            guard let address = dlsym(handle, name) else {
                throw TLSError(.libraryUnavailable, peer: library, "\(library) has no \(name): OpenSSL 3 is needed")
            }
            return unsafeBitCast(address, to: T.self)
        }
        TLS_client_method = try fn(ssl, "TLS_client_method", libssl)
        SSL_CTX_new = try fn(ssl, "SSL_CTX_new", libssl)
        SSL_CTX_free = try fn(ssl, "SSL_CTX_free", libssl)
        SSL_CTX_set_default_verify_paths = try fn(ssl, "SSL_CTX_set_default_verify_paths", libssl)
        SSL_CTX_load_verify_locations = try fn(ssl, "SSL_CTX_load_verify_locations", libssl)
        SSL_CTX_set_verify = try fn(ssl, "SSL_CTX_set_verify", libssl)
        SSL_CTX_ctrl = try fn(ssl, "SSL_CTX_ctrl", libssl)
        SSL_new = try fn(ssl, "SSL_new", libssl)
        SSL_free = try fn(ssl, "SSL_free", libssl)
        SSL_set_fd = try fn(ssl, "SSL_set_fd", libssl)
        SSL_ctrl = try fn(ssl, "SSL_ctrl", libssl)
        SSL_set1_host = try fn(ssl, "SSL_set1_host", libssl)
        SSL_get0_param = try fn(ssl, "SSL_get0_param", libssl)
        SSL_connect = try fn(ssl, "SSL_connect", libssl)
        SSL_read = try fn(ssl, "SSL_read", libssl)
        SSL_write = try fn(ssl, "SSL_write", libssl)
        SSL_shutdown = try fn(ssl, "SSL_shutdown", libssl)
        SSL_get_error = try fn(ssl, "SSL_get_error", libssl)
        SSL_get_verify_result = try fn(ssl, "SSL_get_verify_result", libssl)
        SSL_get_version = try fn(ssl, "SSL_get_version", libssl)
        X509_VERIFY_PARAM_set1_ip_asc = try fn(crypto, "X509_VERIFY_PARAM_set1_ip_asc", libcrypto)
        X509_verify_cert_error_string = try fn(crypto, "X509_verify_cert_error_string", libcrypto)
        ERR_get_error = try fn(crypto, "ERR_get_error", libcrypto)
        ERR_error_string_n = try fn(crypto, "ERR_error_string_n", libcrypto)
        ERR_clear_error = try fn(crypto, "ERR_clear_error", libcrypto)
    }

    private static func open(_ library: String) throws -> UnsafeMutableRawPointer {
        if let handle = dlopen(library, RTLD_NOW | RTLD_LOCAL) { return handle }
        let reason = dlerror().flatMap { String(validatingCString: $0) } ?? "not found"
        throw TLSError(.libraryUnavailable, peer: library,
                       "cannot load \(library) (\(reason)); https needs OpenSSL 3 (Debian: apt-get install libssl3)")
    }

    /// Empties this thread's error queue into text (OpenSSL keeps one queue per thread).
    func errors() -> (text: String, codes: [UInt]) {
        var texts: [String] = []
        var codes: [UInt] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            codes.append(code)
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            if texts.count < 4 { texts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        }
        return (texts.joined(separator: "; "), codes)
    }

    // Constants from OpenSSL 3's headers.
    static let errorNone: Int32 = 0, errorSSL: Int32 = 1, wantRead: Int32 = 2, wantWrite: Int32 = 3
    static let errorSyscall: Int32 = 5, zeroReturn: Int32 = 6
    static let verifyPeer: Int32 = 1                     // SSL_VERIFY_PEER
    static let ctrlMode: Int32 = 33                      // SSL_CTRL_MODE
    static let ctrlSetTLSExtHostName: Int32 = 55         // SSL_CTRL_SET_TLSEXT_HOSTNAME
    static let ctrlSetMinProtoVersion: Int32 = 123       // SSL_CTRL_SET_MIN_PROTO_VERSION
    static let tls12: Int = 0x0303                       // TLS1_2_VERSION
    static let modePartialWriteMovingBuffer = 0x1 | 0x2  // SSL_MODE_ENABLE_PARTIAL_WRITE | ACCEPT_MOVING_WRITE_BUFFER
    /// ERR_PACK(ERR_LIB_SSL, 0, SSL_R_UNEXPECTED_EOF_WHILE_READING): how OpenSSL 3 reports a missing close_notify.
    static let unexpectedEOFCode: UInt = (20 << 23) | 294
}

/// Trust settings shared by connections: peer verification always on, TLS 1.2 at least, and either
/// the system's default trust store (`SSL_CERT_FILE`/`SSL_CERT_DIR` are honoured) or only the
/// certificates of `caFile`.
public final class TLSContext: @unchecked Sendable {
    // @unchecked: the SSL_CTX is configured in `init` and afterwards only passed to SSL_new, which
    // OpenSSL allows from several threads at once.
    let library: OpenSSL
    let context: OpaquePointer
    public let caFile: String?

    public convenience init(caFile: String?) throws {
        try self.init(caFile: caFile, library: OpenSSL.shared.get())
    }

    init(caFile: String?, library: OpenSSL) throws {
        self.library = library
        self.caFile = caFile
        library.ERR_clear_error()
        guard let method = library.TLS_client_method(), let context = library.SSL_CTX_new(method) else {
            throw TLSError(.configuration, peer: "", "SSL_CTX_new failed: \(library.errors().text)")
        }
        self.context = context
        let loaded = caFile.map { library.SSL_CTX_load_verify_locations(context, $0, nil) }
            ?? library.SSL_CTX_set_default_verify_paths(context)
        guard loaded == 1 else {
            let what = caFile == nil ? "cannot use the system trust store" : "cannot load CA certificates"
            throw TLSError(.configuration, peer: caFile ?? "", "\(what): \(library.errors().text)")
        }
        library.SSL_CTX_set_verify(context, OpenSSL.verifyPeer, nil)
        guard library.SSL_CTX_ctrl(context, OpenSSL.ctrlSetMinProtoVersion, OpenSSL.tls12, nil) == 1 else {
            throw TLSError(.configuration, peer: "", "cannot require TLS 1.2: \(library.errors().text)")
        }
        _ = library.SSL_CTX_ctrl(context, OpenSSL.ctrlMode, OpenSSL.modePartialWriteMovingBuffer, nil)
    }

    deinit { library.SSL_CTX_free(context) }
}

/// A TLS client session over a connected `Connection`, which it owns from `init` on (closed by
/// `close()`, and by `init` when the handshake fails). Same contract as `Connection`: used by one
/// thread at a time; `read` returns nil at a clean end (close_notify) and throws `TimeoutError`
/// when nothing arrived in time. The socket is made non-blocking and every wait is a bounded poll.
public final class TLSConnection: @unchecked Sendable {
    // @unchecked: like `Connection`, handed between threads but never used by two at once.
    public let peer: String
    /// Bounds a whole `write`.
    public var writeTimeout: Double
    private let connection: Connection
    var socketDescriptor: Int32 { connection.fd }
    private let library: OpenSSL
    private var ssl: OpaquePointer?
    /// After a fatal error OpenSSL forbids SSL_shutdown.
    private var mayShutDown = false

    /// Handshakes as a client of `serverName` (a host name, or an IP literal without brackets),
    /// verifying the certificate chain and that the certificate is for `serverName`.
    public init(_ connection: Connection, context: TLSContext, serverName: String, timeout: Double,
                writeTimeout: Double = 30) throws {
        self.connection = connection
        self.library = context.library
        self.peer = connection.peer
        self.writeTimeout = writeTimeout
        do {
            try handshake(context: context, serverName: serverName, deadline: Monotonic.now() + timeout)
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// The negotiated protocol, e.g. "TLSv1.3".
    public var version: String {
        guard let ssl, let text = library.SSL_get_version(ssl) else { return "" }
        return String(cString: text)
    }

    private func handshake(context: TLSContext, serverName: String, deadline: Double) throws {
        let flags = fcntl(connection.fd, F_GETFL)
        guard flags >= 0, fcntl(connection.fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw SystemError("fcntl", target: peer)
        }
        library.ERR_clear_error()
        guard let ssl = library.SSL_new(context.context) else {
            throw TLSError(.configuration, peer: peer, "SSL_new failed: \(library.errors().text)")
        }
        self.ssl = ssl
        var name = serverName
        if name.hasSuffix("."), name.count > 1 { name.removeLast() }
        let configured: Bool
        if Self.isIPAddress(name) {
            // No SNI for addresses (RFC 6066); the certificate must list the address as an IP SAN.
            configured = library.X509_VERIFY_PARAM_set1_ip_asc(library.SSL_get0_param(ssl), name) == 1
        } else {
            configured = name.withCString { c in
                library.SSL_ctrl(ssl, OpenSSL.ctrlSetTLSExtHostName, 0, UnsafeMutableRawPointer(mutating: c)) == 1
            } && library.SSL_set1_host(ssl, name) == 1
        }
        guard configured, library.SSL_set_fd(ssl, connection.fd) == 1 else {
            throw TLSError(.configuration, peer: peer, "cannot set up TLS for \(name.debugDescription): \(library.errors().text)")
        }
        do {
            guard try perform("TLS handshake", deadline: deadline, { library.SSL_connect($0) }) != nil else {
                throw TLSError(.handshake, peer: peer, "TLS handshake failed: the peer closed the connection")
            }
        } catch var error as TLSError {
            error.kind = .handshake
            let result = library.SSL_get_verify_result(ssl)
            if result != 0 {  // X509_V_OK
                let text = library.X509_verify_cert_error_string(result).map { String(cString: $0) } ?? "error"
                error.detail += "; certificate verification failed: \(text) (X509_V_ERR \(result))"
            }
            throw error
        }
        mayShutDown = true
    }

    /// Reads up to `max` bytes: nil after the peer's close_notify, `TimeoutError` when no data
    /// arrived within `timeout` seconds (nil timeout: wait as long as it takes).
    public func read(max: Int = 65536, timeout: Double?) throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        let deadline = timeout.map { Monotonic.now() + $0 }
        let n = try perform("read", deadline: deadline) { ssl in
            buffer.withUnsafeMutableBytes { library.SSL_read(ssl, $0.baseAddress, Int32(clamping: max)) }
        }
        guard let n else { return nil }
        buffer.removeLast(max - Int(n))
        return buffer
    }

    /// Writes all bytes, within `writeTimeout`.
    public func write(_ bytes: [UInt8]) throws {
        let deadline = Monotonic.now() + writeTimeout
        var offset = 0
        while offset < bytes.count {
            let n = try perform("write", deadline: deadline) { ssl in
                bytes.withUnsafeBytes { library.SSL_write(ssl, $0.baseAddress! + offset, Int32(clamping: bytes.count - offset)) }
            }
            guard let n else { throw TLSError(.io, peer: peer, "write: the peer closed the TLS connection") }
            offset += Int(n)
        }
    }

    /// Sends close_notify if the session is healthy (without waiting for the peer's), then frees
    /// the session and closes the socket. Never blocks.
    public func close() {
        guard let ssl else {
            connection.close()
            return
        }
        self.ssl = nil
        if mayShutDown {
            library.ERR_clear_error()
            _ = withoutSIGPIPE { library.SSL_shutdown(ssl) }
        }
        library.ERR_clear_error()
        library.SSL_free(ssl)
        connection.close()
    }

    /// Runs an SSL call until it succeeds (its positive result), the peer closes cleanly (nil), or
    /// it fails; waits for the socket while OpenSSL asks for it, never past `deadline`.
    private func perform(_ operation: String, deadline: Double?, _ call: (OpaquePointer) -> Int32) throws -> Int32? {
        guard let ssl else { throw TLSError(.io, peer: peer, "\(operation) on a closed TLS connection") }
        while true {
            library.ERR_clear_error()
            let (rc, code, savedErrno) = withoutSIGPIPE { () -> (Int32, Int32, Int32) in
                let rc = call(ssl)
                let savedErrno = errno
                return (rc, rc > 0 ? OpenSSL.errorNone : library.SSL_get_error(ssl, rc), savedErrno)
            }
            switch code {
            case OpenSSL.errorNone:
                return rc
            case OpenSSL.zeroReturn:
                return nil
            case OpenSSL.wantRead, OpenSSL.wantWrite:
                let events = Int16(code == OpenSSL.wantRead ? POLLIN : POLLOUT)
                guard try wait(events, until: deadline) else { throw TimeoutError(operation, target: peer) }
            default:
                mayShutDown = false
                let (text, codes) = library.errors()
                if codes.contains(OpenSSL.unexpectedEOFCode)
                    || (code == OpenSSL.errorSyscall && codes.isEmpty && savedErrno == 0) {
                    throw TLSError(.unexpectedEOF, peer: peer,
                                   "\(operation) failed: the peer closed the connection without a TLS close_notify")
                }
                if code == OpenSSL.errorSyscall, codes.isEmpty {
                    throw TLSError(.io, peer: peer, "\(operation) failed: \(errnoText(savedErrno)) (errno \(savedErrno))")
                }
                throw TLSError(.io, peer: peer, "\(operation) failed: \(text.isEmpty ? "SSL error \(code)" : text)")
            }
        }
    }

    /// Polls the socket; false once `deadline` has passed. Without a deadline, waits in slices.
    private func wait(_ events: Int16, until deadline: Double?) throws -> Bool {
        while true {
            let remaining = deadline.map { $0 - Monotonic.now() } ?? 3600
            if remaining <= 0 { return false }
            if try Connection.poll(fd: connection.fd, events: events, timeout: remaining) { return true }
            if deadline != nil { return false }
        }
    }

    static func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// Runs `body` with SIGPIPE blocked on this thread, discarding a SIGPIPE it raised. OpenSSL
/// writes to the socket with write(2), which (unlike our own `send(…, MSG_NOSIGNAL)`) raises
/// SIGPIPE when the peer has gone, and SIGPIPE's default action ends the process. The same
/// technique as libpq: a signal already pending before the call is left alone.
func withoutSIGPIPE<T>(_ body: () throws -> T) rethrows -> T {
    var pipe = sigset_t()
    sigemptyset(&pipe)
    sigaddset(&pipe, SIGPIPE)
    var previous = sigset_t()
    pthread_sigmask(SIG_BLOCK, &pipe, &previous)
    var pending = sigset_t()
    sigpending(&pending)
    let alreadyPending = sigismember(&pending, SIGPIPE) == 1
    defer {
        if !alreadyPending {
            sigpending(&pending)
            if sigismember(&pending, SIGPIPE) == 1 {
                var now = timespec()
                let saved = errno
                while sigtimedwait(&pipe, nil, &now) < 0, errno == EINTR {}
                errno = saved
            }
        }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
    }
    return try body()
}

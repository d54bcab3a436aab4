import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs blocking system calls off Swift's cooperative thread pool (which has one thread per core:
/// a blocking `read` there would stall every task).
///
/// Each call gets its own thread. Dispatch's concurrent queues were measured here to run about two
/// blocked jobs at once on a 2-core machine and to add threads only about once a second, so a slow
/// DNS lookup or `haproxy -c` would delay an unrelated runtime-socket exchange. A thread costs tens
/// of microseconds, far less than any exchange it carries.
public enum Blocking {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let started = startThread(name: "servicerouter.blocking", stackSize: 512 << 10) {
                continuation.resume(with: Result { try body() })
            }
            if let started { continuation.resume(throwing: started) }
        }
    }

    /// Starts `body` on its own thread, for loops that block for a long time (accept, stream reads).
    /// Throws when no thread can be created (a pids limit: systemd TasksMax, a container's pids
    /// limit): the caller reports it, nothing crashes.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws {
        if let error = startThread(name: name, stackSize: 1 << 20, body) { throw error }
    }

    /// `start` for test and benchmark tools and the simulator, which have nothing better to do
    /// than stop when the machine has no thread left.
    public static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        do { try start(name: name, body) } catch { fatalError("cannot start thread \(name): \(error)") }
    }

    /// A detached POSIX thread with the given stack size and name (what Foundation's `Thread` made);
    /// the error when it could not be created.
    private static func startThread(name: String, stackSize: Int, _ body: @escaping @Sendable () -> Void) -> SystemError? {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let start = Unmanaged.passRetained(ThreadStart(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, &attributes, threadMain, start)
        guard rc == 0 else {
            Unmanaged<ThreadStart>.fromOpaque(start).release()
            return SystemError("pthread_create", target: name, code: rc)
        }
        return nil
    }
}

private final class ThreadStart: Sendable {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

private func threadMain(_ argument: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let start = Unmanaged<ThreadStart>.fromOpaque(argument!).takeRetainedValue()
    setThreadName(start.name)
    start.body()
    return nil
}

/// Names the calling thread (at most 15 bytes on Linux), as `pthread_setname_np` would; Swift's
/// Glibc module does not import that GNU function.
private func setThreadName(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// A flag one thread sets and others poll (stop signals for blocking loops).
public final class StopFlag: Sendable {
    private let value = Mutex(false)
    public init() {}
    public func set() { value.withLock { $0 = true } }
    public var isSet: Bool { value.withLock { $0 } }
}

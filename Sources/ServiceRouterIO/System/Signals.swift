#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT, SIGTERM and SIGHUP as an `AsyncStream`, without polling: the handler writes the signal
/// number into a pipe (`write` is async-signal-safe), and one thread blocked on the pipe's other
/// end hands each signal to the streams. libdispatch's signal sources were seen to miss signals on
/// Linux in processes with many threads, so they are not used.
public enum Signals {
    public static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Installs the handlers (once per process) and returns a stream of the signals delivered
    /// from now on. Ends when the consumer stops iterating.
    public static func stream() -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream(bufferingPolicy: .bufferingNewest(16))
        let id = hub.withLock { h -> Int in
            h.next += 1
            h.consumers[h.next] = continuation
            return h.next
        }
        continuation.onTermination = { _ in _ = hub.withLock { $0.consumers.removeValue(forKey: id) } }
        installOnce()
        return stream
    }

    public static func name(_ sig: Int32) -> String {
        switch sig {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(sig)"
        }
    }

    static func deliver(_ sig: Int32) {
        let consumers = hub.withLock { Array($0.consumers.values) }
        for c in consumers { c.yield(sig) }
    }

    private struct Hub {
        var installed = false
        var next = 0
        var consumers: [Int: AsyncStream<Int32>.Continuation] = [:]
    }
    private static let hub = Mutex(Hub())

    private static func installOnce() {
        let first = hub.withLock { h -> Bool in
            defer { h.installed = true }
            return !h.installed
        }
        guard first else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        // A full pipe (a signal storm nobody reads) must never block the handler.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        signalPipe.store(fds[1], ordering: .releasing)
        let reader = fds[0]
        do {
            try Blocking.start(name: "signals") { readLoop(reader) }
        } catch {
            // Without a reader the default actions stay in force (SIGTERM still ends the process).
            return
        }
        for sig in handled {
            _ = signal(sig) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipe.load(ordering: .acquiring), &byte, 1)
            }
        }
    }
}

private let signalPipe = Atomic<Int32>(-1)

/// Hands each signal number read from the pipe to the streams.
private func readLoop(_ reader: Int32) {
    var byte: UInt8 = 0
    while true {
        let n = read(reader, &byte, 1)
        if n < 0 && errno == EINTR { continue }
        guard n == 1 else { return }
        Signals.deliver(Int32(byte))
    }
}

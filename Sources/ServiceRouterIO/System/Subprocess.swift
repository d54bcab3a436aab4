import FoundationEssentials
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A program could not be started; described exactly as Foundation's `Process.run()` error was
/// (`Error Domain=NSCocoaErrorDomain Code=260 "The file doesn’t exist."UserInfo={…}`), since it
/// reaches the `haproxy -c` failure message.
public struct SpawnError: Error, CustomStringConvertible, Sendable {
    /// The program, or nil when it is not a regular file (Foundation gave no details then).
    public var path: String?
    public var errno: Int32

    public var description: String {
        guard let path else { return "Error Domain=NSCocoaErrorDomain Code=4 \"The file doesn’t exist.\"" }
        let code: Int, text: String
        switch errno {
        case ENOENT: (code, text) = (260, "The file doesn’t exist.")
        case EPERM, EACCES: (code, text) = (257, "You don’t have permission.")
        case EFBIG: (code, text) = (263, "The item is too large.")
        default: (code, text) = (256, "(null)")
        }
        return "Error Domain=NSCocoaErrorDomain Code=\(code) \"\(text)\"UserInfo={NSFilePath=\(path), NSUnderlyingError=Error Domain=NSPOSIXErrorDomain "
            + "Code=\(errno) \"\(String(cString: strerror(errno)))\"}"
    }
}

/// A child process, started the way Foundation's `Process` started one on Linux: `posix_spawn`
/// with argv[0] = the executable's path, the caller's environment, its own process group,
/// stdin/stdout/stderr as given (`nil`: /dev/null) and every other descriptor closed.
/// Reaped by `isRunning`/`waitUntilExit`.
public final class Subprocess: Sendable {
    public let processIdentifier: pid_t
    private let status = Mutex<Int32?>(nil)

    /// `executable` is a path (relative ones are made absolute, as `URL(fileURLWithPath:)` did).
    public init(executable: String, arguments: [String], standardOutput: Int32? = nil, standardError: Int32? = nil) throws {
        let path = URL(fileURLWithPath: executable).path
        // Foundation's checks before spawning: posix_spawn may succeed and the exec still fail.
        var info = stat()
        guard stat(path, &info) == 0 else { throw SpawnError(path: path, errno: Glibc.errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw SpawnError(path: nil, errno: ENOENT) }
        guard access(path, X_OK) == 0 else { throw SpawnError(path: path, errno: Glibc.errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw SpawnError(path: "/dev/null", errno: Glibc.errno) }
        defer { close(null) }
        posix_spawn_file_actions_adddup2(&actions, null, STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, standardOutput ?? null, STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, standardError ?? null, STDERR_FILENO)
        // Foundation emulates Darwin's POSIX_SPAWN_CLOEXEC_DEFAULT: nothing else is inherited.
        for fd in Self.openDescriptors() where fd > STDERR_FILENO {
            posix_spawn_file_actions_addclose(&actions, fd)
        }

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard rc == 0 else { throw SpawnError(path: path, errno: rc) }
        processIdentifier = pid
    }

    /// Whether the child has not exited yet (reaps it when it has).
    public var isRunning: Bool { reap(blocking: false) == nil }

    /// Blocks until the child exits.
    public func waitUntilExit() { _ = reap(blocking: true) }

    /// The exit status, or the signal number that ended the child (as `Process.terminationStatus`).
    /// Only meaningful once `isRunning` is false.
    public var terminationStatus: Int32 { status.withLock { $0 } ?? 0 }

    /// SIGTERM, as `Process.terminate()`.
    public func terminate() { kill(processIdentifier, SIGTERM) }

    private func reap(blocking: Bool) -> Int32? {
        if let s = status.withLock({ $0 }) { return s }
        var raw: Int32 = 0
        var r: pid_t
        repeat { r = waitpid(processIdentifier, &raw, blocking ? 0 : WNOHANG) } while r == -1 && errno == EINTR
        if r == processIdentifier {
            // WIFSIGNALED / WTERMSIG / WEXITSTATUS (macros Swift does not import).
            let signal = raw & 0x7F
            let s = signal != 0 && signal != 0x7F ? signal : (raw >> 8) & 0xFF
            status.withLock { $0 = s }
            return s
        }
        if r == 0 { return nil }
        // ECHILD: another caller reaped it and is about to record the status.
        for _ in 0..<1000 {
            if let s = status.withLock({ $0 }) { return s }
            usleep(1000)
        }
        return status.withLock { $0 } ?? -1
    }

    private static func openDescriptors() -> [Int32] {
        guard let dir = opendir("/proc/self/fd") else {
            return Array(3..<Int32(clamping: max(3, Int(getdtablesize()))))
        }
        defer { closedir(dir) }
        let own = dirfd(dir)
        var out: [Int32] = []
        // The name is read in place, up to its NUL. Loading `entry.pointee` would copy a whole
        // `struct dirent` (a 256-byte name), while readdir's records are only as long as their
        // name: the last one in its buffer can end right before an unmapped page, and the copy then
        // faults. It did, under the test suite's thousands of descriptors (Foundation's
        // `Process.run` crashed the same way).
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while let entry = readdir(dir) {
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if let fd = Int32(name), fd != own { out.append(fd) }
        }
        return out
    }
}

/// A pipe whose ends are closed on exec (a child gets one only through `dup2`).
public struct PipeDescriptors {
    public let read: Int32
    public let write: Int32

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SpawnError(path: "pipe", errno: errno) }
        // Close-on-exec (Swift's Glibc module has no pipe2); `Subprocess` also closes every
        // descriptor but 0–2 in the child, so the moment in between leaks nothing.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        read = fds[0]
        write = fds[1]
    }
}

import ServiceRouterCore
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive lock on the HAProxy config servicerouter manages (`<config>.lock`, `flock`), held
/// for the life of the process: two controllers on one HAProxy would reload each other in a loop
/// and rename files under each other. The holder's pid is written into the file.
public final class ConfigLock: Sendable {
    public let path: String
    private let fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { close(fd) }

    public struct Held: Error, CustomStringConvertible, Sendable {
        public var path: String
        public var config: String
        public var holder: Int?
        public var description: String {
            "another servicerouter\(holder.map { " (pid \($0))" } ?? "") already manages \(config) (it holds \(path)); "
                + "stop it first, or point this one at another HAProxy with --haproxy-config"
        }
    }

    /// Takes the lock beside `configPath`, or throws `Held` naming the holder.
    public static func acquire(for configPath: String) throws -> ConfigLock {
        let path = configPath + ".lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            let e = SystemError("open", target: path)
            throw ConfigFileError(path: path, operation: "lock", reason: e.description + ConfigStore.directoryHint(for: path, code: e.code))
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.pid(in: fd)
            close(fd)
            throw Held(path: path, config: configPath, holder: holder)
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return ConfigLock(path: path, fd: fd)
    }

    private static func pid(in fd: Int32) -> Int? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[..<n], as: UTF8.self).trimmingWhitespaceAndNewlines())
    }
}

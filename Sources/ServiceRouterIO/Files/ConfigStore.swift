import FoundationEssentials
import ServiceRouterCore
#if canImport(Glibc)
import Glibc
#endif

public struct ConfigFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var operation: String
    public var reason: String
    public init(path: String, operation: String, reason: String) {
        self.path = path
        self.operation = operation
        self.reason = reason
    }
    public var description: String { "\(operation) \(path): \(reason)" }
}

/// The config-file edge the reconciler writes through (a test double injects read-only
/// directories and full disks).
public protocol ConfigFiles: Sendable {
    var path: String { get }
    var rejectedPath: String { get }
    func read() -> String?
    /// Whether the live file holds exactly `text` (false when it cannot be read).
    func holds(_ text: String) -> Bool
    /// Writes the candidate next to the live file; returns its path.
    func writeCandidate(_ text: String) throws -> String
    /// Renames the candidate over the live file, keeping the replaced one as `.last-good`.
    func installCandidate() throws
    func rejectCandidate()
    func restoreLastGood() throws
    /// Atomic replacement of the live file (same structure, new slot contents).
    func replace(with text: String) throws
    /// Reads or atomically replaces a file beside the config (the vhost maps).
    func readFile(_ path: String) -> String?
    func replaceFile(_ path: String, with text: String) throws
}

extension ConfigFiles {
    public func holds(_ text: String) -> Bool { read() == text }
}

/// The config file edge: candidate files written next to the live one, renamed into place
/// atomically, the previous config kept as `<config>.last-good`.
public struct ConfigStore: ConfigFiles {
    public let path: String
    /// Files are created `rw-r-----`: they can carry basic-auth hashes; HAProxy (root or the
    /// haproxy group) and servicerouter need to read them, nobody else.
    public var mode: mode_t = 0o640

    public init(path: String) { self.path = path }

    public var candidatePath: String { path + ".candidate" }
    public var lastGoodPath: String { path + ".last-good" }
    public var rejectedPath: String { path + ".rejected" }

    public func read() -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Compares the file with `text` 64 KiB at a time: the 1.2 MB config of 10,000 tasks is never
    /// held in memory a second time just to find out that it did not change.
    public func holds(_ text: String) -> Bool {
        var expected = text
        return expected.withUTF8 { want -> Bool in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            var info = stat()
            guard fstat(fd, &info) == 0, Int(info.st_size) == want.count else { return false }
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            var offset = 0
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n >= 0 else { return false }
                if n == 0 { return offset == want.count }
                guard offset + n <= want.count,
                      buffer.withUnsafeBytes({ memcmp($0.baseAddress!, want.baseAddress! + offset, n) }) == 0 else { return false }
                offset += n
            }
        }
    }

    /// Writes `text` to the candidate path (fsync'd) and returns that path.
    public func writeCandidate(_ text: String) throws -> String {
        try write(text, to: candidatePath)
        return candidatePath
    }

    /// Moves the validated candidate into place; the config it replaces becomes `.last-good`.
    public func installCandidate() throws {
        if FileManager.default.fileExists(atPath: path) {
            _ = unlink(lastGoodPath)
            // A hard link keeps the old file as last-good without a window where `path` is missing.
            if link(path, lastGoodPath) != 0 {
                try? FileManager.default.copyItem(atPath: path, toPath: lastGoodPath)
            }
        }
        guard rename(candidatePath, path) == 0 else {
            let e = SystemError("rename", target: path)
            throw ConfigFileError(path: path, operation: "rename \(candidatePath) to", reason: e.description + Self.directoryHint(for: path, code: e.code))
        }
        syncDirectory()
    }

    /// Puts `.last-good` back in place after HAProxy failed to load the installed config, so a
    /// restart does not pick up a config the running HAProxy refused. The refused one is kept as
    /// `.rejected`.
    public func restoreLastGood() throws {
        guard FileManager.default.fileExists(atPath: lastGoodPath) else { return }
        _ = unlink(rejectedPath)
        _ = link(path, rejectedPath)
        let text = String(decoding: FileManager.default.contents(atPath: lastGoodPath) ?? Data(), as: UTF8.self)
        try replace(with: text)
    }

    public func readFile(_ path: String) -> String? { ConfigStore(path: path).read() }

    public func replaceFile(_ path: String, with text: String) throws { try ConfigStore(path: path).replace(with: text) }

    /// Removes what a controller killed mid-write left behind (a `.candidate`): call it holding
    /// the config lock. Returns the files removed.
    public func removeLeftovers() -> [String] {
        var removed: [String] = []
        for file in [candidatePath] where access(file, F_OK) == 0 {
            if unlink(file) == 0 { removed.append(file) }
        }
        return removed
    }

    /// Keeps a rejected candidate for inspection (`<config>.rejected`) and removes the candidate.
    public func rejectCandidate() {
        _ = unlink(rejectedPath)
        _ = rename(candidatePath, rejectedPath)
    }

    /// Writes a file that HAProxy does not need validated (same structure, new slot contents):
    /// still through a temporary file and an atomic rename.
    public func replace(with text: String) throws {
        try write(text, to: candidatePath)
        guard rename(candidatePath, path) == 0 else {
            let e = SystemError("rename", target: path)
            throw ConfigFileError(path: path, operation: "rename", reason: e.description + Self.directoryHint(for: path, code: e.code))
        }
    }

    func write(_ text: String, to file: String) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = SystemError("open", target: file)
            throw ConfigFileError(path: file, operation: "write", reason: e.description + Self.directoryHint(for: file, code: e.code))
        }
        defer { close(fd) }
        _ = fchmod(fd, mode)
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = SystemError("write", target: file)
                _ = unlink(file)
                throw ConfigFileError(path: file, operation: "write", reason: e.description + (e.code == ENOSPC ? " — the disk is full" : ""))
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            let e = SystemError("fsync", target: file)
            _ = unlink(file)
            throw ConfigFileError(path: file, operation: "write", reason: e.description)
        }
    }

    /// What to do when a file cannot be created: every file servicerouter writes (the config,
    /// its candidate, the vhost maps) lives in the directory of `--haproxy-config`, so the
    /// directory is what must change, not the one file the error happened to hit.
    static func directoryHint(for file: String, code: Int32) -> String {
        let dir = file.droppingLastPathComponent.isEmpty ? "." : file.droppingLastPathComponent
        switch code {
        case EROFS, EACCES:
            return " — the directory \(dir) (where --haproxy-config and the vhost maps are written) is not writable: make it writable, or point --haproxy-config into a writable directory"
        case EPERM:
            return " — \(file) or the directory \(dir) (where --haproxy-config and the vhost maps are written) refuses the change: is it immutable (lsattr; chattr -i), or the directory sticky and owned by someone else?"
        case ENOENT, ENOTDIR:
            return " — the directory \(dir) (where --haproxy-config and the vhost maps are written) does not exist: create it, or point --haproxy-config into an existing directory"
        default:
            return ""
        }
    }

    private func syncDirectory() {
        let dir = path.droppingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }
}

import Foundation
import ServiceRouterIO
@testable import ServiceRouter

/// The built `servicerouter` executable, beside the test bundle (`swift build --build-tests`, which
/// `scripts/test` runs, builds it; plain `swift test` may not).
enum Binary {
    static var path: String? {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [bundleDir, bundleDir.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("servicerouter").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static var isBuilt: Bool { path != nil }

    /// Runs the binary to completion (bounded), off the cooperative pool.
    static func run(_ arguments: [String], timeout: Double = 60) async throws -> (status: Int32, stdout: String, stderr: String) {
        guard let path else { throw RuntimeError("servicerouter is not built") }
        return try await Blocking.run {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: path)
            p.arguments = arguments
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            p.standardInput = FileHandle.nullDevice
            try p.run()
            let deadline = Monotonic.now() + timeout
            // Read both pipes on their own threads so a chatty child never blocks.
            let outData = Collector(out.fileHandleForReading), errData = Collector(err.fileHandleForReading)
            while p.isRunning && Monotonic.now() < deadline { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            return (p.terminationStatus, outData.text(), errData.text())
        }
    }

    final class Collector: @unchecked Sendable {
        private var data = Data()
        private let lock = NSLock()
        private let done = DispatchSemaphore(value: 0)
        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.lock(); data.append(chunk); lock.unlock()
                }
                done.signal()
            }
        }
        func text() -> String {
            _ = done.wait(timeout: .now() + 5)
            lock.lock(); defer { lock.unlock() }
            return String(decoding: data, as: UTF8.self)
        }
    }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport

/// Runs the built `servicerouter` executable (located by ServiceRouterTestSupport's `BuiltBinary`).
enum Binary {
    static var path: String? { BuiltBinary.path }
    static var isBuilt: Bool { BuiltBinary.isBuilt }

    /// Runs the binary to completion (bounded), off the cooperative pool. Started with
    /// ServiceRouterIO's `Subprocess` (posix_spawn), not Foundation's `Process`: under the suite's
    /// parallel load (thousands of descriptors opened and closed by other tests) Foundation's
    /// `Process.run` was seen crashing while it closed the child's descriptors.
    /// `environment`: variables added to (or replacing) the test process's own, through
    /// `/usr/bin/env`; `unset` are removed.
    static func run(_ arguments: [String], environment: [String: String] = [:], unset: [String] = [],
                    timeout: Double = 60) async throws -> (status: Int32, stdout: String, stderr: String) {
        guard let binary = path else { throw RuntimeError("servicerouter is not built") }
        var path = binary, arguments = arguments
        if !environment.isEmpty || !unset.isEmpty {
            arguments = unset.flatMap { ["-u", $0] } + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [binary] + arguments
            path = "/usr/bin/env"
        }
        return try await Blocking.run { [path, arguments] in
            let out = try PipeDescriptors(), err = try PipeDescriptors()
            let p: Subprocess
            do {
                p = try Subprocess(executable: path, arguments: arguments, standardOutput: out.write, standardError: err.write)
            } catch {
                for fd in [out.read, out.write, err.read, err.write] { Glibc.close(fd) }
                throw error
            }
            Glibc.close(out.write)
            Glibc.close(err.write)
            // Read both pipes on their own threads so a chatty child never blocks.
            let outData = Collector(out.read), errData = Collector(err.read)
            let deadline = Monotonic.now() + timeout
            while p.isRunning && Monotonic.now() < deadline { usleep(10_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            return (p.terminationStatus, outData.text(), errData.text())
        }
    }

    /// Reads a descriptor to its end on its own thread, then closes it.
    final class Collector: @unchecked Sendable {
        private var data: [UInt8] = []
        private let lock = NSLock()
        private let done = DispatchSemaphore(value: 0)
        init(_ fd: Int32) {
            Blocking.detach(name: "test-collector") { [self] in
                var buffer = [UInt8](repeating: 0, count: 64 << 10)
                while true {
                    let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    lock.lock(); data += buffer[0..<n]; lock.unlock()
                }
                Glibc.close(fd)
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

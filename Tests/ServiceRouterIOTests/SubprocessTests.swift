import Foundation
import Testing
import ServiceRouterCore
@testable import ServiceRouterIO
#if canImport(Glibc)
import Glibc
#endif

/// `Subprocess`, `ProcessRunner`, `Console` and the temporary directory: the replacements for
/// Foundation's `Process`, `FileHandle` and `NSTemporaryDirectory`, compared with them.
@Suite struct SubprocessTests {
    @Test func runnerCollectsStatusAndBothStreams() throws {
        let r = try ProcessRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(r.status == 3)
        #expect(r.output == "out\nerr\n")
        let ok = try ProcessRunner.run("sh", ["-c", "printf '%s' \"$0\""])   // through /usr/bin/env
        #expect(ok.status == 0)
        #expect(ok.output == "sh")
    }

    @Test func runnerMatchesFoundationProcess() throws {
        let script = "echo a; echo b >&2; echo \"$0 $1\"; exit 7"
        let mine = try ProcessRunner.run("/bin/sh", ["-c", script, "x"])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script, "x"]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(mine.status == p.terminationStatus)
        #expect(mine.output == String(decoding: data, as: UTF8.self))
    }

    @Test func childGetsNothingButStandardDescriptors() throws {
        let leaked = open("/dev/null", O_RDONLY)   // no O_CLOEXEC
        defer { close(leaked) }
        let r = try ProcessRunner.run("/bin/sh", ["-c", "ls /proc/$$/fd"])
        let fds = r.output.split(separator: "\n").compactMap { Int32($0) }
        #expect(!fds.contains(leaked), "\(fds)")
        #expect(Set(fds).isSuperset(of: [0, 1, 2]))
    }

    /// Thousands of open descriptors: /proc/self/fd spans many readdir buffers, and none reaches
    /// the child. (The fault fixed in `openDescriptors` — a record read past its real length —
    /// depends on where readdir's buffer lands in memory; this test does not reproduce it.)
    @Test func manyOpenDescriptorsAreEnumeratedAndNoneLeaks() throws {
        let opened = (0..<3000).map { _ in open("/dev/null", O_RDONLY) }.filter { $0 >= 0 }
        defer { for fd in opened { close(fd) } }
        #expect(opened.count > 1000)
        for _ in 0..<20 {
            let r = try ProcessRunner.run("/bin/sh", ["-c", "ls /proc/$$/fd"])
            let fds = Set(r.output.split(separator: "\n").compactMap { Int32($0) })
            #expect(fds.intersection(opened).isEmpty, "\(fds.count) descriptors in the child")
        }
    }

    @Test func childRunsInItsOwnProcessGroup() throws {
        let r = try ProcessRunner.run("/bin/sh", ["-c", "ps -o pgid= -p $$; echo $$"])
        let lines = r.output.split(separator: "\n").map { $0.trimmingWhitespace() }
        try #require(lines.count == 2, "\(r.output)")
        #expect(lines[0] == lines[1])
    }

    @Test func signalledChildReportsTheSignal() throws {
        let r = try ProcessRunner.run("/bin/sh", ["-c", "kill -KILL $$"])
        #expect(r.status == SIGKILL)
    }

    @Test func longRunningChildIsRunningUntilKilled() throws {
        let p = try Subprocess(executable: "/bin/sleep", arguments: ["30"])
        #expect(p.isRunning)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(!p.isRunning)
        #expect(p.terminationStatus == SIGKILL)
    }

    @Test(arguments: ["/nonexistent/servicerouter-haproxy", "/etc/hostname", "/dev/null", "/tmp", "/etc/passwd"])
    func spawnErrorsDescribedAsFoundationDid(_ path: String) throws {
        let mine = try #require(throws: SpawnError.self) { try ProcessRunner.run(path, ["-v"]) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = ["-v"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do {
            try p.run()
            p.waitUntilExit()
            Issue.record("Foundation ran \(path)")
        } catch {
            // Foundation's userInfo order follows its dictionary's per-process hash seed.
            var swapped = mine.description
            if let path = mine.path, let r = swapped.range(ofLiteral: "NSFilePath=\(path), "), swapped.hasSuffix("}") {
                let underlying = swapped[r.upperBound..<swapped.index(before: swapped.endIndex)]
                swapped = String(swapped[..<r.lowerBound]) + underlying + ", NSFilePath=\(path)}"
            }
            #expect(mine.description == "\(error)" || swapped == "\(error)", "\(error)")
        }
    }

    @Test func temporaryDirectoryIsNSTemporaryDirectory() {
        #expect(FileManager.default.temporaryDirectory.path() == NSTemporaryDirectory())
    }

    @Test func consoleWritesEverything() throws {
        let fds = try PipeDescriptors()
        defer { close(fds.read) }
        let text = String(repeating: "x", count: 10_000) + "é\n"
        Console.write(text, to: fds.write)
        close(fds.write)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds.read, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[..<n]
        }
        #expect(bytes == Array(text.utf8))
        Console.write("ignored", to: -1)   // a bad descriptor is not fatal
    }

    @Test func blockingRunsOnItsOwnNamedThread() async throws {
        let name = try await Blocking.run { () -> String in
            let fd = open("/proc/thread-self/comm", O_RDONLY)
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            return String(decoding: buffer[..<max(0, n)], as: UTF8.self)
        }
        #expect(name == "servicerouter.b\n")
    }
}

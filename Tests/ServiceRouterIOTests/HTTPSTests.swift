import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ServiceRouterIO

private let opensslPath = "/usr/bin/openssl"
private let hasOpenSSL = FileManager.default.isExecutableFile(atPath: opensslPath)

/// Runs a program to completion; returns its exit status and combined output.
@discardableResult
private func run(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.currentDirectoryURL = directory
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// A throwaway CA and a server certificate for 127.0.0.1 it signed, in a fresh temporary folder.
private struct ThrowawayPKI: Sendable {
    let directory: URL
    var caPath: String { directory.appendingPathComponent("ca.pem").path }
    var certPath: String { directory.appendingPathComponent("server.pem").path }
    var keyPath: String { directory.appendingPathComponent("server.key").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("servicerouter-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("""
            subjectAltName=IP:127.0.0.1,DNS:localhost
            basicConstraints=CA:FALSE
            extendedKeyUsage=serverAuth

            """.utf8).write(to: directory.appendingPathComponent("server.ext"))
        let steps: [[String]] = [
            [opensslPath, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "1", "-subj", "/CN=servicerouter throwaway test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            [opensslPath, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1"],
            [opensslPath, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.pem", "-days", "1", "-extfile", "server.ext"],
        ]
        for step in steps {
            let result = try run(step, in: directory)
            guard result.status == 0 else {
                throw SetupError(description: "openssl \(step[1]) failed: \(result.output)")
            }
        }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

private struct SetupError: Error, CustomStringConvertible { var description: String }

/// `openssl s_server -www` on 127.0.0.1 (answers any request with an HTTP/1.0 status page).
/// @unchecked: created, used and stopped by one test; `Process` is only touched from there.
private final class OpenSSLServer: @unchecked Sendable {
    let process = Process()
    let port: Int
    private let stdin = Pipe()

    init(pki: ThrowawayPKI) throws {
        port = try closedPort()
        process.executableURL = URL(fileURLWithPath: opensslPath)
        process.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", pki.certPath, "-key", pki.keyPath,
                             "-www", "-quiet"]
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<250 {
            if (try? Connection.tcp(host: "127.0.0.1", port: port, timeout: 0.2)) != nil { return }
            usleep(20_000)
        }
        stop()
        throw SetupError(description: "openssl s_server did not start on port \(port)")
    }

    var url: URL { URL(string: "https://127.0.0.1:\(port)/v2/apps")! }

    /// SIGKILL, not `terminate()`: the child inherits the test runner's blocked signal mask, in
    /// which SIGTERM is blocked, so a SIGTERM would wait forever.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// The loaded FoundationNetworking library, if it is a shared library.
private func foundationNetworkingLibrary() -> String? {
    guard let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) else { return nil }
    for line in maps.split(separator: "\n") where line.hasSuffix("libFoundationNetworking.so") {
        if let slash = line.firstIndex(of: "/") { return String(line[slash...]) }
    }
    return nil
}

// Setup (key generation, openssl processes) blocks, so it runs through `offPool`: on a small
// machine, blocking a shared pool here starves the timing-sensitive tests.
@Suite("HTTPS through URLSession", .enabled(if: hasOpenSSL, "needs /usr/bin/openssl"))
struct HTTPSTests {
    @Test func throwawayChainIsValidForOpenSSLItself() async throws {
        // The control: with the CA given explicitly, OpenSSL accepts the server. So a failure
        // below is about trust configuration, not a broken test certificate.
        let pki = try await offPool { try ThrowawayPKI() }
        defer { pki.remove() }
        let server = try await offPool { try OpenSSLServer(pki: pki) }
        defer { server.stop() }
        let sClient = [opensslPath, "s_client", "-connect", "127.0.0.1:\(server.port)", "-verify_return_error", "-brief"]
        let trusted = try await offPool {
            try run(sClient + ["-CAfile", pki.caPath, "-verify_ip", "127.0.0.1"], in: pki.directory)
        }
        #expect(trusted.status == 0, "\(trusted.output)")
        let untrusted = try await offPool { try run(sClient + ["-CAfile", "/dev/null"], in: pki.directory) }
        #expect(untrusted.status != 0)
    }

    @Test func urlSessionVerifiesTheServerCertificate() async throws {
        let pki = try await offPool { try ThrowawayPKI() }
        defer { pki.remove() }
        let server = try await offPool { try OpenSSLServer(pki: pki) }
        defer { server.stop() }
        var url = URLComponents(url: server.url, resolvingAgainstBaseURL: false)!
        url.user = "marathon"
        url.password = "hunter2"
        await #expect {
            try await HTTPClient().send(HTTPRequest(url: url.url!), timeout: 10)
        } throws: { error in
            let e = error as? HTTPClientError
            return e?.kind == .tls && !"\(error)".contains("hunter2") && "\(error)".contains("127.0.0.1")
        }
    }

    @Test func customCABundleIsRefusedWithAHint() async throws {
        let pki = try await offPool { try ThrowawayPKI() }
        defer { pki.remove() }
        let client = HTTPClient(caCertificateFile: pki.caPath)
        #expect { try client.checkTLSConfiguration() } throws: { error in
            (error as? HTTPClientError)?.kind == .unsupported && "\(error)".contains("update-ca-certificates")
        }
        await #expect {
            try await client.send(HTTPRequest(url: URL(string: "https://127.0.0.1:1/")!), timeout: 2)
        } throws: { ($0 as? HTTPClientError)?.kind == .unsupported }
        // The option only concerns https.
        let plain = try TestHTTPServer { _, peer in peer.respond(200) }
        defer { plain.stop() }
        #expect(try await client.send(HTTPRequest(url: plain.url), timeout: 5).status == 200)
    }

    /// Why the custom CA is refused: swift-corelibs-foundation reads
    /// `URLSessionCertificateAuthorityInfoFile` (its only CA hook) under `#if os(Android)` only.
    /// If a toolchain ever ships it on Linux, this fails and `--marathon-ca-cert` can be wired.
    @Test(.enabled(if: foundationNetworkingLibrary() != nil, "FoundationNetworking is not a shared library here"))
    func foundationNetworkingHasNoCAHookOnThisPlatform() throws {
        let path = try #require(foundationNetworkingLibrary())
        let library = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(library.range(of: Data("URLSessionCertificateAuthorityInfoFile".utf8)) == nil)
    }
}

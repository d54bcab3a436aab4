import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import ServiceRouterIO

let opensslPath = "/usr/bin/openssl"
let hasOpenSSL = FileManager.default.isExecutableFile(atPath: opensslPath)
/// HAProxy serves as the HTTPS peer: a real TLS server, independent of the client under test.
let hasHAProxy = hasOpenSSL && ((try? runProgram(["/usr/bin/env", "haproxy", "-v"]).status) == 0)

struct SetupError: Error, CustomStringConvertible { var description: String }

/// Runs a program to completion; returns its exit status and combined output, through
/// ServiceRouterIO's `ProcessRunner` (posix_spawn; Foundation's `Process.run`, called from the
/// test's own threads under the suite's parallel load, was seen crashing). A working directory
/// goes through `env -C`.
@discardableResult
func runProgram(_ arguments: [String], in directory: URL? = nil) throws -> (status: Int32, output: String) {
    let argv = directory.map { ["/usr/bin/env", "-C", $0.path] + arguments } ?? arguments
    let r = try ProcessRunner.run(argv[0], Array(argv.dropFirst()))
    return (r.status, r.output)
}


/// A throwaway CA and two server certificates it signed, in a fresh temporary folder:
/// `good` for localhost and 127.0.0.1, `wrong` for other.invalid and 127.0.0.2 only.
/// Each `<name>.pem` holds certificate and key (what HAProxy's `crt` wants).
struct ThrowawayPKI: Sendable {
    let directory: URL
    var caPath: String { path("ca.pem") }
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("servicerouter-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try step([opensslPath, "req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
                  "-subj", "/CN=servicerouter throwaway test CA",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        for (name, san) in [("good", "DNS:localhost,IP:127.0.0.1"), ("wrong", "DNS:other.invalid,IP:127.0.0.2")] {
            try Data("subjectAltName=\(san)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n".utf8)
                .write(to: directory.appendingPathComponent("\(name).ext"))
            try step([opensslPath, "req"] + ec + ["-keyout", "\(name).key", "-out", "\(name).csr", "-subj", "/CN=\(name)"])
            try step([opensslPath, "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                      "-CAcreateserial", "-out", "\(name).crt", "-days", "1", "-extfile", "\(name).ext"])
            let pem = try Data(contentsOf: URL(fileURLWithPath: path("\(name).crt")))
                + Data(contentsOf: URL(fileURLWithPath: path("\(name).key")))
            try pem.write(to: URL(fileURLWithPath: path("\(name).pem")))
        }
    }

    private func step(_ arguments: [String]) throws {
        let result = try runProgram(arguments, in: directory)
        guard result.status == 0 else { throw SetupError(description: "openssl \(arguments[1]) failed: \(result.output)") }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// HAProxy terminating TLS on 127.0.0.1: `port` presents the good certificate, `wrongPort` the
/// wrong one. `/ok` is answered by HAProxy itself with the SNI it saw and the protocol; anything
/// else goes to `backendPort` (a `TestHTTPServer`) over plain HTTP.
/// @unchecked: created, used and stopped by one test; `process` is only touched from there.
final class HTTPSFrontend: @unchecked Sendable {
    private(set) var process: Subprocess?
    let port: Int
    let wrongPort: Int

    /// Ports are picked free and released, so another test may take one in between; with
    /// `noreuseport` HAProxy then fails to bind (instead of sharing the port through SO_REUSEPORT
    /// with a stranger) and we try again with other ports.
    init(pki: ThrowawayPKI, backendPort: Int) throws {
        var lastError: Error = SetupError(description: "haproxy did not start")
        for _ in 0..<5 {
            let port = try closedPort(), wrongPort = try closedPort()
            if let started = Self.start(pki: pki, port: port, wrongPort: wrongPort, backendPort: backendPort, error: &lastError) {
                process = started
                self.port = port
                self.wrongPort = wrongPort
                return
            }
        }
        throw lastError
    }

    private static func start(pki: ThrowawayPKI, port: Int, wrongPort: Int, backendPort: Int,
                              error: inout Error) -> Subprocess? {
        let config = """
            global
              maxconn 100
              noreuseport
            defaults
              mode http
              timeout connect 2s
              timeout client 30s
              timeout server 30s
            frontend https
              bind 127.0.0.1:\(port) ssl crt \(pki.path("good.pem"))
              bind 127.0.0.1:\(wrongPort) ssl crt \(pki.path("wrong.pem"))
              http-request return status 200 content-type text/plain lf-string "ok sni=%[ssl_fc_sni] proto=%[ssl_fc_protocol]" if { path /ok }
              default_backend app
            backend app
              server s1 127.0.0.1:\(backendPort)

            """
        let configPath = pki.path("haproxy-\(port).cfg")
        let log = pki.path("haproxy-\(port).log")
        let process: Subprocess
        do {
            try Data(config.utf8).write(to: URL(fileURLWithPath: configPath))
            let logFD = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard logFD >= 0 else { throw SetupError(description: "cannot open \(log): errno \(errno)") }
            defer { close(logFD) }
            process = try Subprocess(executable: "/usr/bin/env", arguments: ["haproxy", "-db", "-f", configPath],
                                     standardOutput: nil, standardError: logFD)
        } catch let e {
            error = e
            return nil
        }
        for _ in 0..<250 where process.isRunning {
            if (try? Connection.tcp(host: "127.0.0.1", port: port, timeout: 0.2)) != nil,
               (try? Connection.tcp(host: "127.0.0.1", port: wrongPort, timeout: 0.2)) != nil {
                return process
            }
            usleep(20_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        error = SetupError(description: "haproxy did not start on ports \(port), \(wrongPort): \(output)")
        return nil
    }

    func url(_ path: String, host: String = "127.0.0.1", port: Int? = nil, user: String? = nil) -> URL {
        var c = URLComponents()
        c.scheme = "https"
        c.host = host
        c.port = port ?? self.port
        c.user = user
        c.password = user.map { _ in "hunter2" }
        c.percentEncodedPath = path
        return c.url!
    }

    /// SIGKILL, not `terminate()`: the child inherits the test runner's blocked signal mask, in
    /// which SIGTERM is blocked, so a SIGTERM would wait forever.
    func stop() {
        if let process, process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// A throwaway PKI plus HAProxy in front of a `TestHTTPServer` running `behaviour`; all three are
/// torn down when `body` returns or throws.
func withHTTPS(_ behaviour: @escaping TestHTTPServer.Behaviour = { _, peer in peer.respond(404) },
               _ body: (ThrowawayPKI, HTTPSFrontend, TestHTTPServer) async throws -> Void) async throws {
    let backend = try TestHTTPServer(behaviour)
    defer { backend.stop() }
    let pki = try await offPool { try ThrowawayPKI() }
    defer { pki.remove() }
    let frontend = try await offPool { try HTTPSFrontend(pki: pki, backendPort: backend.port) }
    defer { frontend.stop() }
    try await body(pki, frontend, backend)
}

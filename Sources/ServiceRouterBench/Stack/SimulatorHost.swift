import Foundation
import MarathonSimulator
import ServiceRouterCore
import ServiceRouterIO
#if canImport(Glibc)
import Glibc
#endif

/// Where the Marathon simulator runs: in this process (tests), or in a child process so that
/// the controller's memory and CPU are measured apart from the simulator's 10,000 task
/// listeners (the benchmark binary re-executes itself with `_sim`).
public enum SimulatorPlacement: Sendable, Equatable {
    case inProcess
    case childProcess(executable: String)
}

/// An app the benchmarks create: HTTP, routed by vhost and by its own service port.
struct BenchApp: Sendable {
    var id: String
    var instances: Int
    var servicePort: Int
    var vhost: String

    /// The Marathon app definition (POST /v2/apps), no health checks: HAProxy checking 10,000
    /// servers every few seconds would measure HAProxy's checks, not the controller.
    var json: String {
        """
        {"id": "\(id)", "instances": \(instances), "cmd": "serve $PORT0", \
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "\(vhost)"}, \
        "portDefinitions": [{"port": \(servicePort), "protocol": "tcp", "name": "http"}]}
        """
    }
}

/// The simulator, wherever it runs, driven through its REST and `/_sim` APIs only (the same
/// calls whether in-process or not).
final class SimulatorHost: @unchecked Sendable {
    let url: String
    private let simulator: MarathonSimulator?
    private let process: Process?
    private let stdinPipe: Pipe?
    private let http = HTTPClient()

    private init(url: String, simulator: MarathonSimulator?, process: Process?, stdinPipe: Pipe?) {
        self.url = url
        self.simulator = simulator
        self.process = process
        self.stdinPipe = stdinPipe
    }

    /// Starts a simulator holding `apps`, and waits until every task runs.
    static func start(_ placement: SimulatorPlacement, apps: [BenchApp], killGrace: Double,
                      directory: String) async throws -> SimulatorHost {
        switch placement {
        case .inProcess:
            let sim = try await MarathonSimulator.start(.init(heartbeatInterval: 5, killGracePeriod: killGrace,
                                                              maxConnections: 1024))
            do {
                for app in apps { try await sim.createApp(json: app.json) }
                try await sim.waitForDeployments(timeout: 120)
            } catch {
                sim.stop()
                throw error
            }
            return SimulatorHost(url: sim.url, simulator: sim, process: nil, stdinPipe: nil)
        case .childProcess(let executable):
            let file = directory + "/apps.json"
            try ("[" + apps.map(\.json).joined(separator: ",\n") + "]").write(toFile: file, atomically: true, encoding: .utf8)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["_sim", "--apps-file", file, "--kill-grace", String(killGrace)]
            let input = Pipe(), output = Pipe()
            p.standardInput = input
            p.standardOutput = output
            _ = FileManager.default.createFile(atPath: directory + "/simulator.log", contents: nil)
            p.standardError = FileHandle(forWritingAtPath: directory + "/simulator.log") ?? FileHandle.standardError
            try p.run()
            // The child prints its URL once every task runs; it exits when our end of its stdin
            // closes, so it never outlives this process.
            let reader = output.fileHandleForReading
            let line: String = try await Blocking.run {
                var bytes: [UInt8] = []
                let deadline = Monotonic.now() + 300
                while Monotonic.now() < deadline {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    bytes += chunk
                    if bytes.contains(0x0A) { break }
                }
                return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            guard line.hasPrefix("http://") else {
                p.terminate()
                throw BenchError("the simulator child did not start (see \(directory)/simulator.log): \(line.prefix(200))")
            }
            return SimulatorHost(url: line, simulator: nil, process: p, stdinPipe: input)
        }
    }

    var pid: Int32? { process?.processIdentifier }

    func stop() async {
        simulator?.stop()
        if let process, let stdinPipe {
            try? stdinPipe.fileHandleForWriting.close()
            _ = try? await Blocking.run {
                let deadline = Monotonic.now() + 10
                while process.isRunning && Monotonic.now() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                process.waitUntilExit()
            }
        }
    }

    // MARK: - REST

    private func request(_ method: String, _ path: String, body: [UInt8] = [], timeout: Double = 10) async throws -> HTTPResponse {
        guard let u = URL(string: url + path) else { throw BenchError("bad URL \(url + path)") }
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if !body.isEmpty { headers.set("Content-Type", "application/json") }
        let r = try await http.send(HTTPRequest(method: method, url: u, headers: headers, body: body), timeout: timeout)
        guard r.status == 200 else { throw BenchError("\(method) \(path): HTTP \(r.status) \(r.text.prefix(200))") }
        return r
    }

    /// Kills the oldest task of the app that is not being killed yet (a replacement starts at
    /// once); returns the killed task's id.
    func replaceTask(_ appId: String) async throws -> String {
        let r = try await request("POST", "/_sim/apps\(appId)/replace")
        struct Answer: Decodable { var killed: String }
        return try JSONDecoder().decode(Answer.self, from: Data(r.body)).killed
    }

    /// Replaces the app's labels (PUT /v2/apps/<id>, as an operator would): a new app version,
    /// which Marathon deploys by replacing the tasks.
    func updateLabels(_ appId: String, _ labels: [String: String]) async throws {
        let body = try JSONSerialization.data(withJSONObject: ["labels": labels], options: [.sortedKeys])
        _ = try await request("PUT", "/v2/apps\(appId)", body: Array(body))
    }

    /// True when Marathon runs no deployment (an app with one in progress refuses changes).
    func idle() async throws -> Bool {
        let r = try await request("GET", "/v2/deployments")
        guard let list = try JSONSerialization.jsonObject(with: Data(r.body)) as? [Any] else {
            throw BenchError("GET /v2/deployments: not a JSON array")
        }
        return list.isEmpty
    }

    func tasks(_ appId: String) async throws -> [MarathonTask] {
        try MarathonDecoding.tasks(from: try await request("GET", "/v2/apps\(appId)/tasks").body)
    }

    func runningTaskIds(_ appId: String) async throws -> Set<String> {
        Set(try await tasks(appId).filter { $0.state == .running }.map(\.id))
    }
}

/// `servicerouter-bench _sim --apps-file F --kill-grace S`: the simulator as a child process. Prints
/// its URL on standard output once every task runs, and stops when standard input closes (the
/// parent ended, however it ended).
public enum SimulatorChild {
    public static func run(_ args: [String]) async -> Int32 {
        var file: String?
        var grace = 0.5
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--apps-file" where i + 1 < args.count: file = args[i + 1]; i += 1
            case "--kill-grace" where i + 1 < args.count: grace = Double(args[i + 1]) ?? grace; i += 1
            default:
                FileHandle.standardError.write(Data("_sim: unknown argument \(args[i])\n".utf8))
                return 2
            }
            i += 1
        }
        let sim: MarathonSimulator
        do {
            sim = try await MarathonSimulator.start(.init(heartbeatInterval: 5, killGracePeriod: grace, maxConnections: 1024,
                                                          logger: .stderr(level: .warning)))
        } catch {
            FileHandle.standardError.write(Data("_sim: cannot start: \(error)\n".utf8))
            return 1
        }
        do {
            if let file {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                guard let list = try JSONSerialization.jsonObject(with: data) as? [Any] else {
                    throw BenchError("\(file): not a JSON array")
                }
                for app in list {
                    let json = String(decoding: try JSONSerialization.data(withJSONObject: app), as: UTF8.self)
                    try await sim.createApp(json: json)
                }
            }
            try await sim.waitForDeployments(timeout: 300)
        } catch {
            FileHandle.standardError.write(Data("_sim: \(error)\n".utf8))
            sim.stop()
            return 1
        }
        FileHandle.standardOutput.write(Data((sim.url + "\n").utf8))
        // Until the parent closes our stdin (or dies).
        _ = try? await Blocking.run {
            while !FileHandle.standardInput.availableData.isEmpty {}
        }
        sim.stop()
        return 0
    }
}

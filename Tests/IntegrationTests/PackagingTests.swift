import Foundation
import Testing
import ServiceRouterCore
import ServiceRouterIO
@testable import ServiceRouterController
@testable import ServiceRouterCLI
import ServiceRouterTestSupport
@testable import MarathonSimulator
#if canImport(Glibc)
import Glibc
#endif

/// Keeps the packaging honest without a Docker engine: docker-compose.yml validates, the commands
/// and arguments in docker-compose.yml, deploy/marathon-app.json and deploy/servicerouter.service
/// are ones `servicerouter` accepts, the paths the Dockerfile, the entrypoint, the systemd unit and
/// its drop-in share agree, and docker/entrypoint.sh really starts HAProxy in master-worker mode
/// with the minimal config and stops it again.
enum Packaging {
    /// The repository root (this file is Tests/IntegrationTests/PackagingTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    static func text(_ relative: String) throws -> String {
        try String(contentsOfFile: path(relative), encoding: .utf8)
    }

    /// `name`'s full path when it is an executable on PATH.
    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = String(dir) + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The `servicerouter` executable built next to the test bundle (`.build/debug`, or whatever
    /// `--scratch-path` says), when there is one.
    static let builtBinary: String? = {
        var dirs = [Bundle.main.bundleURL, URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        for dir in dirs {
            let candidate = dir.appendingPathComponent("servicerouter").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    /// The flag names a `--help` text lists: the leading `-x, --name` tokens of its option lines.
    static func listedFlags(inHelp help: String) -> Set<String> {
        var flags = Set<String>()
        for line in help.split(separator: "\n") where line.hasPrefix("  -") {
            for token in line.split(separator: " ") {
                let name = token.hasSuffix(",") ? String(token.dropLast()) : String(token)
                guard name.hasPrefix("-") else { break }
                flags.insert(name)
            }
        }
        return flags
    }

    /// What `servicerouter run --help` prints, computed from the same flag list the command parses.
    static var inProcessRunHelp: String {
        ArgumentParser.help(command: "run", summary: "", usage: "", specs: RunCommand.specs)
    }

    /// `servicerouter run --help` from the built binary, else the same text computed in-process.
    static func runHelp() async throws -> String {
        guard let binary = builtBinary else { return inProcessRunHelp }
        let result = try await Blocking.run { try ProcessRunner.run(binary, ["run", "--help"], timeout: 30) }
        guard result.status == 0 else { throw RuntimeError("\(binary) run --help exited with \(result.status): \(result.output)") }
        return result.output
    }

    /// Checks `servicerouter run ARGS` (ARGS without `run`): every flag is one `run --help` lists,
    /// and `run`'s own parser and option validation accept the whole command line.
    @discardableResult
    static func checkRunArguments(_ args: [String], _ origin: String) async throws -> CommonOptions {
        let listed = listedFlags(inHelp: try await runHelp())
        #expect(listed.contains("--marathon") && listed.contains("--master-socket"), "could not read the flags of `run --help`")
        for arg in args where arg.hasPrefix("-") {
            let name = String(arg.split(separator: "=", maxSplits: 1)[0])
            #expect(listed.contains(name), "\(origin): \(name) is not a flag `servicerouter run --help` lists")
        }
        let parsed = try ArgumentParser.parse(args, specs: RunCommand.specs)
        return try CommonOptions.parse(parsed, environment: [:])
    }

    /// The arguments of each `command: [...]` (a JSON array, possibly over several lines) in
    /// docker-compose.yml, by service.
    static func composeCommands() throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        var service: String?
        var pending: String?
        var inServices = false
        for raw in try text("docker-compose.yml").split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line == "services:" { inServices = true; continue }
            if !line.hasPrefix(" ") && !line.isEmpty && !line.hasPrefix("#") { inServices = false }
            if inServices, line.hasPrefix("  "), !line.hasPrefix("   "), line.hasSuffix(":"), !line.contains("#") {
                service = String(line.dropFirst(2).dropLast())
            }
            if pending == nil, let r = line.range(of: "command: [") {
                pending = String(line[line.index(before: r.upperBound)...])
            } else if pending != nil {
                pending! += " " + line.trimmingCharacters(in: .whitespaces)
            }
            if let p = pending, p.filter({ $0 == "[" }).count == p.filter({ $0 == "]" }).count {
                guard let service, let array = try JSONSerialization.jsonObject(with: Data(p.utf8)) as? [String] else {
                    throw RuntimeError("docker-compose.yml: command of service \(service ?? "?") is not a one-line JSON array of strings: \(p)")
                }
                out[service] = array
                pending = nil
            }
        }
        return out
    }
}

extension Packaging {
    /// Each service's lines in docker-compose.yml (from `  name:` to the next service), by name.
    static func composeServiceBlocks() throws -> [String: String] {
        var out: [String: String] = [:]
        var service: String?
        var inServices = false
        for raw in try text("docker-compose.yml").split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line == "services:" { inServices = true; continue }
            if !line.hasPrefix(" ") && !line.isEmpty && !line.hasPrefix("#") { inServices = false; service = nil }
            guard inServices else { continue }
            if line.hasPrefix("  "), !line.hasPrefix("   "), line.hasSuffix(":"), !line.contains("#") {
                service = String(line.dropFirst(2).dropLast())
                continue
            }
            if let service { out[service, default: ""] += line + "\n" }
        }
        return out
    }
}

/// `swift test --filter PackagingTests` runs both suites below.
@Suite struct PackagingTests {}

extension PackagingTests {
    /// The product imports FoundationEssentials only: full Foundation's three libraries (Foundation,
    /// FoundationInternationalization, _FoundationICU) cost about 8 MB of resident memory.
    @Test(.enabled(if: Binary.isBuilt && Packaging.which("ldd") != nil, "servicerouter is not built or ldd is missing"))
    func servicerouterDoesNotLinkFullFoundation() async throws {
        let path = try #require(Binary.path)
        let result = try await Blocking.run { try ProcessRunner.run("ldd", [path], timeout: 30) }
        #expect(result.status == 0, "\(result.output)")
        let libraries = result.output.split(separator: "\n").compactMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) }
        for full in ["libFoundation.so", "libFoundationInternationalization.so", "lib_FoundationICU.so"] {
            #expect(!libraries.contains(full), "\(path) links \(full): a product target imports Foundation")
        }
    }

    @Suite struct Files {
        // MARK: docker-compose.yml

        @Test(.enabled(if: Packaging.which("docker-compose") != nil,
                       "docker-compose is not on PATH (scripts/test installs it: SERVICEROUTER_SETUP_COMPOSE=1 scripts/setup)"),
              arguments: [[], ["--profile", "simulator"], ["--profile", "mesos"]])
        func composeFileValidates(_ profile: [String]) async throws {
            let file = Packaging.path("docker-compose.yml")
            let result = try await Blocking.run {
                try ProcessRunner.run("docker-compose", ["-f", file] + profile + ["config", "-q"], timeout: 120)
            }
            #expect(result.status == 0, "docker-compose -f docker-compose.yml \(profile.joined(separator: " ")) config -q: \(result.output)")
        }

        @Test func composeServicerouterCommandsAreValid() async throws {
            let commands = try Packaging.composeCommands()

            let real = try #require(commands["servicerouter"], "docker-compose.yml has no servicerouter service with a command")
            #expect(real == ["run", "--marathon", "http://marathon.mesos:8080", "--group", "external", "--health-check",
                             "--listen", "0.0.0.0:9100"])
            let realOptions = try await Packaging.checkRunArguments(Array(real.dropFirst()), "docker-compose.yml servicerouter")
            #expect(realOptions.routing.healthCheck)
            _ = try RunCommand.parseListen("0.0.0.0:9100")

            let routerSim = try #require(commands["servicerouter-sim"])
            #expect(routerSim.first == "run")
            let simRouterOptions = try await Packaging.checkRunArguments(Array(routerSim.dropFirst()), "docker-compose.yml servicerouter-sim")
            #expect(simRouterOptions.routing.groups == ["external"])

            // The simulator shares servicerouter-sim's network namespace: same port, loopback.
            let sim = try #require(commands["marathon-sim"])
            #expect(sim.first == "sim")
            let simArguments = try SimulatorCommand.parse(Array(sim.dropFirst()))
            #expect(simRouterOptions.marathonURLs.map(\.absoluteString) == ["http://127.0.0.1:\(simArguments.options.port)"])
            #expect(simArguments.group == "external")
            let compose = try Packaging.text("docker-compose.yml")
            #expect(compose.contains("network_mode: \"service:servicerouter-sim\""))
        }

        /// servicerouter resolves through Mesos-DNS (Docker's DNS forwards to it), so the seed's
        /// `marathon.mesos` is what it asks for, and Mesos-DNS forwards other names back.
        @Test func composeResolvesMarathonThroughMesosDNS() async throws {
            let blocks = try Packaging.composeServiceBlocks()
            let dnsBlock = try #require(blocks["mesos-dns"])
            let line = try #require(dnsBlock.split(separator: "\n").first { $0.contains("ipv4_address:") })
            let address = String(line[line.range(of: "ipv4_address:")!.upperBound...].prefix { $0 != "#" }).trimmingCharacters(in: .whitespaces)
            #expect(IPAddress.isNumeric(address), "\(line)")
            let router = try #require(blocks["servicerouter"])
            #expect(router.contains("    dns: [\(address)]"), "servicerouter's resolver must be Mesos-DNS (\(address))")
            #expect(router.contains("      mesos-dns:\n        condition: service_started"))
            let compose = try Packaging.text("docker-compose.yml")
            let octets = address.split(separator: ".")
            #expect(compose.contains("        - subnet: \(octets.prefix(3).joined(separator: ".")).0/24"), "Mesos-DNS's address is in the network's subnet")
            let command = try #require(try Packaging.composeCommands()["servicerouter"])
            let flag = try #require(command.firstIndex(of: "--marathon"))
            let url = try #require(URL(string: command[flag + 1]))
            #expect(url.host?.hasSuffix(".mesos") == true, "the stack must exercise *.mesos names: \(url)")
            let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Packaging.path("docker/mesos-dns.json")))) as? [String: Any])
            #expect(config["domain"] as? String == "mesos")
            #expect((config["resolvers"] as? [String])?.contains("127.0.0.11") == true, "Mesos-DNS must forward other names to Docker's DNS")
            #expect(config["externalon"] as? Bool == true)
        }

        /// One image build per profile; stats and metrics on 127.0.0.1 only; the header's compose
        /// version is the one `service_completed_successfully` needs.
        @Test func composeBuildsOnceAndPublishesStatsOnLoopback() throws {
            let blocks = try Packaging.composeServiceBlocks()
            let builders = blocks.filter { $0.value.contains("<<: *servicerouter-build") }.map(\.key).sorted()
            #expect(builders == ["servicerouter", "servicerouter-sim"])
            for (name, block) in blocks where block.contains("image: servicerouter:local") {
                #expect(builders.contains(name) || !block.contains("build:"), "\(name) builds the image a second time")
            }
            #expect(blocks["marathon-sim"]?.contains("depends_on:\n      - servicerouter-sim") == true)
            let profileOf: (String) -> String? = { block in
                block.split(separator: "\n").first { $0.contains("profiles:") }.map(String.init)
            }
            #expect(profileOf(blocks["servicerouter"]!) != profileOf(blocks["servicerouter-sim"]!), "one builder per profile")
            for (name, block) in blocks {
                for line in block.split(separator: "\n") where line.contains(":9090:9090") || line.contains(":9100:9100") {
                    #expect(line.contains("\"127.0.0.1:"), "\(name) publishes stats or metrics beyond 127.0.0.1: \(line)")
                }
            }
            let compose = try Packaging.text("docker-compose.yml")
            if compose.contains("service_completed_successfully") {
                #expect(compose.contains("docker-compose 1.29+"), "service_completed_successfully needs docker-compose 1.29")
                #expect(!compose.contains("1.28+"))
            }
            #expect(!compose.contains("no --listen flag"), "--listen exists")
        }

        @Test func composeBindMountsAndSampleAppExist() throws {
            let compose = try Packaging.text("docker-compose.yml")
            let mounts = compose.split(separator: "\n").compactMap { line -> String? in
                guard let r = line.range(of: "- ./") else { return nil }
                return String(line[line.index(r.lowerBound, offsetBy: 2)...].split(separator: ":")[0])
            }
            #expect(mounts.contains("./docker/sample-app.json"))
            for mount in mounts {
                #expect(FileManager.default.fileExists(atPath: Packaging.path(mount)), "docker-compose.yml mounts \(mount), which does not exist")
            }

            // The sample app: a Marathon app servicerouter routes (group external, a valid vhost).
            let app = try MarathonDecoding.app(from: Data(contentsOf: URL(fileURLWithPath: Packaging.path("docker/sample-app.json"))))
            #expect(app.labels["HAPROXY_GROUP"] == "external")
            let labels = try LabelParser.parse(labels: app.labels, index: 0)
            #expect(labels.groups == ["external"])
            #expect(!labels.vhosts.isEmpty)
            let port = try #require(app.servicePorts.first)
            #expect(compose.contains("\"\(port):\(port)\""), "the sample app's service port \(port) is not published")
            #expect(app.healthChecks.first?.proto == .http)
        }

        // MARK: Dockerfile and the entrypoint's paths

        @Test func dockerfileCopiesWhatTheEntrypointAndComposeUse() throws {
            let dockerfile = try Packaging.text("Dockerfile")
            let entrypoint = try Packaging.text("docker/entrypoint.sh")
            var copies: [String: String] = [:]
            for line in dockerfile.split(separator: "\n") where line.hasPrefix("COPY ") && !line.contains("--from=") {
                let parts = line.split(separator: " ").map(String.init)
                guard parts.count == 3 else { continue }
                copies[parts[1]] = parts[2]
            }
            for source in copies.keys where source != "." {
                #expect(FileManager.default.fileExists(atPath: Packaging.path(source)), "Dockerfile copies \(source), which does not exist")
            }
            let minimal = try #require(copies["haproxy/haproxy-minimal.cfg"])
            #expect(entrypoint.contains("SERVICEROUTER_MINIMAL_CONFIG:-\(minimal)}"), "the entrypoint's default minimal config is not where the Dockerfile puts it")
            let entry = try #require(copies["docker/entrypoint.sh"])
            #expect(dockerfile.contains("ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"\(entry)\"]"))
            let healthcheck = try #require(copies["docker/healthcheck.sh"])
            let compose = try Packaging.text("docker-compose.yml")
            #expect(compose.contains("[\"CMD\", \"\((healthcheck as NSString).lastPathComponent)\""))
            #expect(dockerfile.contains("swift build -c release --static-swift-stdlib"))
            #expect(dockerfile.contains("FROM ${SWIFT_IMAGE} AS build") && dockerfile.contains("ARG SWIFT_IMAGE=swift:6."))
            #expect(dockerfile.contains("ARG RUNTIME_IMAGE=debian:bookworm-slim"))
            for script in ["docker/entrypoint.sh", "docker/healthcheck.sh"] {
                #expect(FileManager.default.isExecutableFile(atPath: Packaging.path(script)), "\(script) is not executable")
            }
        }

        /// The minimal config operators start HAProxy with is the one the test suite starts it with.
        @Test func minimalConfigMatchesTheTestHarness() throws {
            let file = try Packaging.text("haproxy/haproxy-minimal.cfg")
            let lines = file.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            let harness = HAProxyProcess.minimalConfig(socket: "@ADMIN_SOCKET@").split(separator: "\n")
            #expect(lines == harness)
        }

        // MARK: deploy/

        @Test func marathonAppDefinitionDecodesAndRunsValidArguments() async throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: Packaging.path("deploy/marathon-app.json")))
            let app = try MarathonDecoding.app(from: data)
            #expect(app.id == "/servicerouter")
            #expect(app.networking == .host)
            #expect(app.servicePorts == [80, 9090, 9091])
            #expect(app.labels["HAPROXY_GROUP"] == nil, "servicerouter must not route itself")
            let check = try #require(app.healthChecks.first)
            #expect(check.proto == .http)
            #expect(check.path == "/_haproxy_health_check")
            #expect(check.portIndex.map { app.servicePorts[$0] } == 9090)

            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let args = try #require(json["args"] as? [String])
            #expect(args.first == "run")
            let options = try await Packaging.checkRunArguments(Array(args.dropFirst()), "deploy/marathon-app.json")
            #expect(options.routing.groups == ["external"])
            #expect(options.render.stats?.port == 9090, "the health check asks the stats port")
            let constraints = try #require(json["constraints"] as? [[String]])
            #expect(constraints.contains(["hostname", "UNIQUE"]))
            let networks = try #require(json["networks"] as? [[String: String]])
            #expect(networks == [["mode": "host"]])
            #expect(json["requirePorts"] as? Bool == true)
            // Public agents, as marathon-lb's own app definition; time for HAProxy's soft stop.
            #expect(json["acceptedResourceRoles"] as? [String] == ["slave_public"])
            #expect((json["taskKillGracePeriodSeconds"] as? Int ?? 0) >= 30)
        }

        /// `Key=value` lines of a unit file with `\` continuations joined, in order.
        static func unitLines(_ text: String) -> [(key: String, value: String)] {
            var out: [(String, String)] = []
            var current = ""
            for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if current.isEmpty && (line.hasPrefix("#") || line.hasPrefix(";") || line.hasPrefix("[") || line.isEmpty) { continue }
                if line.hasSuffix("\\") {
                    current += line.dropLast() + " "
                    continue
                }
                current += line
                if let eq = current.firstIndex(of: "=") {
                    out.append((String(current[..<eq]), String(current[current.index(after: eq)...])))
                }
                current = ""
            }
            return out
        }

        static func words(_ s: String) -> [String] { s.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }

        @Test func systemdUnitRunsValidArgumentsAndMatchesTheHAProxyDropIn() async throws {
            let unit = Self.unitLines(try Packaging.text("deploy/servicerouter.service"))
            let execStart = try #require(unit.first { $0.key == "ExecStart" }?.value)
            #expect(!execStart.contains("\"") && !execStart.contains("'"), "keep ExecStart free of quotes: this test splits it on spaces")
            let words = Self.words(execStart)
            #expect(words.first == "/usr/local/bin/servicerouter")
            #expect(words.dropFirst().first == "run")
            let options = try await Packaging.checkRunArguments(Array(words.dropFirst(2)), "deploy/servicerouter.service")
            let master = try #require(options.masterSocket, "the unit must reload through the master socket")

            // The drop-in starts HAProxy on the same config, master socket and admin socket.
            let dropIn = Self.unitLines(try Packaging.text("deploy/haproxy.service.d/servicerouter.conf"))
            #expect(dropIn.first { $0.key == "ExecStart" }?.value == "", "the drop-in must reset ExecStart before setting it")
            let haproxyStart = try #require(dropIn.last { $0.key == "ExecStart" }?.value)
            let h = Self.words(haproxyStart)
            #expect(h.first == "/usr/sbin/haproxy")
            #expect(h.contains("-Ws") || h.contains("-W"), "HAProxy must run in master-worker mode")
            let s = try #require(h.firstIndex(of: "-S"))
            #expect(h[s + 1].split(separator: ",")[0] == master)
            let f = try #require(h.firstIndex(of: "-f"))
            #expect(h[f + 1] == options.configPath)
            let pre = try #require(dropIn.first { $0.key == "ExecStartPre" }?.value)
            #expect(pre.contains("s|@ADMIN_SOCKET@|\(options.socketPath)|"), "the minimal config must get --haproxy-socket")
            #expect(pre.contains(options.configPath))
            // Its sed fills the minimal config in exactly as the container entrypoint does.
            let sed = try #require(pre.range(of: "sed \"").map { pre[$0.upperBound...].prefix { $0 != "\"" } }.map(String.init))
            let minimalPath = Packaging.path("haproxy/haproxy-minimal.cfg")
            let filled = try await Blocking.run { try ProcessRunner.run("sed", [sed, minimalPath], timeout: 30) }
            #expect(filled.status == 0)
            #expect(filled.output == PackagingTests.Entrypoint.filled(try Packaging.text("haproxy/haproxy-minimal.cfg"), socket: options.socketPath))
            #expect(dropIn.contains { $0.key == "ExecReload" && $0.value.contains("-f \(options.configPath)") })
        }

        /// `systemd-analyze verify` on both files (the servicerouter path swapped for an executable
        /// that exists here; the drop-in next to this machine's haproxy.service).
        @Test(.enabled(if: Packaging.which("systemd-analyze") != nil, "systemd-analyze is not on PATH"))
        func systemdAnalyzeVerifies() async throws {
            let dir = NSTemporaryDirectory() + "sr-units-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir + "/haproxy.service.d", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let binary = Packaging.builtBinary ?? "/bin/true"
            let unit = try Packaging.text("deploy/servicerouter.service").replacingOccurrences(of: "/usr/local/bin/servicerouter", with: binary)
            try unit.write(toFile: dir + "/servicerouter.service", atomically: true, encoding: .utf8)
            var files = [dir + "/servicerouter.service"]
            let packaged = ["/lib/systemd/system/haproxy.service", "/usr/lib/systemd/system/haproxy.service"]
            if let haproxyUnit = packaged.first(where: { FileManager.default.fileExists(atPath: $0) }),
               FileManager.default.isExecutableFile(atPath: "/usr/sbin/haproxy") {
                try FileManager.default.copyItem(atPath: haproxyUnit, toPath: dir + "/haproxy.service")
                try FileManager.default.copyItem(atPath: Packaging.path("deploy/haproxy.service.d/servicerouter.conf"),
                                                 toPath: dir + "/haproxy.service.d/servicerouter.conf")
                files.append(dir + "/haproxy.service")
            }
            for file in files {
                let result = try await Blocking.run { try ProcessRunner.run("systemd-analyze", ["verify", file], timeout: 60) }
                #expect(result.status == 0, "systemd-analyze verify \((file as NSString).lastPathComponent): \(result.output)")
            }
        }

        /// The built binary's `run --help` lists exactly the flags `run` parses.
        @Test(.enabled(if: Packaging.builtBinary != nil, "no servicerouter binary next to the test bundle"))
        func builtBinaryHelpListsTheParsedFlags() async throws {
            let fromBinary = Packaging.listedFlags(inHelp: try await Packaging.runHelp())
            #expect(fromBinary == Set(RunCommand.specs.flatMap(\.names)))
        }
    }
}

extension PackagingTests {
    /// docker/entrypoint.sh for real: Debian's HAProxy, a fake `servicerouter` that records its
    /// arguments. Everything is on unix sockets in a temporary directory; every wait is bounded.
    @Suite(.enabled(if: HAProxyProcess.isInstalled() && FileManager.default.isExecutableFile(atPath: "/bin/bash"),
                    "haproxy is not on PATH (scripts/test installs it)"))
    struct Entrypoint {
        static let fakeServicerouter = """
            #!/usr/bin/env bash
            # Records its arguments and pid; exits 0 on SIGTERM; with FAKE_EXIT_WHEN, exits FAKE_EXIT once that file exists.
            printf '%s\\n' "$@" > "$FAKE_DIR/args.tmp" && mv "$FAKE_DIR/args.tmp" "$FAKE_DIR/args"
            echo "pid $$" >> "$FAKE_DIR/events"
            trap 'echo TERM >> "$FAKE_DIR/events"; exit 0' TERM
            [ "${FAKE_MODE:-}" = record ] && exit 0
            for _ in $(seq 1 400); do
              if [ -n "${FAKE_EXIT_WHEN:-}" ] && [ -e "$FAKE_EXIT_WHEN" ]; then exit "${FAKE_EXIT:-0}"; fi
              sleep 0.05
            done
            echo timeout >> "$FAKE_DIR/events"
            exit 9

            """

        /// One entrypoint process and its temporary directory.
        final class Run: @unchecked Sendable {
            let dir: String
            let pid: pid_t
            private var status: Int32?
            var config: String { dir + "/state/haproxy.cfg" }
            var socket: String { dir + "/run/admin.sock" }
            var master: String { dir + "/run/master.sock" }
            /// HAProxy pids seen, killed at the end if still alive (only processes this test started).
            var haproxyPids: [Int] = []

            init(_ arguments: [String], environment extra: [String: String] = [:]) throws {
                dir = NSTemporaryDirectory() + "sr-ep-\(UUID().uuidString.prefix(8))"
                try FileManager.default.createDirectory(atPath: dir + "/bin", withIntermediateDirectories: true)
                try PackagingTests.Entrypoint.writeExecutable(PackagingTests.Entrypoint.fakeServicerouter, to: dir + "/bin/servicerouter")
                var env = ProcessInfo.processInfo.environment
                env["PATH"] = dir + "/bin:" + (env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin")
                env["FAKE_DIR"] = dir
                env["SERVICEROUTER_MINIMAL_CONFIG"] = Packaging.path("haproxy/haproxy-minimal.cfg")
                env["SERVICEROUTER_HAPROXY_CONFIG"] = dir + "/state/haproxy.cfg"
                env["SERVICEROUTER_HAPROXY_SOCKET"] = dir + "/run/admin.sock"
                env["SERVICEROUTER_MASTER_SOCKET"] = dir + "/run/master.sock"
                env["SERVICEROUTER_STOP_GRACE"] = "5"
                for (k, v) in extra { env[k] = v }
                pid = try PackagingTests.Entrypoint.spawn("/bin/bash", [Packaging.path("docker/entrypoint.sh")] + arguments,
                                                environment: env, output: dir + "/output")
            }

            var output: String { (try? String(contentsOfFile: dir + "/output", encoding: .utf8)) ?? "" }
            var events: [String] {
                ((try? String(contentsOfFile: dir + "/events", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            }
            var recordedArguments: [String]? {
                (try? String(contentsOfFile: dir + "/args", encoding: .utf8)).map { $0.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) }
            }

            /// The exit status (128 + signal when killed by one), once the entrypoint has exited.
            var exited: Int32? {
                if let status { return status }
                var raw: Int32 = 0
                guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
                status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
                return status
            }

            /// Waits (bounded) for `condition`; fails with `what` and the entrypoint's output.
            func wait(_ what: String, timeout: Double = 15, _ condition: () async -> Bool) async throws {
                let deadline = Monotonic.now() + timeout
                while Monotonic.now() < deadline {
                    if await condition() { return }
                    try await Task.sleep(nanoseconds: 50_000_000)
                }
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "gone"
                let cmdline = ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").replacingOccurrences(of: "\0", with: " ")
                throw RuntimeError("\(what): not within \(Int(timeout)) s. Entrypoint pid \(pid): \(stat) [\(cmdline)]; output:\n\(output)")
            }

            /// The entrypoint's exit status, waiting (bounded) for it to exit.
            func exitStatus(timeout: Double = 15) async throws -> Int32 {
                try await wait("the entrypoint exits", timeout: timeout) { exited != nil }
                return exited!
            }

            /// Up: the fake servicerouter started, HAProxy answers on both sockets. Returns `show proc`.
            func waitUntilUp() async throws -> RuntimeReplyParsers.ProcessList {
                try await wait("the fake servicerouter is started") { recordedArguments != nil }
                let list = try #require(try await HAProxyProcessControl(method: .masterSocket(master), logger: .silent).processList())
                haproxyPids = [list.masterPid] + list.workers
                return list
            }

            /// Kills what is left (the entrypoint, the HAProxy processes seen) and removes the directory.
            func finish() {
                if exited == nil {
                    kill(pid, SIGKILL)
                    for _ in 0..<100 where exited == nil { usleep(20_000) }
                }
                for pid in haproxyPids where PackagingTests.Entrypoint.isAlive(pid) { kill(pid_t(pid), SIGKILL) }
                try? FileManager.default.removeItem(atPath: dir)
            }
        }

        /// posix_spawn with what a container's init gives its child: default dispositions and an empty
        /// signal mask (the test process may ignore or block SIGTERM, and both survive exec), stdin
        /// from /dev/null, stdout and stderr to `output` (the project opens its descriptors close-on-exec).
        static func spawn(_ path: String, _ arguments: [String], environment: [String: String], output: String) throws -> pid_t {
            var attributes = posix_spawnattr_t()
            posix_spawnattr_init(&attributes)
            defer { posix_spawnattr_destroy(&attributes) }
            var mask = sigset_t()
            sigemptyset(&mask)
            posix_spawnattr_setsigmask(&attributes, &mask)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for sig in [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD, SIGPIPE, SIGUSR1, SIGUSR2] { sigaddset(&defaults, sig) }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)

            let argv = ([path] + arguments).map { strdup($0) } + [nil]
            let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer {
                for p in argv { free(p) }
                for p in envp { free(p) }
            }
            var pid = pid_t()
            let rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
            guard rc == 0 else { throw RuntimeError("posix_spawn \(path): \(String(cString: strerror(rc)))") }
            return pid
        }

        /// Writes an executable through a close-on-exec descriptor: a descriptor open for writing that
        /// leaks into a child another test spawns meanwhile (FileManager's writes are not
        /// close-on-exec) makes exec'ing the file fail with "Text file busy" for that child's lifetime.
        static func writeExecutable(_ text: String, to path: String) throws {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
            guard fd >= 0 else { throw RuntimeError("cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else { throw RuntimeError("cannot write \(path)") }
        }

        /// A process that exists and is not a zombie.
        static func isAlive(_ pid: Int) -> Bool {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.first.map { $0 != "Z" && $0 != "X" } ?? false
        }

        /// haproxy-minimal.cfg with the placeholder filled in outside comments, as the entrypoint and
        /// the systemd drop-in's sed do it.
        static func filled(_ minimal: String, socket: String) -> String {
            minimal.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                line.hasPrefix("#") ? String(line) : line.replacingOccurrences(of: "@ADMIN_SOCKET@", with: socket)
            }.joined(separator: "\n")
        }

        static func parentPid(_ pid: Int) -> Int? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 ? Int(fields[1]) : nil
        }

        @Test func runStartsHAProxyInMasterWorkerModeAndSIGTERMStopsBoth() async throws {
            let run = try Run(["run", "--group", "external", "--marathon", "http://127.0.0.1:1"])
            defer { run.finish() }
            let list = try await run.waitUntilUp()

            // servicerouter got the paths HAProxy uses, appended to the given flags, and they are valid.
            let args = try #require(run.recordedArguments)
            #expect(args == ["run", "--group", "external", "--marathon", "http://127.0.0.1:1",
                             "--haproxy-config", run.config, "--haproxy-socket", run.socket, "--master-socket", run.master])
            let options = try await Packaging.checkRunArguments(Array(args.dropFirst()), "the entrypoint's servicerouter command")
            #expect(options.masterSocket == run.master)

            // HAProxy: the minimal config with the admin socket filled in, master-worker mode, started
            // by the entrypoint itself, answering on the admin socket.
            let minimal = try Packaging.text("haproxy/haproxy-minimal.cfg")
            let config = try String(contentsOfFile: run.config, encoding: .utf8)
            #expect(config == Self.filled(minimal, socket: run.socket))
            #expect(config.contains("\n  stats socket \(run.socket) mode 600 level admin expose-fd listeners\n"))
            let check = try await Blocking.run { [path = run.config] in try ProcessRunner.run("haproxy", ["-c", "-q", "-f", path], timeout: 30) }
            #expect(check.status == 0, "haproxy -c on the written minimal config: \(check.output)")
            #expect(list.workers.count == 1)
            #expect(list.reloads == 0)
            #expect(Self.parentPid(list.masterPid) == Int(run.pid), "the HAProxy master must be the entrypoint's child")
            let identity = try await UnixRuntimeSocket(path: run.socket).identity()
            #expect(list.workers == [identity.pid])
            #expect(identity.structureHash == nil, "the minimal config is not a generated one")

            // SIGTERM: both stop, the entrypoint exits with servicerouter's status (0).
            kill(run.pid, SIGTERM)
            let status = try await run.exitStatus()
            #expect(status == 0, "\(run.output)")
            #expect(run.events.contains("TERM"), "servicerouter did not get SIGTERM: \(run.events)")
            try await run.wait("HAProxy's processes exit") { run.haproxyPids.allSatisfy { !Self.isAlive($0) } }
            #expect(!run.events.contains("timeout"))
        }

        @Test func servicerouterExitingStopsHAProxyAndPassesItsStatus() async throws {
            // Paths given as flags (both spellings) win over the environment; nothing is appended.
            let dir = NSTemporaryDirectory() + "sr-ep-flags-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let given = ["run", "--group", "external", "--haproxy-config", dir + "/h.cfg", "--haproxy-socket=\(dir)/a.sock",
                         "--master-socket", dir + "/m.sock", "--health-check"]
            let go = dir + "/go"
            let run = try Run(given, environment: ["FAKE_EXIT": "3", "FAKE_EXIT_WHEN": go])
            defer { run.finish() }
            try await run.wait("the fake servicerouter is started") { run.recordedArguments != nil }
            #expect(run.recordedArguments == given)
            let list = try #require(try await HAProxyProcessControl(method: .masterSocket(dir + "/m.sock"), logger: .silent).processList())
            run.haproxyPids = [list.masterPid] + list.workers
            #expect(FileManager.default.fileExists(atPath: dir + "/a.sock"))
            #expect(!FileManager.default.fileExists(atPath: run.config), "the environment's default config path must not be used")
            #expect(try String(contentsOfFile: dir + "/h.cfg", encoding: .utf8).contains("stats socket \(dir)/a.sock "))

            _ = FileManager.default.createFile(atPath: go, contents: nil)
            let status = try await run.exitStatus()
            #expect(status == 3, "\(run.output)")
            try await run.wait("HAProxy's processes exit") { run.haproxyPids.allSatisfy { !Self.isAlive($0) } }
        }

        @Test func haproxyDyingStopsServicerouter() async throws {
            let run = try Run(["run", "--group", "external"])
            defer { run.finish() }
            let list = try await run.waitUntilUp()
            kill(pid_t(list.masterPid), SIGKILL)
            let status = try await run.exitStatus()
            #expect(status != 0, "\(run.output)")
            #expect(run.events.contains("TERM"), "servicerouter did not get SIGTERM: \(run.events)")
            try await run.wait("HAProxy's worker exits after its master") { run.haproxyPids.allSatisfy { !Self.isAlive($0) } }
        }

        @Test func otherCommandsAreExecutedAsIs() async throws {
            let run = try Run(["templates", "--write", "/nonexistent/templates"], environment: ["FAKE_MODE": "record"])
            defer { run.finish() }
            let status = try await run.exitStatus()
            #expect(status == 0, "\(run.output)")
            #expect(run.recordedArguments == ["templates", "--write", "/nonexistent/templates"])
            #expect(run.events.first == "pid \(run.pid)", "the entrypoint must exec servicerouter, not run it as a child")
            #expect(!FileManager.default.fileExists(atPath: run.config), "no HAProxy for other commands")
        }

        /// SIGTERM stops HAProxy softly (SIGUSR1): its listeners close, but a request in flight is
        /// answered, and HAProxy exits once it has been (a SIGTERM to HAProxy would cut it).
        @Test func sigtermLetsARequestInFlightFinish() async throws {
            let run = try Run(["run", "--group", "external"])
            defer { run.finish() }
            _ = try await run.waitUntilUp()
            let task = try TaskServer(id: "inflight.1")
            defer { task.stop() }
            let port = try freePort()
            // What servicerouter's first pass would do: a config with a frontend, and a reload.
            try """
                global
                  stats socket \(run.socket) mode 600 level admin expose-fd listeners
                  hard-stop-after 30s
                defaults
                  mode http
                  timeout connect 3s
                  timeout client 60s
                  timeout server 60s
                  timeout http-request 60s
                frontend inflight
                  bind 127.0.0.1:\(port)
                  default_backend tasks
                backend tasks
                  server t1 127.0.0.1:\(task.port)

                """.write(toFile: run.config, atomically: true, encoding: .utf8)
            let control = HAProxyProcessControl(method: .masterSocket(run.master), logger: .silent)
            _ = try await control.reload(runtime: UnixRuntimeSocket(path: run.socket), timeout: 30)
            let list = try #require(try await control.processList())
            run.haproxyPids = [list.masterPid] + list.workers + list.oldWorkers
            #expect(try await httpRequest(port: port).body == "inflight.1")

            // A request whose head is not complete yet, then the stop.
            let connection = try Connection.tcp(host: "127.0.0.1", port: port, timeout: 5)
            defer { connection.close() }
            try connection.write("GET / HTTP/1.1\r\nHost: inflight\r\n")
            kill(run.pid, SIGTERM)
            try await run.wait("HAProxy stops listening") {
                (try? Connection.tcp(host: "127.0.0.1", port: port, timeout: 1)).map { $0.close(); return false } ?? true
            }
            #expect(run.exited == nil, "HAProxy must wait for the request in flight: \(run.output)")
            try connection.write("Connection: close\r\n\r\n")
            let answer = try parseResponse(String(decoding: try connection.readToEnd(timeout: 10), as: UTF8.self))
            #expect(answer.status == 200 && answer.body == "inflight.1", "the request in flight was cut: \(answer)")
            let status = try await run.exitStatus(timeout: 40)
            #expect(status == 0, "\(run.output)")
            #expect(run.events.contains("TERM"), "servicerouter did not get SIGTERM: \(run.events)")
            #expect(run.output.contains("stopping servicerouter, and HAProxy softly"))
            try await run.wait("HAProxy's processes exit") { run.haproxyPids.allSatisfy { !Self.isAlive($0) } }
        }

        /// marathon-lb's image environment: certificates from HAPROXY_SSL_CERT*, sysctls, the
        /// templates in the Mesos sandbox, PORTS (not needed, and said so).
        @Test func marathonLBEnvironmentIsRead() async throws {
            let env = NSTemporaryDirectory() + "sr-ep-env-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: env) }
            for d in ["proc/net/ipv4", "proc/net/core", "sandbox/templates"] {
                try FileManager.default.createDirectory(atPath: env + "/" + d, withIntermediateDirectories: true)
            }
            let run = try Run(["sse", "--group", "external", "--ssl-certs", "/etc/ssl/given.pem"], environment: [
                "HAPROXY_SSL_CERT": "-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----",
                "HAPROXY_SSL_CERT3": "three",
                "SERVICEROUTER_SSL_CERT_DIR": env + "/certs",
                "HAPROXY_SYSCTL_PARAMS": "net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=4096",
                "SERVICEROUTER_PROC_SYS": env + "/proc",
                "MESOS_SANDBOX": env + "/sandbox",
                "PORTS": "80,443,9090",
            ])
            defer { run.finish() }
            _ = try await run.waitUntilUp()
            let args = try #require(run.recordedArguments)
            #expect(args == ["run", "--group", "external", "--ssl-certs", "/etc/ssl/given.pem,\(env)/certs/cert.pem,\(env)/certs/cert3.pem",
                             "--haproxy-config", run.config, "--haproxy-socket", run.socket, "--master-socket", run.master,
                             "--templates-dir", env + "/sandbox/templates"])
            #expect(try String(contentsOfFile: env + "/certs/cert.pem", encoding: .utf8) == "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
            #expect(try String(contentsOfFile: env + "/certs/cert3.pem", encoding: .utf8) == "three\n")
            let mode = try FileManager.default.attributesOfItem(atPath: env + "/certs/cert.pem")[.posixPermissions] as? Int
            #expect(mode == 0o600, "a certificate file holds a private key")
            #expect(try String(contentsOfFile: env + "/proc/net/ipv4/tcp_tw_reuse", encoding: .utf8) == "1\n")
            #expect(try String(contentsOfFile: env + "/proc/net/core/somaxconn", encoding: .utf8) == "4096\n")
            #expect(run.output.contains("PORTS=80,443,9090 is not needed"))
            _ = try await Packaging.checkRunArguments(Array(args.dropFirst()), "the entrypoint's command with marathon-lb's environment")
            kill(run.pid, SIGTERM)
            #expect(try await run.exitStatus() == 0, "\(run.output)")
        }

        @Test func aSysctlThatCannotBeWrittenStopsUnlessNonStrict() async throws {
            let env = NSTemporaryDirectory() + "sr-ep-sysctl-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: env, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: env) }
            let strict = try Run(["run", "--group", "external"], environment: ["HAPROXY_SYSCTL_PARAMS": "net.no_such.key=1", "SERVICEROUTER_PROC_SYS": env])
            defer { strict.finish() }
            #expect(try await strict.exitStatus() == 1, "\(strict.output)")
            #expect(strict.output.contains("sysctl net.no_such.key=1 failed: cannot write \(env)/net/no_such/key"))
            #expect(strict.recordedArguments == nil, "servicerouter must not start")
            let bad = try Run(["run", "--group", "external"], environment: ["HAPROXY_SYSCTL_PARAMS": "net.x=1;reboot", "SERVICEROUTER_PROC_SYS": env])
            defer { bad.finish() }
            #expect(try await bad.exitStatus() == 2, "\(bad.output)")
            let lenient = try Run(["run", "--group", "external"], environment: ["HAPROXY_SYSCTL_PARAMS": "net.no_such.key=1",
                                                                                "SERVICEROUTER_PROC_SYS": env, "HAPROXY_SYSCTL_NONSTRICT": "1"])
            defer { lenient.finish() }
            _ = try await lenient.waitUntilUp()
            #expect(lenient.output.contains("HAPROXY_SYSCTL_NONSTRICT is set: going on"))
            kill(lenient.pid, SIGTERM)
            #expect(try await lenient.exitStatus() == 0, "\(lenient.output)")
        }

        /// `poll`: HAProxy plus `servicerouter once` every POLL_INTERVAL seconds, as marathon-lb's
        /// image ran it; SIGTERM stops both.
        @Test func pollRunsOnceEveryInterval() async throws {
            let run = try Run(["poll", "--group", "external"], environment: ["FAKE_MODE": "record", "POLL_INTERVAL": "1"])
            defer { run.finish() }
            _ = try await run.waitUntilUp()
            let args = try #require(run.recordedArguments)
            #expect(args == ["once", "--group", "external", "--haproxy-config", run.config, "--haproxy-socket", run.socket,
                             "--master-socket", run.master])
            try await run.wait("a second pass") { run.events.filter { $0.hasPrefix("pid ") }.count >= 2 }
            kill(run.pid, SIGTERM)
            #expect(try await run.exitStatus() == 0, "\(run.output)")
            try await run.wait("HAProxy's processes exit") { run.haproxyPids.allSatisfy { !Self.isAlive($0) } }
        }

        @Test func badSocketPathStopsBeforeHAProxyStarts() async throws {
            let run = try Run(["run", "--group", "external", "--haproxy-socket", "/tmp/not allowed.sock"])
            defer { run.finish() }
            let status = try await run.exitStatus()
            #expect(status == 2, "\(run.output)")
            #expect(run.output.contains("socket path"))
            #expect(run.recordedArguments == nil, "servicerouter must not start")
            #expect(!FileManager.default.fileExists(atPath: run.config), "HAProxy's config must not be written")
        }
    }
}

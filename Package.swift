// swift-tools-version:6.0
// servicerouter: keeps HAProxy in step with Marathon through HAProxy's runtime API.
// No third-party packages: only the Swift toolchain's own libraries.
import PackageDescription

let package = Package(
    name: "servicerouter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "servicerouter", targets: ["servicerouter"]),
        .executable(name: "servicerouter-bench", targets: ["servicerouter-bench"]),
    ],
    targets: [
        // Pure core: Marathon models, labels, desired state, slots, rendering, runtime planning,
        // protocol parsers. No I/O.
        .target(name: "ServiceRouterCore"),
        // The edges: sockets, HTTP client/server, Marathon client + event stream, runtime socket,
        // HAProxy process control, files, clock, logging.
        .target(name: "ServiceRouterIO", dependencies: ["ServiceRouterCore"]),
        // <sys/epoll.h> for Swift (Glibc's module lacks it): a header with inline helpers, Linux only.
        .target(name: "CEpoll"),
        // A wire-exact Marathon 1.x simulator with real task listeners (tests, demo, benchmarks).
        .target(name: "MarathonSimulator", dependencies: ["CEpoll", "ServiceRouterCore", "ServiceRouterIO"],
                exclude: ["README.md"]),
        // The controller: the loop, the reconciler that sequences passes, the applier that performs
        // them, event mapping, metrics and the status endpoint. Core ← IO ← controller: it knows
        // no command and no simulator.
        .target(name: "ServiceRouterController", dependencies: ["ServiceRouterCore", "ServiceRouterIO"]),
        // The commit the build comes from, for `--version` (written before every build by the plugin).
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .target(name: "ServiceRouterBuildInfo", plugins: ["BuildInfoPlugin"]),
        // The commands (once, plan, render, run, socket, status, demo, sim) and their options.
        .target(name: "ServiceRouterCLI", dependencies: ["ServiceRouterController", "ServiceRouterCore", "ServiceRouterIO", "MarathonSimulator",
                                                      "ServiceRouterBuildInfo"]),
        // Thin executable: arguments -> wiring.
        .executableTarget(name: "servicerouter", dependencies: ["ServiceRouterCLI", "ServiceRouterIO"]),
        // Benchmarks (real HAProxy, the simulator, real task listeners): the scenarios live in a
        // library so the test suite can run their smoke versions.
        .target(name: "ServiceRouterBench", dependencies: ["ServiceRouterCLI", "ServiceRouterController", "ServiceRouterCore", "ServiceRouterIO", "MarathonSimulator"]),
        // Depends on `servicerouter` so that building the benchmark builds the executable whose memory
        // it measures (ControllerProcess).
        .executableTarget(name: "servicerouter-bench", dependencies: ["ServiceRouterBench", "servicerouter"]),
        // What every test target shares (as swift-nio ships NIOTestUtils): the Marathon fixtures
        // (one copy), `eventually`, the binary locator, a seeded generator, and in-memory doubles
        // of the edges (runtime socket + HAProxy control, config files, Marathon source, host
        // resolution) with a manual time source.
        .target(name: "ServiceRouterTestSupport",
                dependencies: ["ServiceRouterCore", "ServiceRouterIO", "ServiceRouterController"],
                path: "Tests/ServiceRouterTestSupport", resources: [.copy("Fixtures")]),
        .testTarget(name: "ServiceRouterCoreTests", dependencies: ["ServiceRouterCore", "ServiceRouterTestSupport"]),
        .testTarget(name: "ServiceRouterIOTests", dependencies: ["ServiceRouterIO", "ServiceRouterCore", "ServiceRouterTestSupport"]),
        .testTarget(name: "MarathonSimulatorTests", dependencies: ["MarathonSimulator", "ServiceRouterCore", "ServiceRouterIO", "ServiceRouterTestSupport"]),
        // Controller decisions on the in-memory doubles and a manual clock: no HAProxy, no real time.
        .testTarget(name: "ServiceRouterControllerTests",
                    dependencies: ["ServiceRouterController", "ServiceRouterCore", "ServiceRouterIO", "ServiceRouterTestSupport"]),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["ServiceRouterCLI", "ServiceRouterController", "ServiceRouterIO", "ServiceRouterCore", "MarathonSimulator",
                                   "ServiceRouterBench", "ServiceRouterTestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)

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
        // The controller and the commands (once, plan, render, run, socket, status, demo, sim).
        .target(name: "ServiceRouter", dependencies: ["ServiceRouterCore", "ServiceRouterIO", "MarathonSimulator"]),
        // Thin executable: arguments -> wiring.
        .executableTarget(name: "servicerouter", dependencies: ["ServiceRouter"]),
        // Benchmarks (real HAProxy, the simulator, real task listeners): the scenarios live in a
        // library so the test suite can run their smoke versions.
        .target(name: "ServiceRouterBench", dependencies: ["ServiceRouter", "ServiceRouterCore", "ServiceRouterIO", "MarathonSimulator"]),
        // Depends on `servicerouter` so that building the benchmark builds the executable whose memory
        // it measures (ControllerProcess).
        .executableTarget(name: "servicerouter-bench", dependencies: ["ServiceRouterBench", "servicerouter"]),
        .testTarget(name: "ServiceRouterCoreTests", dependencies: ["ServiceRouterCore"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ServiceRouterIOTests", dependencies: ["ServiceRouterIO", "ServiceRouterCore"]),
        .testTarget(name: "MarathonSimulatorTests", dependencies: ["MarathonSimulator", "ServiceRouterCore", "ServiceRouterIO"]),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["ServiceRouter", "ServiceRouterIO", "ServiceRouterCore", "MarathonSimulator", "ServiceRouterBench"],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)

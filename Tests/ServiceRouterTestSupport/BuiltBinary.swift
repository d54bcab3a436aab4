import Foundation

/// The `servicerouter` executable `swift build` puts beside the test bundle (`scripts/test` runs
/// `swift build --build-tests`, which builds it; plain `swift test` may not).
public enum BuiltBinary {
    public static let path: String? = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dirs: [URL] = []
        for start in [exe, CommandLine.arguments[0]] {
            var dir = URL(fileURLWithPath: start).deletingLastPathComponent()
            for _ in 0..<3 {
                dirs.append(dir)
                dir = dir.deletingLastPathComponent()
            }
        }
        for dir in dirs {
            let candidate = dir.appendingPathComponent("servicerouter").path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               FileManager.default.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }()

    public static var isBuilt: Bool { path != nil }

    public static let missing = "the servicerouter executable is not beside the test bundle (run `swift build` first; CI builds everything)"
}

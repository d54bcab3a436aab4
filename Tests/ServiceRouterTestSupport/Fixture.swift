import Foundation

/// The test fixtures, one copy for every test target: `Fixtures/marathon` (real Marathon payloads,
/// byte for byte; provenance in its README) and `Fixtures/haproxy` (replies captured from HAProxy
/// 2.6.12).
public enum Fixture {
    /// Where a fixture file is (for tests that hand a path to the binary).
    public static func url(_ name: String, in folder: String = "marathon") throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/\(folder)") else {
            throw TestFailure("fixture \(folder)/\(name) is missing from the test-support bundle")
        }
        return url
    }

    /// A file from `Fixtures/<folder>/`, byte for byte.
    public static func data(_ name: String, in folder: String = "marathon") throws -> Data {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/\(folder)") else {
            throw TestFailure("fixture \(folder)/\(name) is missing from the test-support bundle")
        }
        return try Data(contentsOf: url)
    }

    public static func text(_ name: String, in folder: String = "haproxy") throws -> String {
        String(decoding: try data(name, in: folder), as: UTF8.self)
    }

    /// A Marathon fixture as text (for tests that send it over HTTP).
    public static func marathon(_ name: String) -> String {
        (try? text(name, in: "marathon")) ?? ""
    }

    /// Every file with this extension in `Fixtures/<folder>/`, by name.
    public static func names(withExtension ext: String, in folder: String = "marathon") -> [String] {
        (Bundle.module.urls(forResourcesWithExtension: ext, subdirectory: "Fixtures/\(folder)") ?? [])
            .compactMap { $0.lastPathComponent }.sorted()
    }
}

import Foundation
import ServiceRouterCore
import ServiceRouterIO

/// Where Marathon's apps come from: Marathon itself, or a captured payload file.
public protocol AppsSource: Sendable {
    func fetchApps() async throws -> (apps: [MarathonApp], skipped: [SkippedApp])
}

/// A captured `/v2/apps?embed=apps.tasks` payload (`--apps-json`).
public struct FileAppsSource: AppsSource {
    public var path: String
    public init(path: String) { self.path = path }

    public func fetchApps() async throws -> (apps: [MarathonApp], skipped: [SkippedApp]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RuntimeError("--apps-json: cannot read \(path)")
        }
        return try MarathonDecoding.apps(from: data)
    }
}

enum AppsSourceFactory {
    static func make(_ opts: CommonOptions, logger: Logger) throws -> any AppsSource {
        if let file = opts.appsJSON { return FileAppsSource(path: file) }
        throw UsageError("reading from --marathon is not available in this build yet; use --apps-json")
    }
}

import FoundationEssentials
import ServiceRouterCore

/// Marathon's apps as one snapshot: the decoded apps and those that could not be decoded.
public struct AppsSnapshot: Sendable, Equatable {
    public var apps: [MarathonApp]
    public var skipped: [SkippedApp]
    public init(apps: [MarathonApp], skipped: [SkippedApp] = []) {
        self.apps = apps
        self.skipped = skipped
    }
}

/// Where Marathon's apps come from: Marathon itself, or a captured payload file. The edge the
/// controller fetches snapshots through (an in-memory double stands in for it in tests).
public protocol AppsSource: Sendable {
    func fetchApps() async throws -> AppsSnapshot
}

public struct AppsSourceError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A captured `/v2/apps?embed=apps.tasks` payload (`--apps-json`).
public struct FileAppsSource: AppsSource {
    public var path: String
    public init(path: String) { self.path = path }

    public func fetchApps() async throws -> AppsSnapshot {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AppsSourceError("--apps-json: cannot read \(path) (does the file exist and is it readable?)")
        }
        let decoded = try MarathonDecoding.apps(from: data)
        return AppsSnapshot(apps: decoded.apps, skipped: decoded.skipped)
    }
}

/// Marathon itself: `GET /v2/apps?embed=apps.tasks`, trying each URL in turn.
public struct MarathonAppsSource: AppsSource {
    public var client: MarathonClient
    public init(client: MarathonClient) { self.client = client }

    public func fetchApps() async throws -> AppsSnapshot {
        let (data, _) = try await client.fetchApps()
        let decoded = try MarathonDecoding.apps(from: data)
        return AppsSnapshot(apps: decoded.apps, skipped: decoded.skipped)
    }
}

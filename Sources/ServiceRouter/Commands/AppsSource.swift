import FoundationEssentials
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

/// Marathon itself: `GET /v2/apps?embed=apps.tasks`, trying each URL in turn.
public struct MarathonAppsSource: AppsSource {
    public var client: MarathonClient
    public init(client: MarathonClient) { self.client = client }

    public func fetchApps() async throws -> (apps: [MarathonApp], skipped: [SkippedApp]) {
        let (data, _) = try await client.fetchApps()
        return try MarathonDecoding.apps(from: data)
    }
}

enum AppsSourceFactory {
    static func make(_ opts: CommonOptions, logger: Logger) throws -> any AppsSource {
        if let file = opts.appsJSON { return FileAppsSource(path: file) }
        return MarathonAppsSource(client: try marathonClient(opts, logger: logger))
    }

    static func marathonClient(_ opts: CommonOptions, logger: Logger, streamTimeout: Double = 30, maxBackoff: Double = 30) throws -> MarathonClient {
        do {
            let credentials = try opts.credentials.map { try BasicCredentials(text: $0) }
            let endpoints = try MarathonEndpoints(urls: opts.marathonURLs, credentials: credentials)
            let http = HTTPClient(caCertificateFile: opts.caCert)
            try http.checkTLSConfiguration()
            return MarathonClient(endpoints: endpoints, http: http, requestTimeout: opts.marathonTimeout,
                                  streamTimeout: streamTimeout, maxBackoff: maxBackoff, logger: logger)
        } catch {
            throw UsageError("\(error)")
        }
    }
}

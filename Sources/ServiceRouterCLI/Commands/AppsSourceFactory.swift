import FoundationEssentials
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// The apps source and Marathon client the commands build from their options.
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

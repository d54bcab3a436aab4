import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import ServiceRouterCore
import ServiceRouterIO
import ServiceRouterController

/// The apps source and Marathon client the commands build from their options.
enum AppsSourceFactory {
    /// Credentials on the command line are visible to every user in `ps` and /proc/PID/cmdline;
    /// a credentials file others can read is no better.
    static func warnAboutCredentials(_ opts: CommonOptions, logger: Logger) {
        if let file = opts.credentialsFile {
            var info = stat()
            if stat(file, &info) == 0, info.st_mode & 0o077 != 0 {
                logger.warning("the Marathon credentials file can be read by other users", [
                    ("file", file), ("mode", String(info.st_mode & 0o777, radix: 8)), ("hint", "chmod 600 \(file)")])
            }
        } else if opts.credentials != nil || opts.marathonURLs.contains(where: { $0.user != nil }) {
            logger.warning("credentials on the command line (--auth-credentials, user:pass@ in a --marathon URL) are visible to every user of this machine (ps, /proc/PID/cmdline)", [
                ("hint", "put USER:PASS in a file only this user can read and pass --marathon-auth-credential-file FILE")])
        }
    }

    static func make(_ opts: CommonOptions, logger: Logger) throws -> any AppsSource {
        if let file = opts.appsJSON { return FileAppsSource(path: file) }
        return MarathonAppsSource(client: try marathonClient(opts, logger: logger))
    }

    static func marathonClient(_ opts: CommonOptions, logger: Logger, streamTimeout: Double = 30, maxBackoff: Double = 30) throws -> MarathonClient {
        warnAboutCredentials(opts, logger: logger)
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

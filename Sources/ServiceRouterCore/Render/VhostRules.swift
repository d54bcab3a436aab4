/// marathon-lb's vhost rules for services that need explicit rules in the config (basic auth,
/// redirect to https, per-app rule templates, or `--vhost-routing acl`): which templates, in which
/// order, for one or several vhosts, with or without a path (marathon_lb.py's decision table).
enum VhostRules {
    /// The service's chunk in the shared HTTP frontend and in the HTTPS frontend.
    static func render(_ s: Service, _ t: ScopedTemplates, _ common: [String: String]) throws -> (http: String, https: String) {
        let l = s.labels
        let hasPath = l.path != nil, hasAuth = l.auth != nil, redirect = l.redirectToHTTPS
        var http = "", https = ""
        func r(_ name: String, _ values: [String: String]) throws -> String { try t["HAPROXY_" + name].render(values) }

        if s.vhosts.count == 1 {
            let v = common
            if hasPath {
                if redirect {
                    http += try r("HTTP_FRONTEND_ACL_ONLY", v) + r("HTTP_FRONTEND_ACL_ONLY_WITH_PATH", v)
                        + r("BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH", v)
                } else {
                    http += try r(hasAuth ? "HTTP_FRONTEND_ACL_WITH_AUTH_AND_PATH" : "HTTP_FRONTEND_ACL_WITH_PATH", v)
                }
                https += try r("HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", v)
                    + r(hasAuth ? "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH" : "HTTPS_FRONTEND_ACL_WITH_PATH", v)
            } else {
                if redirect {
                    http += try r("HTTP_FRONTEND_ACL", v) + r("BACKEND_REDIRECT_HTTP_TO_HTTPS", v)
                } else {
                    http += try r(hasAuth ? "HTTP_FRONTEND_ACL_WITH_AUTH" : "HTTP_FRONTEND_ACL", v)
                }
                https += try r(hasAuth ? "HTTPS_FRONTEND_ACL_WITH_AUTH" : "HTTPS_FRONTEND_ACL", v)
            }
            return (http, https)
        }

        // Several vhosts: the ACLs share the first vhost's name, so HAProxy ORs them.
        if hasPath {
            http += try r(hasAuth ? "HTTP_FRONTEND_ACL_ONLY_WITH_PATH_AND_AUTH" : "HTTP_FRONTEND_ACL_ONLY_WITH_PATH", common)
            https += try r("HTTPS_FRONTEND_ACL_ONLY_WITH_PATH", common)
        }
        for host in s.vhosts {
            var v = common
            v["hostname"] = host.text
            http += try r("HTTP_FRONTEND_ACL_ONLY", v)
            if hasPath {
                https += try r(hasAuth ? "HTTPS_FRONTEND_ACL_WITH_AUTH_AND_PATH" : "HTTPS_FRONTEND_ACL_WITH_PATH", v)
            } else {
                https += try r(hasAuth ? "HTTPS_FRONTEND_ACL_WITH_AUTH" : "HTTPS_FRONTEND_ACL", v)
            }
        }
        if redirect {
            http += try r(hasPath ? "BACKEND_REDIRECT_HTTP_TO_HTTPS_WITH_PATH" : "BACKEND_REDIRECT_HTTP_TO_HTTPS", common)
        } else if hasPath {
            http += try r(hasAuth ? "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH_AND_AUTH" : "HTTP_FRONTEND_ROUTING_ONLY_WITH_PATH", common)
        } else {
            http += try r(hasAuth ? "HTTP_FRONTEND_ROUTING_ONLY_WITH_AUTH" : "HTTP_FRONTEND_ROUTING_ONLY", common)
        }
        return (http, https)
    }
}

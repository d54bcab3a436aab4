/// Labels an app carries that servicerouter reads nothing from: never ignored in silence. Each
/// gets a warning (`Diagnostic`, kind `bad_label`) that says why and, for a name that is not a
/// label at all, the closest one that is (`HAPROXY_0_VHOTS` → `HAPROXY_0_VHOST`): `plan` lists
/// them per app, `once` and `run` log them with every full pass.
///
/// Apps whose group labels name only groups this servicerouter does not route are left alone:
/// they belong to another load balancer. An app without any group label is checked, since a
/// misspelt `HAPROXY_GROUP` is exactly what leaves an app unrouted.
public enum LabelWarnings {
    public static func diagnostics(for app: MarathonApp, options: RoutingOptions) -> [Diagnostic] {
        let keys = app.labels.keys.filter { $0.hasPrefix("HAPROXY_") }.sorted()
        guard !keys.isEmpty, !belongsElsewhere(app, options: options) else { return [] }
        var out: [Diagnostic] = []
        func warn(_ message: String) { out.append(Diagnostic(.warning, .badLabel, appId: app.id, message)) }
        var deployment: [String] = []
        for key in keys {
            if key == "HAPROXY_GROUP" || Self.deploymentKeys.contains(key) { continue }
            if key.hasPrefix("HAPROXY_DEPLOYMENT_") {
                deployment.append(key)
                continue
            }
            guard let (index, name) = perPort(key) else {
                if DefaultTemplates.entry(key) != nil || DefaultTemplates.marathonLBOnlyReason(key) != nil {
                    warn("label \(key) ignored: templates are set for all apps (--templates-dir or the environment), or per app and port as HAPROXY_{n}_<TEMPLATE> labels with --enable-label-templates")
                } else {
                    warn(unknown(key))
                }
                continue
            }
            if LabelParser.knownLabels.contains(name) || LabelParser.overridableTemplates.contains("HAPROXY_" + name) {
                if index >= app.servicePorts.count {
                    let has = app.servicePorts.isEmpty ? "no service port" : app.servicePorts.count == 1 ? "1 service port (index 0)"
                        : "\(app.servicePorts.count) service ports (indexes 0-\(app.servicePorts.count - 1))"
                    warn("label \(key) ignored: the app has \(has)")
                    continue
                }
                if !LabelParser.knownLabels.contains(name), !options.labelTemplates {
                    warn("label \(key) ignored: per-app template labels are honoured only with --enable-label-templates")
                }
            } else if let why = DefaultTemplates.marathonLBOnlyReason("HAPROXY_" + name) {
                warn("label \(key) ignored: HAPROXY_\(name) is a marathon-lb template servicerouter does not have (\(why))")
            } else if DefaultTemplates.entry("HAPROXY_" + name) != nil {
                warn("label \(key) ignored: HAPROXY_\(name) is a global template; it cannot be set per app (--templates-dir or the environment sets it for all)")
            } else {
                warn(unknown(key))
            }
        }
        if !deployment.isEmpty {
            warn("labels \(deployment.joined(separator: ", ")) ignored: not blue/green deployment labels servicerouter reads (\(Self.deploymentKeys.sorted().joined(separator: ", ")))")
        }
        return out
    }

    /// The blue/green labels `servicerouter zdd` writes and the builder reads.
    static let deploymentKeys: Set<String> = [DeploymentLabels.groupKey, DeploymentLabels.startedAtKey, DeploymentLabels.targetInstancesKey,
                                              DeploymentLabels.newInstancesKey, DeploymentLabels.altPortKey, DeploymentLabels.colourKey,
                                              DeploymentLabels.appIdKey]

    /// `HAPROXY_<digits>_<NAME>` → (index, NAME).
    static func perPort(_ key: String) -> (Int, String)? {
        let rest = key.dropFirst("HAPROXY_".count)
        guard let underscore = rest.firstIndex(of: "_"), let index = Int(rest[..<underscore]),
              rest[..<underscore].allSatisfy(\.isASCII) else { return nil }
        return (index, String(rest[rest.index(after: underscore)...]))
    }

    static func unknown(_ key: String) -> String {
        // Candidates at the key's own index (or 0), so that the closest name is one to copy.
        let index = perPort(key).map { String($0.0) } ?? "0"
        var candidates = ["HAPROXY_GROUP"]
        candidates += LabelParser.knownLabels.map { "HAPROXY_\(index)_\($0)" }
        candidates += LabelParser.overridableTemplates.sorted().map { "HAPROXY_\(index)_" + $0.dropFirst("HAPROXY_".count) }
        let hint = EditDistance.closest(to: key, among: candidates).map { " (did you mean \($0)?)" } ?? ""
        return "label \(key) ignored: it is not a label servicerouter knows\(hint); docs/labels.md lists them"
    }

    /// Every group the app's labels name (app level and per port), when all of them are groups
    /// this servicerouter does not route.
    static func belongsElsewhere(_ app: MarathonApp, options: RoutingOptions) -> Bool {
        if options.groups.contains("*") { return false }
        var groups: [String] = []
        for (k, v) in app.labels where k == "HAPROXY_GROUP" || (perPort(k)?.1 == "GROUP") {
            groups += v.split(separator: ",").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
        }
        return !groups.isEmpty && !groups.contains { options.groups.contains($0) }
    }
}

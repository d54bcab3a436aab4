import Testing
@testable import ServiceRouterCore

/// Ignored labels are never silent: each gets a warning saying why, a misspelt one the closest
/// label there is.
@Suite struct LabelWarningTests {
    func warnings(_ labels: [String: String], ports: [Int] = [10000], groups: [String] = ["external"],
                  labelTemplates: Bool = false) -> [String] {
        var options = RoutingOptions(groups: groups)
        options.labelTemplates = labelTemplates
        let app = MarathonApp(id: "/web", labels: labels, servicePorts: ports)
        let found = LabelWarnings.diagnostics(for: app, options: options)
        for d in found {
            #expect(d.level == .warning && d.kind == .badLabel && d.appId == "/web")
        }
        return found.map(\.message)
    }

    @Test func knownLabelsGetNoWarning() {
        var labels = ["HAPROXY_GROUP": "external"]
        for name in LabelParser.knownLabels { labels["HAPROXY_0_\(name)"] = "x" }
        #expect(warnings(labels) == [])
    }

    @Test func aMisspeltLabelNamesTheClosestKnownLabel() {
        #expect(warnings(["HAPROXY_GROUP": "external", "HAPROXY_0_VHOTS": "web.local"])
            == ["label HAPROXY_0_VHOTS ignored: it is not a label servicerouter knows (did you mean HAPROXY_0_VHOST?); docs/labels.md lists them"])
        #expect(warnings(["HAPROXY_GROUP": "external", "HAPROXY_1_BALANCE_": "x"], ports: [1, 2]).first?.contains("did you mean HAPROXY_1_BALANCE?") == true)
        // A misspelt group is what leaves an app unrouted: checked although the app is in no group.
        #expect(warnings(["HAPROXY_GRUOP": "external"]).first?.contains("did you mean HAPROXY_GROUP?") == true)
        // Nothing near: no guess.
        #expect(warnings(["HAPROXY_GROUP": "external", "HAPROXY_0_ZZZZZZZZZZZZ": "x"])
            == ["label HAPROXY_0_ZZZZZZZZZZZZ ignored: it is not a label servicerouter knows; docs/labels.md lists them"])
    }

    @Test func perAppTemplatesWithoutTheFlag() {
        let labels = ["HAPROXY_GROUP": "external", "HAPROXY_0_BACKEND_HEAD": "\nbackend {backend}\n"]
        #expect(warnings(labels) == ["label HAPROXY_0_BACKEND_HEAD ignored: per-app template labels are honoured only with --enable-label-templates"])
        #expect(warnings(labels, labelTemplates: true) == [])
    }

    @Test func labelsOfAPortTheAppDoesNotHave() {
        #expect(warnings(["HAPROXY_GROUP": "external", "HAPROXY_1_VHOST": "a.example.com"])
            == ["label HAPROXY_1_VHOST ignored: the app has 1 service port (index 0)"])
        #expect(warnings(["HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "a.example.com"], ports: [])
            == ["label HAPROXY_0_VHOST ignored: the app has no service port"])
    }

    @Test func marathonLBOnlyAndGlobalTemplatesAndBlueGreen() {
        let found = warnings(["HAPROXY_GROUP": "external", "HAPROXY_0_MAP_HTTP_FRONTEND_ACL": "x", "HAPROXY_0_HEAD": "x",
                              "HAPROXY_HEAD": "x", "HAPROXY_DEPLOYMENT_COLOUR": "blue", "HAPROXY_DEPLOYMENT_GROUP": "web",
                              "HAPROXY_DEPLOYMENT_COLOR": "blue"])
        #expect(found.count == 4, "\(found)")
        #expect(found.contains { $0.hasPrefix("label HAPROXY_0_HEAD ignored: HAPROXY_HEAD is a global template") })
        #expect(found.contains { $0.hasPrefix("label HAPROXY_0_MAP_HTTP_FRONTEND_ACL ignored: HAPROXY_MAP_HTTP_FRONTEND_ACL is a marathon-lb template servicerouter does not have") })
        #expect(found.contains { $0.hasPrefix("label HAPROXY_HEAD ignored: templates are set for all apps") })
        // Blue/green labels are read (servicerouter zdd writes them); an unknown one is warned about.
        #expect(found.contains { $0.hasPrefix("labels HAPROXY_DEPLOYMENT_COLOR ignored: not blue/green deployment labels servicerouter reads") }, "\(found)")
    }

    /// Another load balancer's apps are its business; `--group '*'` checks everything.
    @Test func appsOfOtherGroupsAreLeftAlone() {
        let labels = ["HAPROXY_GROUP": "internal", "HAPROXY_0_VHOTS": "x"]
        #expect(warnings(labels) == [])
        #expect(warnings(labels, groups: ["*"]).count == 1)
        #expect(warnings(["HAPROXY_GROUP": "internal", "HAPROXY_0_GROUP": "external", "HAPROXY_0_VHOTS": "x"]).count == 1)
    }

    /// The warnings reach the desired state's diagnostics (what `plan` prints and passes log).
    @Test func theBuilderReportsThem() {
        let app = MarathonApp(id: "/web", labels: ["HAPROXY_GROUP": "external", "HAPROXY_0_VHOTS": "x"], servicePorts: [10000])
        let desired = DesiredStateBuilder.build(apps: [app], options: RoutingOptions(groups: ["external"]))
        #expect(desired.diagnostics.contains { $0.appId == "/web" && $0.message.contains("HAPROXY_0_VHOTS") })
        #expect(desired.services.count == 1, "a warning leaves the app routed")
    }

    @Test func editDistance() {
        #expect(EditDistance.between("", "abc") == 3)
        #expect(EditDistance.between("VHOTS", "VHOST") == 2)
        #expect(EditDistance.between("kitten", "sitting") == 3)
        #expect(EditDistance.closest(to: "HAPROXY_HAED", among: ["HAPROXY_HEAD", "HAPROXY_HTTP_FRONTEND_HEAD"]) == "HAPROXY_HEAD")
        #expect(EditDistance.closest(to: "x", among: ["abcdef"]) == nil)
    }
}

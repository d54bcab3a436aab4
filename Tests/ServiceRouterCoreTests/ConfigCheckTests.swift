import Testing
@testable import ServiceRouterCore

/// Which services `haproxy -c`'s messages point at.
@Suite struct ConfigCheckTests {
    let text = """
        global
          daemon

        frontend marathon_http_in
          bind *:80
          use_backend bo2_10000 if { hdr(host) -i bo2.local }
          use_backend bo_1000 if { hdr(host) -i bo.local }

        frontend bo2_10000
          bind *:10000 ssl crt /missing.pem
          mode http

        frontend bo_1000
          bind *:1000
          mode http
        """
    var names: Set<ProxyName> { [pname("bo_1000"), pname("bo2_10000"), pname("bo_10000")] }

    @Test func aRuleLineBlamesOnlyTheBackendItNamesAsAWord() {
        let config = RenderedConfig(text: text, structureHash: "0")
        #expect(config.services(atLines: [6], proxies: [], among: names) == [pname("bo2_10000")])
        #expect(config.services(atLines: [7], proxies: [], among: names) == [pname("bo_1000")])
    }

    @Test func aLineInAServiceSectionBlamesThatService() {
        let config = RenderedConfig(text: text, structureHash: "0")
        #expect(config.services(atLines: [10], proxies: [], among: names) == [pname("bo2_10000")])
        #expect(config.services(atLines: [2], proxies: [], among: names).isEmpty, "servicerouter's own sections name no service")
    }

    @Test func realAlertsAreParsed() {
        let out = ConfigCheckOutput.parse("""
            [ALERT]    (30465) : config : parsing [haproxy.cfg.rejected:40] : 'bind *:17002' in section 'frontend' : unable to stat SSL certificate from file '/nonexistent.pem' : No such file or directory.
            [ALERT]    (30465) : config : Error(s) found in configuration file : haproxy.cfg.rejected
            [ALERT]    (30465) : config : Fatal errors found in configuration.
            """)
        #expect(out.lines == [40])
        #expect(out.alerts.count == 1)
    }
}

import Foundation
import Testing
@testable import ServiceRouterCore

/// Decoding of real Marathon captures (every shape since 0.x) and of malformed input.
@Suite struct MarathonDecodingTests {
    static let appsFixtures = [
        "1-nginx-marathon1.5.json", "1-nginx.json", "app-check-http-example.json", "app.json", "app_list.json",
        "marathon15_apps.json", "zdd_app_blue_marathon1.5.json", "zdd_apps.json",
    ]
    static let tasksFixtures = [
        "app_task.json", "app_tasks.json", "app_tasks_with_healthCheckResults_2017-11.json", "tasks.json",
    ]
    /// Marathon payloads that are neither apps nor tasks (`/v2/deployments`, `/v2/info`).
    static let otherFixtures = ["deployments.json", "info.json"]

    func decodeApps(_ name: String) throws -> [MarathonApp] {
        let (apps, skipped) = try MarathonDecoding.apps(from: Fixture.data(name))
        #expect(skipped.isEmpty, "\(name): \(skipped)")
        return apps
    }

    func decode(_ json: String) throws -> (apps: [MarathonApp], skipped: [SkippedApp]) {
        try MarathonDecoding.apps(from: Data(json.utf8))
    }

    // MARK: - Every fixture

    @Test func everyJSONFixtureIsClassified() {
        let onDisk = Fixture.names(withExtension: "json")
        #expect(!onDisk.isEmpty)
        #expect(Set(onDisk) == Set(Self.appsFixtures + Self.tasksFixtures + Self.otherFixtures),
                "a new fixture must be added to one of the lists so it is decoded")
    }

    @Test(arguments: appsFixtures)
    func appsFixtureDecodesWithoutSkips(_ name: String) throws {
        let apps = try decodeApps(name)
        #expect(!apps.isEmpty)
        for app in apps {
            #expect(app.id.hasPrefix("/"), "\(app.id)")
            #expect(app.id.count > 1)
            for t in app.tasks {
                #expect(!t.id.isEmpty)
                #expect(t.appId == app.id)
            }
        }
    }

    @Test(arguments: tasksFixtures)
    func tasksFixtureDecodes(_ name: String) throws {
        let tasks = try MarathonDecoding.tasks(from: Fixture.data(name))
        #expect(!tasks.isEmpty)
        for t in tasks {
            #expect(!t.id.isEmpty)
            #expect(t.appId.hasPrefix("/"))
            #expect(!t.host.isEmpty)
            #expect(!t.ports.isEmpty)
        }
    }

    @Test(arguments: otherFixtures)
    func nonTaskPayloadsAreRejectedByTheTasksDecoder(_ name: String) throws {
        #expect(throws: MarathonDecodeError.self) { try MarathonDecoding.tasks(from: Fixture.data(name)) }
    }

    @Test func infoPayloadIsNotAnApp() throws {
        let (apps, skipped) = try MarathonDecoding.apps(from: Fixture.data("info.json"))
        #expect(apps.isEmpty)
        let s = try #require(skipped.first)
        #expect(skipped.count == 1)
        #expect(s.appId == nil)
        #expect(s.reason == ".id: missing")
    }

    // MARK: - Shapes, with concrete values

    @Test func marathon15NetworksAndContainerPortMappings() throws {
        let apps = try decodeApps("marathon15_apps.json")
        let app = try #require(apps.first)
        #expect(apps.count == 1)
        #expect(app.id == "/pywebserver")
        #expect(app.servicePorts == [10101])
        #expect(app.containerPorts == [80])
        #expect(app.networking == .host, "container/bridge is reached on the agent's host port")
        #expect(app.labels == ["HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "myvhost.com"])
        #expect(app.instances == 1)
        #expect(app.maximumOverCapacity == 1)
        #expect(app.version == "2017-07-19T17:34:41.967Z")
        #expect(app.configChangedAt == "2017-07-19T17:34:41.967Z")
        #expect(app.healthChecks.isEmpty)
        let task = try #require(app.tasks.first)
        #expect(app.tasks.count == 1)
        #expect(task.id == "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc")
        #expect(task.appId == "/pywebserver")
        #expect(task.host == "10.0.2.148")
        #expect(task.ports == [1565])
        #expect(task.ipAddresses == ["172.17.0.2"])
        #expect(task.state == .running)
        #expect(task.healthAlive == nil)
    }

    @Test func marathon15BridgeAppRoutesToAgentAndHostPort() throws {
        // marathon-lb's test_bridge_app_marathon15: `server 10_0_2_148_1565 10.0.2.148:1565`.
        let apps = try decodeApps("marathon15_apps.json")
        let desired = DesiredStateBuilder.build(apps: apps, options: RoutingOptions(groups: ["external"]))
        let s = try #require(desired.services.first)
        #expect(s.backend.text == "pywebserver_10101")
        #expect(s.servers.map(\.endpoint) == [ep("10.0.2.148", 1565)])
    }

    @Test func pre15DockerPortMappings() throws {
        let app = try #require(try decodeApps("1-nginx.json").first)
        #expect(app.id == "/nginx", "a leading slash is added")
        #expect(app.servicePorts == [10000])
        #expect(app.containerPorts == [8080])
        #expect(app.networking == .host)
        #expect(app.instances == 5)
        #expect(app.maximumOverCapacity == 1, "default when upgradeStrategy is absent")
        #expect(app.version == nil)
        #expect(app.configChangedAt == nil)
        #expect(app.tasks.isEmpty)
        let hc = try #require(app.healthChecks.first)
        #expect(hc == MarathonHealthCheck(proto: .http, path: "/", portIndex: 0, port: nil, intervalSeconds: 3,
                                          timeoutSeconds: 15, maxConsecutiveFailures: 10, gracePeriodSeconds: 15))
    }

    @Test func marathon15NginxWithMesosHTTPCheck() throws {
        let app = try #require(try decodeApps("1-nginx-marathon1.5.json").first)
        #expect(app.id == "/nginx")
        #expect(app.servicePorts == [10000])
        #expect(app.containerPorts == [8080])
        #expect(app.networking == .host)
        #expect(app.healthChecks.map(\.proto) == [.mesosHTTP])
    }

    @Test func deprecatedPortsList() throws {
        let app = try #require(try decodeApps("app_list.json").first)
        #expect(app.id == "/myapp")
        #expect(app.servicePorts == [10013, 10015])
        #expect(app.containerPorts == [])
        #expect(app.networking == .host)
        #expect(app.instances == 3)
        #expect(app.healthChecks.isEmpty)
        #expect(app.labels.isEmpty)
        #expect(app.configChangedAt == "2015-09-25T15:13:48.343Z")
        #expect(app.tasks.isEmpty)
    }

    @Test func portDefinitionsAlongsideBridgeMappingsAndDeprecatedPorts() throws {
        let apps = try decodeApps("zdd_apps.json")
        #expect(apps.map(\.id) == ["/nginx-green", "/nginx-blue"])
        let green = apps[0], blue = apps[1]
        #expect(green.servicePorts == [10000])
        #expect(green.networking == .host, "`ipAddress: null` is not IP-per-task")
        #expect(green.instances == 3)
        #expect(green.version == "2016-02-01T22:57:48.784Z")
        #expect(green.configChangedAt == "2016-02-01T22:13:42.538Z", "versionInfo.lastConfigChangeAt wins over version")
        #expect(green.labels["HAPROXY_0_PORT"] == "10000")
        #expect(green.tasks.map(\.ports) == [[16916], [31184], [23336]])
        #expect(green.tasks.allSatisfy { $0.healthAlive == [true] }, "old results carry `taskId`")
        #expect(green.tasks.allSatisfy { $0.state == nil }, "these captures have no `state`")
        #expect(blue.servicePorts == [10001])
        #expect(blue.tasks.map(\.host) == ["10.0.1.147"])
    }

    @Test func portDefinitionsOnly() throws {
        let (apps, skipped) = try decode("""
            {"apps":[{"id":"/pd","portDefinitions":[{"port":10005,"name":"http"},{"port":10006,"protocol":"tcp"}],
              "tasks":[{"id":"pd.1","host":"10.1.1.1","ports":[31001,31002]}]}]}
            """)
        #expect(skipped.isEmpty)
        let app = try #require(apps.first)
        #expect(app.servicePorts == [10005, 10006])
        #expect(app.networking == .host)
        #expect(app.tasks.first?.ports == [31001, 31002])
        #expect(app.tasks.first?.appId == "/pd", "tasks inherit the app id when they omit it")
    }

    @Test func portDefinitionWithoutServicePortIsZero() throws {
        let app = try #require(try decodeApps("app-check-http-example.json").first)
        #expect(app.id == "/http-index-test")
        #expect(app.servicePorts == [0], "port 0 asks Marathon to assign one; the builder reports it")
        #expect(app.healthChecks.isEmpty, "`check` is not `healthChecks`")
    }

    @Test func ipAddressMeansIPPerTask() throws {
        let app = try #require(try decodeApps("app.json").first)
        #expect(app.id == "/foo")
        #expect(app.networking == .ipPerTask)
        #expect(app.servicePorts == [10019])
        #expect(app.containerPorts == [80], "container.docker.portMappings are preferred over ipAddress.discovery")
        #expect(app.instances == 2)
        #expect(app.maximumOverCapacity == 1)
        #expect(app.labels == ["owner": "zeus", "note": "Away from olympus"])
        #expect(app.healthChecks.first?.intervalSeconds == 20)
    }

    @Test func ipAddressDiscoveryPortsAreContainerPorts() throws {
        let app = try MarathonDecoding.app(from: Data("""
            {"id":"ipt","ipAddress":{"discovery":{"ports":[{"number":8080,"name":"http","protocol":"tcp"}]}},
             "tasks":[{"id":"ipt.1","host":"agent1","ipAddresses":[{"ipAddress":"9.9.9.9","protocol":"IPv4"}]}]}
            """.utf8))
        #expect(app.id == "/ipt")
        #expect(app.networking == .ipPerTask)
        #expect(app.containerPorts == [8080])
        #expect(app.servicePorts == [])
        #expect(app.tasks.first?.ipAddresses == ["9.9.9.9"])
    }

    @Test(arguments: [
        (#"{"networks":[{"mode":"container","name":"dcos"}],"container":{"portMappings":[{"containerPort":80,"servicePort":10010}]}}"#, MarathonApp.Networking.ipPerTask),
        (#"{"networks":[{"mode":"container/bridge"}],"container":{"portMappings":[{"containerPort":80,"hostPort":0,"servicePort":10010}]}}"#, .host),
        (#"{"networks":[{"mode":"host"}],"portDefinitions":[{"port":10010}]}"#, .host),
        (#"{"container":{"docker":{"network":"USER","portMappings":[{"containerPort":80,"servicePort":10010}]}}}"#, .ipPerTask),
        (#"{"container":{"docker":{"network":"bridge","portMappings":[{"containerPort":80,"servicePort":10010}]}}}"#, .host),
        (#"{"container":{"docker":{"network":"HOST"}},"ports":[10010]}"#, .host),
    ])
    func networkingModes(_ body: String, _ expected: MarathonApp.Networking) throws {
        let json = "{\"id\":\"/n\"," + body.dropFirst()
        let app = try MarathonDecoding.app(from: Data(json.utf8))
        #expect(app.networking == expected)
        #expect(app.servicePorts == [10010])
    }

    @Test func healthCheckResultsWithInstanceId() throws {
        let app = try #require(try decodeApps("zdd_app_blue_marathon1.5.json").first)
        #expect(app.id == "/nginx-green")
        #expect(app.servicePorts == [10000])
        #expect(app.tasks.count == 3)
        #expect(app.tasks.allSatisfy { $0.healthAlive == [true] })
        #expect(app.tasks.map(\.state) == [.running, .running, .running])
        #expect(app.healthChecks.first?.proto == .mesosHTTP)
        #expect(app.healthChecks.first?.maxConsecutiveFailures == 10)
    }

    @Test func tasksWithHealthResultsAndLostState() throws {
        let tasks = try MarathonDecoding.tasks(from: Fixture.data("app_tasks_with_healthCheckResults_2017-11.json"))
        #expect(tasks.count == 6)
        #expect(tasks.map(\.state) == [.lost, .lost, .running, .lost, .running, .running])
        #expect(tasks.map(\.healthAlive) == [[false], [false], [true], [false], [true], [true]])
        #expect(tasks[2].ipAddresses == ["172.17.0.4"])
        #expect(tasks[0].ipAddresses == [])
        #expect(tasks.allSatisfy { $0.appId == "/myapp" && $0.host == "192.168.99.100" })
        #expect(tasks.map(\.ports) == [[11064], [11285], [11170], [11319], [11089], [11199]])
    }

    @Test func singleTaskAndTaskList() throws {
        let one = try MarathonDecoding.tasks(from: Fixture.data("app_task.json"))
        let list = try MarathonDecoding.tasks(from: Fixture.data("app_tasks.json"))
        #expect(one == list)
        let t = try #require(one.first)
        #expect(t.id == "minecraft_survival-world.instance-564bd685-4c30-11e5-98c1-be5b2935a987")
        #expect(t.appId == "/minecraft/survival-world")
        #expect(t.host == "srv7.hw.ca1.mesosphere.com")
        #expect(t.ports == [31756])
        #expect(t.state == .staging)
        #expect(t.healthAlive == nil)
        let tasks = try MarathonDecoding.tasks(from: Fixture.data("tasks.json"))
        #expect(tasks.map(\.appId) == ["/frontend-foosball", "/tools/docker/registry"])
        #expect(tasks.map(\.ports) == [[31292], [31721]])
        #expect(tasks.map(\.host) == ["srv4.example.com", "srv2.example.com"])
    }

    @Test func taskWithoutStateIsNil() throws {
        let tasks = try MarathonDecoding.tasks(from: Data(#"{"tasks":[{"id":"a.1","appId":"/a","host":"h","ports":[1]}]}"#.utf8))
        #expect(tasks.first?.state == nil)
        #expect(tasks.first?.healthAlive == nil)
    }

    @Test(arguments: ["TASK_SOMETHING_NEW", "task_running", "", "RUNNING"])
    func unknownTaskStateStringIsUnknown(_ state: String) throws {
        let json = #"{"tasks":[{"id":"a.1","appId":"/a","host":"h","ports":[1],"state":"\#(state)"}]}"#
        let t = try #require(try MarathonDecoding.tasks(from: Data(json.utf8)).first)
        #expect(t.state == .unknown)
        #expect(t.state?.routing == TaskRouting.none)
    }

    @Test(arguments: TaskState.allCases)
    func everyKnownTaskStateDecodes(_ state: TaskState) throws {
        let json = #"{"tasks":[{"id":"a.1","appId":"/a","host":"h","ports":[1],"state":"\#(state.rawValue)"}]}"#
        #expect(try MarathonDecoding.tasks(from: Data(json.utf8)).first?.state == state)
    }

    @Test func healthResultEdgeCases() throws {
        let json = """
            {"tasks":[
              {"id":"a.1","appId":"/a","host":"h","healthCheckResults":[]},
              {"id":"a.2","appId":"/a","host":"h","healthCheckResults":[{"alive":true},{"alive":false}]},
              {"id":"a.3","appId":"/a","host":"h","healthCheckResults":[{"consecutiveFailures":1}]},
              {"id":"a.4","appId":"/a","host":"h","healthCheckResults":[{"alive":true,"instanceId":"a.marathon-4"}]}
            ]}
            """
        let tasks = try MarathonDecoding.tasks(from: Data(json.utf8))
        #expect(tasks.map(\.healthAlive) == [nil, [true, false], [false], [true]],
                "an empty list is unknown, not unhealthy; a result without `alive` is not alive")
    }

    @Test func appIdNormalisation() throws {
        let (apps, _) = try decode(#"{"apps":[{"id":"group/app","tasks":[{"id":"group_app.1","host":"h"}]},{"id":"/abs"}]}"#)
        #expect(apps.map(\.id) == ["/group/app", "/abs"])
        #expect(apps[0].tasks.first?.appId == "/group/app")
    }

    @Test func maximumOverCapacityAndFloatInstances() throws {
        let (apps, skipped) = try decode("""
            {"apps":[
              {"id":"/a","instances":3.0,"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":0.5}},
              {"id":"/b","instances":4,"upgradeStrategy":{"maximumOverCapacity":0}},
              {"id":"/c","instances":2.5}
            ]}
            """)
        #expect(apps.map(\.id) == ["/a", "/b"])
        #expect(apps.map(\.instances) == [3, 4])
        #expect(apps.map(\.maximumOverCapacity) == [0.5, 0])
        let s = try #require(skipped.first)
        #expect(s.appId == "/c")
        #expect(s.index == 2)
        #expect(s.reason.contains(".apps[2].instances"), "\(s.reason)")
        #expect(s.reason.contains("2.5"), "\(s.reason)")
    }

    @Test func numbersAsFloatsEverywhere() throws {
        let app = try MarathonDecoding.app(from: Data("""
            {"id":"/f","ports":[10000.0],"healthChecks":[{"protocol":"tcp","portIndex":0.0,"intervalSeconds":5.0,
             "timeoutSeconds":2.0,"maxConsecutiveFailures":1.0,"gracePeriodSeconds":0.0}],
             "tasks":[{"id":"f.1","host":"h","ports":[31000.0]}]}
            """.utf8))
        #expect(app.servicePorts == [10000])
        #expect(app.tasks.first?.ports == [31000])
        #expect(app.healthChecks == [MarathonHealthCheck(proto: .tcp, path: nil, portIndex: 0, port: nil, intervalSeconds: 5,
                                                         timeoutSeconds: 2, maxConsecutiveFailures: 1, gracePeriodSeconds: 0)],
                "the protocol is upper-cased")
    }

    @Test func healthCheckDefaultsAndUnknownProtocol() throws {
        let app = try MarathonDecoding.app(from: Data(#"{"id":"/h","healthChecks":[{},{"protocol":"GRPC"}]}"#.utf8))
        #expect(app.healthChecks == [
            MarathonHealthCheck(proto: .http, path: nil, portIndex: nil, port: nil, intervalSeconds: 60, timeoutSeconds: 20,
                                maxConsecutiveFailures: 3, gracePeriodSeconds: 300),
            MarathonHealthCheck(proto: .other, path: nil, portIndex: nil, port: nil),
        ])
    }

    @Test func rootShapes() throws {
        let one = #"{"id":"/x","ports":[10000]}"#
        for json in [#"{"apps":[\#(one)]}"#, #"{"app":\#(one)}"#, one, "[\(one)]"] {
            let (apps, skipped) = try decode(json)
            #expect(apps.map(\.id) == ["/x"], "\(json)")
            #expect(apps.first?.servicePorts == [10000])
            #expect(skipped.isEmpty)
        }
        #expect(try decode(#"{"apps":[]}"#).apps.isEmpty)
    }

    @Test func nullFieldsCountAsMissing() throws {
        let (apps, skipped) = try decode("""
            {"apps":[{"id":"/n","labels":null,"instances":null,"ports":null,"portDefinitions":null,"container":null,
              "networks":null,"healthChecks":null,"upgradeStrategy":null,"tasks":null,"ipAddress":null,"version":null}]}
            """)
        #expect(skipped.isEmpty)
        #expect(apps == [MarathonApp(id: "/n")])
    }

    // MARK: - Malformed input

    @Test(arguments: ["", "{", "not json", "{\"apps\":[}", "{\"apps\":[]} trailing", "\u{FEFF}{\"apps\":}"])
    func invalidJSONThrowsAClearError(_ text: String) throws {
        let error = try #require(throws: MarathonDecodeError.self) { try MarathonDecoding.apps(from: Data(text.utf8)) }
        #expect(error.what == "Marathon apps payload")
        #expect(error.description.hasPrefix("cannot decode Marathon apps payload: "))
        #expect(error.reason.contains("not valid JSON"), "\(error.reason)")
    }

    @Test func invalidTasksJSONThrows() throws {
        let error = try #require(throws: MarathonDecodeError.self) { try MarathonDecoding.tasks(from: Data("{\"tasks\":".utf8)) }
        #expect(error.what == "Marathon tasks payload")
        #expect(error.reason.contains("not valid JSON"))
    }

    @Test func oneMalformedAppIsSkippedWithItsIdAndThePath() throws {
        let (apps, skipped) = try decode("""
            {"apps":[
              {"id":"/good1","ports":[10001]},
              {"id":"/bad","ports":[10002],"tasks":[{"id":"bad.1","host":"h","ports":["31000"]}]},
              {"id":"/good2","ports":[10003]}
            ]}
            """)
        #expect(apps.map(\.id) == ["/good1", "/good2"])
        #expect(apps.map(\.servicePorts) == [[10001], [10003]])
        let s = try #require(skipped.first)
        #expect(skipped.count == 1)
        #expect(s.appId == "/bad")
        #expect(s.index == 1)
        #expect(s.reason.contains(".apps[1].tasks[0].ports[0]"), "\(s.reason)")
        #expect(s.description.hasPrefix("app /bad skipped: "))
    }

    @Test(arguments: [
        (#"{"id":"/w","labels":{"HAPROXY_0_PORT":8080}}"#, ".apps[1].labels.HAPROXY_0_PORT"),
        (#"{"id":"/w","labels":["a"]}"#, ".apps[1].labels"),
        (#"{"id":"/w","ports":"10000"}"#, ".apps[1].ports"),
        (#"{"id":"/w","ports":[10000.5]}"#, ".apps[1].ports[0]"),
        (#"{"id":"/w","instances":"3"}"#, ".apps[1].instances"),
        (#"{"id":"/w","tasks":{"id":"w.1"}}"#, ".apps[1].tasks"),
        (#"{"id":"/w","tasks":[{"host":"h"}]}"#, ".apps[1].tasks[0].id"),
        (#"{"id":"/w","healthChecks":[{"protocol":1}]}"#, ".apps[1].healthChecks[0].protocol"),
        (#"{"id":"/w","upgradeStrategy":{"maximumOverCapacity":"1"}}"#, ".apps[1].upgradeStrategy.maximumOverCapacity"),
        (#"{"id":"/w","container":{"portMappings":[{"servicePort":true}]}}"#, ".apps[1].container.portMappings[0].servicePort"),
    ])
    func wrongTypesSkipOnlyThatApp(_ bad: String, _ path: String) throws {
        let (apps, skipped) = try decode(#"{"apps":[{"id":"/ok"},\#(bad),{"id":"/ok2"}]}"#)
        #expect(apps.map(\.id) == ["/ok", "/ok2"])
        let s = try #require(skipped.first)
        #expect(s.appId == "/w")
        #expect(s.reason.hasPrefix(path), "\(s.reason)")
    }

    @Test(arguments: [
        (#"{"ports":[10000]}"#, ".apps[0].id: missing"),
        (#"{"id":null}"#, ".apps[0].id: expected String, found null"),
        (#"{"id":7}"#, ".apps[0].id: expected String"),
        (#""just a string""#, ".apps[0]: expected"),
    ])
    func appWithoutUsableIdIsSkippedByIndex(_ bad: String, _ reasonPrefix: String) throws {
        let (apps, skipped) = try decode(#"{"apps":[\#(bad),{"id":"/ok"}]}"#)
        #expect(apps.map(\.id) == ["/ok"])
        let s = try #require(skipped.first)
        #expect(s.appId == nil)
        #expect(s.index == 0)
        #expect(s.reason.hasPrefix(reasonPrefix), "\(s.reason)")
        #expect(s.description.hasPrefix("app #0 skipped: "))
    }

    @Test func singleMalformedAppThrowsFromAppDecoder() throws {
        let error = try #require(throws: MarathonDecodeError.self) {
            try MarathonDecoding.app(from: Data(#"{"id":"/x","tasks":[{"id":"x.1","ports":"p"}]}"#.utf8))
        }
        #expect(error.reason.contains(".tasks[0].ports"), "\(error.reason)")
    }

    @Test func multiMegabytePayloadDecodes() throws {
        var json = #"{"apps":["#
        for i in 0..<2000 {
            if i > 0 { json += "," }
            json += #"{"id":"/group\#(i % 17)/app\#(i)","instances":3,"version":"2020-01-01T00:00:00.000Z","#
            json += #""labels":{"HAPROXY_GROUP":"external","HAPROXY_0_VHOST":"app\#(i).example.com","note":"\#(String(repeating: "x", count: 400))"},"#
            json += #""portDefinitions":[{"port":\#(10000 + i),"protocol":"tcp","name":"http"}],"#
            json += #""healthChecks":[{"protocol":"HTTP","path":"/health","portIndex":0,"intervalSeconds":5}],"tasks":["#
            for t in 0..<3 {
                if t > 0 { json += "," }
                json += #"{"id":"app\#(i).instance-\#(t)._app.1","appId":"/group\#(i % 17)/app\#(i)","host":"10.0.\#(i / 250).\#(i % 250)","#
                json += #""ports":[\#(31000 + t)],"state":"TASK_RUNNING","startedAt":"2020-01-01T00:00:01.000Z","#
                json += #""healthCheckResults":[{"alive":true,"consecutiveFailures":0,"instanceId":"app\#(i).marathon-\#(t)"}]}"#
            }
            json += "]}"
        }
        json += "]}"
        let data = Data(json.utf8)
        #expect(data.count > 2_000_000)
        let (apps, skipped) = try MarathonDecoding.apps(from: data)
        #expect(skipped.isEmpty)
        #expect(apps.count == 2000)
        #expect(apps[1999].id == "/group10/app1999")
        #expect(apps[1999].servicePorts == [11999])
        #expect(apps[1999].tasks.map(\.ports) == [[31000], [31001], [31002]])
        #expect(apps.reduce(0) { $0 + $1.tasks.count } == 6000)
    }

    // MARK: - Instance keys

    @Test(arguments: [
        ("nginx-green.instance-01da9a15-68a7-11e7-a229-e6a514ca0c21._app.1", "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21"),
        ("nginx-green.marathon-01da9a15-68a7-11e7-a229-e6a514ca0c21", "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21"),
        ("nginx-green.instance-01da9a15-68a7-11e7-a229-e6a514ca0c21", "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21"),
        ("nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21", "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21"),
        ("group_app.instance-abc._app.12", "group_app.abc"),
        ("nodot", "nodot"),
    ])
    func instanceKeyMatchesTasksAndHealthEvents(_ id: String, _ key: String) {
        #expect(MarathonTask.instanceKey(of: id) == key)
    }
}

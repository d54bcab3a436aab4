import ServiceRouterTestSupport

// Real Marathon payloads, byte for byte, from the one copy of the fixtures in
// ServiceRouterTestSupport (Fixtures/marathon; its README gives the provenance).
enum Captures {
    static var zddAppBlueMarathon15: String { Fixture.marathon("zdd_app_blue_marathon1.5.json") }
    static var tasks: String { Fixture.marathon("tasks.json") }
    static var appTasksWithHealthCheckResults: String { Fixture.marathon("app_tasks_with_healthCheckResults_2017-11.json") }
    static var deployments: String { Fixture.marathon("deployments.json") }
    /// An app definition as POSTed (Marathon 1.5 shape).
    static var nginxDefinition15: String { Fixture.marathon("1-nginx-marathon1.5.json") }
    /// An app definition as POSTed (before 1.5).
    static var nginxDefinitionLegacy: String { Fixture.marathon("1-nginx.json") }
}

// Real Marathon payloads, byte for byte, from /work/shared/fixtures/marathon (see its README for
// provenance: marathon-lb @ 9e669ec tests/, mesosphere/marathon @ 90619da7 docs examples). Kept as
// literals so the test target needs no resources.
enum Captures {
    /// zdd_app_blue_marathon1.5.json
    static let zddAppBlueMarathon15 = #"""
{
  "apps": [
    {
      "id": "/nginx-green",
      "acceptedResourceRoles": [
        "*",
        "slave_public"
      ],
      "backoffFactor": 1.15,
      "backoffSeconds": 1,
      "container": {
        "type": "DOCKER",
        "docker": {
          "forcePullImage": true,
          "image": "brndnmtthws/nginx-echo-sleep",
          "parameters": [],
          "privileged": false
        },
        "volumes": [],
        "portMappings": [
          {
            "containerPort": 8080,
            "hostPort": 0,
            "labels": {},
            "protocol": "tcp",
            "servicePort": 10000
          }
        ]
      },
      "cpus": 0.1,
      "disk": 0,
      "executor": "",
      "healthChecks": [
        {
          "gracePeriodSeconds": 15,
          "intervalSeconds": 3,
          "maxConsecutiveFailures": 10,
          "path": "/",
          "portIndex": 0,
          "protocol": "MESOS_HTTP",
          "timeoutSeconds": 15,
          "delaySeconds": 15
        }
      ],
      "instances": 3,
      "labels": {
        "HAPROXY_DEPLOYMENT_GROUP": "nginx",
        "HAPROXY_GROUP": "external",
        "HAPROXY_DEPLOYMENT_COLOUR": "green",
        "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "20",
        "HAPROXY_DEPLOYMENT_STARTED_AT": "2016-02-01T14:13:42.499089",
        "HAPROXY_DEPLOYMENT_ALT_PORT": "10001",
        "HAPROXY_0_PORT": "10000",
        "HAPROXY_APP_ID": "nginx"
      },
      "maxLaunchDelaySeconds": 3600,
      "mem": 65,
      "gpus": 0,
      "networks": [
        {
          "mode": "container/bridge"
        }
      ],
      "requirePorts": false,
      "upgradeStrategy": {
        "maximumOverCapacity": 1,
        "minimumHealthCapacity": 1
      },
      "version": "2017-07-14T15:13:34.402Z",
      "versionInfo": {
        "lastScalingAt": "2017-07-14T15:13:34.402Z",
        "lastConfigChangeAt": "2017-07-14T15:13:34.402Z"
      },
      "killSelection": "YOUNGEST_FIRST",
      "unreachableStrategy": {
        "inactiveAfterSeconds": 300,
        "expungeAfterSeconds": 600
      },
      "tasksStaged": 0,
      "tasksRunning": 3,
      "tasksHealthy": 3,
      "tasksUnhealthy": 0,
      "deployments": [],
      "tasks": [
        {
          "ipAddresses": [
            {
              "ipAddress": "172.17.0.2",
              "protocol": "IPv4"
            }
          ],
          "stagedAt": "2017-07-14T15:13:35.804Z",
          "state": "TASK_RUNNING",
          "ports": [
            16916
          ],
          "startedAt": "2017-07-14T15:13:58.326Z",
          "version": "2017-07-14T15:13:34.402Z",
          "id": "nginx-green.01da9a15-68a7-11e7-a229-e6a514ca0c21",
          "appId": "/nginx-green",
          "slaveId": "c28a2184-c702-482c-91c8-5af9318434d4-S0",
          "host": "10.0.6.25",
          "healthCheckResults": [
            {
              "alive": true,
              "consecutiveFailures": 0,
              "firstSuccess": "2017-07-14T15:14:18.395Z",
              "lastFailure": null,
              "lastSuccess": "2017-07-14T15:14:18.395Z",
              "lastFailureCause": null,
              "instanceId": "nginx-green.marathon-01da9a15-68a7-11e7-a229-e6a514ca0c21"
            }
          ]
        },
        {
          "ipAddresses": [
            {
              "ipAddress": "172.17.0.2",
              "protocol": "IPv4"
            }
          ],
          "stagedAt": "2017-07-14T15:13:35.816Z",
          "state": "TASK_RUNNING",
          "ports": [
            31184
          ],
          "startedAt": "2017-07-14T15:13:57.633Z",
          "version": "2017-07-14T15:13:34.402Z",
          "id": "nginx-green.01dc95e6-68a7-11e7-a229-e6a514ca0c21",
          "appId": "/nginx-green",
          "slaveId": "c28a2184-c702-482c-91c8-5af9318434d4-S1",
          "host": "10.0.6.25",
          "healthCheckResults": [
            {
              "alive": true,
              "consecutiveFailures": 0,
              "firstSuccess": "2017-07-14T15:14:17.698Z",
              "lastFailure": null,
              "lastSuccess": "2017-07-14T15:14:17.698Z",
              "lastFailureCause": null,
              "instanceId": "nginx-green.marathon-01dc95e6-68a7-11e7-a229-e6a514ca0c21"
            }
          ]
        },
        {
          "ipAddresses": [
            {
              "ipAddress": "172.17.0.3",
              "protocol": "IPv4"
            }
          ],
          "stagedAt": "2017-07-14T15:13:35.760Z",
          "state": "TASK_RUNNING",
          "ports": [
            23336
          ],
          "startedAt": "2017-07-14T15:13:57.639Z",
          "version": "2017-07-14T15:13:34.402Z",
          "id": "nginx-green.01bf22d4-68a7-11e7-a229-e6a514ca0c21",
          "appId": "/nginx-green",
          "slaveId": "c28a2184-c702-482c-91c8-5af9318434d4-S1",
          "host": "10.0.6.25",
          "healthCheckResults": [
            {
              "alive": true,
              "consecutiveFailures": 0,
              "firstSuccess": "2017-07-14T15:14:17.702Z",
              "lastFailure": null,
              "lastSuccess": "2017-07-14T15:14:17.702Z",
              "lastFailureCause": null,
              "instanceId": "nginx-green.marathon-01bf22d4-68a7-11e7-a229-e6a514ca0c21"
            }
          ]
        }
      ]
    }
  ]
}
"""#

    /// marathon15_apps.json
    static let marathon15Apps = #"""
{
  "apps": [
    {
      "id": "/pywebserver",
      "backoffFactor": 1.15,
      "backoffSeconds": 1,
      "cmd": "echo \"host $HOST and port $PORT\" > index.html && python -m http.server 80",
      "container": {
        "type": "DOCKER",
        "docker": {
          "forcePullImage": false,
          "image": "python:3",
          "parameters": [],
          "privileged": false
        },
        "volumes": [],
        "portMappings": [
          {
            "containerPort": 80,
            "hostPort": 0,
            "labels": {},
            "name": "test",
            "protocol": "tcp",
            "servicePort": 10101
          }
        ]
      },
      "cpus": 0.1,
      "disk": 0,
      "executor": "",
      "instances": 1,
      "labels": {
        "HAPROXY_GROUP": "external",
        "HAPROXY_0_VHOST": "myvhost.com"
      },
      "maxLaunchDelaySeconds": 3600,
      "mem": 128,
      "gpus": 0,
      "networks": [
        {
          "mode": "container/bridge"
        }
      ],
      "requirePorts": false,
      "upgradeStrategy": {
        "maximumOverCapacity": 1,
        "minimumHealthCapacity": 1
      },
      "version": "2017-07-19T17:34:41.967Z",
      "versionInfo": {
        "lastScalingAt": "2017-07-19T17:34:41.967Z",
        "lastConfigChangeAt": "2017-07-19T17:34:41.967Z"
      },
      "killSelection": "YOUNGEST_FIRST",
      "unreachableStrategy": {
        "inactiveAfterSeconds": 300,
        "expungeAfterSeconds": 600
      },
      "tasksStaged": 0,
      "tasksRunning": 1,
      "tasksHealthy": 0,
      "tasksUnhealthy": 0,
      "deployments": [],
      "tasks": [
        {
          "ipAddresses": [
            {
              "ipAddress": "172.17.0.2",
              "protocol": "IPv4"
            }
          ],
          "stagedAt": "2017-07-19T17:34:43.039Z",
          "state": "TASK_RUNNING",
          "ports": [
            1565
          ],
          "startedAt": "2017-07-19T17:35:15.654Z",
          "version": "2017-07-19T17:34:41.967Z",
          "id": "pywebserver.8cad6a69-6ca8-11e7-beb2-0e2beceebfcc",
          "appId": "/pywebserver",
          "slaveId": "db7b40e2-791c-445f-b373-183e2a648a86-S1",
          "host": "10.0.2.148"
        }
      ]
    }
  ]
}
"""#

    /// tasks.json
    static let tasks = #"""
{
  "tasks": [
    {
      "id": "frontend-foosball.083be411-5d1f-11e5-88f7-56b91e7a505b",
      "host": "srv4.example.com",
      "ports": [
        31292
      ],
      "startedAt": "2015-09-17T09:32:42.598Z",
      "stagedAt": "2015-09-17T09:32:36.822Z",
      "version": "2015-09-17T09:32:36.583Z",
      "slaveId": "20150707-153709-201330860-5050-12052-S0",
      "appId": "/frontend-foosball",
      "state": "TASK_RUNNING",
      "servicePorts": [
        10019
      ],
      "region": "primary",
      "zone" : "a",
      "role" : "*"
    },
    {
      "id": "tools_docker_registry.002b4d28-46b9-11e5-b731-525400cce7ed",
      "host": "srv2.example.com",
      "ports": [
        31721
      ],
      "startedAt": "2015-08-19T21:26:50.864Z",
      "stagedAt": "2015-08-19T21:26:49.040Z",
      "version": "2015-08-19T21:26:47.616Z",
      "slaveId": "1cc9e7d0-63d6-4e99-9c58-c0b950401ae2-S24",
      "state": "TASK_RUNNING",
      "appId": "/tools/docker/registry",
      "servicePorts": [
        5000
      ],
      "region": "primary",
      "zone" : "a",
      "role" : "*"
    }
  ]
}
"""#

    /// app_tasks_with_healthCheckResults_2017-11.json
    static let appTasksWithHealthCheckResults = #"""
{"tasks":[{"id":"myapp.62c47071-c896-11e7-830b-c621fc75cd87","slaveId":"cddb218f-ef25-4833-a27e-05f33ac3c1cf-S0","host":"192.168.99.100","state":"TASK_LOST","startedAt":"2017-11-13T17:16:29.892Z","stagedAt":"2017-11-13T17:16:28.579Z","ports":[11064],"version":"2017-11-11T01:11:56.467Z","appId":"/myapp","healthCheckResults":[{"alive":false,"consecutiveFailures":2,"firstSuccess":null,"lastFailure":"2017-11-13T19:19:02.712Z","lastSuccess":null,"lastFailureCause":"ConnectException: Connection refused","taskId":"myapp.62c47071-c896-11e7-830b-c621fc75cd87"}]},{"id":"myapp.62b220f0-c896-11e7-830b-c621fc75cd87","slaveId":"cddb218f-ef25-4833-a27e-05f33ac3c1cf-S1","host":"192.168.99.100","state":"TASK_LOST","startedAt":"2017-11-13T17:16:29.946Z","stagedAt":"2017-11-13T17:16:28.549Z","ports":[11285],"version":"2017-11-11T01:11:56.467Z","appId":"/myapp","healthCheckResults":[{"alive":false,"consecutiveFailures":3,"firstSuccess":null,"lastFailure":"2017-11-13T19:19:07.728Z","lastSuccess":null,"lastFailureCause":"ConnectException: Connection refused","taskId":"myapp.62b220f0-c896-11e7-830b-c621fc75cd87"}]},{"id":"myapp.87e1b876-c8a7-11e7-88f7-426b1ccedef6","slaveId":"b15cce76-769e-4f94-9dda-67217ab628cc-S0","host":"192.168.99.100","state":"TASK_RUNNING","startedAt":"2017-11-13T19:19:14.591Z","stagedAt":"2017-11-13T19:19:12.294Z","ports":[11170],"version":"2017-11-11T01:11:56.467Z","ipAddresses":[{"ipAddress":"172.17.0.4","protocol":"IPv4"}],"appId":"/myapp","healthCheckResults":[{"alive":true,"consecutiveFailures":0,"firstSuccess":"2017-11-13T19:19:22.786Z","lastFailure":null,"lastSuccess":"2017-11-13T19:19:32.821Z","lastFailureCause":null,"taskId":"myapp.87e1b876-c8a7-11e7-88f7-426b1ccedef6"}]},{"id":"myapp.62c64532-c896-11e7-830b-c621fc75cd87","slaveId":"cddb218f-ef25-4833-a27e-05f33ac3c1cf-S1","host":"192.168.99.100","state":"TASK_LOST","startedAt":"2017-11-13T17:16:29.966Z","stagedAt":"2017-11-13T17:16:28.591Z","ports":[11319],"version":"2017-11-11T01:11:56.467Z","appId":"/myapp","healthCheckResults":[{"alive":false,"consecutiveFailures":3,"firstSuccess":null,"lastFailure":"2017-11-13T19:19:07.739Z","lastSuccess":null,"lastFailureCause":"ConnectException: Connection refused","taskId":"myapp.62c64532-c896-11e7-830b-c621fc75cd87"}]},{"id":"myapp.87c04dc5-c8a7-11e7-88f7-426b1ccedef6","slaveId":"b15cce76-769e-4f94-9dda-67217ab628cc-S0","host":"192.168.99.100","state":"TASK_RUNNING","startedAt":"2017-11-13T19:19:14.600Z","stagedAt":"2017-11-13T19:19:12.226Z","ports":[11089],"version":"2017-11-11T01:11:56.467Z","ipAddresses":[{"ipAddress":"172.17.0.3","protocol":"IPv4"}],"appId":"/myapp","healthCheckResults":[{"alive":true,"consecutiveFailures":0,"firstSuccess":"2017-11-13T19:19:22.772Z","lastFailure":null,"lastSuccess":"2017-11-13T19:19:32.815Z","lastFailureCause":null,"taskId":"myapp.87c04dc5-c8a7-11e7-88f7-426b1ccedef6"}]},{"id":"myapp.87e42977-c8a7-11e7-88f7-426b1ccedef6","slaveId":"b15cce76-769e-4f94-9dda-67217ab628cc-S0","host":"192.168.99.100","state":"TASK_RUNNING","startedAt":"2017-11-13T19:19:13.829Z","stagedAt":"2017-11-13T19:19:12.309Z","ports":[11199],"version":"2017-11-11T01:11:56.467Z","ipAddresses":[{"ipAddress":"172.17.0.2","protocol":"IPv4"}],"appId":"/myapp","healthCheckResults":[{"alive":true,"consecutiveFailures":0,"firstSuccess":"2017-11-13T19:19:22.787Z","lastFailure":null,"lastSuccess":"2017-11-13T19:19:32.809Z","lastFailureCause":null,"taskId":"myapp.87e42977-c8a7-11e7-88f7-426b1ccedef6"}]}]}
"""#

    /// deployments.json
    static let deployments = #"""
[
  {
    "id": "97c136bf-5a28-4821-9d94-480d9fbb01c8",
    "version": "2015-09-30T09:09:17.614Z",
    "affectedApps": [
      "/foo"
    ],
    "affectedPods": [
      "/bla"
    ],
    "steps": [
      {
        "actions": [
          {
            "action": "ScaleApplication",
            "app": "/foo"
          }
        ]
      },
      {
        "actions": [
          {
            "action": "ScalePod",
            "pod": "/bla"
          }
        ]
      }
    ],
    "currentActions": [
      {
        "action": "ScaleApplication",
        "app": "/foo",
        "readinessCheckResults": [
          {
            "taskId": "foo.instance-c9de6033",
            "lastResponse": {
              "body": "{}",
              "contentType": "application/json",
              "status": 500
            },
            "name": "myReadyCheck",
            "ready": false
          }
        ]
      }
    ],
    "currentStep": 1,
    "totalSteps": 1
  }
]
"""#

    /// single-event.txt (CRLF line endings, as Marathon/Jetty writes them)
    static let singleEvent = "event: event_stream_attached\r\ndata: {\"remoteAddress\":\"172.18.0.1\",\"eventType\":\"event_stream_attached\",\"timestamp\":\"2018-09-03T18:03:45.685Z\"}\r\n\r\n"

    /// multi-event-blanklines-in-between.txt (LF endings and blank lines added by its author)
    static let multiEvent = #"""

event: group_change_success

data: {"groupId":"/asgard-dev","version":"2018-09-04T12:58:57.000Z","eventType":"group_change_success","timestamp":"2018-09-04T12:58:57.072Z"}



event: api_post_event

data: {"clientIp":"172.18.0.1","uri":"/v2/apps//asgard-dev/bla","appDefinition":{"id":"/asgard-dev/bla","cmd":"sleep 1000","args":null,"user":null,"env":{},"instances":0,"cpus":1,"mem":128,"disk":0,"gpus":0,"executor":"","constraints":[],"uris":[],"fetch":[],"storeUrls":[],"backoffSeconds":1,"backoffFactor":1.15,"maxLaunchDelaySeconds":3600,"container":{"type":"DOCKER","volumes":[],"docker":{"image":"alpine","network":"BRIDGE","portMappings":[],"privileged":false,"parameters":[],"forcePullImage":false}},"healthChecks":[],"readinessChecks":[],"dependencies":[],"upgradeStrategy":{"minimumHealthCapacity":1,"maximumOverCapacity":1},"labels":{},"ipAddress":null,"version":"2018-09-04T12:58:57.000Z","residency":null,"secrets":{},"taskKillGracePeriodSeconds":null,"unreachableStrategy":{"inactiveAfterSeconds":0,"expungeAfterSeconds":0},"killSelection":"YOUNGEST_FIRST","ports":[10006],"portDefinitions":[{"port":10006,"protocol":"tcp","name":"default","labels":{}}],"requirePorts":false,"versionInfo":{"lastScalingAt":"2018-09-04T12:58:57.000Z","lastConfigChangeAt":"2018-09-04T12:56:56.861Z"}},"eventType":"api_post_event","timestamp":"2018-09-04T12:58:57.073Z"}

event: status_update_event





data: {"slaveId":"40cf614e-b392-4d31-9230-090ca3c7aa83-S0","taskId":"asgard-dev_bla.0139427f-b042-11e8-9638-0242ac12001f","taskStatus":"TASK_KILLED","message":"Container exited with status 137","appId":"/asgard-dev/bla","host":"172.18.0.51","ipAddresses":[{"ipAddress":"172.17.0.4","protocol":"IPv4"}],"ports":[30989],"version":"2018-09-04T12:56:56.861Z","eventType":"status_update_event","timestamp":"2018-09-04T12:59:57.728Z"}



event: instance_changed_event

data: {"instanceId":"asgard-dev_bla.marathon-0139427f-b042-11e8-9638-0242ac12001f","condition":"Killed","runSpecId":"/asgard-dev/bla","agentId":"40cf614e-b392-4d31-9230-090ca3c7aa83-S0","host":"172.18.0.51","runSpecVersion":"2018-09-04T12:56:56.861Z","timestamp":"2018-09-04T12:59:57.739Z","eventType":"instance_changed_event"}
"""#

    /// 1-nginx-marathon1.5.json (an app definition as POSTed)
    static let nginxDefinition15 = #"""
{
    "id": "nginx",
    "container": {
        "type": "DOCKER",
        "docker": {
            "image": "brndnmtthws/nginx-echo-sleep",
            "forcePullImage":true
        },
        "portMappings": [
            { "hostPort": 0, "containerPort": 8080, "servicePort": 10000 }
        ]
    },
    "networks": [
        { "mode": "container/bridge" }
    ],
    "instances": 5,
    "cpus": 0.1,
    "mem": 65,
    "healthChecks": [{
        "protocol": "MESOS_HTTP",
        "path": "/",
        "portIndex": 0,
        "timeoutSeconds": 15,
        "gracePeriodSeconds": 15,
        "intervalSeconds": 3,
        "maxConsecutiveFailures": 10
    }],
    "labels":{
        "HAPROXY_DEPLOYMENT_GROUP":"nginx",
        "HAPROXY_DEPLOYMENT_ALT_PORT":"10001",
        "HAPROXY_GROUP":"external"
    },
    "acceptedResourceRoles":["*", "slave_public"]
}
"""#

    /// 1-nginx.json (the pre-1.5 definition: docker.network BRIDGE)
    static let nginxDefinitionLegacy = #"""
{
  "id": "nginx",
  "container": {
    "type": "DOCKER",
    "docker": {
      "image": "brndnmtthws/nginx-echo-sleep",
      "network": "BRIDGE",
      "portMappings": [
        { "hostPort": 0, "containerPort": 8080, "servicePort": 10000 }
      ],
      "forcePullImage":true
    }
  },
  "instances": 5,
  "cpus": 0.1,
  "mem": 65,
  "healthChecks": [{
      "protocol": "HTTP",
      "path": "/",
      "portIndex": 0,
      "timeoutSeconds": 15,
      "gracePeriodSeconds": 15,
      "intervalSeconds": 3,
      "maxConsecutiveFailures": 10
  }],
  "labels":{
    "HAPROXY_DEPLOYMENT_GROUP":"nginx",
    "HAPROXY_DEPLOYMENT_ALT_PORT":"10001",
    "HAPROXY_GROUP":"external"
  },
  "acceptedResourceRoles":["*", "slave_public"]
}
"""#
}

import Testing
@testable import ServiceRouterCore

/// Runtime API commands, reply classification and the reply parsers, on real HAProxy 2.6 output
/// (Fixtures/haproxy/README.md says how it was captured).
@Suite struct RuntimeTests {
    static let web = pname("web_10000")

    // MARK: - Command text

    @Test(arguments: [
        (RuntimeCommand.setAddress(backend: web, server: pname("s3"), endpoint: ep("10.0.0.8", 31004)), "set server web_10000/s3 addr 10.0.0.8 port 31004"),
        (.setAddress(backend: web, server: pname("s1"), endpoint: ep("FE80::1", 8080)), "set server web_10000/s1 addr fe80::1 port 8080"),
        (.setState(backend: web, server: pname("s2"), state: .ready), "set server web_10000/s2 state ready"),
        (.setState(backend: web, server: pname("s2"), state: .drain), "set server web_10000/s2 state drain"),
        (.setState(backend: web, server: pname("s2"), state: .maint), "set server web_10000/s2 state maint"),
        (.setWeight(backend: web, server: pname("s4"), weight: 7), "set server web_10000/s4 weight 7"),
        (.setWeight(backend: web, server: pname("s4"), weight: 300), "set server web_10000/s4 weight 256"),
        (.setWeight(backend: web, server: pname("s4"), weight: -5), "set server web_10000/s4 weight 0"),
        (.showServersState(backend: nil), "show servers state"),
        (.showServersState(backend: web), "show servers state web_10000"),
        (.showInfo, "show info"),
        (.showEnv(name: pname("SERVICEROUTER_STRUCTURE")), "show env SERVICEROUTER_STRUCTURE"),
        (.showStat, "show stat -1 4 -1"),
    ])
    func commandText(_ command: RuntimeCommand, _ text: String) {
        #expect(command.text == text)
        #expect(command.description == text)
        #expect(!text.contains(";") && !text.contains("\n"))
    }

    @Test func commandProperties() {
        let mutations: [RuntimeCommand] = [
            .setAddress(backend: Self.web, server: pname("s1"), endpoint: ep("10.0.0.1", 1)),
            .setState(backend: Self.web, server: pname("s1"), state: .ready),
            .setWeight(backend: Self.web, server: pname("s1"), weight: 1),
        ]
        #expect(mutations.allSatisfy { $0.isMutation && $0.backend == Self.web })
        let reads: [RuntimeCommand] = [.showServersState(backend: nil), .showInfo, .showEnv(name: pname("X")), .showStat]
        #expect(reads.allSatisfy { !$0.isMutation && $0.backend == nil })
        #expect(RuntimeCommand.showServersState(backend: Self.web).backend == Self.web)
    }

    // MARK: - Failure classification (replies seen on 2.6.12)

    static let setAddr = RuntimeCommand.setAddress(backend: web, server: pname("s3"), endpoint: ep("10.0.0.8", 31004))
    static let setReady = RuntimeCommand.setState(backend: web, server: pname("s3"), state: .ready)
    static let setWeight = RuntimeCommand.setWeight(backend: web, server: pname("s3"), weight: 1)

    @Test(arguments: [
        (setAddr, "IP changed from '127.0.0.1' to '10.0.0.8', port changed from '1' to '31004' by 'stats socket command'\n", nil),
        (setAddr, "no need to change the addr, no need to change the port by 'stats socket command'", nil),
        (setAddr, "no need to change the addr, port changed from '31003' to '31004' by 'stats socket command'", nil),
        (setAddr, "[4]: IP changed from '127.0.0.1' to '10.0.0.8', port changed from '1' to '31004' by 'stats socket command'", nil),
        (setAddr, "", "no confirmation"),
        (setAddr, "No such server.", "No such server."),
        (setAddr, "No such backend.", "No such backend."),
        (setAddr, "Invalid addr '10.0.0.999' by 'stats socket command'", "Invalid addr '10.0.0.999' by 'stats socket command'"),
        (setAddr, "Update for the current server address family is only supported through configuration file.",
         "Update for the current server address family is only supported through configuration file."),
        (setReady, "", nil),
        (setReady, "  ", nil),
        (setReady, "'set server <srv> state' expects 'ready', 'drain' and 'maint'.", "'set server <srv> state' expects 'ready', 'drain' and 'maint'."),
        (setReady, "No such server.", "No such server."),
        (setReady, "[3]: No such backend.", "[3]: No such backend."),
        (setWeight, "", nil),
        (setWeight, "No such server.", "No such server."),
        (.showServersState(backend: web), "1\n# be_id be_name srv_id\n", nil),
        (.showServersState(backend: nil), "", nil),
        (.showServersState(backend: pname("nosuch")), "Can't find backend.", "Can't find backend."),
        (.showInfo, "Name: HAProxy\nPid: 17928\n", nil),
        (.showInfo, "", "empty reply"),
        (.showInfo, "Unknown command.", "Unknown command."),
        (.showEnv(name: pname("SERVICEROUTER_STRUCTURE")), "Variable not found", nil),
        (.showStat, "# pxname,svname,qcur\nb_1,s1,0\n", nil),
        (.showStat, "Permission denied", "Permission denied"),
    ] as [(RuntimeCommand, String, String?)])
    func failureClassification(_ command: RuntimeCommand, _ reply: String, _ failure: String?) {
        #expect(command.failure(in: reply) == failure)
    }

    // MARK: - Reply splitter

    static let batchCommands: [RuntimeCommand] = [
        .setState(backend: web, server: pname("s3"), state: .maint),
        .showServersState(backend: web),
        .setAddress(backend: web, server: pname("s3"), endpoint: ep("10.0.0.8", 31004)),
        .setState(backend: web, server: pname("s3"), state: .ready),
        .setState(backend: web, server: pname("s9"), state: .ready),
        // `state bogus` cannot be built from validated values; the raw reply is classified as a state command's.
        .setState(backend: web, server: pname("s3"), state: .ready),
        .showEnv(name: pname("SERVICEROUTER_STRUCTURE")),
        .setAddress(backend: web, server: pname("s3"), endpoint: ep("10.0.0.8", 31004)),
    ]

    static let stateBlock = """
        1
        # be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
        3 web_10000 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001 - 0 0 - - 0
        3 web_10000 2 s2 127.0.0.1 0 5 1 1 7 1 0 0 8 0 0 1 - 1 - 0 0 - - 0
        3 web_10000 3 s3 127.0.0.1 0 5 1 1 7 1 0 0 8 0 0 1 - 1 - 0 0 - - 0
        3 web_10000 4 s4 10.0.0.6 2 0 1 1 7 1 0 2 0 0 0 1 - 31002 - 0 0 - - 0
        """

    static let batchReplies = [
        "",
        stateBlock,
        "IP changed from '127.0.0.1' to '10.0.0.8', port changed from '1' to '31004' by 'stats socket command'",
        "",
        "No such server.",
        "'set server <srv> state' expects 'ready', 'drain' and 'maint'.",
        "SERVICEROUTER_STRUCTURE=0123456789abcdef",
        "no need to change the addr, no need to change the port by 'stats socket command'",
    ]

    func batchBytes() throws -> [UInt8] { Array(try Fixture.data("batch-reply.txt", in: "haproxy")) }

    @Test func splitterFedWhole() throws {
        var s = RuntimeReplySplitter()
        s.feed(try batchBytes())
        #expect(s.replies == Self.batchReplies)
        #expect(s.pending == "")
    }

    @Test func splitterFedByteByByte() throws {
        var s = RuntimeReplySplitter()
        for b in try batchBytes() { s.feed([b]) }
        #expect(s.replies == Self.batchReplies)
        #expect(s.pending == "")
    }

    @Test func splitterFedInTwoPartsAtEverySplitPoint() throws {
        let bytes = try batchBytes()
        for cut in 0...bytes.count {
            var s = RuntimeReplySplitter()
            s.feed(bytes[..<cut])
            let early = s.replies
            #expect(Self.batchReplies.starts(with: early), "cut \(cut)")
            s.feed(bytes[cut...])
            #expect(s.replies == Self.batchReplies, "cut \(cut)")
            #expect(s.pending == "")
        }
    }

    @Test func splitterFedInRandomChunks() throws {
        let bytes = try batchBytes()
        var rng = SplitMix64(seed: 5)
        for _ in 0..<200 {
            var s = RuntimeReplySplitter()
            var i = 0
            while i < bytes.count {
                let n = Int.random(in: 1...40, using: &rng)
                s.feed(bytes[i..<min(bytes.count, i + n)])
                i += n
            }
            #expect(s.replies == Self.batchReplies)
        }
    }

    @Test func splitterRepliesClassifyAsHAProxyAnswered() throws {
        var s = RuntimeReplySplitter()
        s.feed(try batchBytes())
        let failures = zip(Self.batchCommands, s.replies).enumerated().compactMap { i, pair in pair.0.failure(in: pair.1).map { (i, $0) } }
        #expect(failures.map(\.0) == [4, 5])
        #expect(failures.map(\.1) == ["No such server.", "'set server <srv> state' expects 'ready', 'drain' and 'maint'."])
        let state = try RuntimeReplyParsers.serversState(s.replies[1])
        #expect(state.backends[Self.web]?.map(\.name.text) == ["s1", "s2", "s3", "s4"])
        #expect(RuntimeReplyParsers.env(s.replies[6], name: "SERVICEROUTER_STRUCTURE") == "0123456789abcdef")
    }

    @Test func splitterEdgeCases() {
        var s = RuntimeReplySplitter()
        s.feed([])
        #expect(s.replies.isEmpty && s.pending == "")
        s.feed(Array("\n\n\n".utf8))
        #expect(s.replies == ["", "", ""], "three empty replies")
        s.feed(Array("Server deleted.\n".utf8))
        #expect(s.replies.count == 3, "a reply without its blank line is not complete")
        #expect(s.pending == "Server deleted.\n")
        s.feed(Array("\nunterminated".utf8))
        #expect(s.replies == ["", "", "", "Server deleted."])
        #expect(s.pending == "unterminated")
        var multi = RuntimeReplySplitter()
        multi.feed(Array("a\nb\n\nc\n\n".utf8))
        #expect(multi.replies == ["a\nb", "c"])
        var utf8 = RuntimeReplySplitter()
        let text = Array("caf\u{E9} \u{1F600}\n\n".utf8)
        for b in text { utf8.feed([b]) }
        #expect(utf8.replies == ["caf\u{E9} \u{1F600}"], "multi-byte characters split across reads")
    }

    // MARK: - show servers state

    @Test func serversStateOfAFreshWorker() throws {
        let live = try RuntimeReplyParsers.serversState(Fixture.text("show-servers-state.txt"))
        #expect(live.backendOrder.map(\.text) == ["web_10000", "other_10001"])
        #expect(live.serverCount == 6)
        #expect(!live.isEmpty)
        let web = try #require(live.backends[Self.web])
        #expect(web.map(\.name.text) == ["s1", "s2", "s3", "s4"])
        #expect(web.map(\.serverID) == [1, 2, 3, 4])
        #expect(web.map(\.address) == ["10.0.0.5", "127.0.0.1", "127.0.0.1", "10.0.0.6"])
        #expect(web.map(\.port) == [31001, 1, 1, 31002])
        #expect(web.map(\.adminFlags) == [0, 5, 5, 0])
        #expect(web.map(\.admin) == [.ready, .maint, .maint, .ready])
        #expect(web.map(\.operationalState) == [2, 0, 0, 2])
        #expect(web.map(\.operationalName) == ["up", "down", "down", "up"])
        #expect(web.map(\.userWeight) == [1, 1, 1, 1])
        #expect(web.map(\.initialWeight) == [1, 1, 1, 1])
        #expect(web.map(\.checkStatus) == [1, 1, 1, 1])
        #expect(web[0].endpoint == ep("10.0.0.5", 31001))
        #expect(web[1].endpoint == SlotPlanner.placeholder)
        let other = try #require(live.backends[pname("other_10001")])
        #expect(other[1].address == "fe80::1")
        #expect(other[1].endpoint == ep("fe80::1", 8080))
    }

    @Test func serversStateAfterRuntimeCommands() throws {
        // s1: ready → drain (8); s2: disabled → addr + ready (4: the config bit stays); s3: disabled →
        // drain (12); s4: ready → maint (1).
        let live = try RuntimeReplyParsers.serversState(Fixture.text("show-servers-state-after-commands.txt"))
        let web = try #require(live.backends[Self.web])
        #expect(web.map(\.adminFlags) == [8, 4, 12, 1])
        #expect(web.map(\.admin) == [.drain, .ready, .drain, .maint])
        #expect(web[1].endpoint == ep("10.0.0.7", 31003))
        #expect(web.map(\.operationalState) == [2, 2, 2, 0])
    }

    @Test(arguments: [(0, LiveServer.Admin.ready), (1, .maint), (2, .maint), (4, .ready), (5, .maint), (8, .drain), (12, .drain),
                      (16, .drain), (0x20, .maint), (9, .maint), (0x24, .maint), (0x14, .drain), (0x40, .ready)])
    func adminFlags(_ flags: Int, _ admin: LiveServer.Admin) {
        #expect(LiveServer(backend: Self.web, name: pname("s1"), address: "10.0.0.1", port: 1, adminFlags: flags).admin == admin)
    }

    @Test func serversStateRowsWithCRLFAndExtraFields() throws {
        let text = "1\r\n# header\r\n3 web_10000 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001 - 0 0 - - 0 extra fields\r\n\r\n"
        let live = try RuntimeReplyParsers.serversState(text)
        #expect(live.backends[Self.web]?.first?.endpoint == ep("10.0.0.5", 31001))
    }

    @Test func serversStateEmpty() throws {
        #expect(try RuntimeReplyParsers.serversState("").isEmpty)
        #expect(try RuntimeReplyParsers.serversState("1\n# be_id be_name\n").isEmpty)
    }

    @Test(arguments: [
        ("2\n# be_id\n", 1, "expected format version 1, got \"2\""),
        ("No such backend.", 1, "expected format version 1, got \"No such backend.\""),
        ("Can't find backend.\n", 1, "expected format version 1, got \"Can't find backend.\""),
        ("# be_id be_name\n3 web_10000 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001 - 0 0 - - 0\n", 2, "expected format version 1"),
        ("1\n# h\n3 web_10000 1 s1 10.0.0.5\n", 3, "expected at least 19 fields, got 5"),
        ("1\n# h\n3 web_10000 1 s1 10.0.0.5 2 x 1 1 7 1 0 2 0 0 0 1 - 31001\n", 3, "unexpected field value"),
        ("1\n# h\n3 web_10000 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - port\n", 3, "unexpected field value"),
        ("1\n# h\n3 web;x 1 s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001\n", 3, "unexpected field value"),
        ("1\n\n# h\n3 web_10000 one s1 10.0.0.5 2 0 1 1 7 1 0 2 0 0 0 1 - 31001\n", 4, "unexpected field value"),
    ])
    func serversStateErrors(_ text: String, _ line: Int, _ reason: String) {
        let e = #expect(throws: ParseError.self) { try RuntimeReplyParsers.serversState(text) }
        #expect(e?.what == "show servers state")
        #expect(e?.line == line)
        #expect(e?.reason.hasPrefix(reason) == true, "\(e?.reason ?? "")")
        #expect(e?.description.hasPrefix("cannot parse show servers state (line \(line)): ") == true)
    }

    // MARK: - LiveState

    @Test func liveStateGroupsByBackendInHAProxysOrder() {
        let a = pname("a_1"), b = pname("b_2")
        let servers = [liveSlot("b_2", 1), liveSlot("a_1", 1), liveSlot("b_2", 2)]
        var live = LiveState(servers: servers)
        #expect(live.backendOrder == [b, a])
        #expect(live.backends[b]?.map(\.name.text) == ["s1", "s2"])
        #expect(live.serverCount == 3)
        // A partial read replaces only the backends it names.
        let partial = LiveState(servers: [liveSlot("a_1", 1, "10.0.0.1", 5), liveSlot("c_3", 1)])
        live.replace(backends: [a, pname("c_3"), b], with: partial)
        #expect(live.backendOrder.map(\.text) == ["a_1", "c_3"])
        #expect(live.backends[a]?.first?.address == "10.0.0.1")
        #expect(live.backends[b] == nil)
        #expect(LiveState().isEmpty)
    }

    @Test func liveServerEndpointNeedsANumericAddressAndPort() {
        let s = { (addr: String, port: Int) in LiveServer(backend: Self.web, name: pname("s1"), address: addr, port: port) }
        #expect(s("10.0.0.1", 80).endpoint == ep("10.0.0.1", 80))
        #expect(s("-", 0).endpoint == nil)
        #expect(s("agent1", 80).endpoint == nil)
        #expect(s("10.0.0.1", 0).endpoint == nil)
        #expect(LiveServer(backend: Self.web, name: pname("s1"), address: "x", port: 1, operationalState: 7).operationalName == "op7")
        #expect(LiveServer(backend: Self.web, name: pname("s1"), address: "x", port: 1, operationalState: 1).operationalName == "starting")
        #expect(LiveServer(backend: Self.web, name: pname("s1"), address: "x", port: 1, operationalState: 3).operationalName == "stopping")
    }

    // MARK: - show info, show env

    @Test func showInfo() throws {
        let text = try Fixture.text("show-info.txt")
        let info = RuntimeReplyParsers.info(text)
        #expect(info["Name"] == "HAProxy")
        #expect(info["Version"] == "2.6.12-1+deb12u4")
        #expect(info["Pid"] == "18219")
        #expect(info["Uptime"] == "0d 0h00m07s")
        #expect(info["Uptime_sec"] == "7")
        #expect(info["Release_date"] == "2026/10/17")
        #expect(info["Start_time_sec"] == "1795602618")
        #expect(info["Tainted"] == "0")
        #expect(info.count == text.split(separator: "\n").count)
        #expect(RuntimeCommand.showInfo.failure(in: text) == nil)
        #expect(RuntimeReplyParsers.info("no colon here\nKey:value\nEmpty:\n") == ["Key": "value", "Empty": ""])
    }

    /// The structure hash comes from `show info`'s description (a config's own setting), never
    /// from a foreign description or a malformed hash.
    @Test func structureHashFromShowInfo() {
        let ours = RuntimeReplyParsers.info("Pid: 7\ndescription: servicerouter structure 0123456789abcdef\n")
        #expect(RenderedConfig.structureHash(info: ours) == "0123456789abcdef")
        for other in ["", "description: \n", "description: my proxy\n", "description: servicerouter structure 0123\n",
                      "description: servicerouter structure 0123456789ABCDEF\n", "description: servicerouter structure 0123456789abcdef0\n"] {
            #expect(RenderedConfig.structureHash(info: RuntimeReplyParsers.info("Pid: 7\n" + other)) == nil, "\(other)")
        }
    }

    @Test func showEnv() {
        #expect(RuntimeReplyParsers.env("SERVICEROUTER_STRUCTURE=0123456789abcdef\n", name: "SERVICEROUTER_STRUCTURE") == "0123456789abcdef")
        #expect(RuntimeReplyParsers.env("Variable not found\n", name: "SERVICEROUTER_STRUCTURE") == nil)
        #expect(RuntimeReplyParsers.env("SERVICEROUTER_STRUCTURE_OLD=1\nSERVICEROUTER_STRUCTURE=2\n", name: "SERVICEROUTER_STRUCTURE") == "2")
        #expect(RuntimeReplyParsers.env("X=a=b", name: "X") == "a=b")
        #expect(RuntimeReplyParsers.env("X=", name: "X") == "")
        #expect(RuntimeReplyParsers.env("", name: "X") == nil)
    }

    // MARK: - show proc (master CLI)

    static let showProc = "#<PID>          <type>          <reloads>       <uptime>        <version>\n3018            master          1 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4\n# workers\n3070            worker          0               0d00h00m01s     2.6.12-1+deb12u4\n# programs\n"

    @Test func showProcAfterOneReload() throws {
        let p = try RuntimeReplyParsers.processList(Self.showProc)
        #expect(p == RuntimeReplyParsers.ProcessList(masterPid: 3018, reloads: 1, failedReloads: 0, workers: [3070], oldWorkers: []))
    }

    @Test func showProcWithOldWorkers() throws {
        let p = try RuntimeReplyParsers.processList(Fixture.text("show-proc-old-workers.txt"))
        #expect(p == RuntimeReplyParsers.ProcessList(masterPid: 17927, reloads: 1, failedReloads: 0, workers: [18219], oldWorkers: [17928]))
    }

    @Test func showProcAfterAFailedReload() throws {
        let p = try RuntimeReplyParsers.processList(Fixture.text("show-proc-failed-reload.txt"))
        #expect(p == RuntimeReplyParsers.ProcessList(masterPid: 17927, reloads: 2, failedReloads: 1, workers: [18219], oldWorkers: [17928]))
    }

    @Test func showProcWithPrograms() throws {
        let text = Self.showProc + "3100            dataplane       0               0d00h00m01s     -\n"
        let p = try RuntimeReplyParsers.processList(text)
        #expect(p.workers == [3070], "programs are not workers")
        let tabs = try RuntimeReplyParsers.processList("3018\tmaster\t4 [failed: 2]\t0d\n# workers\n3070\tworker\t0\t0d\n")
        #expect(tabs.reloads == 4 && tabs.failedReloads == 2 && tabs.workers == [3070])
    }

    @Test(arguments: ["", "Unknown command.\n", "# workers\n3070 worker 0 0d00h00m01s 2.6\n", "master 1 [failed: 0]\n"])
    func showProcWithoutMasterIsAnError(_ text: String) {
        let e = #expect(throws: ParseError.self) { try RuntimeReplyParsers.processList(text) }
        #expect(e?.what == "show proc")
    }
}

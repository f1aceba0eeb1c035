import IPCBench
import Testing

@Suite("CPU cost and the shared-memory floor")
struct CPUCostTests {
    @Test("A spinning waiter never sleeps, a blocking one sleeps per message, CPU use stays within one CPU; shared-memory cells record the cache-line floor")
    func spinningShowsInCPUCost() throws {
        let cpus = Affinity.allowedCPUs()
        try #require(cpus.count >= 2, "needs two CPUs")
        let placement = Placement(producerCPU: cpus[0], consumerCPU: cpus[1])
        let configuration = RunConfiguration(
            mechanisms: [MechanismRegistry.mechanism(id: "shm-posix")!, MechanismRegistry.mechanism(id: "pipe")!],
            modes: [.latency], variants: ["in-place/spin", "write/read"], sizes: [64], touch: .read, placement: placement,
            repetitions: 1, durationSeconds: 0.3, limits: TestSupport.limits)
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        let spin = try #require(outcomes.first { $0.cell.variant == "in-place/spin" })
        let pipe = try #require(outcomes.first { $0.cell.mechanism.id == "pipe" })
        #expect(spin.status == .ok && pipe.status == .ok)
        // No thresholds on utilisation itself: how much CPU a worker gets depends on what else this
        // shared machine runs. What holds however busy it is:
        // - Each worker is pinned to one CPU, so over its timed loop it cannot use more than one
        //   CPU-second per second (plus a little for the clock reads around the interval); above that,
        //   the CPU time and the wall time were taken over different intervals (e.g. set-up counted).
        //   Both burned some CPU: a zero means the meter never ran.
        // - A spinning waiter never sleeps (it polls and, every so often, sched_yield()s, which the
        //   kernel counts as an involuntary switch), so its voluntary switches stay near zero per
        //   message; a "spin" variant that actually blocked would sleep about once per message.
        // - A blocking cross-CPU ping-pong must sleep to wait for each request: its consumer makes
        //   about one voluntary switch per message; near zero means the switches were not counted.
        for (worker, usage) in [("spin producer", spin.producerUsage), ("spin consumer", spin.consumerUsage),
                                ("pipe producer", pipe.producerUsage), ("pipe consumer", pipe.consumerUsage)] {
            let utilization = try #require(usage.utilization, "\(worker): no wall time measured")
            #expect(utilization.isFinite && utilization > 0 && utilization <= 1.05, "\(worker) utilization \(utilization)")
            #expect(usage.totalNanoseconds > 0, "\(worker) CPU time")
        }
        let spinMessages = Double(spin.messages), pipeMessages = Double(pipe.messages)
        try #require(spinMessages > 0 && pipeMessages > 0)
        for (worker, usage) in [("producer", spin.producerUsage), ("consumer", spin.consumerUsage)] {
            let sleeps = Double(usage.voluntarySwitches) / spinMessages
            #expect(sleeps < 0.25, "spinning \(worker) slept \(sleeps) times per message")
        }
        let pipeSleeps = Double(pipe.consumerUsage.voluntarySwitches) / pipeMessages
        #expect(pipeSleeps > 0.5, "blocking pipe consumer slept only \(pipeSleeps) times per message")
        #expect(spin.floorBefore.map { $0 > 0 } == true && spin.floorAfter.map { $0 > 0 } == true)
        #expect(pipe.floorBefore == nil)
    }
}

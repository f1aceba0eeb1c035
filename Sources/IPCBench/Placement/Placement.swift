/// Where the two workers run.
public struct Placement: Sendable, Equatable {
    /// Written to the CSV: `cross-cpu`, `same-cpu`, `unpinned` or a named placement such as `smt-siblings`.
    public var name: String
    public var producerCPU: Int?
    public var consumerCPU: Int?
    /// Set when this machine cannot offer the placement: its cells are written as unavailable.
    public var unavailableReason: String?

    public init(producerCPU: Int?, consumerCPU: Int?) {
        self.producerCPU = producerCPU
        self.consumerCPU = consumerCPU
        switch (producerCPU, consumerCPU) {
        case let (producer?, consumer?): name = producer == consumer ? "same-cpu" : "cross-cpu"
        default: name = "unpinned"
        }
    }

    public static func unavailable(name: String, reason: String) -> Placement {
        var placement = Placement(name: name, producerCPU: nil, consumerCPU: nil)
        placement.unavailableReason = reason
        return placement
    }

    /// Two different CPUs when this process may use two, else both on the one it has.
    public static func defaultPlacement(allowedCPUs: [Int]) -> Placement {
        switch allowedCPUs.count {
        case 0: Placement(producerCPU: nil, consumerCPU: nil)
        case 1: Placement(producerCPU: allowedCPUs[0], consumerCPU: allowedCPUs[0])
        default: Placement(producerCPU: allowedCPUs[0], consumerCPU: allowedCPUs[1])
        }
    }
}

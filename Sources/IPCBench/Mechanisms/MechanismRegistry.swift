/// Every mechanism the tool knows, in the order `list` and the default suite use.
public enum MechanismRegistry {
    public static let all: [any Mechanism] = [
        PipeMechanism(),
        FIFOMechanism(),
        UnixStreamMechanism(),
        TCPMechanism(),
        SysVMessageQueueMechanism(),
        POSIXMessageQueueMechanism(),
        UnixDatagramMechanism(.datagram),
        UnixDatagramMechanism(.sequencedPacket),
        UDPMechanism(),
        RealtimeSignalMechanism(),
        VmsplicePipeMechanism(),
        CrossMemoryAttachMechanism(),
        MemfdHandoffMechanism(),
        POSIXSharedMemoryMechanism(),
        SysVSharedMemoryMechanism(),
        MappedFileMechanism(),
        SharedRingMechanism(HugePageSegment()),
        SharedRingMechanism(MemfdSegment()),
    ]

    public static var ids: [String] { all.map(\.id) }

    public static func mechanism(id: String) -> (any Mechanism)? {
        all.first { $0.id == id }
    }

    /// The mechanisms `ipcbench serve` and `run --remote` can run between two hosts.
    public static var acrossHosts: [any Mechanism] { all.filter(\.crossesHosts) }
}

import CEdgyJail
import EdgyNetwork
import EdgyPolicy

/// Whether this supervisor can give jails egress: the host's egress side, or why not (the host
/// self-check's finding, reported as each egress attempt's setup error).
typealias EgressAvailability = Result<EgressHost, EgressSetupError>

/// One jail's slot on the egress host, released exactly once with the jail.
struct EgressLease: Sendable {
    let host: EgressHost
    let slot: EgressSlot

    static func make(_ network: EgressAvailability?, rules: [EgressRule]) -> Result<EgressLease, SpawnFailure> {
        switch network {
        case nil:
            return .failure(SpawnFailure(stage: EDGY_STAGE_NETWORK, detail: "this supervisor is not configured for egress jails"))
        case .failure(let error)?:
            return .failure(SpawnFailure(stage: EDGY_STAGE_NETWORK, detail: "this host cannot run egress jails: \(error)"))
        case .success(let host)?:
            do {
                return .success(EgressLease(host: host, slot: try host.lease(rules: rules)))
            } catch {
                return .failure(SpawnFailure(stage: EDGY_STAGE_NETWORK, detail: error.description))
            }
        }
    }

    /// The veth pair into the namespace of `pid` and the jail's rules; the failure if not.
    func plumb(pid: pid_t) -> SpawnFailure? {
        do {
            try host.plumb(slot, pid: pid)
            return nil
        } catch {
            return SpawnFailure(stage: EDGY_STAGE_NETWORK, detail: error.description)
        }
    }

    func release() { host.release(slot) }
}

import CNFTables
import Synchronization

/// What nftables refused, with its own message.
public struct NFTablesError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// libnftables, loaded once on first use (it is not linked; see CNFTables' shim.h).
private let library: Result<LoadedNFTables, NFTablesError> = {
    var functions = edgy_nftables()
    if let error = edgy_nftables_load(&functions) {
        return .failure(NFTablesError(description: "cannot load libnftables: " + String(cString: error)))
    }
    return .success(LoadedNFTables(functions: functions))
}()

/// The library's functions, every one present (`edgy_nftables_load` checked).
private struct LoadedNFTables: @unchecked Sendable {
    let functions: edgy_nftables
}

/// libnftables in the daemon's process: one context, one caller at a time (a context is not
/// thread-safe). A command costs a netlink round trip, not a fork and exec of `nft`, which
/// matters for the resolver's pins, made while the jail waits for its answer.
final class NFTables: Sendable {
    private struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
        let nft: edgy_nftables
    }
    private let context: Mutex<Context>

    init() throws(NFTablesError) {
        let nft = try library.get().functions
        guard let pointer = nft.ctx_new(0) else { throw NFTablesError(description: "nft_ctx_new failed") }
        _ = nft.ctx_buffer_output(pointer)
        _ = nft.ctx_buffer_error(pointer)
        context = Mutex(Context(pointer: pointer, nft: nft))
    }

    deinit {
        context.withLock { $0.nft.ctx_free($0.pointer) }
    }

    /// Runs `commands` (nft's own syntax, one transaction) and returns what it printed.
    /// - Parameter json: print listings as JSON.
    @discardableResult
    func run(_ commands: String, json: Bool = false) throws(NFTablesError) -> String {
        let result: Result<String, NFTablesError> = context.withLock { c in
            c.nft.ctx_output_set_flags(c.pointer, json ? UInt32(NFT_CTX_OUTPUT_JSON) : 0)
            let rc = c.nft.run_cmd_from_buffer(c.pointer, commands)
            let output = c.nft.ctx_get_output_buffer(c.pointer).map { String(cString: $0) } ?? ""
            let errors = c.nft.ctx_get_error_buffer(c.pointer).map { String(cString: $0) } ?? ""
            if rc != 0 {
                let firstLines = errors.split(separator: "\n").prefix(3).joined(separator: " | ")
                return .failure(NFTablesError(description: firstLines.isEmpty ? "nftables failed" : firstLines))
            }
            return .success(output)
        }
        return try result.get()
    }
}

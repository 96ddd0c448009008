/// Keeps the first `capacity` bytes of a stream and counts the rest: memory stays flat however
/// much a workload writes.
struct OutputBuffer {
    let capacity: Int
    private(set) var kept: [UInt8] = []
    private(set) var truncatedBytes: UInt64 = 0

    init(capacity: Int) {
        self.capacity = capacity
        kept.reserveCapacity(min(capacity, 64 * 1024))
    }

    /// Appends a chunk; returns the part that was kept (for streaming to a live reader).
    mutating func append(_ chunk: UnsafeRawBufferPointer) -> ArraySlice<UInt8> {
        let room = max(0, capacity - kept.count)
        let keep = min(room, chunk.count)
        let start = kept.count
        if keep > 0 { kept.append(contentsOf: chunk[..<keep]) }
        truncatedBytes += UInt64(chunk.count - keep)
        return kept[start...]
    }
}

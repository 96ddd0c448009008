import EdgyModel
import Foundation

/// Reads one jail's counters and refused destinations from nftables' JSON listing.
enum EgressCounters {
    static func parse(_ listing: String, slot: EgressSlot) -> NetworkReport {
        var report = NetworkReport()
        let n = slot.index
        // One JSON document per listed object, one per line.
        for line in listing.split(separator: "\n") {
            guard let document = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let objects = document["nftables"] as? [[String: Any]] else { continue }
            for object in objects {
                if let counter = object["counter"] as? [String: Any], let name = counter["name"] as? String {
                    let packets = (counter["packets"] as? NSNumber)?.uint64Value ?? 0
                    let bytes = (counter["bytes"] as? NSNumber)?.uint64Value ?? 0
                    switch name {
                    case "out_\(n)": report.bytesOut = bytes
                    case "in_\(n)": report.bytesIn = bytes
                    case "conn_\(n)": report.connections = Int(packets)
                    case "refused_\(n)": report.refused = Int(packets)
                    default: break
                    }
                } else if let set = object["set"] as? [String: Any], let elements = set["elem"] as? [Any] {
                    report.refusedDestinations = elements.compactMap(destination).sorted().prefix(NetworkReport.maxRefusedShown).map { $0 }
                }
            }
        }
        return report
    }

    /// `{"concat": ["198.51.100.9", "tcp", 8001]}` (possibly inside `{"elem": {"val": …}}`) →
    /// "198.51.100.9:8001/tcp".
    private static func destination(_ element: Any) -> String? {
        var value = element
        if let wrapped = (value as? [String: Any])?["elem"] as? [String: Any], let inner = wrapped["val"] { value = inner }
        guard let parts = (value as? [String: Any])?["concat"] as? [Any], parts.count == 3,
              let address = parts[0] as? String else { return nil }
        let proto = (parts[1] as? String) ?? "\(parts[1])"
        return "\(address):\(parts[2])/\(proto)"
    }
}

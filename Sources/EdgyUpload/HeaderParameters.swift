import Foundation

/// `value; key=token; key2="quoted \" string"` as in Content-Type and Content-Disposition.
public struct HeaderParameters: Sendable {
    public var value: String
    private var parameters: [String: String] = [:]

    public init(_ header: String) {
        var scalars = Substring(header)
        func skipSpaces() { while let c = scalars.first, c == " " || c == "\t" { scalars.removeFirst() } }
        let semicolon = scalars.firstIndex(of: ";") ?? scalars.endIndex
        value = scalars[..<semicolon].trimmingCharacters(in: .whitespaces)
        scalars = scalars[semicolon...]
        while scalars.first == ";" {
            scalars.removeFirst()
            skipSpaces()
            let eq = scalars.firstIndex(where: { $0 == "=" || $0 == ";" }) ?? scalars.endIndex
            let key = scalars[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            scalars = scalars[eq...]
            guard scalars.first == "=" else { continue }
            scalars.removeFirst()
            skipSpaces()
            var parsed = ""
            if scalars.first == "\"" {
                scalars.removeFirst()
                while let c = scalars.first, c != "\"" {
                    scalars.removeFirst()
                    if c == "\\", let escaped = scalars.first {
                        parsed.append(escaped)
                        scalars.removeFirst()
                    } else {
                        parsed.append(c)
                    }
                }
                if !scalars.isEmpty { scalars.removeFirst() }
                let next = scalars.firstIndex(of: ";") ?? scalars.endIndex
                scalars = scalars[next...]
            } else {
                let next = scalars.firstIndex(of: ";") ?? scalars.endIndex
                parsed = scalars[..<next].trimmingCharacters(in: .whitespaces)
                scalars = scalars[next...]
            }
            if !key.isEmpty, parameters[key] == nil { parameters[key] = parsed }
        }
    }

    public subscript(_ key: String) -> String? { parameters[key.lowercased()] }
}

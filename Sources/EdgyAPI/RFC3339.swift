import Foundation

/// RFC 3339 date-times as OpenAPI's `format: date-time` defines them: `2026-01-31T12:00:00Z`,
/// fractional seconds and any offset from -23:59 to +23:59 (Foundation's ISO 8601 parser refuses
/// offsets beyond ±18 h, which the format allows).
enum RFC3339 {
    static func date(_ text: String) -> Date? {
        let scalars = Array(text.utf8)
        func number(_ start: Int, _ count: Int) -> Int? {
            guard start >= 0, count > 0, start + count <= scalars.count else { return nil }
            var value = 0
            for byte in scalars[start..<start + count] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        func byte(_ at: Int, _ allowed: String) -> Bool { at < scalars.count && allowed.utf8.contains(scalars[at]) }
        guard scalars.count >= 20, scalars.count <= 64,
              let year = number(0, 4), byte(4, "-"), let month = number(5, 2), byte(7, "-"), let day = number(8, 2),
              byte(10, "Tt "), let hour = number(11, 2), byte(13, ":"), let minute = number(14, 2), byte(16, ":"),
              let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour <= 23, minute <= 59, second <= 60
        else { return nil }
        var index = 19
        var fraction = 0.0
        if byte(index, ".") {
            var scale = 0.1
            index += 1
            let start = index
            while let digit = number(index, 1) {
                fraction += Double(digit) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offset = 0
        if byte(index, "Zz") {
            index += 1
        } else if byte(index, "+-"), let hours = number(index + 1, 2), byte(index + 3, ":"), let minutes = number(index + 4, 2),
                  hours <= 23, minutes <= 59 {
            offset = (hours * 60 + minutes) * 60 * (scalars[index] == UInt8(ascii: "-") ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == scalars.count else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        guard let utc = TimeZone(secondsFromGMT: 0) else { return nil }
        calendar.timeZone = utc
        let components = DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: min(second, 59))
        // A day that does not exist in its month (February 30) is refused, not rolled over.
        guard let whole = calendar.date(from: components), calendar.component(.day, from: whole) == day else { return nil }
        return whole.addingTimeInterval(fraction - Double(offset))
    }
}

import Foundation

/// Times as stored: whole microseconds since the epoch, kept within years 1 to 9999 so that no
/// conversion between `Date`, `Double` and `Int64` can overflow, whatever a client or a clock
/// hands over.
public enum StoreTime {
    /// 0001-01-01T00:00:00Z.
    public static let minMicros: Int64 = -62_135_596_800_000_000
    /// 9999-12-31T23:59:59.999999Z.
    public static let maxMicros: Int64 = 253_402_300_799_999_999

    /// `date` in microseconds, rounded, clamped to the stored range (NaN becomes the minimum).
    public static func micros(_ date: Date) -> Int64 {
        let value = (date.timeIntervalSince1970 * 1e6).rounded()
        guard !value.isNaN, value > Double(minMicros) else { return minMicros }
        guard value < Double(maxMicros) else { return maxMicros }
        return Int64(value)
    }

    /// `date` as it reads back from a store: rounded to the microsecond (and clamped).
    public static func rounded(_ date: Date) -> Date {
        self.date(micros: micros(date))
    }

    public static func date(micros: Int64) -> Date {
        Date(timeIntervalSince1970: Double(micros) / 1e6)
    }

    /// Whether `micros` is a time this store could have written (cursors from clients are checked).
    public static func isValid(micros: Int64) -> Bool {
        (minMicros...maxMicros).contains(micros)
    }

    /// `duration` in microseconds, saturating instead of overflowing.
    public static func micros(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        if overflow { return seconds < 0 ? Int64.min : Int64.max }
        return adding(whole, attoseconds / 1_000_000_000_000)
    }

    /// `a + b`, saturating, then clamped to the stored range.
    public static func adding(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        if overflow { return b < 0 ? minMicros : maxMicros }
        return min(max(sum, minMicros), maxMicros)
    }
}

extension Duration {
    /// As seconds, for `Date` arithmetic.
    public var seconds: TimeInterval {
        let (s, attoseconds) = components
        return TimeInterval(s) + TimeInterval(attoseconds) / 1e18
    }
}

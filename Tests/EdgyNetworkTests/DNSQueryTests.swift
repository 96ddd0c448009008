import EdgyDNS
import Testing

@Suite struct DNSQueryTests {
    @Test func aQueryRoundTrips() throws {
        let query = try DNSQuery.parse(ArraySlice(DNSQuery.encode(id: 0x1234, name: "PyPI.Internal")))
        #expect(query.id == 0x1234)
        #expect(query.name == "pypi.internal")
        #expect(query.type == DNSQuery.typeA)
        let answer = query.response(.noError, addresses: [0xC633_640A])
        let decoded = try #require(DNSQuery.answers(answer))
        #expect(decoded.code == 0)
        #expect(decoded.addresses == [0xC633_640A])
        #expect(Array(answer[0..<2]) == [0x12, 0x34])
    }

    @Test func nameErrorCarriesNoRecords() throws {
        let query = try DNSQuery.parse(ArraySlice(DNSQuery.encode(id: 7, name: "unknown.test")))
        let decoded = try #require(DNSQuery.answers(query.response(.nameError)))
        #expect(decoded.code == 3)
        #expect(decoded.addresses.isEmpty)
    }

    @Test func hostileDatagramsAreRefused() {
        let valid = DNSQuery.encode(id: 1, name: "a.test")
        #expect(throws: DNSQuery.ParseError.truncated) { try DNSQuery.parse(ArraySlice(valid.prefix(11))) }
        #expect(throws: DNSQuery.ParseError.truncated) { try DNSQuery.parse(ArraySlice(valid.dropLast(2))) }
        var response = valid
        response[2] |= 0x80
        #expect(throws: DNSQuery.ParseError.notAQuery) { try DNSQuery.parse(ArraySlice(response)) }
        var twoQuestions = valid
        twoQuestions[5] = 2
        #expect(throws: DNSQuery.ParseError.malformed) { try DNSQuery.parse(ArraySlice(twoQuestions)) }
        // A compression pointer in a question (a loop, if followed).
        var pointer = Array(valid[0..<12]) + [0xC0, 0x0C, 0, 1, 0, 1]
        #expect(throws: DNSQuery.ParseError.malformed) { try DNSQuery.parse(ArraySlice(pointer)) }
        pointer = Array(valid[0..<12]) + [3, 0x61, 0x00, 0x62, 0, 0, 1, 0, 1]
        #expect(throws: DNSQuery.ParseError.malformed) { try DNSQuery.parse(ArraySlice(pointer)) }
        // Names past 255 bytes.
        let long = Array(valid[0..<12]) + Array(repeating: [63] + Array(repeating: UInt8(ascii: "a"), count: 63), count: 5).flatMap { $0 } + [0, 0, 1, 0, 1]
        #expect(throws: DNSQuery.ParseError.malformed) { try DNSQuery.parse(ArraySlice(long)) }
    }

    @Test func aSliceNotStartingAtZeroParses() throws {
        let bytes = [0xAA, 0xBB] + DNSQuery.encode(id: 9, name: "x.test")
        let query = try DNSQuery.parse(bytes[2...])
        #expect(query.name == "x.test")
        #expect(DNSQuery.answers(query.response(.noError, addresses: [1]))?.addresses == [1])
    }
}

#pragma once
// InfluxDB line protocol parsing, one line at a time, without allocating per line once warm.
//
//   measurement[,tag=value...] field=value[,field=value...] [timestamp]
//
// Escapes: in measurements `\,` and `\ `; in tag keys, tag values and field keys `\,`, `\=`
// and `\ `; in string field values `\"` and `\\`. A backslash before any other character is
// kept literally, as InfluxDB does. Field values: float (1, -1.5, 1e10), integer (1i), unsigned
// (1u), boolean (t, T, true, True, TRUE, f, F, false, False, FALSE) and string ("...", skipped
// and counted). Blank lines and lines starting with '#' are not points.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kpid::ingest {

enum class FieldType { kFloat, kInteger, kUnsigned, kBoolean };

struct Tag {
  std::string_view key;
  std::string_view value;
};

// A numeric field, converted to float64 (booleans become 1 and 0).
struct Field {
  std::string_view key;
  double value;
  FieldType type;
};

// Why a line was rejected. Each has a stable short name used as a metric label.
enum class ParseErrorCode {
  kNone,
  kMissingMeasurement,  // the line starts with a comma: no measurement name
  kMissingTagValue,     // "tag" or "tag=" without value, or empty tag key
  kMissingFields,       // no field set (the line is only a measurement and tags)
  kInvalidField,        // field without '=', empty key, unparsable value, unterminated string
  kUnsupportedValue,    // NaN or +/-Inf
  kValueOutOfRange,     // number overflows float64, int64 or uint64
  kInvalidTimestamp,    // not an integer, overflow, or trailing garbage
  kInvalidUtf8,         // measurement, key or value is not valid UTF-8
  kDuplicateTag,        // same tag key twice in one line
};

// Stable short name of a code for metric labels: "missing_measurement", "invalid_field", ...
const char* parse_error_reason(ParseErrorCode code);

struct ParseError {
  ParseErrorCode code = ParseErrorCode::kNone;
  // Human-readable message, e.g. "invalid field format: missing '=' after field key \"x\" at
  // column 12". Valid until the next parse() call.
  std::string_view message;
  size_t column = 0;  // 1-based column where the problem was found
};

// A successfully parsed point. Views point into the input line or the parser's scratch buffer;
// they are valid until the next parse() call on the same parser.
struct ParsedLine {
  std::string_view measurement;
  std::span<const Tag> tags;         // in input order
  std::span<const Field> fields;     // numeric fields only, in input order
  uint32_t string_fields = 0;        // string fields seen and skipped
  std::optional<int64_t> timestamp;  // raw, in the writer's precision unit
};

enum class LineKind {
  kPoint,  // line() holds the point (which may have only string fields: fields empty)
  kEmpty,  // blank or comment line: nothing to do
  kError,  // error() says why
};

// Parses lines. Reuses its buffers across calls, so steady-state parsing does not allocate.
// Not thread-safe: one parser per worker.
class LineParser {
 public:
  // Parses one line without its line terminator (a trailing '\r' is tolerated).
  // With `series_checked`, the caller vouches that the series text (measurement and tags, up
  // to the first unescaped space) was parsed without error before: it is skipped, and line()
  // has an empty measurement and no tags. Errors in the rest are reported as usual.
  LineKind parse(std::string_view line, bool series_checked = false);
  const ParsedLine& line() const { return line_; }
  const ParseError& error() const { return error_; }

 private:
  // Sets error_ from `code`, the message built so far and the 0-based position; returns kError.
  LineKind fail(ParseErrorCode code, size_t pos);
  // Fails with kInvalidUtf8 (and returns false) when `raw`, found at `pos`, is not UTF-8.
  bool check_utf8(std::string_view raw, size_t pos, const char* what);
  // Index of the first tag repeating an earlier key, or npos.
  size_t find_duplicate_tag();

  ParsedLine line_;
  ParseError error_;
  std::vector<Tag> tags_;
  std::vector<Field> fields_;
  std::vector<size_t> tag_columns_;  // 0-based position of each tag key, for messages
  std::vector<uint32_t> order_;      // tag indexes, sorted when checking many tags for duplicates
  std::string scratch_;              // unescaped keys and values; sized to the line before parsing
  std::string message_;
};

}  // namespace kpid::ingest

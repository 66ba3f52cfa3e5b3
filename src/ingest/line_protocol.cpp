#include "kpid/ingest/line_protocol.h"

#include "kpid/core/utf8.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <system_error>

namespace kpid::ingest {

namespace {

// Longest token quoted verbatim in an error message; longer ones are cut and marked "...".
constexpr size_t kMaxTokenInMessage = 64;
// Above this many tags, duplicate detection sorts instead of comparing every pair.
constexpr size_t kQuadraticDuplicateLimit = 16;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

void append_hex_byte(std::string& out, unsigned char b) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.append("\\x");
  out.push_back(kHex[b >> 4]);
  out.push_back(kHex[b & 0xF]);
}

// Appends `token` for a message: at most kMaxTokenInMessage bytes (cut on a character
// boundary, then "..."), with control characters, quotes, backslashes and bytes that are not
// valid UTF-8 escaped so messages are always printable UTF-8.
void append_token(std::string& out, std::string_view token) {
  size_t i = 0;
  while (i < token.size()) {
    if (i >= kMaxTokenInMessage) {
      out.append("...");
      return;
    }
    const auto b = static_cast<unsigned char>(token[i]);
    if (b >= 0x80) {
      const size_t len = utf8_sequence_length(token, i);
      if (len == 0) {
        append_hex_byte(out, b);
        ++i;
      } else {
        out.append(token.substr(i, len));
        i += len;
      }
      continue;
    }
    if (b < 0x20 || b == 0x7F) {
      append_hex_byte(out, b);
    } else if (b == '"' || b == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(b));
    } else {
      out.push_back(static_cast<char>(b));
    }
    ++i;
  }
}

void append_quoted_token(std::string& out, std::string_view token) {
  out.push_back('"');
  append_token(out, token);
  out.push_back('"');
}

void append_column(std::string& out, size_t column) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, column);
  out.append(" (column ");
  out.append(buf, static_cast<size_t>(r.ptr - buf));
  out.push_back(')');
}

// The element kinds that differ in which characters a backslash escapes.
enum class Element { kMeasurement, kKey, kTagValue };

bool is_escapable(Element element, char c) {
  if (c == ',' || c == ' ') return true;
  return c == '=' && element != Element::kMeasurement;
}

// Scans an element of `line` from `pos` up to (not including) the first unescaped ',' or ' '
// (and '=' for keys). Sets `escaped` when the element contains an escape sequence.
size_t scan_element(std::string_view line, size_t pos, Element element, bool& escaped) {
  escaped = false;
  while (pos < line.size()) {
    const char c = line[pos];
    if (c == '\\') {
      if (pos + 1 < line.size() && is_escapable(element, line[pos + 1])) {
        escaped = true;
        pos += 2;
      } else {
        ++pos;  // a backslash before anything else is literal
      }
      continue;
    }
    if (c == ',' || c == ' ') break;
    if (c == '=' && element == Element::kKey) break;
    ++pos;
  }
  return pos;
}

// Appends the unescaped form of `raw` to `out` (which has room: unescaping only shrinks).
std::string_view unescape_into(std::string& out, std::string_view raw, Element element) {
  const size_t start = out.size();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size() && is_escapable(element, raw[i + 1])) ++i;
    out.push_back(raw[i]);
  }
  return std::string_view(out).substr(start);
}

// Returns `raw`, or its unescaped copy in `scratch` when it contains escapes.
std::string_view element_view(std::string& scratch, std::string_view raw, bool escaped,
                              Element element) {
  return escaped ? unescape_into(scratch, raw, element) : raw;
}

// A field value that was recognized, or the reason it was not.
struct ValueResult {
  ParseErrorCode code = ParseErrorCode::kNone;
  double value = 0;
  FieldType type = FieldType::kFloat;
  const char* problem = nullptr;  // for kInvalidField/kValueOutOfRange: what was wrong
};

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_digit(c)) return false;
  }
  return true;
}

// Whether a float literal that from_chars reported out of range is too large (true) or too
// small (false): the decimal exponent of its first significant digit decides.
bool float_overflows(std::string_view s) {
  size_t i = (!s.empty() && (s[0] == '-')) ? 1 : 0;
  int64_t exponent = 0;  // decimal exponent of the first significant digit, before 'e'
  bool seen_point = false;
  bool seen_significant = false;
  int64_t int_digits = 0;
  int64_t leading_fraction_zeros = 0;
  for (; i < s.size() && s[i] != 'e' && s[i] != 'E'; ++i) {
    if (s[i] == '.') {
      seen_point = true;
    } else if (!seen_significant) {
      if (s[i] != '0') {
        seen_significant = true;
        if (!seen_point) int_digits = 1;
      } else if (seen_point) {
        ++leading_fraction_zeros;
      }
    } else if (!seen_point) {
      ++int_digits;
    }
  }
  if (!seen_significant) return false;  // zero never overflows
  exponent = int_digits > 0 ? int_digits - 1 : -(leading_fraction_zeros + 1);
  int64_t e = 0;
  bool negative = false;
  if (i < s.size()) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) negative = s[i++] == '-';
    for (; i < s.size(); ++i) {
      if (e < 1'000'000'000) e = e * 10 + (s[i] - '0');  // saturate: only the sign matters
    }
  }
  return exponent + (negative ? -e : e) > 0;
}

ValueResult parse_number_or_bool(std::string_view v) {
  ValueResult r;
  if (v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE") {
    r.value = 1;
    r.type = FieldType::kBoolean;
    return r;
  }
  if (v == "f" || v == "F" || v == "false" || v == "False" || v == "FALSE") {
    r.value = 0;
    r.type = FieldType::kBoolean;
    return r;
  }
  const char last = v.back();
  if (last == 'i') {
    const std::string_view body = v.substr(0, v.size() - 1);
    const bool negative = !body.empty() && body[0] == '-';
    if (!all_digits(negative ? body.substr(1) : body)) {
      r.code = ParseErrorCode::kInvalidField;
      r.problem = "invalid integer value";
      return r;
    }
    int64_t n = 0;
    auto res = std::from_chars(body.data(), body.data() + body.size(), n);
    if (res.ec == std::errc::result_out_of_range) {
      r.code = ParseErrorCode::kValueOutOfRange;
      r.problem = "integer out of int64 range";
      return r;
    }
    r.value = static_cast<double>(n);
    r.type = FieldType::kInteger;
    return r;
  }
  if (last == 'u') {
    const std::string_view body = v.substr(0, v.size() - 1);
    if (!body.empty() && body[0] == '-' && all_digits(body.substr(1))) {
      r.code = ParseErrorCode::kValueOutOfRange;
      r.problem = "negative unsigned integer";
      return r;
    }
    if (!all_digits(body)) {
      r.code = ParseErrorCode::kInvalidField;
      r.problem = "invalid unsigned integer value";
      return r;
    }
    uint64_t n = 0;
    auto res = std::from_chars(body.data(), body.data() + body.size(), n);
    if (res.ec == std::errc::result_out_of_range) {
      r.code = ParseErrorCode::kValueOutOfRange;
      r.problem = "unsigned integer out of uint64 range";
      return r;
    }
    r.value = static_cast<double>(n);
    r.type = FieldType::kUnsigned;
    return r;
  }
  // Float. NaN and infinities in any spelling are refused, as InfluxDB does.
  std::string_view unsigned_part = v;
  if (v[0] == '-' || v[0] == '+') unsigned_part = v.substr(1);
  if (iequals(unsigned_part, "nan") || iequals(unsigned_part, "inf") ||
      iequals(unsigned_part, "infinity") || istarts_with(unsigned_part, "nan(")) {
    r.code = ParseErrorCode::kUnsupportedValue;
    return r;
  }
  // Only digits, one sign, '.', and an exponent: no '+' prefix, no hex floats.
  if (!(is_digit(v[0]) || v[0] == '.' || (v[0] == '-' && v.size() > 1))) {
    r.code = ParseErrorCode::kInvalidField;
    r.problem = "invalid number";
    return r;
  }
  double d = 0;
  auto res = std::from_chars(v.data(), v.data() + v.size(), d, std::chars_format::general);
  if (res.ptr != v.data() + v.size() ||
      (res.ec != std::errc() && res.ec != std::errc::result_out_of_range)) {
    r.code = ParseErrorCode::kInvalidField;
    r.problem = "invalid number";
    return r;
  }
  if (res.ec == std::errc::result_out_of_range) {
    if (float_overflows(v)) {
      r.code = ParseErrorCode::kValueOutOfRange;
      r.problem = "number out of float64 range";
      return r;
    }
    d = v[0] == '-' ? -0.0 : 0.0;  // underflow rounds to zero, as strconv.ParseFloat does
  }
  if (!std::isfinite(d)) {
    r.code = ParseErrorCode::kUnsupportedValue;
    return r;
  }
  r.value = d;
  r.type = FieldType::kFloat;
  return r;
}

}  // namespace

const char* parse_error_reason(ParseErrorCode code) {
  switch (code) {
    case ParseErrorCode::kNone: return "none";
    case ParseErrorCode::kMissingMeasurement: return "missing_measurement";
    case ParseErrorCode::kMissingTagValue: return "missing_tag_value";
    case ParseErrorCode::kMissingFields: return "missing_fields";
    case ParseErrorCode::kInvalidField: return "invalid_field";
    case ParseErrorCode::kUnsupportedValue: return "unsupported_value";
    case ParseErrorCode::kValueOutOfRange: return "value_out_of_range";
    case ParseErrorCode::kInvalidTimestamp: return "invalid_timestamp";
    case ParseErrorCode::kInvalidUtf8: return "invalid_utf8";
    case ParseErrorCode::kDuplicateTag: return "duplicate_tag";
  }
  return "unknown";
}

LineKind LineParser::fail(ParseErrorCode code, size_t pos) {
  error_.code = code;
  error_.column = pos + 1;
  append_column(message_, error_.column);
  error_.message = message_;
  return LineKind::kError;
}

bool LineParser::check_utf8(std::string_view raw, size_t raw_pos, const char* what) {
  const size_t bad = find_invalid_utf8(raw);
  if (bad == std::string_view::npos) return true;
  message_.append("invalid UTF-8 in ");
  message_.append(what);
  message_.append(": byte ");
  append_hex_byte(message_, static_cast<unsigned char>(raw[bad]));
  message_.append(" in ");
  append_quoted_token(message_, raw);
  fail(ParseErrorCode::kInvalidUtf8, raw_pos + bad);
  return false;
}

size_t LineParser::find_duplicate_tag() {
  // Returns the index of the first tag whose key already appeared earlier, or npos.
  const size_t n = tags_.size();
  if (n <= kQuadraticDuplicateLimit) {
    for (size_t j = 1; j < n; ++j) {
      for (size_t i = 0; i < j; ++i) {
        if (tags_[i].key == tags_[j].key) return j;
      }
    }
    return std::string_view::npos;
  }
  // Many tags: sort indexes by (key, index) instead of comparing every pair. std::sort does not
  // allocate, and the reused index vector keeps its capacity.
  order_.clear();
  for (size_t i = 0; i < n; ++i) order_.push_back(static_cast<uint32_t>(i));
  std::sort(order_.begin(), order_.end(), [this](uint32_t a, uint32_t b) {
    const int c = tags_[a].key.compare(tags_[b].key);
    return c != 0 ? c < 0 : a < b;
  });
  size_t second = std::string_view::npos;
  for (size_t k = 1; k < n; ++k) {
    // Within a run of equal keys indexes ascend, so the second occurrence follows the first.
    if (tags_[order_[k - 1]].key == tags_[order_[k]].key &&
        (k < 2 || tags_[order_[k - 2]].key != tags_[order_[k]].key)) {
      second = std::min<size_t>(second, order_[k]);
    }
  }
  return second;
}

LineKind LineParser::parse(std::string_view line, bool series_checked) {
  tags_.clear();
  tag_columns_.clear();
  fields_.clear();
  message_.clear();
  error_ = ParseError{};
  line_ = ParsedLine{};
  // Unescaped text is never longer than its source, so this capacity is never exceeded and
  // views into the scratch buffer stay valid for the whole line.
  scratch_.clear();
  if (scratch_.capacity() < line.size()) scratch_.reserve(line.size());

  // Trim: one trailing '\r', then unescaped trailing blanks; leading blanks.
  size_t end = line.size();
  if (end > 0 && line[end - 1] == '\r') --end;
  // A space right after a backslash is escaped (part of a name), so it stays.
  while (end > 0 &&
         (line[end - 1] == '\t' || (line[end - 1] == ' ' && (end < 2 || line[end - 2] != '\\')))) {
    --end;
  }
  line = line.substr(0, end);
  size_t pos = 0;
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  if (pos == line.size() || line[pos] == '#') return LineKind::kEmpty;

  bool escaped = false;
  size_t stop = pos;
  if (series_checked) {
    // Skip to the first unescaped space, where the tag set ends. As scan_element reads it, a
    // space right after a backslash is escaped even after another backslash ("\\ " is a literal
    // backslash, then an escaped space): a backslash never escapes a backslash.
    while (pos < line.size() && !(line[pos] == ' ' && line[pos - 1] != '\\')) ++pos;
  } else {
    // Measurement.
    stop = scan_element(line, pos, Element::kMeasurement, escaped);
    if (stop == pos) {
      message_.append("missing measurement: line starts with ','");
      return fail(ParseErrorCode::kMissingMeasurement, pos);
    }
    const std::string_view raw_measurement = line.substr(pos, stop - pos);
    if (!check_utf8(raw_measurement, pos, "measurement")) return LineKind::kError;
    line_.measurement = element_view(scratch_, raw_measurement, escaped, Element::kMeasurement);
    pos = stop;

    // Tag set.
    while (pos < line.size() && line[pos] == ',') {
      ++pos;
      const size_t key_pos = pos;
      stop = scan_element(line, pos, Element::kKey, escaped);
      const std::string_view raw_key = line.substr(pos, stop - pos);
      if (raw_key.empty()) {
        message_.append("missing tag key after ','");
        return fail(ParseErrorCode::kMissingTagValue, key_pos);
      }
      if (stop == line.size() || line[stop] != '=') {
        message_.append("invalid tag format: missing '=' after tag key ");
        append_quoted_token(message_, raw_key);
        return fail(ParseErrorCode::kMissingTagValue, stop);
      }
      if (!check_utf8(raw_key, key_pos, "tag key")) return LineKind::kError;
      const std::string_view key = element_view(scratch_, raw_key, escaped, Element::kKey);
      pos = stop + 1;
      const size_t value_pos = pos;
      stop = scan_element(line, pos, Element::kTagValue, escaped);
      const std::string_view raw_value = line.substr(pos, stop - pos);
      if (raw_value.empty()) {
        message_.append("missing tag value for tag key ");
        append_quoted_token(message_, raw_key);
        return fail(ParseErrorCode::kMissingTagValue, value_pos);
      }
      if (!check_utf8(raw_value, value_pos, "tag value")) return LineKind::kError;
      tags_.push_back({key, element_view(scratch_, raw_value, escaped, Element::kTagValue)});
      tag_columns_.push_back(key_pos);
      pos = stop;
    }
    if (const size_t second = find_duplicate_tag(); second != std::string_view::npos) {
      message_.append("duplicate tag key ");
      append_quoted_token(message_, tags_[second].key);
      return fail(ParseErrorCode::kDuplicateTag, tag_columns_[second]);
    }
  }

  // Field set, after one or more spaces.
  while (pos < line.size() && line[pos] == ' ') ++pos;
  if (pos == line.size()) {
    message_.append("missing fields: no field set after measurement ");
    append_quoted_token(message_, line_.measurement);
    return fail(ParseErrorCode::kMissingFields, pos);
  }
  while (true) {
    const size_t key_pos = pos;
    stop = scan_element(line, pos, Element::kKey, escaped);
    const std::string_view raw_key = line.substr(pos, stop - pos);
    if (raw_key.empty()) {
      message_.append("invalid field format: missing field key");
      return fail(ParseErrorCode::kInvalidField, key_pos);
    }
    if (stop == line.size() || line[stop] != '=') {
      message_.append("invalid field format: missing '=' after field key ");
      append_quoted_token(message_, raw_key);
      return fail(ParseErrorCode::kInvalidField, stop);
    }
    if (!check_utf8(raw_key, key_pos, "field key")) return LineKind::kError;
    const std::string_view key = element_view(scratch_, raw_key, escaped, Element::kKey);
    pos = stop + 1;
    const size_t value_pos = pos;
    if (pos < line.size() && line[pos] == '"') {
      // String value: skipped. Only \" and \\ are escapes; the closing quote must be unescaped.
      ++pos;
      bool closed = false;
      while (pos < line.size()) {
        if (line[pos] == '\\' && pos + 1 < line.size() &&
            (line[pos + 1] == '"' || line[pos + 1] == '\\')) {
          pos += 2;
          continue;
        }
        if (line[pos] == '"') {
          closed = true;
          ++pos;
          break;
        }
        ++pos;
      }
      if (!closed) {
        message_.append("invalid field format: unterminated string value for field ");
        append_quoted_token(message_, key);
        return fail(ParseErrorCode::kInvalidField, value_pos);
      }
      if (pos < line.size() && line[pos] != ',' && line[pos] != ' ') {
        message_.append("invalid field format: unexpected text after string value of field ");
        append_quoted_token(message_, key);
        return fail(ParseErrorCode::kInvalidField, pos);
      }
      ++line_.string_fields;
    } else {
      while (pos < line.size() && line[pos] != ',' && line[pos] != ' ') ++pos;
      const std::string_view value = line.substr(value_pos, pos - value_pos);
      if (value.empty()) {
        message_.append("invalid field format: missing value for field ");
        append_quoted_token(message_, key);
        return fail(ParseErrorCode::kInvalidField, value_pos);
      }
      const ValueResult r = parse_number_or_bool(value);
      if (r.code == ParseErrorCode::kUnsupportedValue) {
        message_.append("unsupported value ");
        append_token(message_, value);
        message_.append(" for field ");
        append_quoted_token(message_, key);
        return fail(r.code, value_pos);
      }
      if (r.code == ParseErrorCode::kValueOutOfRange) {
        message_.append("value out of range: ");
        message_.append(r.problem);
        message_.append(" ");
        append_token(message_, value);
        message_.append(" for field ");
        append_quoted_token(message_, key);
        return fail(r.code, value_pos);
      }
      if (r.code != ParseErrorCode::kNone) {
        message_.append("invalid field value ");
        append_quoted_token(message_, value);
        message_.append(" for field ");
        append_quoted_token(message_, key);
        message_.append(": ");
        message_.append(r.problem);
        return fail(r.code, value_pos);
      }
      fields_.push_back({key, r.value, r.type});
    }
    if (pos < line.size() && line[pos] == ',') {
      ++pos;
      continue;
    }
    break;
  }

  // Optional timestamp, after one or more spaces, and nothing after it.
  while (pos < line.size() && line[pos] == ' ') ++pos;
  if (pos < line.size()) {
    const size_t ts_pos = pos;
    while (pos < line.size() && line[pos] != ' ') ++pos;
    const std::string_view ts = line.substr(ts_pos, pos - ts_pos);
    const bool negative = ts[0] == '-';
    int64_t value = 0;
    if (!all_digits(negative ? ts.substr(1) : ts)) {
      message_.append("invalid timestamp ");
      append_quoted_token(message_, ts);
      message_.append(": not an integer");
      return fail(ParseErrorCode::kInvalidTimestamp, ts_pos);
    }
    auto res = std::from_chars(ts.data(), ts.data() + ts.size(), value);
    if (res.ec != std::errc()) {
      message_.append("invalid timestamp ");
      append_quoted_token(message_, ts);
      message_.append(": out of int64 range");
      return fail(ParseErrorCode::kInvalidTimestamp, ts_pos);
    }
    while (pos < line.size() && line[pos] == ' ') ++pos;
    if (pos < line.size()) {
      size_t extra_end = pos;
      while (extra_end < line.size() && line[extra_end] != ' ') ++extra_end;
      message_.append("invalid timestamp: unexpected ");
      append_quoted_token(message_, line.substr(pos, extra_end - pos));
      message_.append(" after timestamp ");
      append_quoted_token(message_, ts);
      return fail(ParseErrorCode::kInvalidTimestamp, pos);
    }
    line_.timestamp = value;
  }

  line_.tags = tags_;
  line_.fields = fields_;
  return LineKind::kPoint;
}

}  // namespace kpid::ingest

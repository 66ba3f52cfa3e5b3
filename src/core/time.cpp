#include "kpid/core/time.h"

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <limits>
#include <optional>
#include <system_error>

namespace kpid {

namespace {

constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr int64_t kMsPerDay = 24 * kMsPerHour;
constexpr int64_t kMsPerWeek = 7 * kMsPerDay;
constexpr int64_t kMsPerYear = 365 * kMsPerDay;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// ---- exact decimal numbers (Go strconv.ParseFloat syntax, decimal forms only) ----

// A decimal number held exactly: (-1)^negative * digits * 10^exponent. `digits` has no leading
// zeros; it is empty for zero.
struct Decimal {
  bool negative = false;
  std::string digits;
  int64_t exponent = 0;
};

// Accepts [+-]? (D+ ('.' D*)? | '.' D+) ([eE] [+-]? D+)?, the decimal subset of what Go's
// strconv.ParseFloat accepts. Special values (Inf, NaN) and hex floats are not accepted.
std::optional<Decimal> parse_decimal(std::string_view s) {
  Decimal d;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    d.negative = s[i] == '-';
    ++i;
  }
  size_t mantissa_digits = 0;
  int64_t fraction_digits = 0;
  bool seen_dot = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (seen_dot) return std::nullopt;
      seen_dot = true;
      continue;
    }
    if (!is_digit(c)) break;
    ++mantissa_digits;
    if (seen_dot) ++fraction_digits;
    if (c == '0' && d.digits.empty()) continue;  // leading zero
    d.digits.push_back(c);
  }
  if (mantissa_digits == 0) return std::nullopt;
  int64_t exp = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      exp_negative = s[i] == '-';
      ++i;
    }
    size_t exp_digits = 0;
    for (; i < s.size() && is_digit(s[i]); ++i, ++exp_digits) {
      // Saturate: anything this large overflows (or underflows to zero) anyway.
      if (exp < 1'000'000'000) exp = exp * 10 + (s[i] - '0');
    }
    if (exp_digits == 0) return std::nullopt;
    if (exp_negative) exp = -exp;
  }
  if (i != s.size()) return std::nullopt;
  // Trailing zeros of the digit string only make the exponent smaller; keep them, harmless.
  d.exponent = exp - fraction_digits;
  return d;
}

enum class Rounding { kFloor, kNearest };

// value * 10^scale as an int64, rounded as asked; nullopt when it does not fit.
std::optional<int64_t> decimal_to_int(const Decimal& d, int64_t scale, Rounding rounding) {
  if (d.digits.empty()) return 0;
  int64_t e = d.exponent + scale;
  const int64_t n = static_cast<int64_t>(d.digits.size());
  // Split into integer digits [0, int_len) and the discarded fraction.
  int64_t int_len = e >= 0 ? n : n + e;  // may be <= 0
  if (int_len + (e > 0 ? e : 0) > 20) return std::nullopt;
  uint64_t magnitude = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  auto mul_add = [&](int digit) {
    if (magnitude > (kMax - static_cast<uint64_t>(digit)) / 10) return false;
    magnitude = magnitude * 10 + static_cast<uint64_t>(digit);
    return true;
  };
  for (int64_t i = 0; i < int_len; ++i) {
    if (!mul_add(d.digits[static_cast<size_t>(i)] - '0')) return std::nullopt;
  }
  if (e > 0) {
    for (int64_t i = 0; i < e; ++i) {
      if (!mul_add(0)) return std::nullopt;
    }
  }
  bool round_up = false;
  if (e < 0) {
    const int64_t frac_start = int_len > 0 ? int_len : 0;
    bool frac_nonzero = false;
    for (int64_t i = frac_start; i < n; ++i) {
      if (d.digits[static_cast<size_t>(i)] != '0') frac_nonzero = true;
    }
    if (rounding == Rounding::kFloor) {
      round_up = d.negative && frac_nonzero;
    } else {
      // The first discarded digit is a real digit only when no implicit zeros precede it.
      round_up = int_len >= 0 && int_len < n && d.digits[static_cast<size_t>(int_len)] >= '5';
    }
  }
  if (round_up) {
    if (magnitude == kMax) return std::nullopt;
    ++magnitude;
  }
  constexpr uint64_t kMaxPositive = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (d.negative) {
    if (magnitude > kMaxPositive + 1) return std::nullopt;
    if (magnitude == kMaxPositive + 1) return std::numeric_limits<int64_t>::min();
    return -static_cast<int64_t>(magnitude);
  }
  if (magnitude > kMaxPositive) return std::nullopt;
  return static_cast<int64_t>(magnitude);
}

// ---- calendar ----

// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days-from-civil algorithm).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                   // [0, 399]
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           // [0, 146096]
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month;
  int day;
};

Civil civil_from_days(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;                                       // [0, 146096]
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;                             // [1, 31]
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;                                // [1, 12]
  return {m <= 2 ? yoe + era * 400 + 1 : yoe + era * 400, static_cast<int>(m), static_cast<int>(d)};
}

bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int64_t y, int m) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && is_leap(y)) return 29;
  return kDays[static_cast<size_t>(m - 1)];
}

// Reads exactly `count` digits at s[pos]; advances pos.
bool read_fixed_digits(std::string_view s, size_t& pos, size_t count, int& out) {
  if (pos + count > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < count; ++i) {
    char c = s[pos + i];
    if (!is_digit(c)) return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  pos += count;
  return true;
}

bool expect_char(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

// RFC 3339: YYYY-MM-DD('T'|'t')hh:mm:ss(.f+)?('Z'|('+'|'-')hh:mm).
std::optional<TimestampMs> parse_rfc3339(std::string_view s) {
  size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_fixed_digits(s, pos, 4, year) || !expect_char(s, pos, '-') ||
      !read_fixed_digits(s, pos, 2, month) || !expect_char(s, pos, '-') ||
      !read_fixed_digits(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't')) return std::nullopt;
  ++pos;
  if (!read_fixed_digits(s, pos, 2, hour) || !expect_char(s, pos, ':') ||
      !read_fixed_digits(s, pos, 2, minute) || !expect_char(s, pos, ':') ||
      !read_fixed_digits(s, pos, 2, second)) {
    return std::nullopt;
  }
  int64_t frac_ms = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t n = 0;
    int64_t scale = 100;
    for (; pos < s.size() && is_digit(s[pos]); ++pos, ++n) {
      frac_ms += (s[pos] - '0') * scale;  // digits past the third truncate (scale reaches 0)
      scale /= 10;
    }
    if (n == 0) return std::nullopt;
  }
  int64_t offset_minutes = 0;
  if (pos >= s.size()) return std::nullopt;
  if (s[pos] == 'Z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    const bool negative = s[pos] == '-';
    ++pos;
    int oh = 0, om = 0;
    if (!read_fixed_digits(s, pos, 2, oh) || !expect_char(s, pos, ':') ||
        !read_fixed_digits(s, pos, 2, om)) {
      return std::nullopt;
    }
    if (oh > 23 || om > 59) return std::nullopt;
    offset_minutes = (negative ? -1 : 1) * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  const int64_t days = days_from_civil(year, month, day);
  const int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1000 + frac_ms;
}

void append_int(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  out.append(buf, end);
}

void append_padded(std::string& out, int64_t v, int width) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  (void)ec;
  for (int i = static_cast<int>(end - buf); i < width; ++i) out.push_back('0');
  out.append(buf, end);
}

// Magnitude of a possibly negative int64, without overflow for INT64_MIN.
uint64_t magnitude(int64_t v) {
  return v < 0 ? ~static_cast<uint64_t>(v) + 1 : static_cast<uint64_t>(v);
}

}  // namespace

Result<DurationMs> parse_duration(std::string_view text) {
  auto fail = [&](const std::string& why) -> Status {
    return Status::invalid_argument("invalid duration " + quote(text) + ": " + why);
  };
  if (text.empty()) return fail("empty duration");
  if (text == "0") return DurationMs{0};  // Prometheus accepts a bare zero.

  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  // In the only order allowed, largest first.
  static constexpr std::array<Unit, 7> kUnits = {{{"y", kMsPerYear},
                                                  {"w", kMsPerWeek},
                                                  {"d", kMsPerDay},
                                                  {"h", kMsPerHour},
                                                  {"m", kMsPerMinute},
                                                  {"s", kMsPerSecond},
                                                  {"ms", 1}}};
  int64_t total = 0;
  int last_unit = -1;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t num_start = pos;
    while (pos < text.size() && is_digit(text[pos])) ++pos;
    if (pos == num_start) {
      return fail("expected a number at \"" + std::string(text.substr(pos)) + "\"");
    }
    const std::string_view number = text.substr(num_start, pos - num_start);
    const size_t unit_start = pos;
    while (pos < text.size() && !is_digit(text[pos])) ++pos;
    const std::string_view unit = text.substr(unit_start, pos - unit_start);
    if (unit.empty()) return fail("missing unit after \"" + std::string(number) + "\"");
    int index = -1;
    for (size_t i = 0; i < kUnits.size(); ++i) {
      if (kUnits[i].name == unit) index = static_cast<int>(i);
    }
    if (index < 0) {
      return fail("unknown unit \"" + std::string(unit) +
                  "\" (valid units are y, w, d, h, m, s, ms)");
    }
    if (index == last_unit) return fail("unit \"" + std::string(unit) + "\" repeated");
    if (index < last_unit) {
      return fail("unit \"" + std::string(unit) + "\" after \"" +
                  std::string(kUnits[static_cast<size_t>(last_unit)].name) +
                  "\"; units must be in decreasing order (y, w, d, h, m, s, ms)");
    }
    last_unit = index;
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    (void)ptr;
    const int64_t mult = kUnits[static_cast<size_t>(index)].ms;
    if (ec != std::errc{} || value > std::numeric_limits<int64_t>::max() / mult ||
        value * mult > std::numeric_limits<int64_t>::max() - total) {
      return fail("value overflows int64 milliseconds");
    }
    total += value * mult;
  }
  return total;
}

Result<DurationMs> parse_step(std::string_view text) {
  DurationMs step = 0;
  if (auto decimal = parse_decimal(text)) {
    auto ms = decimal_to_int(*decimal, 3, Rounding::kNearest);
    if (!ms) {
      return Status::invalid_argument("cannot parse " + quote(text) +
                                      " to a valid duration. It overflows int64");
    }
    step = *ms;
  } else {
    auto duration = parse_duration(text);
    if (!duration) {
      return Status::invalid_argument("cannot parse " + quote(text) + " to a valid duration");
    }
    step = *duration;
  }
  if (step <= 0) {
    return Status::invalid_argument(
        "zero or negative query resolution step widths are not accepted. Try a positive "
        "integer");
  }
  return step;
}

Result<TimestampMs> parse_time(std::string_view text) {
  if (auto decimal = parse_decimal(text)) {
    if (auto ms = decimal_to_int(*decimal, 3, Rounding::kFloor)) return *ms;
    return Status::invalid_argument("cannot parse " + quote(text) +
                                    " to a valid timestamp: out of range");
  }
  if (auto ms = parse_rfc3339(text)) return *ms;
  return Status::invalid_argument("cannot parse " + quote(text) + " to a valid timestamp");
}

std::string format_duration(DurationMs duration) {
  if (duration == 0) return "0s";
  std::string out;
  if (duration < 0) out.push_back('-');
  uint64_t ms = magnitude(duration);
  // Years and weeks only when they divide the whole duration evenly ("90d", not "12w6d").
  auto emit = [&](uint64_t unit_ms, std::string_view unit, bool only_exact) {
    if (only_exact && ms % unit_ms != 0) return;
    const uint64_t count = ms / unit_ms;
    if (count == 0) return;
    append_int(out, count);
    out.append(unit);
    ms -= count * unit_ms;
  };
  emit(kMsPerYear, "y", true);
  emit(kMsPerWeek, "w", true);
  emit(kMsPerDay, "d", false);
  emit(kMsPerHour, "h", false);
  emit(kMsPerMinute, "m", false);
  emit(kMsPerSecond, "s", false);
  emit(1, "ms", false);
  return out;
}

void append_unix_seconds(std::string& out, TimestampMs ms) {
  if (ms < 0) out.push_back('-');
  const uint64_t m = magnitude(ms);
  append_int(out, m / 1000);
  uint64_t frac = m % 1000;
  if (frac == 0) return;
  char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                    static_cast<char>('0' + frac % 10)};
  size_t len = 3;
  while (digits[len - 1] == '0') --len;
  out.push_back('.');
  out.append(digits, len);
}

void append_prom_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  // Shortest round-trip digits in scientific form "d.ddde±XX", then laid out in fixed notation
  // (as Go's 'f', -1 does: 1e23 prints as 1 followed by 23 zeros).
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  (void)ec;
  std::string_view sci(buf, static_cast<size_t>(end - buf));
  if (!sci.empty() && sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string_view mantissa = sci.substr(0, e_pos);
  int exp = 0;
  {
    std::string_view e = sci.substr(e_pos + 1);
    if (!e.empty() && e.front() == '+') e.remove_prefix(1);
    std::from_chars(e.data(), e.data() + e.size(), exp);
  }
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits.push_back(c);
  }
  // value = 0.digits * 10^(exp + 1); the decimal point goes after `point` digits.
  const int point = exp + 1;
  const int n = static_cast<int>(digits.size());
  if (point <= 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-point), '0');
    out.append(digits);
  } else if (point >= n) {
    out.append(digits);
    out.append(static_cast<size_t>(point - n), '0');
  } else {
    out.append(digits, 0, static_cast<size_t>(point));
    out.push_back('.');
    out.append(digits, static_cast<size_t>(point), std::string::npos);
  }
}

void append_rfc3339(std::string& out, TimestampMs ms) {
  // Floor division so times before 1970 land on the right day.
  int64_t days = ms / kMsPerDay;
  int64_t rem = ms % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --days;
  }
  const Civil c = civil_from_days(days);
  if (c.year < 0) {
    out.push_back('-');
    append_padded(out, -c.year, 4);
  } else {
    append_padded(out, c.year, 4);
  }
  out.push_back('-');
  append_padded(out, c.month, 2);
  out.push_back('-');
  append_padded(out, c.day, 2);
  out.push_back('T');
  append_padded(out, rem / kMsPerHour, 2);
  out.push_back(':');
  append_padded(out, rem / kMsPerMinute % 60, 2);
  out.push_back(':');
  append_padded(out, rem / kMsPerSecond % 60, 2);
  out.push_back('.');
  append_padded(out, rem % 1000, 3);
  out.push_back('Z');
}

int64_t SystemClock::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::pair<TimestampMs, TimestampMs> calendar_period(int months, TimestampMs at) {
  const std::time_t seconds = static_cast<std::time_t>(at / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  std::tm start{};
  start.tm_year = tm.tm_year;
  start.tm_mon = tm.tm_mon / months * months;
  start.tm_mday = 1;
  std::tm end = start;
  end.tm_mon += months;
  return {static_cast<TimestampMs>(timegm(&start)) * 1000,
          static_cast<TimestampMs>(timegm(&end)) * 1000};
}

}  // namespace kpid

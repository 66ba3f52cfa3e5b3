#include "kpid/core/time.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

using namespace kpid;

namespace {

constexpr int64_t kSecond = 1000;
constexpr int64_t kMinute = 60 * kSecond;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;
constexpr int64_t kWeek = 7 * kDay;
constexpr int64_t kYear = 365 * kDay;

template <typename T>
std::string error_of(const Result<T>& r) {
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

std::string unix_seconds(TimestampMs ms) {
  std::string out;
  append_unix_seconds(out, ms);
  return out;
}

std::string prom_float(double v) {
  std::string out;
  append_prom_float(out, v);
  return out;
}

std::string rfc3339(TimestampMs ms) {
  std::string out;
  append_rfc3339(out, ms);
  return out;
}

}  // namespace

TEST_CASE("parse_duration accepts every unit", "[time]") {
  const std::vector<std::pair<std::string, int64_t>> cases = {
      {"250ms", 250},
      {"1s", kSecond},
      {"15s", 15 * kSecond},
      {"5m", 5 * kMinute},
      {"2h", 2 * kHour},
      {"3d", 3 * kDay},
      {"4w", 4 * kWeek},
      {"1y", kYear},
      {"0s", 0},
      {"0ms", 0},
      {"0", 0},
      {"007s", 7 * kSecond},
      {"90d", 90 * kDay},
      {"1000ms", kSecond},
      {"61m", 61 * kMinute},
  };
  for (const auto& [text, want] : cases) {
    INFO(text);
    auto r = parse_duration(text);
    REQUIRE(r.is_ok());
    CHECK(*r == want);
  }
}

TEST_CASE("parse_duration accepts units combined in decreasing order", "[time]") {
  CHECK(*parse_duration("1h30m") == kHour + 30 * kMinute);
  CHECK(*parse_duration("1s500ms") == 1500);
  CHECK(*parse_duration("1y2w3d4h5m6s7ms") ==
        kYear + 2 * kWeek + 3 * kDay + 4 * kHour + 5 * kMinute + 6 * kSecond + 7);
  CHECK(*parse_duration("1d1h1m1s1ms") == 90061001);
  CHECK(*parse_duration("2w1ms") == 2 * kWeek + 1);
  CHECK(*parse_duration("5m0s") == 5 * kMinute);
}

TEST_CASE("parse_duration rejects malformed text and names it", "[time]") {
  CHECK(error_of(parse_duration("5x")) ==
        "invalid duration \"5x\": unknown unit \"x\" (valid units are y, w, d, h, m, s, ms)");
  CHECK(error_of(parse_duration("")).find("empty") != std::string::npos);
  CHECK(error_of(parse_duration("5")).find("missing unit") != std::string::npos);
  CHECK(error_of(parse_duration("1h30")).find("missing unit") != std::string::npos);
  CHECK(error_of(parse_duration("s")).find("expected a number") != std::string::npos);
  CHECK(error_of(parse_duration("1hm")).find("unknown unit \"hm\"") != std::string::npos);
  CHECK(error_of(parse_duration("5mss")).find("unknown unit") != std::string::npos);
  CHECK(error_of(parse_duration("5S")).find("unknown unit \"S\"") != std::string::npos);
  for (const char* bad : {"-5m", "+5m", "1.5h", "5 m", " 5m", "5m ", "1h 30m", "5µs", "5ns", "5us",
                          "0x10s", "-0", "00"}) {
    INFO(bad);
    auto r = parse_duration(bad);
    CHECK_FALSE(r.is_ok());
    if (!r) CHECK(r.status().message().find(std::string("\"") + bad + "\"") != std::string::npos);
  }
}

TEST_CASE("parse_duration rejects units out of order or repeated", "[time]") {
  CHECK(error_of(parse_duration("30m1h")).find("decreasing order") != std::string::npos);
  CHECK(error_of(parse_duration("1ms1s")).find("decreasing order") != std::string::npos);
  CHECK(error_of(parse_duration("1d1w")).find("decreasing order") != std::string::npos);
  CHECK(error_of(parse_duration("1s1y")).find("decreasing order") != std::string::npos);
  CHECK(error_of(parse_duration("1m1m")).find("repeated") != std::string::npos);
  CHECK(error_of(parse_duration("1s2s")).find("repeated") != std::string::npos);
  CHECK(error_of(parse_duration("1ms1ms")).find("repeated") != std::string::npos);
}

TEST_CASE("parse_duration detects int64 overflow", "[time]") {
  const int64_t max = std::numeric_limits<int64_t>::max();
  CHECK(*parse_duration("9223372036854775807ms") == max);
  CHECK(error_of(parse_duration("9223372036854775808ms")).find("overflow") != std::string::npos);
  CHECK(error_of(parse_duration("99999999999999999999999ms")).find("overflow") !=
        std::string::npos);
  // About 292471 years (of 365 days) fit in int64 milliseconds.
  CHECK(error_of(parse_duration("300000000y")).find("overflow") != std::string::npos);
  CHECK(*parse_duration("292471y") == 292471 * kYear);
  // Each term fits but the sum does not.
  CHECK(error_of(parse_duration("9223372036854775s1000ms")).find("overflow") != std::string::npos);
  CHECK(*parse_duration("9223372036854775s807ms") == max);
}

TEST_CASE("parse_step accepts float seconds", "[time]") {
  CHECK(*parse_step("15") == 15 * kSecond);
  CHECK(*parse_step("0.5") == 500);
  CHECK(*parse_step("1e3") == 1000 * kSecond);
  CHECK(*parse_step("1E-3") == 1);
  CHECK(*parse_step("+2") == 2 * kSecond);
  CHECK(*parse_step(".25") == 250);
  CHECK(*parse_step("3.") == 3 * kSecond);
  CHECK(*parse_step("0.0015") == 2);  // rounds to the nearest millisecond
  CHECK(*parse_step("0.0014") == 1);
  CHECK(*parse_step("0.0005") == 1);
  CHECK(*parse_step("1.2345") == 1235);
  CHECK(*parse_step("86400") == kDay);
}

TEST_CASE("parse_step accepts durations", "[time]") {
  CHECK(*parse_step("15s") == 15 * kSecond);
  CHECK(*parse_step("5m") == 5 * kMinute);
  CHECK(*parse_step("1h30m") == kHour + 30 * kMinute);
  CHECK(*parse_step("100ms") == 100);
}

TEST_CASE("parse_step rejects garbage, zero and negatives", "[time]") {
  CHECK(error_of(parse_step("abc")) == "cannot parse \"abc\" to a valid duration");
  CHECK(error_of(parse_step("")) == "cannot parse \"\" to a valid duration");
  CHECK(error_of(parse_step("5x")) == "cannot parse \"5x\" to a valid duration");
  CHECK(error_of(parse_step("1e")) == "cannot parse \"1e\" to a valid duration");
  CHECK(error_of(parse_step("NaN")) == "cannot parse \"NaN\" to a valid duration");
  CHECK(error_of(parse_step("1.2.3")) == "cannot parse \"1.2.3\" to a valid duration");
  const std::string zero =
      "zero or negative query resolution step widths are not accepted. Try a positive integer";
  CHECK(error_of(parse_step("0")) == zero);
  CHECK(error_of(parse_step("0s")) == zero);
  CHECK(error_of(parse_step("0.0")) == zero);
  CHECK(error_of(parse_step("-1")) == zero);
  CHECK(error_of(parse_step("-0.5")) == zero);
  CHECK(error_of(parse_step("0.0004")) == zero);  // rounds to 0 ms
  CHECK(error_of(parse_step("1e30")).find("overflows") != std::string::npos);
}

TEST_CASE("parse_time accepts Unix seconds", "[time]") {
  CHECK(*parse_time("1700000000") == 1700000000000);
  CHECK(*parse_time("1700000000.123") == 1700000000123);
  CHECK(*parse_time("1700000000.1") == 1700000000100);
  CHECK(*parse_time("1435781430.781") == 1435781430781);
  CHECK(*parse_time("0") == 0);
  CHECK(*parse_time("-0") == 0);
  CHECK(*parse_time("-5.5") == -5500);
  CHECK(*parse_time("-1") == -1000);
  CHECK(*parse_time("+7") == 7000);
  CHECK(*parse_time("1.7e9") == 1700000000000);
  CHECK(*parse_time("1.7E+9") == 1700000000000);
  CHECK(*parse_time("17e-1") == 1700);
  CHECK(*parse_time(".5") == 500);
  CHECK(*parse_time("12.") == 12000);
  CHECK(*parse_time("0.000000000000000000000000000001e30") == 1000);
}

TEST_CASE("parse_time floors sub-millisecond digits toward negative infinity", "[time]") {
  CHECK(*parse_time("1.0009") == 1000);
  CHECK(*parse_time("1.9999") == 1999);
  CHECK(*parse_time("0.0005") == 0);
  CHECK(*parse_time("-0.0005") == -1);
  CHECK(*parse_time("-1.0001") == -1001);
  CHECK(*parse_time("-1.0000") == -1000);
  CHECK(*parse_time("-1.5e-4") == -1);
}

TEST_CASE("parse_time accepts RFC 3339", "[time]") {
  CHECK(*parse_time("2023-11-14T22:13:20Z") == 1700000000000);
  CHECK(*parse_time("2023-11-14t22:13:20Z") == 1700000000000);
  CHECK(*parse_time("2023-11-14T22:13:20.5+01:00") == 1699996400500);
  CHECK(*parse_time("2023-11-14T22:13:20-05:30") == 1700000000000 + (5 * 60 + 30) * kMinute);
  CHECK(*parse_time("2023-11-14T22:13:20+00:00") == 1700000000000);
  CHECK(*parse_time("2015-07-01T20:10:30.781Z") == 1435781430781);
  CHECK(*parse_time("2015-07-01T20:10:30.781123456Z") == 1435781430781);
  CHECK(*parse_time("2015-07-01T20:10:30.7819999999999999Z") == 1435781430781);
  CHECK(*parse_time("2015-07-01T20:10:30.7Z") == 1435781430700);
  CHECK(*parse_time("1970-01-01T00:00:00Z") == 0);
  CHECK(*parse_time("1969-12-31T23:59:59.999Z") == -1);
  CHECK(*parse_time("1969-12-31T23:59:59.9995Z") == -1);
  CHECK(*parse_time("0000-01-01T00:00:00Z") == -62167219200000);
  CHECK(*parse_time("9999-12-31T23:59:59Z") == 253402300799000);
  CHECK(*parse_time("2000-02-29T00:00:00Z") == 951782400000);
  CHECK(*parse_time("2024-02-29T12:00:00Z") == 1709208000000);
}

TEST_CASE("parse_time rejects invalid timestamps", "[time]") {
  CHECK(error_of(parse_time("xyz")) == "cannot parse \"xyz\" to a valid timestamp");
  for (const char* bad : {
           "",
           "2023-02-30T00:00:00Z",       // no Feb 30
           "2023-02-29T00:00:00Z",       // not a leap year
           "1900-02-29T00:00:00Z",       // century, not a leap year
           "2023-13-01T00:00:00Z",       // month 13
           "2023-00-01T00:00:00Z",       // month 0
           "2023-04-31T00:00:00Z",       // April has 30 days
           "2023-01-00T00:00:00Z",       // day 0
           "2023-01-01T24:00:00Z",       // hour 24
           "2023-01-01T00:60:00Z",       // minute 60
           "2023-01-01T00:00:60Z",       // no leap seconds
           "2023-01-01T00:00:00",        // no zone
           "2023-01-01 00:00:00Z",       // space separator
           "2023-01-01T00:00:00.Z",      // empty fraction
           "2023-01-01T00:00:00+0100",   // offset needs a colon
           "2023-01-01T00:00:00+24:00",  // offset hour out of range
           "2023-01-01T00:00:00+01:60",  // offset minute out of range
           "2023-01-01T00:00:00Zjunk",
           "23-01-01T00:00:00Z",     // two-digit year
           "12023-01-01T00:00:00Z",  // five-digit year
           "2023-1-01T00:00:00Z",
           "2023-01-01",
           "1e",
           "1.2.3",
           "--1",
           "NaN",
           "Inf",
           " 1",
           "1 ",
       }) {
    INFO(bad);
    auto r = parse_time(bad);
    CHECK_FALSE(r.is_ok());
    if (!r) {
      CHECK(r.status().message().find(std::string("cannot parse \"") + bad + "\"") !=
            std::string::npos);
    }
  }
  // Does not fit int64 milliseconds.
  CHECK_FALSE(parse_time("1e17").is_ok());
  CHECK_FALSE(parse_time("-9223372036854776").is_ok());
  CHECK(*parse_time("9223372036854775.807") == std::numeric_limits<int64_t>::max());
  CHECK(*parse_time("-9223372036854775.808") == std::numeric_limits<int64_t>::min());
  CHECK_FALSE(parse_time("9223372036854775.808").is_ok());
  CHECK_FALSE(parse_time("-9223372036854775.8081").is_ok());  // floors below the minimum
}

TEST_CASE("format_duration uses Prometheus' shortest form", "[time]") {
  CHECK(format_duration(0) == "0s");
  CHECK(format_duration(1) == "1ms");
  CHECK(format_duration(1500) == "1s500ms");
  CHECK(format_duration(300000) == "5m");
  CHECK(format_duration(5400000) == "1h30m");
  CHECK(format_duration(kDay) == "1d");
  CHECK(format_duration(90061001) == "1d1h1m1s1ms");
  CHECK(format_duration(604800000) == "1w");
  CHECK(format_duration(2 * kWeek) == "2w");
  CHECK(format_duration(kYear) == "1y");
  CHECK(format_duration(2 * kYear) == "2y");
  // Years and weeks only when they divide the duration exactly.
  CHECK(format_duration(8 * kDay) == "8d");
  CHECK(format_duration(90 * kDay) == "90d");
  CHECK(format_duration(kYear + kDay) == "366d");
  CHECK(format_duration(kWeek + kHour) == "7d1h");
  CHECK(format_duration(-1500) == "-1s500ms");
  CHECK(format_duration(std::numeric_limits<int64_t>::min()).front() == '-');
}

TEST_CASE("format_duration round-trips through parse_duration", "[time]") {
  for (int64_t d : {int64_t{1}, int64_t{999}, int64_t{1000}, int64_t{61001}, 90061001 + kWeek,
                    kYear, 3 * kYear + 5, 12345678901234, std::numeric_limits<int64_t>::max()}) {
    INFO(d);
    const std::string text = format_duration(d);
    auto back = parse_duration(text);
    REQUIRE(back.is_ok());
    CHECK(*back == d);
  }
}

TEST_CASE("append_unix_seconds prints up to three decimals", "[time]") {
  CHECK(unix_seconds(1435781430781) == "1435781430.781");
  CHECK(unix_seconds(1435781430000) == "1435781430");
  CHECK(unix_seconds(1435781430700) == "1435781430.7");
  CHECK(unix_seconds(1435781430780) == "1435781430.78");
  CHECK(unix_seconds(1435781430001) == "1435781430.001");
  CHECK(unix_seconds(0) == "0");
  CHECK(unix_seconds(1) == "0.001");
  CHECK(unix_seconds(-1) == "-0.001");
  CHECK(unix_seconds(-1500) == "-1.5");
  CHECK(unix_seconds(-1000) == "-1");
  CHECK(unix_seconds(std::numeric_limits<int64_t>::max()) == "9223372036854775.807");
  CHECK(unix_seconds(std::numeric_limits<int64_t>::min()) == "-9223372036854775.808");
  std::string out = "x=";
  append_unix_seconds(out, 2500);
  CHECK(out == "x=2.5");  // appends
}

TEST_CASE("append_unix_seconds round-trips through parse_time", "[time]") {
  for (int64_t ms : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{-999}, int64_t{1700000000123},
                     int64_t{-62167219200001}}) {
    INFO(ms);
    CHECK(*parse_time(unix_seconds(ms)) == ms);
  }
}

TEST_CASE("append_prom_float matches Go's FormatFloat 'f' -1", "[time]") {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.0, "0"},
      {-0.0, "-0"},
      {3.0, "3"},
      {-3.0, "-3"},
      {0.1, "0.1"},
      {1.5, "1.5"},
      {-2.25, "-2.25"},
      {100.0, "100"},
      {123456.789, "123456.789"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1e21, "1000000000000000000000"},
      {1e23, "100000000000000000000000"},
      {1e-7, "0.0000001"},
      {1.5e-5, "0.000015"},
      {9007199254740993.0, "9007199254740992"},
      {1.7976931348623157e308, "17976931348623157" + std::string(292, '0')},
      {5e-324, "0." + std::string(323, '0') + "5"},
      {2.2250738585072014e-308, "0." + std::string(307, '0') + "22250738585072014"},
      {std::nan(""), "NaN"},
      {std::numeric_limits<double>::infinity(), "+Inf"},
      {-std::numeric_limits<double>::infinity(), "-Inf"},
  };
  for (const auto& [value, want] : cases) {
    INFO(want);
    CHECK(prom_float(value) == want);
  }
  std::string out = "v=";
  append_prom_float(out, 42.5);
  CHECK(out == "v=42.5");
}

TEST_CASE("append_rfc3339 prints UTC with milliseconds", "[time]") {
  CHECK(rfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(rfc3339(1700000000123) == "2023-11-14T22:13:20.123Z");
  CHECK(rfc3339(1435781430781) == "2015-07-01T20:10:30.781Z");
  CHECK(rfc3339(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(rfc3339(951782400000) == "2000-02-29T00:00:00.000Z");
  CHECK(rfc3339(253402300799999) == "9999-12-31T23:59:59.999Z");
  CHECK(rfc3339(-62167219200000) == "0000-01-01T00:00:00.000Z");
}

TEST_CASE("append_rfc3339 round-trips through parse_time", "[time]") {
  for (int64_t ms = -62167219200000; ms < 253402300799999; ms += 7777777777777) {
    INFO(ms);
    auto back = parse_time(rfc3339(ms));
    REQUIRE(back.is_ok());
    CHECK(*back == ms);
  }
}

TEST_CASE("Clock::now_ms derives from now_ns", "[time]") {
  struct FixedClock final : Clock {
    int64_t now_ns() const override { return 1'700'000'000'123'456'789; }
  };
  FixedClock clock;
  CHECK(clock.now_ms() == 1'700'000'000'123);
  SystemClock system;
  CHECK(system.now_ms() > 1'600'000'000'000);  // after 2020
}

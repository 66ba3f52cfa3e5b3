// HTTP write path: /write and /api/v2/write, precisions, gzip, field types, series naming,
// partial writes, body limits, overwrite and out-of-order data.

#include <random>
#include <thread>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;
namespace json = boost::json;

namespace {

struct PrecisionCase {
  std::string precision;  // "" = default (ns)
  int64_t ts;             // timestamp in that unit
  int64_t expected_ms;
};

std::vector<PrecisionCase> precision_cases(int64_t b) {
  const int64_t b_ns = b * 1'000'000;
  return {
      {"", b_ns + 123'456'789, b + 123},  // default is ns; truncated to ms
      {"ns", b_ns + 123'456'789, b + 123},
      {"n", b_ns + 456'999'999, b + 456},
      {"us", b * 1000 + 123'456, b + 123},
      {"u", b * 1000 + 789'999, b + 789},
      {"ms", b + 321, b + 321},
      {"s", b / 1000 + 7, b + 7000},
      {"m", b / 60'000 + 2, b + 120'000},
      {"h", b / 3'600'000 - 1, b - 3'600'000},
  };
}

std::string measurement_for(std::string_view prefix, const std::string& precision) {
  return std::string(prefix) + (precision.empty() ? "default" : precision);
}

}  // namespace

TEST_CASE("write: every precision via /write is stored at the right millisecond", "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  const auto cases = precision_cases(b);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    k.write_ok(measurement_for("prec_", c.precision) + ",host=a value=" + std::to_string(i + 1) +
                   " " + std::to_string(c.ts) + "\n",
               c.precision);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string m = measurement_for("prec_", c.precision);
    INFO("precision '" << c.precision << "' ts " << c.ts << " expected at " << c.expected_ms
                       << " ms");
    const LabelMap labels = require_value_at(k, m, c.expected_ms, static_cast<double>(i + 1));
    CHECK(labels == LabelMap{{"__name__", m}, {"host", "a"}});
    // Nothing one millisecond earlier: the sample sits exactly at expected_ms.
    require_empty_at(k, m, c.expected_ms - 1);
  }
}

TEST_CASE("write: /api/v2/write with ns, ms and s precision", "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  const std::vector<PrecisionCase> cases = {
      {"ns", b * 1'000'000 + 5'000'001, b + 5},
      {"ms", b + 250, b + 250},
      {"s", b / 1000 + 3, b + 3000},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    k.write_ok(measurement_for("v2prec_", c.precision) + " value=" + std::to_string(10 + i) + " " +
                   std::to_string(c.ts),
               c.precision, /*v2=*/true);
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    INFO("precision " << c.precision);
    require_value_at(k, measurement_for("v2prec_", c.precision), c.expected_ms,
                     static_cast<double>(10 + i));
    require_empty_at(k, measurement_for("v2prec_", c.precision), c.expected_ms - 1);
  }
}

TEST_CASE("write: query_range returns written values at their steps", "[write][query]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  k.write_ok("rng,host=a value=1 " + std::to_string(b) + "\n" +               //
                 "rng,host=a value=2 " + std::to_string(b + 10'000) + "\n" +  //
                 "rng,host=a value=3.25 " + std::to_string(b + 20'000) + "\n",
             "ms");

  const std::vector<std::pair<int64_t, std::string>> expected = {
      {b, "1"}, {b + 10'000, "2"}, {b + 20'000, "3.25"}, {b + 30'000, "3.25"}};

  SECTION("unix seconds and numeric step") {
    const auto r = k.query_range("rng", fmt_seconds(b), fmt_seconds(b + 30'000), "10");
    REQUIRE(r.size() == 1);
    CHECK(r[0].metric == LabelMap{{"__name__", "rng"}, {"host", "a"}});
    REQUIRE(r[0].values.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      CHECK(r[0].values[i].first == expected[i].first);
      CHECK(num(r[0].values[i].second) == num(expected[i].second));
    }
  }
  SECTION("RFC 3339 times and duration step") {
    const auto r = k.query_range("rng", fmt_rfc3339(b), fmt_rfc3339(b + 30'000), "10s");
    REQUIRE(r.size() == 1);
    REQUIRE(r[0].values.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      CHECK(r[0].values[i].first == expected[i].first);
      CHECK(num(r[0].values[i].second) == num(expected[i].second));
    }
  }
  SECTION("steps before the first sample are absent") {
    const auto r = k.query_range("rng", fmt_seconds(b - 20'000), fmt_seconds(b + 5'000), "5");
    REQUIRE(r.size() == 1);
    // b-20s, b-15s, b-10s, b-5s: nothing yet; b, b+5s: value 1.
    REQUIRE(r[0].values.size() == 2);
    CHECK(r[0].values[0].first == b);
    CHECK(r[0].values[1].first == b + 5'000);
    CHECK(num(r[0].values[1].second) == 1);
  }
}

TEST_CASE("write: gzip-encoded bodies on both endpoints, bad gzip is 400", "[write][gzip]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  std::string body;
  for (int i = 0; i < 50; ++i)
    body += "gz,host=h" + std::to_string(i) + " value=" + std::to_string(i) + " " +
            std::to_string(b) + "\n";

  auto r = k.write(body, "ms", /*v2=*/false, /*gzipped=*/true);
  INFO("gzip /write -> " << r.status << " " << r.body);
  REQUIRE(r.status == 204);
  r = k.write("gz2 value=42 " + std::to_string(b), "ms", /*v2=*/true, /*gzipped=*/true);
  INFO("gzip /api/v2/write -> " << r.status << " " << r.body);
  REQUIRE(r.status == 204);

  const auto v = k.query_at_ms("gz", b);
  CHECK(v.size() == 50);
  const auto* s = find_sample(v, {{"__name__", "gz"}, {"host", "h17"}});
  REQUIRE(s != nullptr);
  CHECK(num(s->value) == 17);
  require_value_at(k, "gz2", b, 42);

  const auto bad =
      k.post("/write?precision=ms", "this is not gzip data\n", {{"Content-Encoding", "gzip"}});
  INFO("bad gzip -> " << bad.status << " " << bad.body);
  CHECK(bad.status == 400);
  // A truncated gzip stream is also bad.
  const std::string gz = gzip("trunc value=1 " + std::to_string(b) + "\n");
  const auto truncated =
      k.post("/write?precision=ms", std::string_view(gz).substr(0, gz.size() / 2),
             {{"Content-Encoding", "gzip"}});
  INFO("truncated gzip -> " << truncated.status << " " << truncated.body);
  CHECK(truncated.status == 400);
  require_empty_at(k, "trunc", b);
}

TEST_CASE("write: field types int, uint, bool and float become float64 samples", "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  k.write_ok(
      "typ,host=a i=-5i,u=7u,bt=t,bf=false,bT=TRUE,bF=F,f=1.5,e=2e3,neg=-0.25 " + std::to_string(b),
      "ms");
  const std::vector<std::pair<std::string, double>> expected = {
      {"typ_i", -5}, {"typ_u", 7},   {"typ_bt", 1},   {"typ_bf", 0},      {"typ_bT", 1},
      {"typ_bF", 0}, {"typ_f", 1.5}, {"typ_e", 2000}, {"typ_neg", -0.25},
  };
  for (const auto& [name, value] : expected) {
    const LabelMap labels = require_value_at(k, name, b, value);
    CHECK(labels == LabelMap{{"__name__", name}, {"host", "a"}});
  }
  // A large unsigned and int64 extremes survive as float64.
  k.write_ok("big u=18446744073709551615u,i=-9223372036854775808i " + std::to_string(b), "ms");
  require_value_at(k, "big_u", b, 18446744073709551615.0);
  require_value_at(k, "big_i", b, -9223372036854775808.0);
}

TEST_CASE("write: string fields are skipped, a string-only line is 204 and adds no series",
          "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  const double skipped_before =
      metric_value(k.metrics(), "kpid_ingest_string_fields_skipped_total", {{"protocol", "http"}})
          .value_or(0);

  k.write_ok("stronly,host=a msg=\"hello world\" " + std::to_string(b), "ms");
  k.write_ok("strmix,host=a msg=\"x\",value=3 " + std::to_string(b), "ms");

  require_empty_at(k, R"({__name__=~"stronly.*"})", b);
  const auto v = k.query_at_ms(R"({__name__=~"strmix.*"})", b);
  REQUIRE(v.size() == 1);
  CHECK(v[0].metric == LabelMap{{"__name__", "strmix"}, {"host", "a"}});
  CHECK(num(v[0].value) == 3);

  const auto series =
      k.get("/api/v1/series?" + form({{"match[]", R"({__name__=~"str.*"})"}})).json();
  INFO("series: " << json::serialize(series));
  REQUIRE(series.at("status") == "success");
  CHECK(series.at("data").as_array().size() == 1);

  const auto skipped_after =
      metric_value(k.metrics(), "kpid_ingest_string_fields_skipped_total", {{"protocol", "http"}});
  REQUIRE(skipped_after.has_value());
  CHECK(*skipped_after - skipped_before == 2);
}

TEST_CASE("write: field 'value' names the series after the measurement", "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  k.write_ok("cpu,host=a value=3,usage=4 " + std::to_string(b), "ms");
  CHECK(require_value_at(k, "cpu", b, 3) == LabelMap{{"__name__", "cpu"}, {"host", "a"}});
  CHECK(require_value_at(k, "cpu_usage", b, 4) ==
        LabelMap{{"__name__", "cpu_usage"}, {"host", "a"}});
  // Only these two series exist.
  const auto all = k.query_at_ms(R"({host="a"})", b);
  CHECK(all.size() == 2);
}

TEST_CASE("write: escaped tag values read back as label values", "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  k.write_ok(R"(esc,host=a\ b,path=c\,d,eq=x\=y value=1 )" + std::to_string(b), "ms");
  const LabelMap labels = require_value_at(k, "esc", b, 1);
  CHECK(labels == LabelMap{{"__name__", "esc"}, {"host", "a b"}, {"path", "c,d"}, {"eq", "x=y"}});
  // And the values are matchable.
  require_value_at(k, R"(esc{host="a b",path="c,d",eq="x=y"})", b, 1);

  // Quotes and backslashes are literal in tag values; UTF-8 passes through.
  k.write_ok(R"(esc2,q=say"hi",u=h\u00e9llo,w=caf)" + std::string("\xc3\xa9") + " value=2 " +
                 std::to_string(b),
             "ms");
  const LabelMap labels2 = require_value_at(k, "esc2", b, 2);
  CHECK(labels2 ==
        LabelMap{
            {"__name__", "esc2"}, {"q", "say\"hi\""}, {"u", "h\\u00e9llo"}, {"w", "caf\xc3\xa9"}});
  require_value_at(k, R"(esc2{q="say\"hi\"", w="caf)" + std::string("\xc3\xa9") + "\"}", b, 2);

  const auto values = k.get("/api/v1/label/path/values").json();
  INFO(json::serialize(values));
  CHECK(values.at("data") == json::array{"c,d"});
}

TEST_CASE("write: a line without timestamp is stored at receive time", "[write]") {
  Kpid k;
  k.start();
  const int64_t before = now_ms();
  k.write_ok("recv,host=a value=9\n");
  const int64_t after = now_ms();
  require_value_at(k, "recv", after + 1, 9);
  require_empty_at(k, "recv", before - 1);
}

TEST_CASE("write: partial write stores good lines and names the bad ones", "[write][partial]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  auto ts = [&](int i) { return std::to_string(b + i * 1000); };
  const std::string body = "pw,host=a value=1 " + ts(1) + "\n" +  // line 1 ok
                           "pw,host=a value= " + ts(2) + "\n" +   // line 2: missing value
                           "pw,host=a value=3 " + ts(3) + "\n" +  // line 3 ok
                           "pw,host=a value=4 notatime\n" +       // line 4: bad timestamp
                           "pw,host=a value=5 " + ts(5) + "\n";   // line 5 ok

  for (bool v2 : {false, true}) {
    INFO((v2 ? "/api/v2/write" : "/write"));
    const HttpResponse r = k.write(body, "ms", v2);
    INFO("response " << r.status << ": " << r.body);
    CHECK(r.status == 400);
    json::value v;
    REQUIRE_NOTHROW(v = r.json());
    REQUIRE(v.is_object());
    REQUIRE(v.as_object().contains("error"));
    REQUIRE(v.at("error").is_string());
    const std::string err(v.at("error").as_string());
    CHECK(contains(err, "partial write: 2 of 5 lines rejected"));
    CHECK(contains(err, "line 2: "));
    CHECK(contains(err, "line 4: "));
    CHECK_FALSE(contains(err, "line 1: "));
    CHECK_FALSE(contains(err, "line 3: "));
    CHECK_FALSE(contains(err, "line 5: "));
    REQUIRE(v.as_object().contains("rejected_lines"));
    const auto& rej = v.at("rejected_lines").as_array();
    REQUIRE(rej.size() == 2);
    CHECK(rej[0].at("line") == 2);
    CHECK(rej[1].at("line") == 4);
    CHECK(rej[0].at("error").is_string());
    CHECK_FALSE(rej[0].at("error").as_string().empty());
  }

  for (int i : {1, 3, 5}) require_value_at(k, "pw", b + i * 1000, i);
  // Nothing stored for the bad lines: at line 2's time the value is still line 1's.
  require_value_at(k, "pw", b + 2000, 1);
  require_value_at(k, "pw", b + 4000, 3);

  const auto rejected =
      metric_value(k.metrics(), "kpid_ingest_lines_rejected_total", {{"protocol", "http"}});
  REQUIRE(rejected.has_value());
  CHECK(*rejected == 4);
}

TEST_CASE("write: all lines bad is 400 with the same shape", "[write][partial]") {
  Kpid k;
  k.start();
  const HttpResponse r = k.write("garbage\nmore garbage here\n", "ms");
  INFO("response " << r.status << ": " << r.body);
  CHECK(r.status == 400);
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  const std::string err(v.at("error").as_string());
  CHECK(contains(err, "2 of 2 lines rejected"));
  CHECK(contains(err, "line 1: "));
  CHECK(contains(err, "line 2: "));
  const auto& rej = v.at("rejected_lines").as_array();
  REQUIRE(rej.size() == 2);
  CHECK(rej[0].at("line") == 1);
  CHECK(rej[1].at("line") == 2);
}

TEST_CASE("write: many bad lines: the first 10 are named in error", "[write][partial]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  std::string body;
  for (int i = 1; i <= 15; ++i) body += "bad" + std::to_string(i) + " nofields\n";
  body += "okline value=1 " + std::to_string(b) + "\n";
  const HttpResponse r = k.write(body, "ms");
  INFO("response " << r.status << ": " << r.body);
  CHECK(r.status == 400);
  json::value v;
  REQUIRE_NOTHROW(v = r.json());
  const std::string err(v.at("error").as_string());
  CHECK(contains(err, "partial write: 15 of 16 lines rejected"));
  for (int i = 1; i <= 10; ++i) {
    INFO("line " << i);
    CHECK(contains(err, "line " + std::to_string(i) + ": "));
  }
  const auto& rej = v.at("rejected_lines").as_array();
  CHECK(rej.size() >= 10);
  require_value_at(k, "okline", b, 1);
}

TEST_CASE("write: body size limit (max_body_bytes) incl. gzip bombs", "[write][limits]") {
  Kpid k({.config_toml = "[http]\nmax_body_bytes = \"1KiB\"\n"});
  k.start();
  const int64_t b = base_ms();
  const std::string ts = " " + std::to_string(b);

  auto lines = [&](std::string_view m, size_t min_bytes) {
    std::string body;
    for (int i = 0; body.size() < min_bytes; ++i)
      body += std::string(m) + ",host=h" + std::to_string(i) + " value=" + std::to_string(i) + ts +
              "\n";
    return body;
  };

  SECTION("plain body under the limit is accepted") {
    const std::string body = lines("small", 600);
    REQUIRE(body.size() < 1024);
    k.write_ok(body, "ms");
    require_value_at(k, R"(small{host="h0"})", b, 0);
  }
  SECTION("plain body over the limit is 413 with a JSON error") {
    const std::string body = lines("toobig", 2000);
    const HttpResponse r = k.write(body, "ms");
    INFO("response " << r.status << ": " << r.body);
    CHECK(r.status == 413);
    json::value v;
    REQUIRE_NOTHROW(v = r.json());
    REQUIRE(v.is_object());
    REQUIRE(v.as_object().contains("error"));
    CHECK(v.at("error").is_string());
    require_empty_at(k, "toobig", b);
    // The server still works afterwards.
    k.write_ok("after value=1" + ts, "ms");
  }
  SECTION("gzip body that inflates under the limit is accepted") {
    const std::string body = lines("gzsmall", 900);
    REQUIRE(body.size() < 1024);
    const HttpResponse r = k.write(body, "ms", false, true);
    INFO("response " << r.status << ": " << r.body);
    CHECK(r.status == 204);
    require_value_at(k, R"(gzsmall{host="h1"})", b, 1);
  }
  SECTION("small gzip body inflating past the limit (gzip bomb) is 413") {
    std::string body;
    const std::string line = "bomb value=1" + ts + "\n";
    while (body.size() < 200'000) body += line;
    const std::string gz = gzip(body);
    REQUIRE(gz.size() < 1024);
    const HttpResponse r = k.post("/write?precision=ms", gz, {{"Content-Encoding", "gzip"}});
    INFO("gzip of " << body.size() << " bytes is " << gz.size() << " bytes; response " << r.status
                    << ": " << r.body);
    CHECK(r.status == 413);
    require_empty_at(k, "bomb", b);
  }
  SECTION("exactly max_body_bytes is accepted, one byte more is 413") {
    auto padded = [&](std::string_view m, size_t size) {
      std::string b = std::string(m) + ",pad=";
      const std::string rest = " value=1" + ts + "\n";
      b += std::string(size - b.size() - rest.size(), 'x');
      return b + rest;
    };
    const std::string at = padded("edgeat", 1024), over = padded("edgeover", 1025);
    REQUIRE(at.size() == 1024);
    REQUIRE(over.size() == 1025);
    const HttpResponse r1 = k.write(at, "ms");
    INFO("1024 bytes -> " << r1.status << " " << r1.body);
    CHECK(r1.status == 204);
    const HttpResponse r2 = k.write(over, "ms");
    INFO("1025 bytes -> " << r2.status << " " << r2.body);
    CHECK(r2.status == 413);
  }
  SECTION("chunked bodies are limited too") {
    auto chunked = [&](const std::string& body) {
      std::string req =
          "POST /write?precision=ms HTTP/1.1\r\nHost: 127.0.0.1\r\n"
          "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
      for (size_t i = 0; i < body.size(); i += 300) {
        const std::string part = body.substr(i, 300);
        char len[16];
        std::snprintf(len, sizeof len, "%zx", part.size());
        req += std::string(len) + "\r\n" + part + "\r\n";
      }
      return req + "0\r\n\r\n";
    };
    const std::string small = lines("chunksmall", 700), big = lines("chunkbig", 3000);
    REQUIRE(small.size() < 1024);
    const std::string r1 = raw_http(k.http_port(), chunked(small));
    INFO("chunked small -> " << r1);
    CHECK(raw_status(r1) == 204);
    require_value_at(k, R"(chunksmall{host="h2"})", b, 2);
    const std::string r2 = raw_http(k.http_port(), chunked(big));
    INFO("chunked big -> " << r2);
    CHECK(raw_status(r2) == 413);
    require_empty_at(k, "chunkbig", b);
  }
  SECTION("gzip body whose compressed size is over the limit is 413") {
    std::mt19937_64 rng(42);
    std::string body;
    while (body.size() < 8000)
      body += "gzbig value=" + std::to_string(rng() % 1'000'000'000'000ULL) + ts + "\n";
    const std::string gz = gzip(body);
    REQUIRE(gz.size() > 1024);
    const HttpResponse r =
        k.post("/api/v2/write?bucket=b&precision=ms", gz, {{"Content-Encoding", "gzip"}});
    INFO("compressed " << gz.size() << " bytes; response " << r.status << ": " << r.body);
    CHECK(r.status == 413);
  }
}

TEST_CASE("write: same series and timestamp twice: the second value wins", "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  k.write_ok("ow,host=a value=1 " + std::to_string(b), "ms");
  k.write_ok("ow,host=a value=2 " + std::to_string(b), "ms");
  require_value_at(k, "ow", b, 2);
  // Within one body, too.
  k.write_ok("ow,host=b value=5 " + std::to_string(b) + "\now,host=b value=6 " + std::to_string(b),
             "ms");
  require_value_at(k, R"(ow{host="b"})", b, 6);
  // Exactly one point per series in a range covering the timestamp.
  const auto r = k.query_range("ow", fmt_seconds(b), fmt_seconds(b), "1");
  REQUIRE(r.size() == 2);
  for (const auto& s : r) CHECK(s.values.size() == 1);
}

TEST_CASE(
    "write: out-of-order and year-old samples are accepted and queryable (old ones from rollups)",
    "[write]") {
  Kpid k;
  k.start();
  const int64_t b = base_ms();
  k.write_ok("ooo value=3 " + std::to_string(b + 20'000), "ms");
  k.write_ok("ooo value=1 " + std::to_string(b), "ms");
  k.write_ok("ooo value=2 " + std::to_string(b + 10'000), "ms");
  auto r = k.query_range("ooo", fmt_seconds(b), fmt_seconds(b + 20'000), "10");
  REQUIRE(r.size() == 1);
  REQUIRE(r[0].values.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(r[0].values[static_cast<size_t>(i)].first == b + i * 10'000);
    CHECK(num(r[0].values[static_cast<size_t>(i)].second) == i + 1);
  }

  // A year ago is past raw retention (30 days): the samples go straight into the 5-minute and
  // 1-hour rollups, which answer for them; raw reads find nothing there.
  const int64_t hour = 3'600'000;
  const int64_t year_ago = (b - 365LL * 24 * hour) / hour * hour + 20 * 60'000;
  k.write_ok("old,host=a value=7 " + std::to_string(year_ago / 1000) + "\nold,host=a value=9 " +
                 std::to_string(year_ago / 1000 + 600),
             "s");
  const int64_t hour_end = (year_ago / hour + 1) * hour;
  require_value_at(k, "sum_over_time(old[1h])", hour_end, 16);
  require_value_at(k, "max_over_time(old[1h])", hour_end, 9);
  // year_ago is on the 5-minute grid: it ends its bucket.
  require_value_at(k, "count_over_time(old[5m])", year_ago, 1);
  require_value_at(k, "last_over_time(old[5m])", year_ago + 600'000, 9);
  CHECK(k.query_range("old", fmt_seconds(year_ago - 10'000), fmt_seconds(year_ago + 10'000), "10")
            .empty());
}

TEST_CASE("write: keep-alive connection serves writes, errors and queries in turn",
          "[write][http]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  HttpClient c(k.http_port());
  for (int i = 0; i < 20; ++i) {
    const HttpResponse r = c.request("POST", "/write?precision=ms",
                                     "ka value=" + std::to_string(i) + " " + std::to_string(t + i));
    INFO("request " << i << " -> " << r.status << " " << r.body);
    REQUIRE(r.status == 204);
  }
  const HttpResponse bad = c.request("POST", "/write?precision=ms", "ka value=\n");
  CHECK(bad.status == 400);
  const HttpResponse q =
      c.request("GET", "/api/v1/query?" + form({{"query", "ka"}, {"time", fmt_seconds(t + 19)}}));
  INFO(q.body);
  CHECK(q.status == 200);
  CHECK(contains(q.body, "\"19\""));
  CHECK(c.request("GET", "/healthz").status == 200);
}

TEST_CASE("write: blank lines and a missing final newline are fine", "[write]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  const std::string ts = " " + std::to_string(t);
  k.write_ok("\nbl1 value=1" + ts + "\n\n\nbl2 value=2" + ts + "\n\n", "ms");
  k.write_ok("bl3 value=3" + ts, "ms");
  require_value_at(k, "bl1", t, 1);
  require_value_at(k, "bl2", t, 2);
  require_value_at(k, "bl3", t, 3);
}

TEST_CASE("write: an unknown precision is rejected with 400", "[write]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  for (bool v2 : {false, true}) {
    const HttpResponse r = k.write("badprec value=1 " + std::to_string(t), "fortnight", v2);
    INFO((v2 ? "v2" : "v1") << " -> " << r.status << " " << r.body);
    CHECK(r.status == 400);
  }
  require_empty_at(k, "badprec", t);
}

TEST_CASE("write: a large body and concurrent writers are stored completely", "[write][load]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  std::string body;
  for (int i = 0; i < 20'000; ++i)
    body += "large,host=h" + std::to_string(i % 500) + ",i=" + std::to_string(i / 500) +
            " value=" + std::to_string(i) + " " + std::to_string(t) + "\n";
  k.write_ok(body, "ms");
  CHECK(k.query_at_ms("large", t).size() == 20'000);
  require_value_at(k, R"(large{host="h7",i="39"})", t, 39 * 500 + 7);

  constexpr int kThreads = 4, kWrites = 100;
  std::vector<std::jthread> threads;
  std::vector<std::string> errors(kThreads);
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      try {
        HttpClient c(k.http_port());
        for (int i = 0; i < kWrites; ++i) {
          const HttpResponse r =
              c.request("POST", "/write?precision=ms",
                        "conc,writer=w" + std::to_string(th) + " value=" + std::to_string(i) + " " +
                            std::to_string(t + i) + "\nconc_other,writer=w" + std::to_string(th) +
                            " value=1 " + std::to_string(t + i));
          if (r.status != 204) {
            errors[static_cast<size_t>(th)] = "status " + std::to_string(r.status) + " " + r.body;
            return;
          }
        }
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(th)] = e.what();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& e : errors) CHECK(e.empty());
  const auto r = k.query_range("conc", fmt_seconds(t), fmt_seconds(t + kWrites - 1), "0.001");
  REQUIRE(r.size() == kThreads);
  for (const auto& s : r) {
    INFO("series " << s.metric.at("writer"));
    REQUIRE(s.values.size() == static_cast<size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) CHECK(num(s.values[static_cast<size_t>(i)].second) == i);
  }
}

TEST_CASE("write: a malformed request is 400 and an oversized header 431, each saying why",
          "[write][http]") {
  Kpid k;
  k.start();
  const std::string garbage = raw_http(k.http_port(), "GARBAGE\r\n\r\n");
  INFO(garbage);
  CHECK(raw_status(garbage) == 400);
  CHECK(contains(garbage, "malformed HTTP request"));

  const std::string huge_header =
      raw_http(k.http_port(), "GET /healthz HTTP/1.1\r\nX-Big: " + std::string(70'000, 'a') +
                                  "\r\nConnection: close\r\n\r\n");
  INFO(huge_header.substr(0, 200));
  CHECK(raw_status(huge_header) == 431);
  CHECK(contains(huge_header, "request header too large"));

  // The server is unharmed.
  CHECK(http_request(k.http_port(), "GET", "/healthz").status == 200);
}

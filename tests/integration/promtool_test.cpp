// Compatibility with the real Prometheus client: promtool queries kpid's API and lints /metrics.

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

namespace {

CommandResult promtool(const std::vector<std::string>& args, std::string_view stdin_data = {}) {
  std::vector<std::string> argv{kPromtoolBinary};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, stdin_data);
}

std::string describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

}  // namespace

TEST_CASE("promtool: instant, range, series and labels queries against kpid", "[promtool]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  k.write_ok("cpu,host=a usage=42 " + std::to_string(t) + "\n" +               //
                 "cpu,host=a usage=43 " + std::to_string(t + 10'000) + "\n" +  //
                 "cpu,host=a usage=44.5 " + std::to_string(t + 20'000) + "\n" +
                 "cpu,host=b usage=7 " + std::to_string(t) + "\n",
             "ms");
  const std::string url = "http://127.0.0.1:" + std::to_string(k.http_port());

  SECTION("query instant") {
    const auto r = promtool(
        {"query", "instant", "--time=" + fmt_seconds(t + 10'000), url, R"(cpu_usage{host="a"})"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, R"(cpu_usage{host="a"} => 43 @[)"));
    CHECK_FALSE(contains(r.out, R"(host="b")"));
  }
  SECTION("query instant with RFC 3339 time and a regex matcher") {
    const auto r = promtool(
        {"query", "instant", "--time=" + fmt_rfc3339(t), url, R"(cpu_usage{host=~"a|b"})"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, R"(cpu_usage{host="a"} => 42 @[)"));
    CHECK(contains(r.out, R"(cpu_usage{host="b"} => 7 @[)"));
  }
  SECTION("query range") {
    const auto r =
        promtool({"query", "range", "--start=" + fmt_seconds(t), "--end=" + fmt_seconds(t + 20'000),
                  "--step=10s", url, R"(cpu_usage{host="a"})"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, R"(cpu_usage{host="a"} =>)"));
    CHECK(contains(r.out, "42 @[" + fmt_seconds(t) + "]"));
    CHECK(contains(r.out, "43 @[" + fmt_seconds(t + 10'000) + "]"));
    CHECK(contains(r.out, "44.5 @[" + fmt_seconds(t + 20'000) + "]"));
  }
  SECTION("query series") {
    const auto r =
        promtool({"query", "series", "--match=cpu_usage", "--start=" + fmt_seconds(t - 60'000),
                  "--end=" + fmt_seconds(t + 60'000), url});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, R"(host="a")"));
    CHECK(contains(r.out, R"(host="b")"));
  }
  SECTION("query labels") {
    const auto r = promtool({"query", "labels", url, "host"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(contains("\n" + r.out, "\na\n"));
    CHECK(contains("\n" + r.out, "\nb\n"));
  }
  SECTION("a bad query is reported as an error") {
    const auto r = promtool({"query", "instant", url, "cpu_usage{host="});
    INFO(describe(r));
    CHECK(r.exit_code != 0);
    CHECK(contains(r.err, "bad_data"));
  }
}

TEST_CASE("promtool: /metrics passes promtool check metrics", "[promtool][metrics]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  // Exercise every family so each has samples: good, bad and string lines over HTTP and TCP,
  // queries, a 404.
  k.write_ok("pm,host=a value=1,s=\"x\" " + std::to_string(t), "ms");
  CHECK(k.write("pm value=1\nbad\n", "ms").status == 400);
  {
    TcpClient c(k.line_port());
    c.send("pmt value=1 " + std::to_string(t * 1'000'000) + "\nbad tcp line\n");
  }
  REQUIRE(eventually([&] { return !k.query_at_ms("pmt", t).empty(); }));
  k.query_at_ms("pm", t);
  k.query_range("pm", fmt_seconds(t), fmt_seconds(t + 60'000), "15s");
  k.get("/api/v1/labels");
  k.get("/no/such/path");

  const std::string m = k.metrics();
  const auto r = promtool({"check", "metrics"}, m);
  INFO(describe(r) << "\nmetrics:\n" << tail(m, 10000));
  CHECK(r.exit_code == 0);
}

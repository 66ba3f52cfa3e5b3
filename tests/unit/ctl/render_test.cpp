#include <cmath>
#include <sstream>
#include <vector>

#include <catch2/catch.hpp>

#include "kpid/ctl/cli.h"
#include "kpid/ctl/render.h"

using namespace kpid::ctl;

TEST_CASE("sparkline scales between min and max and keeps gaps", "[ctl]") {
  std::vector<double> rising = {0, 1, 2, 3, 4, 5, 6, 7};
  CHECK(sparkline(rising, 8) == "▁▂▃▄▅▆▇█");
  CHECK(sparkline(rising, 4) == "▂▄▆█");  // pairs averaged: 0.5, 2.5, 4.5, 6.5 of 0..7
  std::vector<double> gap = {1, NAN, 3};
  CHECK(sparkline(gap, 3) == "▁ █");
  std::vector<double> flat = {5, 5, 5};
  CHECK(sparkline(flat, 10) == "▄▄▄");  // fewer values than cells: one cell each
  std::vector<double> none = {NAN, NAN};
  CHECK(sparkline(none, 5).empty());
  CHECK(display_width(sparkline(rising, 8)) == 8);
}

TEST_CASE("numbers, ages and counts for people", "[ctl]") {
  CHECK(human_number(1300) == "1300");
  CHECK(human_number(0.31234) == "0.3123");
  CHECK(human_number(12.5) == "12.5");
  CHECK(human_number(0) == "0");
  CHECK(human_number(123456) == "123k");
  CHECK(human_number(4560000) == "4.56M");
  CHECK(human_number(std::nullopt) == "-");
  CHECK(human_number(NAN) == "-");
  CHECK(with_unit(870, "ms") == "870 ms");
  CHECK(with_unit(std::nullopt, "ms") == "-");
  CHECK(human_age(45'000) == "45s");
  CHECK(human_age(12 * 60'000 + 5'000) == "12m");
  CHECK(human_age(3 * 3'600'000 + 5 * 60'000) == "3h 5m");
  CHECK(human_age(2 * 86'400'000 + 4 * 3'600'000) == "2d 4h");
  CHECK(human_age(-1) == "-");
  CHECK(grouped(1234567) == "1,234,567");
  CHECK(grouped(999) == "999");
  CHECK(progress_bar(0.5, 10) == "[#####.....]");
  CHECK(progress_bar(2, 4) == "[####]");
}

TEST_CASE("band levels say when they are breached, in_range on both sides", "[ctl]") {
  CHECK(breach_condition(std::nullopt, 500) == ">500");
  CHECK(breach_condition(2, std::nullopt) == "<2");
  CHECK(breach_condition(1, 300) == "<1 or >300");  // not "1-300", which reads as the range
  CHECK(breach_condition(0.5, 1500000) == "<0.5 or >1.5M");
  CHECK(breach_condition(std::nullopt, std::nullopt).empty());
}

TEST_CASE("tables align by display width and colors do not count", "[ctl]") {
  Table t;
  t.column("KPI");
  t.column("VALUE", Table::Align::kRight);
  t.column("TREND");
  t.row({{"lat", Color::kRed}, {"1300 ms"}, {"▁▂█"}});
  t.row({{"error_rate"}, {"0.4 %"}, {"▄"}});
  CHECK(t.render(Style{false}) ==
        "KPI           VALUE  TREND\n"
        "lat         1300 ms  ▁▂█\n"
        "error_rate    0.4 %  ▄\n");
  const std::string colored = t.render(Style{true});
  CHECK(colored.find("\x1b[1;31mlat\x1b[0m         1300 ms") != std::string::npos);
  CHECK(color_of("crit") == Color::kRed);
  CHECK(color_of("ok") == Color::kGreen);
  CHECK(color_of("anomalous") == Color::kMagenta);
}

TEST_CASE("command line: usage errors exit 2 before any request", "[ctl]") {
  auto run_ctl = [](std::vector<std::string> args) {
    std::istringstream in;
    std::ostringstream out, err;
    // Port 9 (discard) is never contacted: each of these fails before a request.
    Terminal terminal;
    terminal.url_env = "http://127.0.0.1:9";
    int code = run(args, in, out, err, terminal);
    return std::tuple{code, out.str(), err.str()};
  };
  CHECK(std::get<0>(run_ctl({})) == 2);
  CHECK(std::get<0>(run_ctl({"help"})) == 0);
  CHECK(std::get<2>(run_ctl({"silence"})).find("needs a subcommand: add list rm") !=
        std::string::npos);
  CHECK(std::get<2>(run_ctl({"status", "--color", "sometimes"})).find("--color") !=
        std::string::npos);
  CHECK(std::get<0>(run_ctl({"status", "--timeout", "0s"})) == 2);
  CHECK(std::get<0>(run_ctl({"okr", "checkin", "1", "kr1"})) == 2);
  CHECK(std::get<0>(run_ctl({"okr", "checkin", "1", "kr1", "abc"})) == 2);
  CHECK(std::get<0>(run_ctl({"okr", "edit", "1", "--add-target", "3"})) == 2);
  CHECK(std::get<0>(run_ctl({"silence", "add", "novalue"})) == 2);
  CHECK(std::get<0>(run_ctl({"push", "--batch", "0"})) == 2);
  CHECK(std::get<0>(run_ctl({"status", "--json=yes"})) == 2);
  CHECK(std::get<0>(run_ctl({"wait", "--timeout", "soon"})) == 2);
  CHECK(std::get<0>(run_ctl({"reload", "extra"})) == 2);
  // wait's --timeout is the whole wait, documented once in its help.
  const std::string wait_help = std::get<1>(run_ctl({"wait", "--help"}));
  CHECK(wait_help.find("give up after this long") != std::string::npos);
  CHECK(wait_help.find("bound on each request") == std::string::npos);
  // Flags may come before the command and take --name=value.
  auto [code, out, err] = run_ctl({"--url=http://127.0.0.1:9", "kpi", "show", "--help"});
  CHECK(code == 0);
  CHECK(out.find("usage: kpictl kpi show ID") != std::string::npos);
}

TEST_CASE("wait gives up after --timeout with exit 3, saying what it waited for", "[ctl]") {
  std::istringstream in;
  std::ostringstream out, err;
  Terminal terminal;
  // Nothing listens on port 9 (discard) here: every probe is refused.
  const int code =
      run({"--url", "http://127.0.0.1:9", "wait", "--timeout", "600ms"}, in, out, err, terminal);
  INFO(err.str());
  CHECK(code == 3);
  CHECK(err.str().find("waiting up to 600ms for kpid at http://127.0.0.1:9/readyz: ") !=
        std::string::npos);
  CHECK(err.str().find("is not ready after 600ms") != std::string::npos);
}

TEST_CASE("check-config without a kpid beside kpictl or on PATH says so, exit 3", "[ctl]") {
  std::istringstream in;
  std::ostringstream out, err;
  Terminal terminal;
  terminal.self_path = "/nonexistent/bin/kpictl";
  terminal.path_env = "/nonexistent/a:/nonexistent/b";
  const int code = run({"check-config", "kpid.toml"}, in, out, err, terminal);
  CHECK(code == 3);
  CHECK(err.str() ==
        "kpictl: check-config runs kpid --check-config, but found no kpid executable beside "
        "kpictl (/nonexistent/bin/kpid) nor on PATH: install kpid beside kpictl or put it on "
        "PATH\n");
}

// InfluxDB 1.x clients work unchanged: Debian's python3-influxdb pings kpid, creates and lists
// databases and writes points, and kpid serves them as PromQL series; any other InfluxQL is a
// 400 that says what kpid answers instead.

#include <catch2/catch.hpp>

#include "harness.h"

using namespace kpid_it;

TEST_CASE("influx clients: python3-influxdb pings, creates a database and writes points",
          "[influx]") {
  Kpid k;
  k.start();
  const int64_t t_ms = now_ms() - 2000;
  const std::string script =
      "from influxdb import InfluxDBClient\n"
      "c = InfluxDBClient(host='127.0.0.1', port=" +
      std::to_string(k.http_port()) +
      ", database='kpid_test')\n"
      "print('version', c.ping())\n"
      "c.create_database('kpid_test')\n"
      "print('databases', c.get_list_database())\n"
      "ok = c.write_points([{'measurement': 'py_temp', 'tags': {'room': 'a'},\n"
      "                      'fields': {'value': 21.5, 'humidity': 40},\n"
      "                      'time': " +
      std::to_string(t_ms) +
      "}], time_precision='ms')\n"
      "print('written', ok)\n"
      "try:\n"
      "    c.query('SELECT * FROM py_temp')\n"
      "    print('query answered')\n"
      "except Exception as e:\n"
      "    print('query refused:', e)\n";
  const CommandResult r = run_command({"/usr/bin/python3", "-c", script}, {}, 60s);
  INFO("python3: exit " << r.exit_code << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "version 1.8.10\n"));
  CHECK(contains(r.out, "databases []\n"));
  CHECK(contains(r.out, "written True\n"));
  CHECK(contains(r.out, "query refused: 400: "));
  CHECK(contains(r.out, "query kpid with PromQL at /api/v1/query"));

  auto temp = k.query_at_ms(R"(py_temp{room="a"})", t_ms);
  REQUIRE(temp.size() == 1);
  CHECK(temp[0].value == "21.5");
  auto humidity = k.query_at_ms(R"(py_temp_humidity{room="a"})", t_ms);
  REQUIRE(humidity.size() == 1);
  CHECK(humidity[0].value == "40");
}

TEST_CASE("influx clients: /ping answers 204 with the version, HEAD too, verbose as JSON",
          "[influx]") {
  Kpid k;
  k.start();
  HttpResponse r = k.get("/ping");
  CHECK(r.status == 204);
  CHECK(r.header("x-influxdb-version") == "1.8.10");
  r = http_request(k.http_port(), "HEAD", "/ping");
  CHECK(r.status == 204);
  r = k.get("/ping?verbose=true");
  CHECK(r.status == 200);
  CHECK(r.body == R"({"version":"1.8.10"})");
  r = k.post("/query", "q=CREATE+DATABASE+%22telegraf%22",
             {{"Content-Type", "application/x-www-form-urlencoded"}});
  CHECK(r.status == 200);
  CHECK(r.body == R"({"results":[{"statement_id":0}]})");
  r = k.get("/query");
  CHECK(r.status == 400);
  CHECK(contains(r.body, "missing required parameter \\\"q\\\""));
}

// InfluxDB 1.x clients work unchanged: Debian's python3-influxdb pings kpid, creates and lists
// databases and writes points, the influx CLI imports a file, and kpid serves them as PromQL
// series; any other InfluxQL is a 400 that says what kpid answers instead. ingest.db_label
// keeps databases apart.

#include <catch2/catch.hpp>
#include <set>

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

TEST_CASE("influx clients: the influx CLI imports a file, each database a label with db_label",
          "[influx]") {
  Kpid k({.config_toml = "[ingest]\ndb_label = \"db\"\n"});
  k.start();
  const int64_t t_s = now_ms() / 1000 - 5;
  TempDir dir;
  const std::string file = dir.file("import.txt");
  write_file(file, "# DDL\nCREATE DATABASE shop\n# DML\n# CONTEXT-DATABASE: shop\n" +
                       ("cpu,host=a usage=1.5 " + std::to_string(t_s) + "\n") +
                       ("cpu,host=b usage=2.5 " + std::to_string(t_s) + "\n") +
                       ("orders,region=eu count=7i " + std::to_string(t_s) + "\n"));
  const CommandResult r =
      run_command({"/usr/bin/influx", "-host", "127.0.0.1", "-port", std::to_string(k.http_port()),
                   "-import", "-path=" + file, "-precision=s"},
                  {}, 60s);
  INFO("influx: exit " << r.exit_code << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out + r.err, "Processed 3 inserts"));
  CHECK(contains(r.out + r.err, "Failed 0 inserts"));
  const int64_t t_ms = t_s * 1000;
  auto cpu = k.query_at_ms(R"(cpu_usage{db="shop"})", t_ms);
  REQUIRE(cpu.size() == 2);
  CHECK(k.query_at_ms(R"(orders_count{db="shop",region="eu"})", t_ms).at(0).value == "7");

  // The same line into two databases: two series. 2.x's bucket is the database too.
  const std::string line = "rooms,room=a temp=20 " + std::to_string(t_ms) + "\n";
  CHECK(k.post("/write?db=one&precision=ms", line).status == 204);
  CHECK(k.post("/write?db=two&precision=ms", line).status == 204);
  CHECK(k.post("/api/v2/write?bucket=three&org=x&precision=ms", line).status == 204);
  CHECK(k.post("/write?precision=ms", line).status == 204);  // no database: no label
  auto rooms = k.query_at_ms("rooms_temp", t_ms);
  std::set<std::string> dbs;
  for (const auto& s : rooms) dbs.insert(s.metric.count("db") ? s.metric.at("db") : "(none)");
  CHECK(dbs == std::set<std::string>{"one", "two", "three", "(none)"});
  // A tag of the label's name would be ambiguous: that line is refused, saying why.
  const HttpResponse clash =
      k.post("/write?db=one&precision=ms", "rooms,db=x temp=1 " + std::to_string(t_ms) + "\n");
  INFO(clash.body);
  CHECK(clash.status == 400);
  CHECK(contains(clash.body, "maps to label \\\"db\\\", which ingest.db_label sets"));
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

TEST_CASE("influx clients: credentials as InfluxDB 1.x sends them (Basic auth, u and p) are tokens",
          "[influx][auth]") {
  const std::string token = "w-influx-0123456789abcdef0123456789ab";
  const CommandResult hashed = run_command({KPID_BINARY, "--hash-token"}, token + "\n");
  REQUIRE(hashed.exit_code == 0);
  const std::string digest = hashed.out.substr(0, 64);
  // Reads open, so the checks below need no token of their own.
  Kpid k({.config_toml = "[auth]\nopen = [\"/healthz\", \"/readyz\", \"/metrics\", "
                         "\"/api/v1/query\"]\n[[auth.token]]\nname = "
                         "\"telegraf\"\nroles = [\"write\"]\nsha256 = \"" +
                         digest + "\"\n"});
  k.start();
  const int64_t t_ms = now_ms() - 2000;
  auto script = [&](const std::string& password) {
    return "from influxdb import InfluxDBClient\n"
           "c = InfluxDBClient(host='127.0.0.1', port=" +
           std::to_string(k.http_port()) + ", username='telegraf', password='" + password +
           "', database='db')\n"
           "print('version', c.ping())\n"
           "try:\n"
           "    c.write_points([{'measurement': 'auth_temp', 'fields': {'value': 3.5}, 'time': " +
           std::to_string(t_ms) +
           "}], time_precision='ms')\n"
           "    print('written')\n"
           "except Exception as e:\n"
           "    print('refused:', e)\n";
  };
  // The client sends Basic auth; the password is the token.
  CommandResult r = run_command({"/usr/bin/python3", "-c", script(token)}, {}, 60s);
  INFO("python3: exit " << r.exit_code << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "version 1.8.10\n"));  // /ping needs no token, as in InfluxDB
  CHECK(contains(r.out, "written\n"));
  REQUIRE(k.query_at_ms("auth_temp", t_ms).size() == 1);

  r = run_command({"/usr/bin/python3", "-c", script("wrong")}, {}, 60s);
  INFO("python3: exit " << r.exit_code << "\n" << r.out << r.err);
  CHECK(contains(r.out, "refused: 401: "));
  CHECK(contains(r.out, "unknown token"));

  // u and p in the query string, as the influx CLI and older clients send them.
  const std::string line = "auth_temp,via=params value=4.5 " + std::to_string(t_ms);
  CHECK(k.post("/write?db=db&precision=ms&u=telegraf&p=" + url_encode(token), line).status == 204);
  CHECK(k.post("/write?db=db&precision=ms&u=telegraf&p=nope", line).status == 401);
  CHECK(k.post("/write?db=db&precision=ms", line).status == 401);
  CHECK(k.query_at_ms(R"(auth_temp{via="params"})", t_ms).size() == 1);
}

// The HTTP API Grafana's Prometheus data source speaks, replayed as Grafana sends it (method,
// form body, Content-Type, User-Agent): its health check, buildinfo, label names and values and
// series with match[], start, end and limit=40000, metadata, query_exemplars, URL and form
// parameters together, `$__rate_interval`-style steps, and the 405s it falls back from POST to
// GET on. The same requests go to a real Prometheus holding the same series (remote-written to
// both), and the answers' shapes, status codes and (where Prometheus 2.42 has the feature) values
// must agree, /api/v1/status/tsdb included.
#include <snappy.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "harness.h"
#include "prometheus/remote_write_v1.pb.h"

using namespace kpid_it;
namespace json = boost::json;
namespace pb = kpid::wire::prometheus::v1;

namespace {

// What Grafana's backend (pkg/promlib) sends with every request.
const Headers kGrafanaForm = {{"User-Agent", "Grafana/11.3.0"},
                              {"Content-Type", "application/x-www-form-urlencoded"}};
const Headers kGrafanaGet = {{"User-Agent", "Grafana/11.3.0"}};

// The series both servers hold: 2 metrics over 3 label names, sample times around `t`.
std::string remote_write_body(int64_t t) {
  pb::WriteRequest request;
  auto add = [&](std::vector<std::pair<std::string, std::string>> labels, double v) {
    auto* ts = request.add_timeseries();
    for (auto& [name, value] : labels) {
      auto* l = ts->add_labels();
      l->set_name(name);
      l->set_value(value);
    }
    for (int i = 0; i < 3; ++i) {
      auto* s = ts->add_samples();
      s->set_timestamp(t + i * 15'000);
      s->set_value(v + i);
    }
  };
  add({{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "api"}}, 10);
  add({{"__name__", "http_requests_total"}, {"code", "500"}, {"job", "api"}}, 1);
  add({{"__name__", "http_requests_total"}, {"code", "200"}, {"job", "web"}}, 20);
  add({{"__name__", "up"}, {"job", "api"}}, 1);
  add({{"__name__", "up"}, {"job", "web"}}, 1);
  add({{"__name__", "up"}, {"job", "batch"}, {"instance", "host-with-a-long-name:9100"}}, 0);
  const std::string raw = request.SerializeAsString();
  std::string out;
  snappy::Compress(raw.data(), raw.size(), &out);
  return out;
}

const Headers kRemoteWriteHeaders = {{"Content-Type", "application/x-protobuf"},
                                     {"Content-Encoding", "snappy"},
                                     {"X-Prometheus-Remote-Write-Version", "0.1.0"}};

// One request as Grafana would send it: GET with the parameters in the URL, or POST with them
// as a form body (and `url_params` in the URL too).
HttpResponse grafana(uint16_t port, std::string_view method, const std::string& path,
                     const std::vector<std::pair<std::string, std::string>>& params,
                     const std::vector<std::pair<std::string, std::string>>& url_params = {}) {
  std::string target = path;
  std::string query = form(url_params);
  if (method == "GET") {
    const std::string more = form(params);
    if (!more.empty()) query += (query.empty() ? "" : "&") + more;
  }
  if (!query.empty()) target += "?" + query;
  if (method == "GET") return http_request(port, "GET", target, {}, kGrafanaGet);
  return http_request(port, method, target, form(params), kGrafanaForm);
}

json::value data_of(const HttpResponse& r) {
  INFO(r.body);
  REQUIRE(r.status == 200);
  const json::value v = r.json();
  REQUIRE(v.at("status").as_string() == "success");
  return v.at("data");
}

std::vector<std::string> strings(const json::value& v) {
  std::vector<std::string> out;
  for (const auto& s : v.as_array()) out.emplace_back(s.as_string());
  return out;
}

// Every key of an object, recursively, with the JSON kind of its value: the "shape" compared.
void shape_of(const json::value& v, const std::string& at, std::vector<std::string>& out) {
  switch (v.kind()) {
    case json::kind::object:
      for (const auto& [k, child] : v.as_object()) shape_of(child, at + "." + std::string(k), out);
      break;
    case json::kind::array:
      out.push_back(at + "[]");
      if (!v.as_array().empty()) shape_of(v.as_array()[0], at + "[0]", out);
      break;
    case json::kind::string: out.push_back(at + ":string"); break;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: out.push_back(at + ":number"); break;
    default: out.push_back(at + ":other"); break;
  }
}

std::vector<std::string> shape(const json::value& v) {
  std::vector<std::string> out;
  shape_of(v, "", out);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("grafana: the data source's requests as Grafana sends them", "[grafana]") {
  Kpid k;
  k.start();
  const int64_t t = base_ms();
  REQUIRE(k.post("/api/v1/write", remote_write_body(t), kRemoteWriteHeaders).status == 204);
  const uint16_t port = k.http_port();
  const std::string start = fmt_seconds(t - 3'600'000);
  const std::string end = fmt_seconds(t + 3'600'000);

  SECTION("the health check: POST /api/v1/query query=1+1&time=4 answers the scalar 2 at 4") {
    const HttpResponse r =
        http_request(port, "POST", "/api/v1/query", "query=1%2B1&time=4", kGrafanaForm);
    INFO(r.body);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"status":"success","data":{"resultType":"scalar","result":[4,"2"]}})");
  }

  SECTION("buildinfo: Prometheus' fields, kpid's version; GET only") {
    const json::value d = data_of(grafana(port, "GET", "/api/v1/status/buildinfo", {}));
    for (const char* field :
         {"version", "revision", "branch", "buildUser", "buildDate", "goVersion"}) {
      INFO(field);
      REQUIRE(d.as_object().contains(field));
      CHECK(d.at(field).is_string());
    }
    CHECK(!d.at("version").as_string().empty());
    // No "application" and no "features": Grafana takes it for a Prometheus without a ruler API.
    CHECK(!d.as_object().contains("application"));
    const HttpResponse post = grafana(port, "POST", "/api/v1/status/buildinfo", {});
    CHECK(post.status == 405);
    CHECK(post.header("allow") == "GET");
  }

  SECTION("label names: POST form with start, end and limit=40000; a small limit truncates") {
    const auto names = strings(data_of(grafana(
        port, "POST", "/api/v1/labels", {{"start", start}, {"end", end}, {"limit", "40000"}})));
    CHECK(names == std::vector<std::string>{"__name__", "code", "instance", "job"});
    const HttpResponse cut =
        grafana(port, "POST", "/api/v1/labels", {{"start", start}, {"end", end}, {"limit", "2"}});
    CHECK(strings(data_of(cut)) == std::vector<std::string>{"__name__", "code"});
    CHECK(cut.json().at("warnings").as_array() == json::array{"results truncated due to limit"});
    // match[] narrows them.
    CHECK(strings(data_of(grafana(port, "GET", "/api/v1/labels",
                                  {{"match[]", "up"}, {"start", start}, {"end", end}}))) ==
          std::vector<std::string>{"__name__", "instance", "job"});
    CHECK(grafana(port, "GET", "/api/v1/labels", {{"limit", "-1"}}).status == 400);
  }

  SECTION("label values: GET with match[] and limit; POST is Prometheus' 405, Grafana's cue") {
    const auto jobs = strings(
        data_of(grafana(port, "GET", "/api/v1/label/job/values",
                        {{"match[]", "up"}, {"start", start}, {"end", end}, {"limit", "40000"}})));
    CHECK(jobs == std::vector<std::string>{"api", "batch", "web"});
    const HttpResponse cut = grafana(port, "GET", "/api/v1/label/__name__/values",
                                     {{"start", start}, {"end", end}, {"limit", "1"}});
    CHECK(strings(data_of(cut)) == std::vector<std::string>{"http_requests_total"});
    CHECK(cut.json().at("warnings").as_array() == json::array{"results truncated due to limit"});
    const HttpResponse post =
        grafana(port, "POST", "/api/v1/label/job/values", {{"start", start}, {"end", end}});
    CHECK(post.status == 405);
    CHECK(post.header("allow") == "GET");
    CHECK(post.body == "Method Not Allowed\n");
  }

  SECTION("series: POST with match[] in the body and start/end in the URL; limit") {
    const json::value d = data_of(grafana(port, "POST", "/api/v1/series",
                                          {{"match[]", "http_requests_total"}, {"limit", "2"}},
                                          {{"start", start}, {"end", end}}));
    REQUIRE(d.as_array().size() == 2);
    CHECK(d.as_array()[0].at("code").as_string() == "200");
    CHECK(d.as_array()[0].at("job").as_string() == "api");
  }

  SECTION("a form body's parameter wins over the URL's, as Go's FormValue") {
    const HttpResponse r = grafana(port, "POST", "/api/v1/query", {{"query", "3"}, {"time", "10"}},
                                   {{"query", "2"}, {"time", "20"}});
    CHECK(data_of(r).at("result") == json::array{10, "3"});
  }

  SECTION("steps and times as Grafana writes them: 1m0s, float seconds, RFC 3339 with nanos") {
    // Grafana aligns start to the step itself; an unaligned start is kept as given.
    const int64_t s = t + 7'000;
    const json::value d = data_of(grafana(port, "POST", "/api/v1/query_range",
                                          {{"query", "sum(up)"},
                                           {"start", fmt_seconds(s)},
                                           {"end", fmt_seconds(s + 120'000)},
                                           {"step", "1m0s"}}));
    const auto& values = d.at("result").as_array()[0].at("values").as_array();
    REQUIRE(values.size() == 3);
    CHECK(values[0].as_array()[0].to_number<double>() == Approx(s / 1000.0));
    CHECK(values[1].as_array()[0].to_number<double>() == Approx(s / 1000.0 + 60));
    // 1.7e9 and RFC 3339 with nanoseconds parse as Prometheus parses them.
    CHECK(data_of(grafana(port, "GET", "/api/v1/query", {{"query", "time()"}, {"time", "1.7e9"}}))
              .at("result") == json::array{1700000000, "1700000000"});
    CHECK(data_of(grafana(port, "GET", "/api/v1/query",
                          {{"query", "time()"}, {"time", "2023-11-14T22:13:20.123456789Z"}}))
              .at("result") == json::array{1700000000.123, "1700000000.123"});
    CHECK(grafana(port, "GET", "/api/v1/query_range",
                  {{"query", "up"}, {"start", "0"}, {"end", "60"}, {"step", "15"}})
              .status == 200);
  }

  SECTION("metadata: GET with limit and limit_per_metric; POST is 405") {
    CHECK(data_of(grafana(port, "GET", "/api/v1/metadata", {{"limit", "0"}})) == json::object{});
    CHECK(grafana(port, "GET", "/api/v1/metadata", {{"limit_per_metric", "1"}}).status == 200);
    CHECK(
        grafana(port, "GET", "/api/v1/metadata", {{"limit_per_metric", "x"}}).body ==
        R"({"status":"error","errorType":"bad_data","error":"limit_per_metric must be a number"})");
    CHECK(grafana(port, "POST", "/api/v1/metadata", {}).status == 405);
  }

  SECTION("query_exemplars: an empty list for a valid query, GET or POST; bad_data otherwise") {
    for (const char* method : {"GET", "POST"}) {
      INFO(method);
      const HttpResponse r =
          grafana(port, method, "/api/v1/query_exemplars",
                  {{"query", "rate(http_requests_total[1m0s])"}, {"start", start}, {"end", end}});
      CHECK(r.body == R"({"status":"success","data":[]})");
    }
    require_bad_data(grafana(port, "GET", "/api/v1/query_exemplars", {{"query", "sum("}}));
    require_bad_data(grafana(port, "GET", "/api/v1/query_exemplars",
                             {{"query", "up"}, {"start", "20"}, {"end", "10"}}));
  }

  SECTION("status/tsdb: the index's cardinality, top 10 by default, `limit` as newer Prometheus") {
    const json::value d = data_of(grafana(port, "GET", "/api/v1/status/tsdb", {}));
    CHECK(d.at("headStats").at("numSeries").to_number<int64_t>() == 6);
    CHECK(d.at("headStats").at("numLabelPairs").to_number<int64_t>() == 8);
    CHECK(d.at("seriesCountByMetricName") ==
          json::parse(R"([{"name":"http_requests_total","value":3},{"name":"up","value":3}])"));
    CHECK(d.at("labelValueCountByLabelName").as_array()[0] ==
          json::parse(R"({"name":"job","value":3})"));
    // Value bytes per series: job is api (3 series), web (2), batch (1).
    CHECK(d.at("memoryInBytesByLabelName").as_array()[2] ==
          json::parse(R"({"name":"job","value":20})"));
    const json::value top1 = data_of(grafana(port, "GET", "/api/v1/status/tsdb", {{"limit", "1"}}));
    CHECK(top1.at("seriesCountByLabelValuePair") ==
          json::parse(R"([{"name":"__name__=http_requests_total","value":3}])"));
    CHECK(grafana(port, "GET", "/api/v1/status/tsdb", {{"limit", "0"}}).status == 400);
    CHECK(grafana(port, "POST", "/api/v1/status/tsdb", {}).status == 405);
  }
}

TEST_CASE("grafana: kpid and a real Prometheus answer Grafana's requests alike",
          "[grafana][prometheus]") {
  RealPrometheus prom("global:\n  scrape_interval: 1h\n", {"--web.enable-remote-write-receiver"});
  Kpid k;
  k.start();
  const int64_t t = now_ms() - 60'000;  // in Prometheus' head, so status/tsdb counts it
  const std::string body = remote_write_body(t);
  REQUIRE(k.post("/api/v1/write", body, kRemoteWriteHeaders).status == 204);
  REQUIRE(http_request(prom.port, "POST", "/api/v1/write", body, kRemoteWriteHeaders).status ==
          204);
  const std::string start = fmt_seconds(t - 600'000);
  const std::string end = fmt_seconds(t + 600'000);

  struct Case {
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> params;
    bool same_body;  // else the same status and JSON shape
  };
  const std::vector<Case> cases = {
      {"POST", "/api/v1/query", {{"query", "1+1"}, {"time", "4"}}, true},
      {"POST", "/api/v1/labels", {{"start", start}, {"end", end}}, true},
      {"GET", "/api/v1/labels", {{"match[]", "up"}, {"start", start}, {"end", end}}, true},
      {"GET", "/api/v1/label/job/values", {{"start", start}, {"end", end}}, true},
      {"GET", "/api/v1/label/job/values", {{"match[]", "http_requests_total"}}, true},
      {"POST", "/api/v1/label/job/values", {}, true},
      {"POST", "/api/v1/series", {{"match[]", "up"}, {"start", start}, {"end", end}}, true},
      {"GET", "/api/v1/series", {{"match[]", "{job=\"api\"}"}}, true},
      {"POST", "/api/v1/series", {}, true},
      {"GET", "/api/v1/query_exemplars", {{"query", "up"}, {"start", start}, {"end", end}}, true},
      {"POST", "/api/v1/query_exemplars", {{"query", "up"}}, true},
      {"GET", "/api/v1/query_exemplars", {{"query", "up"}, {"start", "9"}, {"end", "3"}}, true},
      {"POST", "/api/v1/metadata", {}, true},
      {"PUT", "/api/v1/query", {{"query", "up"}}, false},
      {"DELETE", "/api/v1/labels", {}, false},
      {"POST", "/api/v1/status/buildinfo", {}, true},
      {"POST", "/api/v1/status/tsdb", {}, true},
      {"GET", "/api/v1/status/buildinfo", {}, false},
      {"POST",
       "/api/v1/query_range",
       {{"query", "sum by (job) (rate(http_requests_total[1m0s]))"},
        {"start", fmt_seconds(t)},
        {"end", fmt_seconds(t + 30'000)},
        {"step", "15"}},
       false},
  };
  for (const Case& c : cases) {
    INFO(c.method << " " << c.path << " " << form(c.params));
    const HttpResponse ours = grafana(k.http_port(), c.method, c.path, c.params);
    const HttpResponse theirs = grafana(prom.port, c.method, c.path, c.params);
    INFO("kpid: " << ours.body);
    INFO("prometheus: " << theirs.body);
    CHECK(ours.status == theirs.status);
    if (ours.status == 405) {
      CHECK(ours.body == theirs.body);
      continue;
    }
    if (c.same_body) {
      CHECK(ours.json() == theirs.json());
    } else {
      CHECK(shape(ours.json()) == shape(theirs.json()));
    }
  }

  // status/tsdb: the same shape and the same counts (kpid's chunkCount and time span are of its
  // own heads; Prometheus 2.42 has no `limit`, so the default top 10 is compared).
  const json::value ours = data_of(grafana(k.http_port(), "GET", "/api/v1/status/tsdb", {}));
  const json::value theirs = data_of(grafana(prom.port, "GET", "/api/v1/status/tsdb", {}));
  INFO("kpid: " << json::serialize(ours));
  INFO("prometheus: " << json::serialize(theirs));
  CHECK(shape(ours) == shape(theirs));
  CHECK(ours.at("headStats").at("numSeries") == theirs.at("headStats").at("numSeries"));
  CHECK(ours.at("headStats").at("numLabelPairs") == theirs.at("headStats").at("numLabelPairs"));
  // kpid's heads hold the samples not yet sealed into chunks: all of them, unless a chunk window
  // closed between the first and the last.
  CHECK(ours.at("headStats").at("maxTime") == theirs.at("headStats").at("maxTime"));
  CHECK(ours.at("headStats").at("minTime").to_number<int64_t>() >=
        theirs.at("headStats").at("minTime").to_number<int64_t>());
  // The same label names by value bytes; the bytes themselves as later Prometheus versions count
  // them (each value's length once per series), where 2.42 counted each distinct value once.
  std::set<std::string> by_bytes_ours, by_bytes_theirs;
  for (const auto& s : ours.at("memoryInBytesByLabelName").as_array()) {
    by_bytes_ours.insert(std::string(s.at("name").as_string()));
  }
  for (const auto& s : theirs.at("memoryInBytesByLabelName").as_array()) {
    by_bytes_theirs.insert(std::string(s.at("name").as_string()));
  }
  CHECK(by_bytes_ours == by_bytes_theirs);
  // Prometheus orders equal counts as its maps happen to; compare them as sets.
  for (const char* list :
       {"seriesCountByMetricName", "labelValueCountByLabelName", "seriesCountByLabelValuePair"}) {
    INFO(list);
    std::set<std::string> a, b;
    for (const auto& s : ours.at(list).as_array()) a.insert(json::serialize(s));
    for (const auto& s : theirs.at(list).as_array()) b.insert(json::serialize(s));
    CHECK(a == b);
  }
}

// The data source client: answers of the Prometheus API parsed, batches combined and split,
// failures classified, auth headers sent; against a scripted loopback server.

#include "kpid/datasource/source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "support/recording_receiver.h"

using namespace kpid;
using namespace kpid::datasource;

namespace {

std::optional<RequestError> parse(int status, const std::string& body, query::QueryResult& out) {
  return parse_answer(status, body, out);
}

// A counter or gauge's value in the scrape text, or -1.
double metric(metrics::Metrics& m, const std::string& series) {
  const std::string text = m.scrape();
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

DatasourceOptions options_for(const std::string& url) {
  DatasourceOptions o;
  o.name = "vm";
  o.url = url;
  o.timeout = 2'000;
  return o;
}

}  // namespace

TEST_CASE("datasource answers: vector, matrix, scalar and string parse into query results") {
  query::QueryResult r;
  REQUIRE_FALSE(parse(200,
                      R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__name__":"up","job":"b"},"value":[1700000000.5,"2"]},
      {"metric":{"job":"a"},"value":[1700000000.5,"NaN"]}]}})",
                      r));
  CHECK(r.type == query::ValueType::kVector);
  REQUIRE(r.series.size() == 2);
  CHECK(r.series[1].labels->get("job") == "a");  // sorted by labels
  CHECK(std::isnan(r.series[1].points[0].value));
  CHECK(r.series[0].labels->metric_name() == "up");
  CHECK(r.series[0].points[0].timestamp == 1'700'000'000'500);
  CHECK(r.series[0].points[0].value == 2);

  REQUIRE_FALSE(parse(200,
                      R"({"status":"success","data":{"resultType":"matrix","result":[
      {"metric":{},"values":[[10,"1"],[20,"+Inf"],[30,"-2.5e3"]]}]}})",
                      r));
  CHECK(r.type == query::ValueType::kMatrix);
  REQUIRE(r.series.size() == 1);
  REQUIRE(r.series[0].points.size() == 3);
  CHECK(r.series[0].points[1].value == std::numeric_limits<double>::infinity());
  CHECK(r.series[0].points[2].value == -2500);
  CHECK(r.series[0].points[2].timestamp == 30'000);

  REQUIRE_FALSE(
      parse(200, R"({"status":"success","data":{"resultType":"scalar","result":[5,"0.25"]}})", r));
  CHECK(r.type == query::ValueType::kScalar);
  CHECK(r.scalar == 0.25);
  CHECK(r.time == 5'000);

  REQUIRE_FALSE(
      parse(200, R"({"status":"success","data":{"resultType":"string","result":[5,"hi"]}})", r));
  CHECK(r.type == query::ValueType::kString);
  CHECK(r.string == "hi");
}

TEST_CASE("datasource answers: errors, partial answers and malformed bodies are failures") {
  query::QueryResult r;
  auto e = parse(503, R"({"status":"error","errorType":"unavailable","error":"no store"})", r);
  REQUIRE(e);
  CHECK(e->reason == Failure::kHttp5xx);
  CHECK(e->message.find("no store") != std::string::npos);

  e = parse(400, R"({"status":"error","errorType":"bad_data","error":"parse error at char 3"})", r);
  REQUIRE(e);
  CHECK(e->reason == Failure::kHttp4xx);
  CHECK(e->message.find("parse error at char 3") != std::string::npos);

  e = parse(200, R"({"status":"error","error":"boom"})", r);
  REQUIRE(e);
  CHECK(e->reason == Failure::kBadResponse);

  e = parse(200,
            R"({"status":"success","isPartial":true,"data":{"resultType":"vector","result":[]}})",
            r);
  REQUIRE(e);
  CHECK(e->reason == Failure::kPartial);

  e = parse(200,
            R"({"status":"success","warnings":["PromQL: partial response: store 1 down"],
                "data":{"resultType":"vector","result":[]}})",
            r);
  REQUIRE(e);
  CHECK(e->reason == Failure::kPartial);

  // A warning that says nothing of partial data is not a failure.
  CHECK_FALSE(parse(200,
                    R"({"status":"success","warnings":["something else"],
                        "data":{"resultType":"vector","result":[]}})",
                    r));

  for (
      const char* body :
      {"not json", "[]", R"({"status":"success"})",
       R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,2]}]}})",
       R"({"status":"success","data":{"resultType":"weird","result":[]}})"}) {
    e = parse(200, body, r);
    REQUIRE(e);
    CHECK(e->reason == Failure::kBadResponse);
  }
}

TEST_CASE("datasource batches: queries are combined with label_replace and split back") {
  const std::vector<std::string> exprs = {"sum(rate(a[5m]))", "1 + 2", "max(b)"};
  const std::vector<bool> scalar = {false, true, false};
  CHECK(is_scalar_expr("1 + 2"));
  CHECK_FALSE(is_scalar_expr("sum(a)"));
  CHECK(combine_queries(exprs, scalar) ==
        "label_replace(sum(rate(a[5m])), \"__kpid_q\", \"0\", \"\", \"\") or "
        "label_replace(vector(1 + 2), \"__kpid_q\", \"1\", \"\", \"\") or "
        "label_replace(max(b), \"__kpid_q\", \"2\", \"\", \"\")");

  query::QueryResult combined;
  REQUIRE_FALSE(parse_answer(200,
                             R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__kpid_q":"0"},"value":[100,"7"]},
      {"metric":{"__kpid_q":"1"},"value":[100,"3"]}]}})",
                             combined));
  auto split = split_answer(combined, scalar, 100'000);
  REQUIRE(split);
  REQUIRE(split->size() == 3);
  REQUIRE((*split)[0].series.size() == 1);
  CHECK((*split)[0].series[0].labels->empty());  // the tag is dropped
  CHECK((*split)[0].series[0].points[0].value == 7);
  CHECK((*split)[1].type == query::ValueType::kScalar);
  CHECK((*split)[1].scalar == 3);
  CHECK((*split)[2].series.empty());  // no data for max(b)

  query::QueryResult untagged;
  REQUIRE_FALSE(parse_answer(
      200,
      R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}})",
      untagged));
  CHECK_FALSE(split_answer(untagged, scalar, 1'000));
}

TEST_CASE("datasource client: N queries take ceil(N / batch_size) requests, with auth headers") {
  testing::RecordingReceiver receiver;
  receiver.respond_with(200, R"({"status":"success","data":{"resultType":"vector","result":[
      {"metric":{"__kpid_q":"0"},"value":[100,"7"]}]}})");
  metrics::Metrics m;
  DatasourceOptions o = options_for(receiver.url() + "/select/0/prometheus/");
  o.batch_size = 3;
  o.max_concurrency = 2;
  o.auth.bearer_token = "s3cret";
  o.auth.headers = {{"X-Scope-OrgID", "tenant-1"}};
  auto source = Source::create(o, &m);
  REQUIRE(source);
  std::vector<std::string> exprs;
  for (int i = 0; i < 7; ++i) exprs.push_back("sum(x" + std::to_string(i) + ")");
  exprs.push_back("sum(x0)");  // a duplicate is asked once
  auto answers = (*source)->instant_many(exprs, 100'000);
  REQUIRE(answers);
  REQUIRE(answers->size() == 8);
  const auto requests = receiver.requests();
  CHECK(requests.size() == 3);  // 7 distinct queries, 3 per request
  for (const auto& r : requests) {
    CHECK(r.method == "POST");
    CHECK(r.target == "/select/0/prometheus/api/v1/query");
    CHECK(r.headers.at("authorization") == "Bearer s3cret");
    CHECK(r.headers.at("x-scope-orgid") == "tenant-1");
    CHECK(r.headers.at("content-type") == "application/x-www-form-urlencoded");
    CHECK(r.body.find("time=100.000") != std::string::npos);
    CHECK(r.body.find("label_replace") != std::string::npos);
  }
  CHECK(metric(m, "kpid_datasource_requests_total{datasource=\"vm\",kind=\"instant\"}") == 3);
  CHECK(metric(m, "kpid_datasource_up{datasource=\"vm\"}") == 1);
  CHECK((*source)->up());

  auto range = (*source)->range("sum(x)", 0, 600'000, 300'000);
  REQUIRE(range);
  CHECK(receiver.requests().back().target == "/select/0/prometheus/api/v1/query_range");
  CHECK(receiver.requests().back().body.find("step=300.000") != std::string::npos);
  CHECK(metric(m, "kpid_datasource_requests_total{datasource=\"vm\",kind=\"range\"}") == 1);
}

TEST_CASE("datasource client: refused, 5xx, 4xx, partial and timeouts are counted by reason") {
  testing::RecordingReceiver receiver;
  metrics::Metrics m;
  auto source = Source::create(options_for(receiver.url()), &m);
  REQUIRE(source);
  auto reason = [&](const char* r) {
    return metric(
        m, std::string("kpid_datasource_request_failures_total{datasource=\"vm\",reason=\"") + r +
               "\"}");
  };

  receiver.respond_with(503, R"({"status":"error","error":"overloaded"})");
  auto r = (*source)->instant("up", 1'000);
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("datasource vm") != std::string::npos);
  CHECK(r.status().message().find("overloaded") != std::string::npos);
  CHECK(reason("http_5xx") == 1);
  CHECK_FALSE((*source)->up());
  CHECK(metric(m, "kpid_datasource_up{datasource=\"vm\"}") == 0);

  receiver.respond_with(422, R"({"status":"error","errorType":"execution","error":"too many"})");
  REQUIRE_FALSE((*source)->instant("up", 1'000));
  CHECK(reason("http_4xx") == 1);

  receiver.respond_with(
      200, R"({"status":"success","isPartial":true,"data":{"resultType":"vector","result":[]}})");
  REQUIRE_FALSE((*source)->instant("up", 1'000));
  CHECK(reason("partial") == 1);

  receiver.respond_with(200, "<html>proxy error</html>", "text/html");
  REQUIRE_FALSE((*source)->instant("up", 1'000));
  CHECK(reason("bad_response") == 1);

  receiver.respond_with(200, R"({"status":"success","data":{"resultType":"vector","result":[]}})");
  REQUIRE((*source)->instant("up", 1'000));
  CHECK((*source)->up());

  receiver.stop();
  REQUIRE_FALSE((*source)->instant("up", 1'000));
  CHECK(reason("connect") == 1);

  // A server that accepts connections and never answers.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  DatasourceOptions slow = options_for("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)));
  slow.name = "slow";
  slow.timeout = 300;
  auto silent = Source::create(slow, &m);
  REQUIRE(silent);
  REQUIRE_FALSE((*silent)->instant("up", 1'000));
  CHECK(
      metric(m, "kpid_datasource_request_failures_total{datasource=\"slow\",reason=\"timeout\"}") ==
      1);
  ::close(fd);
}
